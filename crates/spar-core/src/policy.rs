//! The policy contract for tree games.
//!
//! A [`Policy`] maps a decision node to a distribution over the legal actions of the player
//! to move. Exact evaluation (best response, NashConv) reads the distribution; play
//! (tournaments, self-play) samples from it with [`sample_action`] and a caller-owned RNG.
//! A policy must depend on the acting player's information only: tabular policies are keyed
//! by the information-state string; perfect-information players (minimax) may read the whole
//! state because nothing is hidden.

use std::collections::BTreeMap;

use rand::Rng as _;

use crate::game::{Action, State};

/// A (possibly stochastic) way of playing a tree game with state type `S`.
pub trait Policy<S: State>: Send + Sync {
    /// A short name for tables and logs (`uniform`, `minimax`, `tabular:kuhn.json`).
    fn name(&self) -> String;

    /// The distribution over `state.legal_actions()` for the player to move: pairs with
    /// non-negative probabilities summing to 1, ascending by action. Actions missing from
    /// the list have probability 0. Called only at decision nodes.
    ///
    /// An empty list means the player gives no move: a language model whose answer named no
    /// legal action, or a remote model whose call failed. Play treats it as a forfeit (the
    /// tournament's [`forfeit_returns`], or the text environment's invalid-move rule in
    /// rollouts); exact evaluation, which needs a distribution everywhere, reports an error.
    fn action_probabilities(&self, state: &S) -> Vec<(Action, f64)>;
}

/// Returns when `offender` forfeits a game of `num_players` players by giving no move: -1 for
/// it and +1 shared among the others (TextArena's forfeit; zero-sum, so Elo stays meaningful).
pub fn forfeit_returns(offender: crate::game::Player, num_players: usize) -> Vec<f64> {
    let others = (num_players.max(2) - 1) as f64;
    (0..num_players)
        .map(|p| if p == offender { -1.0 } else { 1.0 / others })
        .collect()
}

/// Every legal action with equal probability (OpenSpiel's `UniformRandomPolicy`).
#[derive(Debug, Clone, Copy, Default)]
pub struct UniformRandom;

impl<S: State> Policy<S> for UniformRandom {
    fn name(&self) -> String {
        "uniform".to_string()
    }

    fn action_probabilities(&self, state: &S) -> Vec<(Action, f64)> {
        let legal = state.legal_actions();
        let p = 1.0 / legal.len() as f64;
        legal.into_iter().map(|a| (a, p)).collect()
    }
}

/// A policy stored as a table: information-state string to `(action, probability)` pairs.
///
/// The table is OpenSpiel's `TabularPolicy::PolicyTable()` (for Kuhn Poker and Leduc
/// Hold'em the keys are OpenSpiel's information-state strings). Information states missing
/// from the table are played uniformly at random, as OpenSpiel does for a fresh tabular
/// policy. Files in this format are read and written by `spar-eval`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct TabularPolicy {
    /// Information-state string to the distribution over legal actions there.
    pub table: BTreeMap<String, Vec<(Action, f64)>>,
}

impl TabularPolicy {
    /// A policy from its table.
    pub fn new(table: BTreeMap<String, Vec<(Action, f64)>>) -> Self {
        Self { table }
    }

    /// Sets the distribution at one information state.
    pub fn insert(
        &mut self,
        information_state: impl Into<String>,
        distribution: Vec<(Action, f64)>,
    ) {
        self.table.insert(information_state.into(), distribution);
    }
}

impl<S: State> Policy<S> for TabularPolicy {
    fn name(&self) -> String {
        "tabular".to_string()
    }

    fn action_probabilities(&self, state: &S) -> Vec<(Action, f64)> {
        let player = state
            .current_player()
            .expect("action_probabilities is called at decision nodes");
        match self.table.get(&state.information_state_string(player)) {
            Some(distribution) => distribution.clone(),
            None => UniformRandom.action_probabilities(state),
        }
    }
}

/// Samples an action from `(action, probability)` pairs by inverse CDF.
///
/// Probabilities need not be normalised exactly; the last action with positive probability
/// absorbs rounding. Panics on an empty list or one whose probabilities are all zero
/// (programmer errors: a policy always gives some legal action positive mass).
pub fn sample_action(distribution: &[(Action, f64)], rng: &mut crate::Rng) -> Action {
    let total: f64 = distribution.iter().map(|&(_, p)| p).sum();
    assert!(
        total > 0.0 && total.is_finite(),
        "sample_action: the distribution {distribution:?} has no positive mass"
    );
    let mut threshold = rng.gen::<f64>() * total;
    let mut last_positive = None;
    for &(action, p) in distribution {
        if p <= 0.0 {
            continue;
        }
        if threshold < p {
            return action;
        }
        threshold -= p;
        last_positive = Some(action);
    }
    last_positive.expect("a positive probability exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_follows_the_distribution() {
        let mut rng = crate::seeded_rng(7);
        let distribution = [(0, 0.25), (3, 0.0), (5, 0.75)];
        let mut counts = [0usize; 6];
        for _ in 0..40_000 {
            counts[sample_action(&distribution, &mut rng)] += 1;
        }
        assert_eq!(counts[3], 0, "zero-probability actions are never drawn");
        let share = counts[5] as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.01, "share of action 5 was {share}");
    }

    #[test]
    fn sampling_is_seeded() {
        let distribution = [(0, 0.5), (1, 0.5)];
        let draw = |seed| {
            let mut rng = crate::seeded_rng(seed);
            (0..32)
                .map(|_| sample_action(&distribution, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(11), draw(11));
        assert_ne!(draw(11), draw(12));
    }
}
