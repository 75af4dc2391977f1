//! The enumerated game tree every exact algorithm shares.
//!
//! [`GameTree::build`] walks a game once, depth first, and stores every node in flat
//! arrays: the node's kind, its player and information-set id, the contiguous range of its
//! children, the probability of the chance edge that leads to it and, at terminal nodes,
//! the returns. Information-state strings are computed once per decision node, during the
//! build, and interned into dense information-set ids; one representative [`State`] per
//! information set is kept so that a [`Policy`] is queried exactly once per information set
//! ([`GameTree::tabulate`]).
//!
//! A node's children get their indices together, when the node is expanded, which gives
//! the two properties the algorithms rely on:
//! * a parent's index is below its children's, so one forward sweep over the indices
//!   propagates reach probabilities, and one backward sweep computes values;
//! * the children of a node are contiguous (`first_child .. first_child + num_children`),
//!   in the order of the legal actions, so a child's position is its action's index in the
//!   information set's legal-action list.
//!
//! Nodes are expanded in history order (depth-first preorder, as OpenSpiel's recursive
//! algorithms visit them), and each information set lists its nodes in that order, so
//! sums over an information set's nodes run in OpenSpiel's order.
//!
//! Information sets are keyed by `(player, information-state string)`; the table of a
//! [`TabularPolicy`] is keyed by the string alone, as in OpenSpiel.

use std::collections::HashMap;

use spar_core::{Action, Game, GameInfo, Player, Policy, State, TabularPolicy, Turn};

use crate::error::{Error, Result};

/// The node limit of [`GameTree::build`]: 2 million nodes (a few hundred MB at most; a game
/// beyond it fails in about a second). TicTacToe has 549,946 nodes and Leduc Hold'em 9,457;
/// Connect Four and Simple Negotiation are far beyond.
pub const DEFAULT_MAX_NODES: usize = 2_000_000;

/// Tolerance on the sum of a policy's probabilities at one information state.
pub const DISTRIBUTION_TOLERANCE: f64 = 1e-6;

/// What sits at a node of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A terminal node.
    Terminal,
    /// A chance node; each child carries the probability of its edge.
    Chance,
    /// A decision node of `player`, in information set `info_set`.
    Decision {
        /// The player to move.
        player: Player,
        /// The dense id of the node's information set.
        info_set: usize,
    },
}

/// One information set: a player's information state and its legal actions.
#[derive(Debug, Clone)]
pub struct InfoSet<S> {
    /// The player who acts here.
    pub player: Player,
    /// The information-state string (the key of tabular policies).
    pub key: String,
    /// The legal actions, ascending (identical at every node of the set).
    pub legal_actions: Vec<Action>,
    /// Offset of this set's first action in flat per-action arrays (see
    /// [`GameTree::num_info_set_actions`]).
    pub action_offset: usize,
    /// The tree nodes in this set, in history (depth-first preorder) order.
    pub nodes: Vec<usize>,
    /// One state of this set, used to query policies.
    pub representative: S,
}

/// The whole game tree, enumerated once, in flat arrays (see the module doc).
#[derive(Debug, Clone)]
pub struct GameTree<S> {
    info: GameInfo,
    kinds: Vec<NodeKind>,
    parents: Vec<usize>,
    first_child: Vec<usize>,
    num_children: Vec<usize>,
    /// Probability of the chance edge into a node; 1 for other nodes.
    chance_probability: Vec<f64>,
    /// The action on the edge into a node (unused at the root).
    incoming_action: Vec<Action>,
    /// `num_players` returns per node (zero at non-terminal nodes).
    returns: Vec<f64>,
    info_sets: Vec<InfoSet<S>>,
    /// Per player: information-state string to information-set id.
    index: Vec<HashMap<String, usize>>,
    num_info_set_actions: usize,
}

