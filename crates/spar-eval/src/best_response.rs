//! Exact expected returns, best response, NashConv and exploitability.
//!
//! Expected returns are taken over chance exactly, for one policy played by every player
//! ([`expected_returns`]), for one policy per player, a strategy profile
//! ([`profile_returns`]), or for one policy against another in each seat in turn
//! ([`returns_by_seat`]: a head-to-head match evaluated exactly instead of sampled).
//!
//! Definitions (see `docs/evaluation.md`): with every player following policy `pi`, the
//! on-policy value of player `p` is `u_p(pi)`; the best-response value is
//! `max_{b} u_p(b, pi_{-p})`, the most `p` can get by deviating alone. Then
//!
//! ```text
//! NashConv(pi)       = sum_p ( max_b u_p(b, pi_-p) - u_p(pi) )
//! exploitability(pi) = NashConv(pi) / num_players
//! ```
//!
//! as OpenSpiel's `exploitability.nash_conv` and `exploitability.exploitability`. NashConv is
//! 0 exactly at a Nash equilibrium.
//!
//! The best response follows OpenSpiel's `BestResponsePolicy`: the responder's information
//! sets collect their nodes `h` with the counterfactual reach `c(h)` (the product of the
//! opponents' and chance's probabilities on the path to `h`); at each information set the
//! responder picks the action maximising `sum_h c(h) * v(child(h, a))`, the lowest action on
//! ties, where `v` is the value below under the responder's own best responses further down.
//! Everything runs on a [`GameTree`] built once; the policy is queried once per information
//! set.

use spar_core::{Game, Player, Policy, State, TabularPolicy};

use crate::error::{utility_name, Error, Result};
use crate::tree::{GameTree, NodeKind, TreePolicy};

/// A best response to a fixed policy of the other players.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BestResponse {
    /// The responder.
    pub player: Player,
    /// The responder's expected return when best-responding.
    pub value: f64,
    /// The deterministic best-response policy at every information set of the responder
    /// (probability 1 on the chosen action, 0 on the other legal actions).
    pub policy: TabularPolicy,
}

/// NashConv and its parts (see the module doc).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NashConv {
    /// `sum_p (best_response_values[p] - on_policy_values[p])`.
    pub nash_conv: f64,
    /// `nash_conv / num_players`.
    pub exploitability: f64,
    /// Each player's best-response value against the others' policy.
    pub best_response_values: Vec<f64>,
    /// Each player's expected return when everyone follows the policy.
    pub on_policy_values: Vec<f64>,
}

/// Expected returns of every player when all players follow `policy` (exact tree walk with
/// chance). Fails when the tree is too large or the policy returns something that is not a
/// distribution over legal actions.
pub fn expected_returns<G: Game>(game: &G, policy: &dyn Policy<G::State>) -> Result<Vec<f64>> {
    let tree = GameTree::build(game)?;
    let table = tree.tabulate(policy)?;
    Ok(tree.expected_returns(&table))
}

/// Expected returns of every player when player `p` follows `policies[p]` (exact tree walk
/// with chance). Fails with [`Error::WrongNumberOfPolicies`] unless `policies` holds one
/// policy per player, when the tree is too large, or when a policy returns something that is
/// not a distribution over legal actions.
pub fn profile_returns<G: Game>(game: &G, policies: &[&dyn Policy<G::State>]) -> Result<Vec<f64>> {
    let tree = GameTree::build(game)?;
    profile_returns_on_tree(&tree, policies)
}

/// [`profile_returns`] on a prebuilt tree (each policy is queried once per information set).
pub fn profile_returns_on_tree<S: State>(
    tree: &GameTree<S>,
    policies: &[&dyn Policy<S>],
) -> Result<Vec<f64>> {
    let info = tree.info();
    if policies.len() != info.num_players {
        return Err(Error::WrongNumberOfPolicies {
            game: info.spec.clone(),
            expected: info.num_players,
            got: policies.len(),
        });
    }
    let tables = policies
        .iter()
        .map(|policy| tree.tabulate(*policy))
        .collect::<Result<Vec<_>>>()?;
    Ok(tree.profile_returns(&tables.iter().collect::<Vec<_>>()))
}

