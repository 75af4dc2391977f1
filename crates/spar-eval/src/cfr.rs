//! Counterfactual regret minimisation on the enumerated tree: CFR and CFR+.
//!
//! Each iteration `t` evaluates the current policy `sigma^t` and, at every information set
//! `I` of the updated player `p`, adds the counterfactual regret of each action,
//!
//! ```text
//! R(I, a) += sum_{h in I} c(h) * (v_p(h a) - v_p(h))
//! ```
//!
//! where `c(h)` is the reach probability of `h` through the other players and chance, and
//! `v_p` is `p`'s expected return under `sigma^t`. The next policy is regret matching,
//! `sigma(I, a) = R+(I, a) / sum_b R+(I, b)` (uniform when no regret is positive). The
//! average policy accumulates `w_t * pi_p(h) * sigma^t(I, a)`, normalised per set, with
//! `pi_p(h)` the player's own reach. The variants ([`CfrVariant`]) follow OpenSpiel's
//! `cfr.py` exactly:
//!
//! | variant | updates | regrets | averaging weight `w_t` | OpenSpiel |
//! |---|---|---|---|---|
//! | [`CfrVariant::Cfr`] | alternating (player 0, then 1, ...) | regret matching | 1 | `CFRSolver` |
//! | [`CfrVariant::CfrPlus`] | alternating | regret matching+ (`R <- max(R, 0)` after each pass) | `t` (linear, delay 0) | `CFRPlusSolver` |
//! | [`CfrVariant::Simultaneous`] | simultaneous (all players against `sigma^t`) | regret matching | 1 | `_CFRSolver(alternating_updates=False)`; Zinkevich et al. 2007 |
//!
//! With alternating updates, player `p + 1`'s pass already sees player `p`'s new policy.
//!
//! Every pass is two sweeps over the flat [`GameTree`] arrays: a forward sweep for reach
//! probabilities and a backward sweep for values and regret updates. No strings, no hashing,
//! no allocation per iteration.
//!
//! References: Zinkevich, Johanson, Bowling, Piccione, "Regret Minimization in Games with
//! Incomplete Information", NeurIPS 2007; Tammelin, "Solving Large Imperfect Information
//! Games Using CFR+", 2014; OpenSpiel `open_spiel/python/algorithms/cfr.py`.

use spar_core::{Game, State, TabularPolicy};

use crate::best_response::{check_two_player_zero_sum, nash_conv_on_tree, NashConv};
use crate::error::Result;
use crate::tree::{GameTree, NodeKind, TreePolicy};

/// Which CFR to run (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CfrVariant {
    /// OpenSpiel's `CFRSolver`: alternating updates, regret matching, uniform averaging.
    Cfr,
    /// OpenSpiel's `CFRPlusSolver`: alternating updates, regret matching+, linear averaging.
    CfrPlus,
    /// The original CFR: simultaneous updates, regret matching, uniform averaging.
    Simultaneous,
}

/// A CFR solver over a game's enumerated tree.
#[derive(Debug, Clone)]
pub struct CfrSolver<S> {
    tree: GameTree<S>,
    variant: CfrVariant,
    iterations: usize,
    /// Cumulative regrets, one per (information set, legal action).
    regrets: Vec<f64>,
    /// Cumulative (weighted) policy, one per (information set, legal action).
    cumulative_policy: Vec<f64>,
    /// The current policy `sigma^t`.
    current: TreePolicy,
    // Scratch arrays. `reach[node * (num_players + 1) + i]`: the product of player `i`'s
    // action probabilities on the path to `node` (`i = num_players`: chance's).
    reach: Vec<f64>,
    values: Vec<f64>,
}

impl<S: State> CfrSolver<S> {
    /// A solver for `game`, starting from the uniform policy. Fails when the game tree is too
    /// large to enumerate.
    pub fn new<G: Game<State = S>>(game: &G, variant: CfrVariant) -> Result<Self> {
        Ok(Self::from_tree(GameTree::build(game)?, variant))
    }

    /// A solver on an already enumerated tree.
    pub fn from_tree(tree: GameTree<S>, variant: CfrVariant) -> Self {
        let num_actions = tree.num_info_set_actions();
        let num_nodes = tree.num_nodes();
        let width = tree.info().num_players + 1;
        let current = tree.uniform_policy();
        Self {
            tree,
            variant,
            iterations: 0,
            regrets: vec![0.0; num_actions],
            cumulative_policy: vec![0.0; num_actions],
            current,
            reach: vec![1.0; num_nodes * width],
            values: vec![0.0; num_nodes],
        }
    }