/// A policy evaluated at every information set of a [`GameTree`]: for information set `i`,
/// `probabilities[i.action_offset + k]` is the probability of `i.legal_actions[k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TreePolicy {
    /// Flat per-action probabilities, indexed as described above.
    pub probabilities: Vec<f64>,
}

impl<S: State> GameTree<S> {
    /// Enumerates the tree of `game`, failing with [`Error::TreeTooLarge`] beyond
    /// [`DEFAULT_MAX_NODES`] nodes.
    pub fn build<G: Game<State = S>>(game: &G) -> Result<Self> {
        Self::build_with_limit(game, DEFAULT_MAX_NODES)
    }

    /// Enumerates the tree of `game`, failing with [`Error::TreeTooLarge`] beyond
    /// `max_nodes` nodes.
    ///
    /// # Panics
    /// When the game breaks its contract: two nodes of one information set with different
    /// legal actions, or a non-terminal node without legal actions.
    pub fn build_with_limit<G: Game<State = S>>(game: &G, max_nodes: usize) -> Result<Self> {
        let info = game.info().clone();
        let num_players = info.num_players;
        let mut tree = GameTree {
            info,
            kinds: Vec::new(),
            parents: Vec::new(),
            first_child: Vec::new(),
            num_children: Vec::new(),
            chance_probability: Vec::new(),
            incoming_action: Vec::new(),
            returns: Vec::new(),
            info_sets: Vec::new(),
            index: vec![HashMap::new(); num_players],
            num_info_set_actions: 0,
        };
        tree.allocate(0, 0, 1.0);
        // Depth-first with reserved slots: expanding a node allocates its children's indices
        // contiguously at the end of the arrays, then pushes their states. The stack holds
        // only the pending siblings along one path, so memory stays proportional to the
        // tree, not to its widest level, and nodes are expanded in history (preorder)
        // order, OpenSpiel's traversal order.
        let mut stack: Vec<(usize, S)> = vec![(0, game.new_initial_state())];
        while let Some((node, state)) = stack.pop() {
            let turn = state.turn();
            let kind = match turn {
                Turn::Terminal => NodeKind::Terminal,
                Turn::Chance => NodeKind::Chance,
                Turn::Player(player) => {
                    let key = state.information_state_string(player);
                    let info_set = tree.intern(player, key, &state);
                    tree.info_sets[info_set].nodes.push(node);
                    NodeKind::Decision { player, info_set }
                }
            };
            tree.kinds[node] = kind;
            let edges: Vec<(Action, f64)> = match kind {
                NodeKind::Terminal => {
                    let returns = state.returns();
                    assert_eq!(
                        returns.len(),
                        num_players,
                        "returns() has one entry per player"
                    );
                    tree.returns[node * num_players..(node + 1) * num_players]
                        .copy_from_slice(&returns);
                    Vec::new()
                }
                NodeKind::Chance => {
                    let outcomes = state.chance_outcomes();
                    assert!(!outcomes.is_empty(), "a chance node has outcomes");
                    outcomes
                }
                NodeKind::Decision { info_set, .. } => {
                    let legal = state.legal_actions();
                    assert_eq!(
                        legal, tree.info_sets[info_set].legal_actions,
                        "every node of information set {:?} has the same legal actions",
                        tree.info_sets[info_set].key
                    );
                    legal.into_iter().map(|action| (action, 1.0)).collect()
                }
            };
            let first = tree.kinds.len();
            tree.first_child[node] = first;
            tree.num_children[node] = edges.len();
            for &(action, probability) in &edges {
                tree.allocate(node, action, probability);
            }
            for (k, &(action, _)) in edges.iter().enumerate().rev() {
                stack.push((first + k, state.child(action)));
            }
            if tree.kinds.len() > max_nodes {
                return Err(Error::TreeTooLarge {
                    game: tree.info.spec.clone(),
                    limit: max_nodes,
                });
            }
        }
        Ok(tree)
    }