/// The exact head-to-head value of `policy` against `opponent`, per seat: element `s` is
/// the expected return of player `s` when it follows `policy` and every other player follows
/// `opponent` (chance weighted exactly). In a two-player game, `[v0, v1]` are `policy`'s
/// expected returns as the first and as the second player; their mean is its value when
/// seats are drawn uniformly. Fails when the tree is too large or a policy returns something
/// that is not a distribution over legal actions.
pub fn returns_by_seat<G: Game>(
    game: &G,
    policy: &dyn Policy<G::State>,
    opponent: &dyn Policy<G::State>,
) -> Result<Vec<f64>> {
    let tree = GameTree::build(game)?;
    returns_by_seat_on_tree(&tree, policy, opponent)
}

/// [`returns_by_seat`] on a prebuilt tree (each policy is queried once per information set).
pub fn returns_by_seat_on_tree<S: State>(
    tree: &GameTree<S>,
    policy: &dyn Policy<S>,
    opponent: &dyn Policy<S>,
) -> Result<Vec<f64>> {
    let policy = tree.tabulate(policy)?;
    let opponent = tree.tabulate(opponent)?;
    let num_players = tree.info().num_players;
    Ok((0..num_players)
        .map(|seat| {
            let profile: Vec<&TreePolicy> = (0..num_players)
                .map(|p| if p == seat { &policy } else { &opponent })
                .collect();
            tree.profile_returns(&profile)[seat]
        })
        .collect())
}

/// The best response of `player` to `policy` played by everyone else.
pub fn best_response<G: Game>(
    game: &G,
    policy: &dyn Policy<G::State>,
    player: Player,
) -> Result<BestResponse> {
    let tree = GameTree::build(game)?;
    let table = tree.tabulate(policy)?;
    Ok(best_response_on_tree(&tree, &table, player))
}

/// NashConv and exploitability of `policy`; [`Error::NotTwoPlayerZeroSum`] unless the game
/// has two players and zero or constant sum.
pub fn nash_conv<G: Game>(game: &G, policy: &dyn Policy<G::State>) -> Result<NashConv> {
    check_two_player_zero_sum(game.info(), "NashConv")?;
    let tree = GameTree::build(game)?;
    let table = tree.tabulate(policy)?;
    Ok(nash_conv_on_tree(&tree, &table))
}

/// Fails with [`Error::NotTwoPlayerZeroSum`] unless exploitability applies to `info`.
pub fn check_two_player_zero_sum(info: &spar_core::GameInfo, what: &'static str) -> Result<()> {
    if info.is_two_player_zero_sum() {
        Ok(())
    } else {
        Err(Error::NotTwoPlayerZeroSum {
            game: info.spec.clone(),
            what,
            num_players: info.num_players,
            utility: utility_name(info.utility),
        })
    }
}

/// NashConv of a tabulated policy on a prebuilt tree (the caller checks that the game is
/// two-player zero-sum; CFR calls this every few iterations).
pub fn nash_conv_on_tree<S: State>(tree: &GameTree<S>, policy: &TreePolicy) -> NashConv {
    let on_policy_values = tree.expected_returns(policy);
    let num_players = tree.info().num_players;
    let best_response_values: Vec<f64> = (0..num_players)
        .map(|player| best_response_value(tree, policy, player).0)
        .collect();
    let nash_conv: f64 = best_response_values
        .iter()
        .zip(&on_policy_values)
        .map(|(br, on)| br - on)
        .sum();
    NashConv {
        nash_conv,
        exploitability: nash_conv / num_players as f64,
        best_response_values,
        on_policy_values,
    }
}

/// The best response of `player` to a tabulated policy on a prebuilt tree.
pub fn best_response_on_tree<S: State>(
    tree: &GameTree<S>,
    policy: &TreePolicy,
    player: Player,
) -> BestResponse {
    let (value, choices) = best_response_value(tree, policy, player);
    let mut table = TabularPolicy::default();
    for (id, set) in tree.info_sets().iter().enumerate() {
        if set.player != player {
            continue;
        }
        let chosen = choices[id].expect("every information set of the responder is decided");
        table.insert(
            set.key.clone(),
            set.legal_actions
                .iter()
                .enumerate()
                .map(|(k, &action)| (action, if k == chosen { 1.0 } else { 0.0 }))
                .collect(),
        );
    }
    BestResponse {
        player,
        value,
        policy: table,
    }
}

