//! Roles: who is acting, as a first-class key.
//!
//! A [`Role`] names an environment (game or loop), a seat and a role name
//! (`kuhn/player0`, `absolute-zero/proposer`). Observations, transcript turns, samples,
//! reward functions, advantage baselines (SPIRAL's RAE keeps one per game and role) and
//! metrics are keyed by it; one set of weights plays every role.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::game::Player;

/// Who is acting: environment, seat, role name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Role {
    /// The game or loop (`kuhn`, `tictactoe`, `selfplay-redteam`).
    pub env: String,
    /// The seat (player index).
    pub seat: Player,
    /// The role's name (`player0`, `attacker`, `attempt2`).
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