    /// Reserves the slot of a new node below `parent`, reached by `action` (with
    /// `probability` when `parent` is a chance node); its kind is set when it is expanded.
    fn allocate(&mut self, parent: usize, action: Action, probability: f64) {
        self.kinds.push(NodeKind::Terminal);
        self.parents.push(parent);
        self.first_child.push(0);
        self.num_children.push(0);
        self.chance_probability.push(probability);
        self.incoming_action.push(action);
        self.returns
            .extend(std::iter::repeat_n(0.0, self.info.num_players));
    }

    fn intern(&mut self, player: Player, key: String, state: &S) -> usize {
        if let Some(&id) = self.index[player].get(&key) {
            return id;
        }
        let id = self.info_sets.len();
        let legal_actions = state.legal_actions();
        assert!(
            !legal_actions.is_empty(),
            "a decision node has legal actions"
        );
        let action_offset = self.num_info_set_actions;
        self.num_info_set_actions += legal_actions.len();
        self.index[player].insert(key.clone(), id);
        self.info_sets.push(InfoSet {
            player,
            key,
            legal_actions,
            action_offset,
            nodes: Vec::new(),
            representative: state.clone(),
        });
        id
    }
}

impl<S> GameTree<S> {
    /// The game's static facts.
    pub fn info(&self) -> &GameInfo {
        &self.info
    }

    /// Number of nodes (the root is node 0).
    pub fn num_nodes(&self) -> usize {
        self.kinds.len()
    }

    /// The kind of `node`.
    pub fn kind(&self, node: usize) -> NodeKind {
        self.kinds[node]
    }

    /// The parent of `node` (the root is its own parent).
    pub fn parent(&self, node: usize) -> usize {
        self.parents[node]
    }

    /// The children of `node`, in the order of its legal actions.
    pub fn children(&self, node: usize) -> std::ops::Range<usize> {
        let first = self.first_child[node];
        first..first + self.num_children[node]
    }

    /// The probability of the chance edge into `node` (1 when its parent is not chance).
    pub fn chance_probability(&self, node: usize) -> f64 {
        self.chance_probability[node]
    }

    /// The action on the edge into `node`.
    pub fn incoming_action(&self, node: usize) -> Action {
        self.incoming_action[node]
    }

    /// The returns at `node` (all zero unless terminal).
    pub fn returns(&self, node: usize) -> &[f64] {
        let n = self.info.num_players;
        &self.returns[node * n..(node + 1) * n]
    }

    /// All information sets, by id.
    pub fn info_sets(&self) -> &[InfoSet<S>] {
        &self.info_sets
    }

    /// The id of `player`'s information set with string `key`, if the game has it.
    pub fn info_set_id(&self, player: Player, key: &str) -> Option<usize> {
        self.index.get(player)?.get(key).copied()
    }

    /// The ids of every information set whose string is `key` (any player).
    pub fn info_set_ids_for_key(&self, key: &str) -> Vec<usize> {
        (0..self.info.num_players)
            .filter_map(|player| self.info_set_id(player, key))
            .collect()
    }

    /// The total number of (information set, legal action) pairs: the length of flat
    /// per-action arrays such as [`TreePolicy::probabilities`].
    pub fn num_info_set_actions(&self) -> usize {
        self.num_info_set_actions
    }

    /// The uniform policy over each information set's legal actions.
    pub fn uniform_policy(&self) -> TreePolicy {
        let mut probabilities = vec![0.0; self.num_info_set_actions];
        for set in &self.info_sets {
            let p = 1.0 / set.legal_actions.len() as f64;
            probabilities[set.action_offset..set.action_offset + set.legal_actions.len()].fill(p);
        }
        TreePolicy { probabilities }
    }