/// The responder's value at the root and the chosen action index at each of its
/// information sets (`None` for other players' sets).
fn best_response_value<S>(
    tree: &GameTree<S>,
    policy: &TreePolicy,
    player: Player,
) -> (f64, Vec<Option<usize>>) {
    let num_nodes = tree.num_nodes();
    // Counterfactual reach of the responder's opponents and chance: one forward sweep.
    let mut reach = vec![1.0; num_nodes];
    for node in 1..num_nodes {
        let parent = tree.parent(node);
        let step = match tree.kind(parent) {
            NodeKind::Chance => tree.chance_probability(node),
            NodeKind::Decision {
                player: mover,
                info_set,
            } if mover != player => {
                let set = &tree.info_sets()[info_set];
                policy.probabilities[set.action_offset + node - tree.children(parent).start]
            }
            _ => 1.0,
        };
        reach[node] = reach[parent] * step;
    }
    let mut walk = Walk {
        tree,
        policy,
        player,
        reach,
        values: vec![None; num_nodes],
        choices: vec![None; tree.info_sets().len()],
    };
    let root_value = walk.value(0);
    // Decide the responder's sets that the walk did not need (below actions it never
    // takes), so the returned policy covers every information set.
    for id in 0..tree.info_sets().len() {
        if tree.info_sets()[id].player == player {
            walk.choice(id);
        }
    }
    (root_value, walk.choices)
}

/// The memoised recursion of OpenSpiel's `BestResponsePolicy.value` / `best_response_action`.
struct Walk<'a, S> {
    tree: &'a GameTree<S>,
    policy: &'a TreePolicy,
    player: Player,
    reach: Vec<f64>,
    values: Vec<Option<f64>>,
    choices: Vec<Option<usize>>,
}

