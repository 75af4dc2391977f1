//! spar-games: every game spar ships, one file each.
//!
//! Each file holds the rules in its header doc, a parameter table with defaults, reference
//! policies and its tests, and every game runs `spar_core::testing::check_conformance`.
//! [`registry`] names them for the command line: `spar games` lists them and
//! [`with_game!`] turns a specification into a concrete game type with one `match`.
//!
//! * [`tasks`]: verifiable single-player tasks (arithmetic, countdown, word problems, JSONL
//!   files) with their verifiers, seeded disjoint train/test splits and
//!   [`tasks::TaskEnv`], a task as a one-turn text environment.
#![warn(missing_docs)]

pub mod connect_four;
pub mod heuristic;
pub mod kuhn;
pub mod leduc;
pub mod negotiation;
pub mod registry;
pub mod tasks;
pub mod text;
pub mod tictactoe;

pub use connect_four::ConnectFour;
pub use kuhn::KuhnPoker;
pub use leduc::LeducPoker;
pub use negotiation::Negotiation;
pub use tictactoe::TicTacToe;