    /// Converts a [`TreePolicy`] into a [`TabularPolicy`] listing every legal action of every
    /// information set (zeros included), as OpenSpiel's `policy_table()` does.
    pub fn to_tabular(&self, policy: &TreePolicy) -> TabularPolicy {
        let mut tabular = TabularPolicy::default();
        for set in &self.info_sets {
            let probabilities = &policy.probabilities
                [set.action_offset..set.action_offset + set.legal_actions.len()];
            tabular.insert(
                set.key.clone(),
                set.legal_actions
                    .iter()
                    .copied()
                    .zip(probabilities.iter().copied())
                    .collect(),
            );
        }
        tabular
    }

    /// Per information set: the probability that its player's own actions under `policy`
    /// lead to it (the product of that player's action probabilities on the path; chance and
    /// the other players count as 1). Perfect recall makes it the same at every node of the
    /// set; it is read at the set's first node.
    pub fn own_reach(&self, policy: &TreePolicy) -> Vec<f64> {
        let n = self.info.num_players;
        let mut reach = vec![1.0; self.num_nodes() * n];
        // Forward sweep: parents have smaller indices than their children.
        for node in 0..self.num_nodes() {
            if let NodeKind::Decision { player, info_set } = self.kinds[node] {
                let offset = self.info_sets[info_set].action_offset;
                for child in self.children(node) {
                    for p in 0..n {
                        reach[child * n + p] = reach[node * n + p];
                    }
                    reach[child * n + player] *=
                        policy.probabilities[offset + child - self.first_child[node]];
                }
            } else {
                for child in self.children(node) {
                    for p in 0..n {
                        reach[child * n + p] = reach[node * n + p];
                    }
                }
            }
        }
        self.info_sets
            .iter()
            .map(|set| reach[set.nodes[0] * n + set.player])
            .collect()
    }

    /// The average strategy of `policies` (Heinrich et al. 2015, "Fictitious Self-Play in
    /// Extensive-Form Games", Theorem 7): at each information set, the policies' action
    /// probabilities weighted by their own reach of the set, so that playing the average is
    /// equivalent to picking one of `policies` uniformly at random for a whole game. Sets no
    /// policy reaches get the plain mean.
    pub fn average(&self, policies: &[TreePolicy]) -> TreePolicy {
        let mut numerator = vec![0.0; self.num_info_set_actions];
        let mut denominator = vec![0.0; self.info_sets.len()];
        for policy in policies {
            let reach = self.own_reach(policy);
            for (i, set) in self.info_sets.iter().enumerate() {
                denominator[i] += reach[i];
                for k in 0..set.legal_actions.len() {
                    numerator[set.action_offset + k] +=
                        reach[i] * policy.probabilities[set.action_offset + k];
                }
            }
        }
        let mut probabilities = vec![0.0; self.num_info_set_actions];
        for (i, set) in self.info_sets.iter().enumerate() {
            for k in 0..set.legal_actions.len() {
                let j = set.action_offset + k;
                probabilities[j] = if denominator[i] > 0.0 {
                    numerator[j] / denominator[i]
                } else {
                    policies.iter().map(|p| p.probabilities[j]).sum::<f64>()
                        / policies.len().max(1) as f64
                };
            }
        }
        TreePolicy { probabilities }
    }

    /// Expected returns when every player follows `policy` (exact, chance included).
    pub fn expected_returns(&self, policy: &TreePolicy) -> Vec<f64> {
        self.profile_returns(&vec![policy; self.info.num_players])
    }