impl<S> Walk<'_, S> {
    fn value(&mut self, node: usize) -> f64 {
        if let Some(value) = self.values[node] {
            return value;
        }
        let tree = self.tree;
        let value = match tree.kind(node) {
            NodeKind::Terminal => tree.returns(node)[self.player],
            NodeKind::Chance => tree
                .children(node)
                .map(|child| tree.chance_probability(child) * self.value(child))
                .sum(),
            NodeKind::Decision { player, info_set } if player == self.player => {
                let chosen = self.choice(info_set);
                self.value(tree.children(node).start + chosen)
            }
            NodeKind::Decision { info_set, .. } => {
                let offset = tree.info_sets()[info_set].action_offset;
                let first = tree.children(node).start;
                let mut total = 0.0;
                for child in tree.children(node) {
                    let probability = self.policy.probabilities[offset + child - first];
                    // Unreached subtrees do not change the value; the responder's sets
                    // below them are decided afterwards.
                    if probability > 0.0 {
                        total += probability * self.value(child);
                    }
                }
                total
            }
        };
        self.values[node] = Some(value);
        value
    }

    fn choice(&mut self, info_set: usize) -> usize {
        if let Some(chosen) = self.choices[info_set] {
            return chosen;
        }
        let tree = self.tree;
        let set = &tree.info_sets()[info_set];
        let mut best = (0, f64::NEG_INFINITY);
        for k in 0..set.legal_actions.len() {
            let mut q = 0.0;
            for &node in &set.nodes {
                q += self.reach[node] * self.value(tree.children(node).start + k);
            }
            // Strictly greater: ties go to the lowest action, as Python's max().
            if q > best.1 {
                best = (k, q);
            }
        }
        self.choices[info_set] = Some(best.0);
        best.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_core::UniformRandom;
    use spar_games::kuhn::{always_pass_policy, nash_policy, KuhnPoker};

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn kuhn_uniform_nash_conv_is_eleven_twelfths() {
        // OpenSpiel exploitability_test.py: NashConv of uniform random Kuhn is 11/12.
        let result = nash_conv(&KuhnPoker::new(), &UniformRandom).unwrap();
        assert!(close(result.nash_conv, 11.0 / 12.0, 1e-12), "{result:?}");
        assert!(close(result.exploitability, 11.0 / 24.0, 1e-12));
    }

    #[test]
    fn kuhn_always_pass_nash_conv_is_two() {
        // OpenSpiel exploitability_test.py: the always-first-action policy has NashConv 2.
        let result = nash_conv(&KuhnPoker::new(), &always_pass_policy()).unwrap();
        assert!(close(result.nash_conv, 2.0, 1e-12), "{result:?}");
    }

    #[test]
    fn kuhn_nash_family_has_zero_nash_conv() {
        // OpenSpiel exploitability_test.py (alpha = 0.2); Kuhn (1950) for the whole family.
        for alpha in [0.0, 0.2, 1.0 / 3.0] {
            let result = nash_conv(&KuhnPoker::new(), &nash_policy(alpha)).unwrap();
            assert!(
                close(result.nash_conv, 0.0, 1e-9),
                "alpha {alpha}: {result:?}"
            );
            assert!(close(result.on_policy_values[0], -1.0 / 18.0, 1e-12));
        }
    }

    #[test]
    fn best_response_to_always_pass_is_hand_checked() {
        // Against always-pass, player 1 after a pass wins the ante by betting (player 0
        // folds) with any card: value +1. With J and Q betting beats checking (J: +1 vs -1;
        // Q: +1 vs 0 on average); with K both give +1, and the tie goes to the lowest action,
        // pass.
        let response = best_response(&KuhnPoker::new(), &always_pass_policy(), 1).unwrap();
        assert!(close(response.value, 1.0, 1e-12), "{response:?}");
        for card in ["0p", "1p"] {
            assert_eq!(
                response.policy.table[card],
                vec![(0, 0.0), (1, 1.0)],
                "{card}"
            );
        }
        assert_eq!(response.policy.table["2p"], vec![(0, 1.0), (1, 0.0)]);
        // Facing a bet never happens; ties there go to the lowest action (pass).
        assert_eq!(response.policy.table["0b"], vec![(0, 1.0), (1, 0.0)]);
        assert_eq!(response.policy.table.len(), 6);
    }

    #[test]
    fn best_response_is_at_least_the_on_policy_value() {
        // Property: for every player, the best-response value is >= the on-policy value, and
        // playing the best response achieves exactly the best-response value.
        let game = KuhnPoker::new();
        let tree = GameTree::build(&game).unwrap();
        let policies = [
            nash_policy(0.1),
            always_pass_policy(),
            tree.to_tabular(&tree.uniform_policy()),
            skewed_policy(&tree, 3),
            skewed_policy(&tree, 11),
        ];
        for policy in &policies {
            let table = tree.tabulate(policy).unwrap();
            let on_policy = tree.expected_returns(&table);
            for player in 0..2 {
                let response = best_response_on_tree(&tree, &table, player);
                assert!(response.value >= on_policy[player] - 1e-12);
                let mut mixed = policy.clone();
                mixed.table.extend(response.policy.table.clone());
                let achieved = tree.expected_returns(&tree.tabulate(&mixed).unwrap());
                assert!(close(achieved[player], response.value, 1e-12));
            }
        }
    }

    /// A Kuhn policy that bets (or calls) at every information state of a card in `cards`
    /// (0 = J, 1 = Q, 2 = K) and passes (checks or folds) elsewhere; Kuhn's information-state
    /// strings start with the card.
    fn bet_with(cards: &[char]) -> TabularPolicy {
        let mut policy = TabularPolicy::default();
        for key in [
            "0", "1", "2", "0pb", "1pb", "2pb", "0p", "1p", "2p", "0b", "1b", "2b",
        ] {
            let bet = if cards.contains(&key.chars().next().unwrap()) {
                1.0
            } else {
                0.0
            };
            policy.insert(key, vec![(0, 1.0 - bet), (1, bet)]);
        }
        policy
    }

    #[test]
    fn kuhn_uniform_against_uniform_is_one_eighth() {
        // By hand: showdowns average 0 over the deals, so only folds count. Player 1 folds
        // after "b p" (probability 1/2 * 1/2, +1 for player 0) and player 0 folds after
        // "p b p" (1/2 * 1/2 * 1/2, -1): 1/4 - 1/8 = 1/8. OpenSpiel's
        // expected_game_score_test.py checks the same [1/8, -1/8].
        let game = KuhnPoker::new();
        let profile = profile_returns(&game, &[&UniformRandom, &UniformRandom]).unwrap();
        assert!(close(profile[0], 0.125, 1e-12) && close(profile[1], -0.125, 1e-12));
        let seats = returns_by_seat(&game, &UniformRandom, &UniformRandom).unwrap();
        assert!(close(seats[0], 0.125, 1e-12) && close(seats[1], -0.125, 1e-12));
    }

    #[test]
    fn kuhn_always_bet_against_betting_with_queen_or_king_is_hand_checked() {
        let always_bet = bet_with(&['0', '1', '2']);
        let queen_or_king = bet_with(&['1', '2']);
        let game = KuhnPoker::new();
        // Seat 0 always bets; player 1 folds a J (1/3: +1 for player 0), calls a Q (player 0
        // holds J or K, +-2, mean 0) and calls a K (player 0 loses 2): 1/3 - 2/3 = -1/3.
        // Seat 1 always bets or calls: player 0 checks a J then folds to the bet (1/3: +1 for
        // player 1), bets a Q (player 1 holds J or K and calls: +-2, mean 0), bets a K
        // (player 1 calls and loses 2): again 1/3 - 2/3 = -1/3.
        let seats = returns_by_seat(&game, &always_bet, &queen_or_king).unwrap();
        assert!(close(seats[0], -1.0 / 3.0, 1e-12), "{seats:?}");
        assert!(close(seats[1], -1.0 / 3.0, 1e-12), "{seats:?}");
        // Zero-sum: the other policy gets the opposite in each seat.
        let seats = returns_by_seat(&game, &queen_or_king, &always_bet).unwrap();
        assert!(close(seats[0], 1.0 / 3.0, 1e-12) && close(seats[1], 1.0 / 3.0, 1e-12));
        let profile = profile_returns(&game, &[&always_bet, &queen_or_king]).unwrap();
        assert!(close(profile[0], -1.0 / 3.0, 1e-12) && close(profile[1], 1.0 / 3.0, 1e-12));
        // Both always pass: every hand is a 1-chip showdown, mean 0.
        let pass = always_pass_policy();
        assert_eq!(
            returns_by_seat(&game, &pass, &pass).unwrap(),
            vec![0.0, 0.0]
        );
    }

    #[test]
    fn kuhn_cfr_plus_against_itself_reaches_the_game_value() {
        // Kuhn (1950); OpenSpiel's cfr_test.py checks -1/18 for player 0. In a zero-sum game
        // both u_0(pi) and the value lie in [-br_1(pi_0), br_0(pi_1)], an interval of width
        // NashConv(pi), so NashConv bounds the error.
        let mut solver =
            crate::CfrSolver::new(&KuhnPoker::new(), crate::CfrVariant::CfrPlus).unwrap();
        solver.run(500);
        let bound = solver.nash_conv().unwrap().nash_conv;
        assert!(bound < 1e-3, "{bound}");
        let average = solver.average_policy();
        let seats = returns_by_seat(&KuhnPoker::new(), &average, &average).unwrap();
        assert!(close(seats[0], -1.0 / 18.0, bound), "{seats:?}");
        assert!(close(seats[1], 1.0 / 18.0, bound), "{seats:?}");
        // Any member of the Nash family against any other gets exactly the value
        // (equilibria of a zero-sum game are interchangeable).
        let profile = profile_returns(
            &KuhnPoker::new(),
            &[&nash_policy(0.0), &nash_policy(1.0 / 3.0)],
        )
        .unwrap();
        assert!(close(profile[0], -1.0 / 18.0, 1e-12), "{profile:?}");
    }

    #[test]
    fn nobody_beats_the_game_value_against_a_nash_opponent() {
        // Against an equilibrium policy, player 0 gets at most the value -1/18 and player 1
        // at most 1/18, whatever it plays.
        let game = KuhnPoker::new();
        let tree = GameTree::build(&game).unwrap();
        let nash = nash_policy(0.2);
        let mut solver = crate::CfrSolver::new(&game, crate::CfrVariant::CfrPlus).unwrap();
        solver.run(20);
        let policies = [
            tree.to_tabular(&tree.uniform_policy()),
            always_pass_policy(),
            bet_with(&['2']),
            skewed_policy(&tree, 3),
            skewed_policy(&tree, 11),
            solver.average_policy(),
        ];
        for policy in &policies {
            let seats = returns_by_seat_on_tree(&tree, policy, &nash).unwrap();
            assert!(seats[0] <= -1.0 / 18.0 + 1e-12, "{seats:?}");
            assert!(seats[1] <= 1.0 / 18.0 + 1e-12, "{seats:?}");
        }
    }

    #[test]
    fn one_policy_in_every_seat_gives_the_expected_returns() {
        fn check<G: Game>(game: &G, seeds: &[usize]) {
            let tree = GameTree::build(game).unwrap();
            for &seed in seeds {
                let policy = weighted_policy(&tree, seed);
                let shared = tree.expected_returns(&tree.tabulate(&policy).unwrap());
                let seats = returns_by_seat_on_tree(&tree, &policy, &policy).unwrap();
                let profile = profile_returns_on_tree(&tree, &[&policy, &policy]).unwrap();
                for p in 0..2 {
                    assert!(close(seats[p], shared[p], 1e-12), "{seats:?} vs {shared:?}");
                    assert!(close(profile[p], shared[p], 1e-12));
                }
            }
        }
        check(&KuhnPoker::new(), &[1, 3, 11]);
        check(&spar_games::leduc::LeducPoker::new(), &[1, 5]);
    }

    #[test]
    fn a_best_response_in_its_seat_achieves_its_value_on_leduc() {
        // Two independent computations: the best-response walk's value, and the profile
        // (best response, uniform) evaluated by the backward sweep.
        let game = spar_games::leduc::LeducPoker::new();
        let tree = GameTree::build(&game).unwrap();
        let uniform = tree.uniform_policy();
        for player in 0..2 {
            let response = best_response_on_tree(&tree, &uniform, player);
            let mut profile: Vec<&dyn Policy<_>> = vec![&UniformRandom, &UniformRandom];
            profile[player] = &response.policy;
            let values = profile_returns_on_tree(&tree, &profile).unwrap();
            assert!(close(values[player], response.value, 1e-12), "{values:?}");
            assert!(
                close(values[0] + values[1], 0.0, 1e-12),
                "zero-sum: {values:?}"
            );
        }
    }

    #[test]
    fn a_profile_needs_one_policy_per_player() {
        let error = profile_returns(&KuhnPoker::new(), &[&UniformRandom]).unwrap_err();
        assert!(
            matches!(
                error,
                Error::WrongNumberOfPolicies {
                    expected: 2,
                    got: 1,
                    ..
                }
            ),
            "{error}"
        );
    }

    /// A deterministic non-uniform policy: information set `i` bets with probability
    /// `((i * seed) % 7) / 6`.
    fn skewed_policy<S: State>(tree: &GameTree<S>, seed: usize) -> TabularPolicy {
        let mut policy = TabularPolicy::default();
        for (i, set) in tree.info_sets().iter().enumerate() {
            let bet = ((i * seed) % 7) as f64 / 6.0;
            policy.insert(set.key.clone(), vec![(0, 1.0 - bet), (1, bet)]);
        }
        policy
    }

    /// A deterministic policy of any game: at information set `i`, legal action `k` gets
    /// weight `1 + (i * seed + k) % 5`, normalised.
    fn weighted_policy<S: State>(tree: &GameTree<S>, seed: usize) -> TabularPolicy {
        let mut policy = TabularPolicy::default();
        for (i, set) in tree.info_sets().iter().enumerate() {
            let weights: Vec<f64> = (0..set.legal_actions.len())
                .map(|k| 1.0 + ((i * seed + k) % 5) as f64)
                .collect();
            let total: f64 = weights.iter().sum();
            policy.insert(
                set.key.clone(),
                set.legal_actions
                    .iter()
                    .zip(&weights)
                    .map(|(&action, w)| (action, w / total))
                    .collect(),
            );
        }
        policy
    }
}
