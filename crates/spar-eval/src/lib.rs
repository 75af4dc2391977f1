//! spar-eval: exact evaluation of policies in tree games.
//!
//! * [`tree`]: [`GameTree`], the game tree enumerated once into flat arrays with dense
//!   information-set ids; every exact algorithm below runs on it.
//! * [`best_response`]: expected returns (one policy for every player, one per player, or
//!   one policy against another in each seat), exact best responses, NashConv and
//!   exploitability (OpenSpiel's definitions).
//! * [`cfr`]: CFR and CFR+ ([`CfrSolver`]), matching OpenSpiel's `CFRSolver` and
//!   `CFRPlusSolver`.
//! * [`search`]: full minimax and depth-limited alpha-beta for perfect-information games.
//! * [`tournament`] and [`elo`]: seeded matches, head-to-head statistics with confidence
//!   intervals, round robins and maximum-likelihood Elo ratings.
//! * [`policy_file`]: tabular policies as JSON files (OpenSpiel's `policy_table()`).
//! * [`pass_at_k`](mod@pass_at_k): sampling-based accuracy of answer generators: unbiased
//!   pass@k (Chen et al. 2021), majority and weighted votes (self-consistency, ReVISE's
//!   confidence vote), AUROC and pass@1 per difficulty.
//!
//! Definitions and formulas are in `docs/evaluation.md`; the file format is in
//! `docs/policy-format.md`. Nothing here needs a GPU or the network.
#![warn(missing_docs)]

pub mod best_response;
pub mod cfr;
pub mod elo;
pub mod error;
pub mod pass_at_k;
pub mod policy_file;
pub mod search;
pub mod tournament;
pub mod tree;

pub use best_response::{
    best_response, expected_returns, nash_conv, profile_returns, profile_returns_on_tree,
    returns_by_seat, returns_by_seat_on_tree, BestResponse, NashConv,
};
pub use cfr::{CfrSolver, CfrVariant};
pub use elo::{fit_elo, EloAnchor, EloOptions, PairResult};
pub use error::{Error, Result};
pub use pass_at_k::{
    auroc, majority_vote, mean_pass_at_k, pass_at_k, per_difficulty, weighted_vote, LevelAccuracy,
};
pub use search::{minimax_value, AlphaBeta, Evaluate, Minimax};
pub use tournament::{head_to_head, play, round_robin, HeadToHead, Interval, Record, RoundRobin};
pub use tree::{GameTree, TreePolicy};