    /// Expected returns of every player when player `p` follows `policies[p]` (a strategy
    /// profile; exact, chance included): one backward sweep, each decision node weighting
    /// its children by the probabilities of the policy of the player to move there.
    ///
    /// # Panics
    /// When `policies` does not hold one policy per player (a programmer error; the
    /// game-level [`crate::best_response::profile_returns`] reports it as an error).
    pub fn profile_returns(&self, policies: &[&TreePolicy]) -> Vec<f64> {
        let n = self.info.num_players;
        assert_eq!(
            policies.len(),
            n,
            "profile_returns takes one policy per player"
        );
        let mut values = self.returns.clone();
        // Backward sweep: children have larger indices than their parents.
        for node in (0..self.num_nodes()).rev() {
            let weight = |child: usize| -> f64 {
                match self.kinds[node] {
                    NodeKind::Chance => self.chance_probability[child],
                    NodeKind::Decision { player, info_set } => {
                        let offset = self.info_sets[info_set].action_offset;
                        policies[player].probabilities[offset + child - self.first_child[node]]
                    }
                    NodeKind::Terminal => 0.0,
                }
            };
            if self.kinds[node] == NodeKind::Terminal {
                continue;
            }
            for player in 0..n {
                values[node * n + player] = self
                    .children(node)
                    .map(|child| weight(child) * values[child * n + player])
                    .sum();
            }
        }
        values[..n].to_vec()
    }
}

