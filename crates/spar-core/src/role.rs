//! Roles: who is acting, as a first-class key.
//!
//! A [`Role`] names an environment, a seat and a role name. Today's roles are the players
//! of games (`kuhn/player0`, [`Role::player`]) and the solver of a verifiable task
//! (`arithmetic/solver`). The vocabulary is designed so that the loops planned next (a
//! proposer and a solver, a generator and a critic, an attacker and a defender, a first and
//! a second attempt; none of them exists yet) need no new type. Observations, transcript
//! turns, training samples, advantage baselines (SPIRAL's RAE keeps one per game and role)
//! and metrics are keyed by it; one set of weights plays every role.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::game::Player;

/// Who is acting: environment, seat, role name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Role {
    /// The game or task (`kuhn`, `tictactoe`, `arithmetic`); a future loop's name.
    pub env: String,
    /// The seat (player index).
    pub seat: Player,
    /// The role's name: `player0`, `player1`, ... in games, `solver` in tasks (future loops:
    /// `proposer`, `attacker`, `attempt2`).
    pub name: String,
}

impl Role {
    /// A role with an explicit name.
    pub fn new(env: impl Into<String>, seat: Player, name: impl Into<String>) -> Self {
        Self {
            env: env.into(),
            seat,
            name: name.into(),
        }
    }

    /// The role of seat `seat` in a game, named `player{seat}` (SPIRAL's roles).
    pub fn player(env: impl Into<String>, seat: Player) -> Self {
        Self::new(env, seat, format!("player{seat}"))
    }

    /// The key used in metric names and baseline tables: `env/name`.
    pub fn key(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.env, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_print_as_env_slash_name() {
        assert_eq!(Role::player("kuhn", 1).to_string(), "kuhn/player1");
        assert_eq!(
            Role::new("absolute-zero", 0, "proposer").key(),
            "absolute-zero/proposer"
        );
    }
}