    /// The variant this solver runs.
    pub fn variant(&self) -> CfrVariant {
        self.variant
    }

    /// The enumerated tree.
    pub fn tree(&self) -> &GameTree<S> {
        &self.tree
    }

    /// Iterations run so far.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// Runs one iteration (one pass per player).
    pub fn iterate(&mut self) {
        self.iterations += 1;
        let num_players = self.tree.info().num_players;
        match self.variant {
            CfrVariant::Cfr | CfrVariant::CfrPlus => {
                for player in 0..num_players {
                    self.accumulate(player);
                    self.update_current(Some(player));
                }
            }
            CfrVariant::Simultaneous => {
                for player in 0..num_players {
                    self.accumulate(player);
                }
                self.update_current(None);
            }
        }
    }

    /// Runs `iterations` iterations.
    pub fn run(&mut self, iterations: usize) {
        for _ in 0..iterations {
            self.iterate();
        }
    }

    /// The current policy `sigma^t` (does not converge in general; the average does).
    pub fn current_policy(&self) -> TabularPolicy {
        self.tree.to_tabular(&self.current)
    }

    /// The average policy, which converges to a Nash equilibrium in two-player zero-sum
    /// games. Information sets never reached by their player are uniform.
    pub fn average_policy(&self) -> TabularPolicy {
        self.tree.to_tabular(&self.average_tree_policy())
    }

    /// The average policy as flat per-action probabilities on [`CfrSolver::tree`].
    pub fn average_tree_policy(&self) -> TreePolicy {
        let mut probabilities = vec![0.0; self.tree.num_info_set_actions()];
        for set in self.tree.info_sets() {
            let range = set.action_offset..set.action_offset + set.legal_actions.len();
            let total: f64 = self.cumulative_policy[range.clone()].iter().sum();
            for i in range {
                probabilities[i] = if total > 0.0 {
                    self.cumulative_policy[i] / total
                } else {
                    1.0 / set.legal_actions.len() as f64
                };
            }
        }
        TreePolicy { probabilities }
    }

    /// NashConv of the average policy; fails unless the game is two-player zero-sum.
    pub fn nash_conv(&self) -> Result<NashConv> {
        check_two_player_zero_sum(self.tree.info(), "NashConv")?;
        Ok(nash_conv_on_tree(&self.tree, &self.average_tree_policy()))
    }

    /// One pass for `player`: reach probabilities forward, values and the player's regret
    /// and average-policy updates backward, all under the current policy.
    fn accumulate(&mut self, player: usize) {
        let tree = &self.tree;
        let sigma = &self.current.probabilities;
        let num_nodes = tree.num_nodes();
        // Reach probabilities are kept per player and multiplied together only where they
        // are used, in OpenSpiel's order (`prod(reach[:p]) * prod(reach[p + 1:])`, chance
        // last), so that the floating-point results agree with OpenSpiel's bit for bit:
        // regret matching is discontinuous at zero regret, and a last-bit difference there
        // grows over hundreds of iterations.
        let width = tree.info().num_players + 1;
        for node in 1..num_nodes {
            let parent = tree.parent(node);
            let (mover, probability) = match tree.kind(parent) {
                NodeKind::Chance => (width - 1, tree.chance_probability(node)),
                NodeKind::Decision {
                    player: mover,
                    info_set,
                } => {
                    let offset = tree.info_sets()[info_set].action_offset;
                    (mover, sigma[offset + node - tree.children(parent).start])
                }
                NodeKind::Terminal => unreachable!("terminal nodes have no children"),
            };
            let (from, to) = (parent * width, node * width);
            self.reach.copy_within(from..from + width, to);
            self.reach[to + mover] *= probability;
        }
        let weight = match self.variant {
            CfrVariant::CfrPlus => self.iterations as f64,
            CfrVariant::Cfr | CfrVariant::Simultaneous => 1.0,
        };
        for node in (0..num_nodes).rev() {
            let children = tree.children(node);
            self.values[node] = match tree.kind(node) {
                NodeKind::Terminal => tree.returns(node)[player],
                NodeKind::Chance => children
                    .map(|child| tree.chance_probability(child) * self.values[child])
                    .sum(),
                NodeKind::Decision { info_set, .. } => {
                    let offset = tree.info_sets()[info_set].action_offset;
                    let first = children.start;
                    children
                        .map(|child| sigma[offset + child - first] * self.values[child])
                        .sum()
                }
            };
        }
        // Updates after the sweep, node by node in ascending (history) order within each
        // information set: OpenSpiel's summation order.
        let product = |range: &[f64]| range.iter().fold(1.0, |acc, r| acc * r);
        for set in tree.info_sets().iter().filter(|set| set.player == player) {
            for &node in &set.nodes {
                let reach = &self.reach[node * width..(node + 1) * width];
                let counterfactual = product(&reach[..player]) * product(&reach[player + 1..]);
                let own = weight * reach[player];
                let value = self.values[node];
                for (k, child) in (set.action_offset..).zip(tree.children(node)) {
                    self.regrets[k] += counterfactual * (self.values[child] - value);
                    self.cumulative_policy[k] += own * sigma[k];
                }
            }
        }
    }

