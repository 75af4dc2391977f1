//! spar-core: the vocabulary every other spar crate speaks.
//!
//! * [`game`]: the tree contract ([`Game`], [`State`], [`Turn`]), modelled on OpenSpiel's
//!   `spiel.h`. Exact algorithms (best response, CFR, minimax) need nothing else.
//! * [`spec`]: game specifications such as `kuhn(hands=5)`, parsed once at the edge.
//! * [`policy`]: the [`Policy`] contract for tree games and the action-sampling helper.
//! * [`env`], [`role`], [`text`]: the text view. [`Env`] is TextArena's contract (observation
//!   text in, completion text out), [`Role`] names who acts, and [`TextGame`] adapts any tree
//!   game to an [`Env`] through a per-game [`GameText`], a swappable [`Protocol`] and an
//!   [`InvalidMoveRule`].
//! * [`testing`]: the conformance suite every game runs (OpenSpiel's `basic_tests`), and the
//!   check that a developer guide quotes its worked example verbatim.
//!
//! * [`atomic`]: [`atomic::write_atomic`], how every crate of spar writes a file (a temporary
//!   file and a rename).
//!
//! Nothing here depends on tensors, a GPU or the network.
#![warn(missing_docs)]

pub mod atomic;
pub mod env;
pub mod error;
pub mod game;
pub mod policy;
pub mod role;
pub mod seeds;
pub mod spec;
pub mod testing;
pub mod text;

pub use env::{Env, Observation, Step, StepOutcome, Transcript, TranscriptTurn};
pub use error::{Error, Result};
pub use game::{
    Action, Game, GameInfo, Information, Player, State, Turn, Utility, CHANCE_PLAYER_NAME,
};
pub use policy::{forfeit_returns, sample_action, Policy, TabularPolicy, UniformRandom};
pub use role::Role;
pub use spec::GameSpec;
pub use text::{GameText, InvalidMoveRule, Protocol, ProtocolKind, TextGame, TextOptions, View};

/// The random number generator spar uses wherever results must be reproducible: a seeded
/// ChaCha8 stream, identical on every platform and across `rand` releases.
pub type Rng = rand_chacha::ChaCha8Rng;

/// A seeded [`Rng`]. Library code never creates its own entropy: callers hand in a seed.
pub fn seeded_rng(seed: u64) -> Rng {
    use rand::SeedableRng;
    Rng::seed_from_u64(seed)
}