impl<S: State> GameTree<S> {
    /// Queries `policy` once per information set (at its representative state) and checks
    /// that each answer is a distribution over the legal actions there: finite
    /// non-negative probabilities of legal actions, each action at most once, summing to 1
    /// within [`DISTRIBUTION_TOLERANCE`]. Actions a policy leaves out get probability 0.
    pub fn tabulate(&self, policy: &dyn Policy<S>) -> Result<TreePolicy> {
        let mut probabilities = vec![0.0; self.num_info_set_actions];
        for set in &self.info_sets {
            let bad = |reason: String| Error::BadPolicyOutput {
                policy: policy.name(),
                info_state: set.key.clone(),
                reason,
                legal: set.legal_actions.clone(),
            };
            let mut seen = vec![false; set.legal_actions.len()];
            let mut sum = 0.0;
            for (action, probability) in policy.action_probabilities(&set.representative) {
                let Ok(k) = set.legal_actions.binary_search(&action) else {
                    if probability == 0.0 {
                        continue;
                    }
                    return Err(bad(format!(
                        "illegal action {action} has probability {probability}"
                    )));
                };
                if seen[k] {
                    return Err(bad(format!("action {action} is listed twice")));
                }
                seen[k] = true;
                if !probability.is_finite() || probability < 0.0 {
                    return Err(bad(format!(
                        "action {action} has probability {probability}"
                    )));
                }
                probabilities[set.action_offset + k] = probability;
                sum += probability;
            }
            if (sum - 1.0).abs() > DISTRIBUTION_TOLERANCE {
                return Err(bad(format!("probabilities sum to {sum}, not 1")));
            }
        }
        Ok(TreePolicy { probabilities })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_core::UniformRandom;
    use spar_games::kuhn::{nash_policy, KuhnPoker};

    #[test]
    fn kuhn_tree_has_the_expected_shape() {
        let tree = GameTree::build(&KuhnPoker::new()).unwrap();
        // Root chance (1) + 3 deals to player 0 (3) + 6 deals to player 1 (6, each player
        // 0's first decision) + per deal 8 betting nodes below it (p, b, pp, pb, bp, bb,
        // pbp, pbb) = 1 + 3 + 6 + 48 = 58.
        assert_eq!(tree.num_nodes(), 58);
        assert_eq!(tree.info_sets().len(), 12);
        assert_eq!(tree.num_info_set_actions(), 24);
        for node in 1..tree.num_nodes() {
            assert!(tree.parent(node) < node);
            assert!(tree.children(tree.parent(node)).contains(&node));
        }
        let set = &tree.info_sets()[tree.info_set_id(1, "2b").unwrap()];
        assert_eq!(
            set.nodes.len(),
            2,
            "player 1 holding K faces a bet with J or Q opposite"
        );
    }

    #[test]
    fn average_strategies_weight_by_own_reach() {
        let tree = GameTree::build(&KuhnPoker::new()).unwrap();
        let prob = |p: &TreePolicy, player: usize, key: &str, k: usize| {
            let set = &tree.info_sets()[tree.info_set_id(player, key).unwrap()];
            p.probabilities[set.action_offset + k]
        };
        let pass = tree
            .tabulate(&spar_games::kuhn::always_pass_policy())
            .unwrap();
        let uniform = tree.uniform_policy();
        // Own reach: player 0 reaches "0pb" (J, pass, bet) with probability 1 when always
        // passing and 1/2 under uniform play; player 1 reaches "0p" with 1 either way.
        assert_eq!(
            tree.own_reach(&pass)[tree.info_set_id(0, "0pb").unwrap()],
            1.0
        );
        assert_eq!(
            tree.own_reach(&uniform)[tree.info_set_id(0, "0pb").unwrap()],
            0.5
        );
        assert_eq!(
            tree.own_reach(&uniform)[tree.info_set_id(1, "0p").unwrap()],
            1.0
        );
        let avg = tree.average(&[pass.clone(), uniform.clone()]);
        // At the root sets both reach with 1: the plain mean of (1, 0) and (1/2, 1/2).
        assert!((prob(&avg, 0, "0", 0) - 0.75).abs() < 1e-12);
        // At "0pb": weights 1 and 1/2, so pass = (1 * 1 + 0.5 * 0.5) / 1.5 = 5/6.
        assert!((prob(&avg, 0, "0pb", 0) - 5.0 / 6.0).abs() < 1e-12);
        // A policy averaged with itself is itself; two equilibria average to an equilibrium.
        assert_eq!(tree.average(&[pass.clone(), pass.clone()]), pass);
        let a = tree.tabulate(&nash_policy(0.0)).unwrap();
        let b = tree.tabulate(&nash_policy(1.0 / 3.0)).unwrap();
        let mixed = tree.average(&[a, b]);
        let nc = crate::best_response::nash_conv_on_tree(&tree, &mixed);
        assert!(nc.nash_conv.abs() < 1e-12, "{nc:?}");
    }

    #[test]
    fn kuhn_nash_value_is_minus_one_eighteenth() {
        // Kuhn (1950); OpenSpiel cfr_test.py checks -1/18 for player 0.
        let tree = GameTree::build(&KuhnPoker::new()).unwrap();
        let policy = tree.tabulate(&nash_policy(0.2)).unwrap();
        let values = tree.expected_returns(&policy);
        assert!((values[0] + 1.0 / 18.0).abs() < 1e-12, "{values:?}");
        assert!((values[1] - 1.0 / 18.0).abs() < 1e-12, "{values:?}");
    }

    #[test]
    fn tabulating_round_trips_through_tabular_policies() {
        let tree = GameTree::build(&KuhnPoker::new()).unwrap();
        let uniform = tree.tabulate(&UniformRandom).unwrap();
        assert_eq!(uniform, tree.uniform_policy());
        let nash = tree.tabulate(&nash_policy(0.1)).unwrap();
        assert_eq!(tree.tabulate(&tree.to_tabular(&nash)).unwrap(), nash);
    }

    #[test]
    fn tabulate_rejects_an_illegal_action_and_a_bad_sum() {
        let tree = GameTree::build(&KuhnPoker::new()).unwrap();
        let mut policy = nash_policy(0.2);
        policy.insert("1pb", vec![(0, 0.5), (7, 0.5)]);
        let error = tree.tabulate(&policy).unwrap_err().to_string();
        assert!(error.contains("illegal action 7"), "{error}");
        policy.insert("1pb", vec![(0, 0.5), (1, 0.4)]);
        let error = tree.tabulate(&policy).unwrap_err().to_string();
        assert!(error.contains("sum to 0.9"), "{error}");
    }

    #[test]
    fn the_node_limit_is_enforced() {
        let error = GameTree::build_with_limit(&KuhnPoker::new(), 20).unwrap_err();
        assert!(matches!(error, Error::TreeTooLarge { limit: 20, .. }));
    }
}