    /// Regret matching (after the regret-matching+ reset for CFR+) at the information sets
    /// of `player`, or of every player when `None`.
    fn update_current(&mut self, player: Option<usize>) {
        for set in self.tree.info_sets() {
            if player.is_some_and(|p| p != set.player) {
                continue;
            }
            let range = set.action_offset..set.action_offset + set.legal_actions.len();
            if self.variant == CfrVariant::CfrPlus {
                for regret in &mut self.regrets[range.clone()] {
                    *regret = regret.max(0.0);
                }
            }
            let positive: f64 = self.regrets[range.clone()].iter().map(|r| r.max(0.0)).sum();
            for i in range {
                self.current.probabilities[i] = if positive > 0.0 {
                    self.regrets[i].max(0.0) / positive
                } else {
                    1.0 / set.legal_actions.len() as f64
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_games::kuhn::KuhnPoker;

    #[test]
    fn cfr_plus_solves_kuhn_within_200_iterations() {
        // OpenSpiel cfr_test.py: CFR+ on Kuhn reaches exploitability <= 0.001 within 200
        // iterations, with values within 1e-3 of (-1/18, 1/18).
        let mut solver = CfrSolver::new(&KuhnPoker::new(), CfrVariant::CfrPlus).unwrap();
        solver.run(200);
        let result = solver.nash_conv().unwrap();
        assert!(result.exploitability <= 1e-3, "{result:?}");
        assert!(
            (result.on_policy_values[0] + 1.0 / 18.0).abs() < 1e-3,
            "{result:?}"
        );
    }

    #[test]
    fn cfr_values_approach_the_game_value_on_kuhn() {
        // OpenSpiel cfr_test.py::test_cfr_kuhn_poker: 300 iterations, average-policy values
        // within 1e-3 of (-1/18, 1/18).
        let mut solver = CfrSolver::new(&KuhnPoker::new(), CfrVariant::Cfr).unwrap();
        solver.run(300);
        let result = solver.nash_conv().unwrap();
        assert!(
            (result.on_policy_values[0] + 1.0 / 18.0).abs() < 1e-3,
            "{result:?}"
        );
        assert!(
            (result.on_policy_values[1] - 1.0 / 18.0).abs() < 1e-3,
            "{result:?}"
        );
    }

    #[test]
    fn first_cfr_iteration_matches_a_hand_computation() {
        // After one iteration every policy is played with reach weight 1 at the root, so
        // player 0's first information sets average to the uniform policy of iteration 1.
        let mut solver = CfrSolver::new(&KuhnPoker::new(), CfrVariant::Cfr).unwrap();
        solver.iterate();
        let average = solver.average_policy();
        assert_eq!(average.table["0"], vec![(0, 0.5), (1, 0.5)]);
        // Player 0 holding the King, against uniform play: betting is worth
        // 0.5 * 1 (fold) + 0.5 * 2 (call) = 1.5; passing is worth 0.5 * 1 (check back) +
        // 0.5 * (0.5 * -1 + 0.5 * 2) (bet, then player 0 folds or calls) = 0.75. The node
        // value is 1.125, so betting has positive regret and passing negative: regret
        // matching bets the King with probability 1.
        assert_eq!(solver.current_policy().table["2"], vec![(0, 0.0), (1, 1.0)]);
    }
}
