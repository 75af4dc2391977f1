//! Position evaluations for depth-limited search.
//!
//! `spar_eval::AlphaBeta` scores the positions at its search frontier with a function
//! `fn(&S, Player) -> f64`. [`Heuristic`] gives every registered game one: Connect Four
//! scores open windows; games without a hand-written evaluation score every unfinished
//! position 0 (alpha-beta then plays perfectly within its horizon and indifferently beyond).

use spar_core::{Game, Player};

/// A game's frontier evaluation for alpha-beta.
pub trait Heuristic: Game {
    /// The evaluation: the value of an unfinished position for `player`, within the game's
    /// utility range (strictly inside it, so that proven wins and losses rank first).
    fn heuristic(&self) -> fn(&Self::State, Player) -> f64 {
        |_, _| 0.0
    }
}

impl Heuristic for crate::kuhn::KuhnPoker {}
impl Heuristic for crate::leduc::LeducPoker {}
impl Heuristic for crate::tictactoe::TicTacToe {}
impl Heuristic for crate::connect_four::ConnectFour {
    fn heuristic(&self) -> fn(&Self::State, Player) -> f64 {
        crate::connect_four::heuristic
    }
}
impl Heuristic for crate::negotiation::Negotiation {}
