//! Kuhn Poker, two players, exactly as OpenSpiel's `kuhn_poker`; and SPIRAL's N-hand match.
//!
//! # Rules
//! A deck of three cards, 0 (Jack) < 1 (Queen) < 2 (King). Each player antes 1 chip and
//! chance deals one private card to player 0, then one to player 1. The first player acts;
//! each player may **Pass** (action 0: check, or fold when facing a bet) or **Bet**
//! (action 1: bet 1 chip, or call a bet):
//!
//! | betting (first actor, second actor, ...) | outcome |
//! |---|---|
//! | pass, pass | showdown, pot 2: the higher card wins 1 |
//! | pass, bet, pass | the first actor folds: the second wins 1 |
//! | pass, bet, bet | showdown, pot 4: the higher card wins 2 |
//! | bet, pass | the second actor folds: the first wins 1 |
//! | bet, bet | showdown, pot 4: the higher card wins 2 |
//!
//! With `hands=1` (the default) that is the whole game, player 0 acts first, and everything
//! (actions, strings, returns) is OpenSpiel's. With `hands=N > 1` it is SPIRAL's
//! `KuhnPoker-v1` match: N hands, each with a fresh deal and ante; player 1 acts first in
//! hand 1 and the first actor alternates; chips carry over between hands.
//!
//! # Parameters
//! | name | default | meaning |
//! |---|---|---|
//! | `hands` | 1 | hands in the match (SPIRAL plays 5) |
//! | `payoff` | `winner` | match payoff: `winner` (SPIRAL: +1 / -1 to whoever has more chips after the last hand, 0 on a tie) or `chips` (the net chips won); ignored when `hands=1` (OpenSpiel's chip payoff) |
//!
//! # Information states
//! * `hands=1`: OpenSpiel's strings: the player's card followed by the betting so far as
//!   `p`/`b`, e.g. `"0"`, `"1pb"`, `"2b"`; empty before the card is dealt. 12 decision
//!   information states (6 per player).
//! * `hands>1`: one segment per hand started, separated by `|`: the player's card, the
//!   betting as `p`/`b`, and, for a finished hand that reached a showdown, `:` and the
//!   opponent's card (a fold reveals nothing). `"2pp:1|0b"` is hand 2 after holding K and
//!   seeing Q at the first showdown. A segment is empty until the player's card is dealt.
//!
//! # Reference policies
//! [`nash_policy`] gives the one-parameter family of Nash equilibria of a single hand
//! (Kuhn 1950): player 0 bets a Jack with probability alpha in [0, 1/3]; the game value is
//! -1/18 for player 0. [`always_pass_policy`] is OpenSpiel's `GetAlwaysPassPolicy`.
//!
//! # References
//! H. W. Kuhn, "A simplified two-person poker", 1950; OpenSpiel
//! `open_spiel/games/kuhn_poker/kuhn_poker.cc`; SPIRAL `spiral/envs/KuhnPoker/env.py`.

use std::fmt;

use spar_core::{
    Action, Error, Game, GameInfo, GameSpec, Information, Player, State, TabularPolicy, Turn,
    Utility,
};

/// Pass: check, or fold when facing a bet.
pub const PASS: Action = 0;
/// Bet: bet one chip, or call a bet.
pub const BET: Action = 1;
/// Number of cards in the deck.
pub const NUM_CARDS: usize = 3;
const CARD_NAMES: [&str; NUM_CARDS] = ["J", "Q", "K"];

/// How a match of several hands is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchPayoff {
    /// +1 to whoever holds more chips after the last hand, -1 to the other, 0 on a tie.
    Winner,
    /// The net chips won over the match.
    Chips,
}

/// Kuhn Poker (two players), a single hand or a match of hands.
#[derive(Debug, Clone)]
pub struct KuhnPoker {
    info: GameInfo,
    hands: usize,
    payoff: MatchPayoff,
}

impl KuhnPoker {
    /// The single-hand game with OpenSpiel's rules.
    pub fn new() -> Self {
        Self::with_hands(1, MatchPayoff::Winner)
    }

    /// A match of `hands` hands (at least 1) scored by `payoff` (`hands=1`: OpenSpiel's
    /// single hand, scored in chips).
    pub fn with_hands(hands: usize, payoff: MatchPayoff) -> Self {
        assert!(hands >= 1, "a Kuhn match has at least one hand");
        let (spec, max_utility) = match (hands, payoff) {
            (1, _) => ("kuhn".to_string(), 2.0),
            (n, MatchPayoff::Winner) => (format!("kuhn(hands={n})"), 1.0),
            (n, MatchPayoff::Chips) => (format!("kuhn(hands={n},payoff=chips)"), 2.0 * n as f64),
        };
        Self {
            info: GameInfo {
                name: "kuhn".to_string(),
                long_name: if hands == 1 {
                    "Kuhn Poker".to_string()
                } else {
                    format!("Kuhn Poker, {hands}-hand match")
                },
                spec,
                num_players: 2,
                utility: Utility::ZeroSum,
                information: Information::Imperfect,
                has_chance: true,
                min_utility: -max_utility,
                max_utility,
                num_distinct_actions: 2,
                max_chance_outcomes: NUM_CARDS,
                max_game_length: 5 * hands,
            },
            hands,
            payoff,
        }
    }

    /// The game from a specification: `kuhn`, `kuhn(hands=5)`, `kuhn(hands=5,payoff=chips)`.
    pub fn from_spec(spec: &GameSpec) -> spar_core::Result<Self> {
        spec.check_known(&["hands", "payoff"])?;
        let hands: usize = spec.get("hands", 1)?;
        let bad = |key: &str, value: String, reason: &str| Error::BadParameter {
            game: spec.name.clone(),
            key: key.to_string(),
            value,
            reason: reason.to_string(),
        };
        if hands == 0 {
            return Err(bad("hands", "0".into(), "a match has at least one hand"));
        }
        let payoff = match spec.params.get("payoff").map(String::as_str) {
            None | Some("winner") => MatchPayoff::Winner,
            Some("chips") => MatchPayoff::Chips,
            Some(other) => return Err(bad("payoff", other.into(), "accepted: winner, chips")),
        };
        Ok(Self::with_hands(hands, payoff))
    }

    /// Hands in the match.
    pub fn hands(&self) -> usize {
        self.hands
    }
}

impl Default for KuhnPoker {
    fn default() -> Self {
        Self::new()
    }
}

impl Game for KuhnPoker {
    type State = KuhnState;

    fn info(&self) -> &GameInfo {
        &self.info
    }

    fn new_initial_state(&self) -> KuhnState {
        KuhnState {
            hands: self.hands,
            payoff: self.payoff,
            history: Vec::with_capacity(5 * self.hands),
            finished: Vec::new(),
            cards: [None; 2],
            betting: Vec::with_capacity(3),
            over: false,
        }
    }
}

/// A finished hand of a match, as both players saw it (cards included; what each player
/// may know of the other's card is `showdown`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FinishedHand {
    /// Each player's card.
    pub cards: [usize; 2],
    /// Who acted first.
    pub first: Player,
    /// The betting actions.
    pub betting: Vec<Action>,
    /// Whether the hand reached a showdown (both cards revealed).
    pub showdown: bool,
    /// Chips won by each player in this hand.
    pub chips: [i32; 2],
}

/// A Kuhn Poker state: finished hands and the hand in play.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KuhnState {
    hands: usize,
    payoff: MatchPayoff,
    history: Vec<Action>,
    finished: Vec<FinishedHand>,
    cards: [Option<usize>; 2],
    betting: Vec<Action>,
    /// The last hand is over (it stays in `cards`/`betting`).
    over: bool,
}

/// Whether a betting sequence ends the hand.
fn hand_over(betting: &[Action]) -> bool {
    matches!(betting, [PASS, PASS] | [BET, _] | [PASS, BET, _])
}

impl KuhnState {
    /// The card of `player` in the current hand, if dealt yet.
    pub fn card(&self, player: Player) -> Option<usize> {
        self.cards[player]
    }

    /// The betting actions of the current hand.
    pub fn betting(&self) -> &[Action] {
        &self.betting
    }

    /// The hand in play, from 0 (the last hand once the match is over).
    pub fn hand_index(&self) -> usize {
        self.finished.len()
    }

    /// Hands in the match.
    pub fn num_hands(&self) -> usize {
        self.hands
    }

    /// The hands finished before the current one.
    pub fn finished_hands(&self) -> &[FinishedHand] {
        &self.finished
    }

    /// Who acts first in the current hand: player 0 in a single hand; in a match player 1
    /// in hand 1, then alternating (SPIRAL).
    pub fn first_actor(&self) -> Player {
        if self.hands == 1 {
            0
        } else {
            (self.hand_index() + 1) % 2
        }
    }

    /// Chips each player has put in the pot of the current hand (ante included).
    pub fn contributions(&self) -> [f64; 2] {
        let mut paid = [1.0, 1.0];
        let first = self.first_actor();
        for (i, &action) in self.betting.iter().enumerate() {
            if action == BET {
                paid[(first + i) % 2] += 1.0;
            }
        }
        paid
    }

    /// Net chips each player has won in the finished hands (and the last hand once the match
    /// is over).
    pub fn chips(&self) -> [i32; 2] {
        let mut chips = [0, 0];
        for hand in &self.finished {
            chips[0] += hand.chips[0];
            chips[1] += hand.chips[1];
        }
        if self.over {
            let last = self.current_hand_result();
            chips[0] += last.chips[0];
            chips[1] += last.chips[1];
        }
        chips
    }

    /// The betting sequence of the current hand as OpenSpiel writes it (`p`/`b`).
    pub fn betting_string(&self) -> String {
        betting_letters(&self.betting)
    }

    /// The name of a card (`J`, `Q`, `K`).
    pub fn card_name(card: usize) -> &'static str {
        CARD_NAMES[card]
    }

    /// The current hand as finished (its betting must be over).
    fn current_hand_result(&self) -> FinishedHand {
        let cards = [self.cards[0].expect("dealt"), self.cards[1].expect("dealt")];
        let first = self.first_actor();
        let paid = self.contributions();
        let (winner, showdown) = match self.betting.as_slice() {
            [BET, PASS] => (first, false),
            [PASS, BET, PASS] => (1 - first, false),
            _ => (usize::from(cards[1] > cards[0]), true),
        };
        let won = paid[1 - winner] as i32;
        let mut chips = [0, 0];
        chips[winner] = won;
        chips[1 - winner] = -won;
        FinishedHand {
            cards,
            first,
            betting: self.betting.clone(),
            showdown,
            chips,
        }
    }
}

fn betting_letters(betting: &[Action]) -> String {
    betting
        .iter()
        .map(|&a| if a == BET { 'b' } else { 'p' })
        .collect()
}

impl State for KuhnState {
    fn turn(&self) -> Turn {
        if self.over {
            Turn::Terminal
        } else if self.cards[1].is_none() {
            Turn::Chance
        } else {
            Turn::Player((self.first_actor() + self.betting.len()) % 2)
        }
    }

    fn legal_actions(&self) -> Vec<Action> {
        match self.turn() {
            Turn::Terminal => Vec::new(),
            Turn::Chance => (0..NUM_CARDS)
                .filter(|&card| self.cards[0] != Some(card))
                .collect(),
            Turn::Player(_) => vec![PASS, BET],
        }
    }

    fn chance_outcomes(&self) -> Vec<(Action, f64)> {
        if self.turn() != Turn::Chance {
            return Vec::new();
        }
        let legal = self.legal_actions();
        let p = 1.0 / legal.len() as f64;
        legal.into_iter().map(|card| (card, p)).collect()
    }

    fn apply_action(&mut self, action: Action) {
        debug_assert!(self.legal_actions().contains(&action), "illegal {action}");
        if self.cards[0].is_none() {
            self.cards[0] = Some(action);
        } else if self.cards[1].is_none() {
            self.cards[1] = Some(action);
        } else {
            self.betting.push(action);
            if hand_over(&self.betting) {
                if self.finished.len() + 1 == self.hands {
                    self.over = true;
                } else {
                    let hand = self.current_hand_result();
                    self.finished.push(hand);
                    self.cards = [None; 2];
                    self.betting.clear();
                }
            }
        }
        self.history.push(action);
    }

    fn returns(&self) -> Vec<f64> {
        if !self.over {
            return vec![0.0, 0.0];
        }
        let chips = self.chips();
        if self.hands == 1 || self.payoff == MatchPayoff::Chips {
            return vec![f64::from(chips[0]), f64::from(chips[1])];
        }
        let sign = f64::from(chips[0].signum());
        vec![sign, -sign]
    }

    fn information_state_string(&self, player: Player) -> String {
        let current = match self.cards[player] {
            None => String::new(),
            Some(card) => format!("{card}{}", self.betting_string()),
        };
        if self.hands == 1 {
            return current;
        }
        let mut segments: Vec<String> = self
            .finished
            .iter()
            .map(|hand| {
                let mut segment =
                    format!("{}{}", hand.cards[player], betting_letters(&hand.betting));
                if hand.showdown {
                    segment.push_str(&format!(":{}", hand.cards[1 - player]));
                }
                segment
            })
            .collect();
        segments.push(current);
        segments.join("|")
    }

    fn action_to_string(&self, _player: Player, action: Action) -> String {
        if self.cards[1].is_none() && !self.over {
            format!("Deal:{action}")
        } else if action == PASS {
            "Pass".to_string()
        } else {
            "Bet".to_string()
        }
    }

    fn history(&self) -> &[Action] {
        &self.history
    }
}

impl fmt::Display for KuhnState {
    /// OpenSpiel's `ToString` for the hand in play, the cards dealt then the betting
    /// (`2 0 pb`); in a match, preceded by the finished hands (`[2 1 pp] [0 2 bp] 1 0 p`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for hand in &self.finished {
            write!(
                f,
                "[{} {} {}] ",
                hand.cards[0],
                hand.cards[1],
                betting_letters(&hand.betting)
            )?;
        }
        let cards: Vec<String> = self.cards.iter().flatten().map(|c| c.to_string()).collect();
        write!(f, "{}", cards.join(" "))?;
        if !self.betting.is_empty() {
            write!(f, " {}", self.betting_string())?;
        }
        Ok(())
    }
}

/// Who alone observes a chance outcome: each hand deals player 0's card, then player 1's.
pub fn private_chance(state: &KuhnState) -> Option<Player> {
    Some(usize::from(state.card(0).is_some()))
}

/// Whether a showdown has just revealed both cards of the hand before (in a match, between
/// the last bet of a hand and the next deal). For the conformance suite's `reveals` hook.
pub fn showdown_revealed(state: &KuhnState) -> bool {
    state.card(0).is_none()
        && state
            .finished_hands()
            .last()
            .is_some_and(|hand| hand.showdown)
}

/// The Nash equilibrium family of two-player Kuhn Poker, parameterised by `alpha` in
/// [0, 1/3], the probability that player 0 bets a Jack (Kuhn 1950; OpenSpiel's
/// `kuhn_poker::GetOptimalPolicy`). Every member has NashConv 0 and value -1/18.
///
/// # Panics
/// When `alpha` is outside [0, 1/3].
pub fn nash_policy(alpha: f64) -> TabularPolicy {
    assert!(
        (0.0..=1.0 / 3.0).contains(&alpha),
        "alpha must lie in [0, 1/3], got {alpha}"
    );
    let mut policy = TabularPolicy::default();
    let mut set = |key: &str, bet: f64| {
        policy.insert(key, vec![(PASS, 1.0 - bet), (BET, bet)]);
    };
    // Player 0, first decision: bet J with alpha, never bet Q, bet K with 3 alpha.
    set("0", alpha);
    set("1", 0.0);
    set("2", 3.0 * alpha);
    // Player 0 after pass-bet: fold J, call Q with alpha + 1/3, call K.
    set("0pb", 0.0);
    set("1pb", alpha + 1.0 / 3.0);
    set("2pb", 1.0);
    // Player 1 after a pass: bet J with 1/3 (bluff), check Q, bet K.
    set("0p", 1.0 / 3.0);
    set("1p", 0.0);
    set("2p", 1.0);
    // Player 1 facing a bet: fold J, call Q with 1/3, call K.
    set("0b", 0.0);
    set("1b", 1.0 / 3.0);
    set("2b", 1.0);
    policy
}

/// OpenSpiel's `GetAlwaysPassPolicy`: pass (check or fold) at every information state.
pub fn always_pass_policy() -> TabularPolicy {
    let mut policy = TabularPolicy::default();
    for key in [
        "0", "1", "2", "0pb", "1pb", "2pb", "0p", "1p", "2p", "0b", "1b", "2b",
    ] {
        policy.insert(key, vec![(PASS, 1.0), (BET, 0.0)]);
    }
    policy
}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_core::testing::{check_conformance, playthrough_text, Conformance};
    use spar_core::GameSpec;

    fn play(actions: &[Action]) -> KuhnState {
        let mut state = KuhnPoker::new().new_initial_state();
        for &a in actions {
            state.apply_action(a);
        }
        state
    }

    #[test]
    fn conformance() {
        check_conformance(
            &KuhnPoker::new(),
            &Conformance {
                private_chance: Some(private_chance),
                ..Conformance::default()
            },
        );
    }

    #[test]
    fn payoffs_follow_the_rules_table() {
        // (deal, betting, returns) computed by hand from the rules table above.
        let cases: [(&[Action], [f64; 2]); 6] = [
            (&[2, 0, PASS, PASS], [1.0, -1.0]),
            (&[0, 2, PASS, PASS], [-1.0, 1.0]),
            (&[0, 2, PASS, BET, PASS], [-1.0, 1.0]),
            (&[2, 1, PASS, BET, BET], [2.0, -2.0]),
            (&[0, 1, BET, PASS], [1.0, -1.0]),
            (&[0, 1, BET, BET], [-2.0, 2.0]),
        ];
        for (history, expected) in cases {
            let state = play(history);
            assert!(state.is_terminal(), "{history:?}");
            assert_eq!(state.returns(), expected.to_vec(), "{history:?}");
        }
        assert!(!play(&[0, 1, PASS, BET]).is_terminal());
    }

    #[test]
    fn information_states_are_openspiels() {
        let state = play(&[2, 0, PASS, BET]);
        assert_eq!(state.information_state_string(0), "2pb");
        assert_eq!(state.information_state_string(1), "0pb");
        assert_eq!(play(&[1]).information_state_string(1), "");
        assert_eq!(state.to_string(), "2 0 pb");
    }

    #[test]
    fn has_twelve_decision_information_states() {
        fn walk(state: &KuhnState, seen: &mut std::collections::BTreeSet<String>) {
            if let Turn::Player(p) = state.turn() {
                seen.insert(state.information_state_string(p));
            }
            for a in state.legal_actions() {
                walk(&state.child(a), seen);
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        walk(&KuhnPoker::new().new_initial_state(), &mut seen);
        assert_eq!(seen.len(), 12);
        assert_eq!(
            seen.iter().cloned().collect::<Vec<_>>(),
            nash_policy(0.2).table.keys().cloned().collect::<Vec<_>>()
        );
    }

    #[test]
    fn playthrough_snapshot() {
        insta::assert_snapshot!(playthrough_text(&KuhnPoker::new(), 42));
    }

    fn match_game(text: &str) -> KuhnPoker {
        KuhnPoker::from_spec(&GameSpec::parse(text).unwrap()).unwrap()
    }

    fn play_match(game: &KuhnPoker, actions: &[Action]) -> KuhnState {
        let mut state = game.new_initial_state();
        for &a in actions {
            assert!(state.legal_actions().contains(&a), "{a} after {actions:?}");
            state.apply_action(a);
        }
        state
    }

    #[test]
    fn match_conformance() {
        for spec in ["kuhn(hands=5)", "kuhn(hands=3,payoff=chips)"] {
            check_conformance(
                &match_game(spec),
                &Conformance {
                    playthroughs: 3_000,
                    private_chance: Some(private_chance),
                    reveals: Some(showdown_revealed),
                    ..Conformance::default()
                },
            );
        }
    }

    #[test]
    fn match_specs_parse_and_refuse_bad_values() {
        assert_eq!(match_game("kuhn(hands=5)").info().spec, "kuhn(hands=5)");
        assert_eq!(match_game("kuhn(hands=1)").info().spec, "kuhn");
        assert_eq!(
            match_game("kuhn(hands=2,payoff=chips)").info().max_utility,
            4.0
        );
        for bad in [
            "kuhn(hands=0)",
            "kuhn(hands=x)",
            "kuhn(payoff=money)",
            "kuhn(rounds=5)",
        ] {
            assert!(
                KuhnPoker::from_spec(&GameSpec::parse(bad).unwrap()).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn a_three_hand_match_by_hand() {
        // Hand 1: player 1 acts first; cards (K to p0, J to p1); p1 bets, p0 calls:
        // showdown, p0 wins 2. Hand 2: player 0 first; (J, Q); p0 bets, p1 folds: p0 wins 1.
        // Hand 3: player 1 first; (J, K); p1 checks, p0 bets, p1 calls: p1 wins 2.
        // Net chips: p0 +1, p1 -1.
        let actions = [2, 0, BET, BET, 0, 1, BET, PASS, 0, 2, PASS, BET, BET];
        let winner = play_match(&match_game("kuhn(hands=3)"), &actions);
        assert!(winner.is_terminal());
        assert_eq!(winner.chips(), [1, -1]);
        assert_eq!(winner.returns(), vec![1.0, -1.0]);
        let chips = play_match(&match_game("kuhn(hands=3,payoff=chips)"), &actions);
        assert_eq!(chips.returns(), vec![1.0, -1.0]);
        // Information states: showdowns reveal the opponent's card, the fold does not.
        let mid = play_match(&match_game("kuhn(hands=3)"), &actions[..10]);
        assert_eq!(mid.information_state_string(0), "2bb:0|0bp|0");
        assert_eq!(mid.information_state_string(1), "0bb:2|1bp|2");
        assert_eq!(mid.first_actor(), 1);
        assert_eq!(mid.current_player(), Some(1));
        assert_eq!(mid.hand_index(), 2);
    }

    #[test]
    fn match_trees_have_the_hand_computed_sizes() {
        // Nodes of an N-hand match, by hand. One hand below its first deal: the deal root,
        // 3 + 6 deal outcomes, and per deal 3 decision nodes (first action, after a check,
        // after check-bet) and 5 ends (pp, pbp, pbb, bp, bb): T(1) = 1 + 9 + 6 * 8 = 58.
        // In a match each of the 30 ends is the next hand's deal root:
        // T(N) = 28 + 30 T(N - 1), so T(2) = 1,768 and T(3) = 53,068.
        fn count(state: &KuhnState) -> usize {
            1 + state
                .legal_actions()
                .into_iter()
                .map(|a| count(&state.child(a)))
                .sum::<usize>()
        }
        for (spec, nodes) in [
            ("kuhn", 58),
            ("kuhn(hands=2)", 1_768),
            ("kuhn(hands=3)", 53_068),
        ] {
            assert_eq!(
                count(&match_game(spec).new_initial_state()),
                nodes,
                "{spec}"
            );
        }
    }

    #[test]
    fn a_tied_match_is_a_draw() {
        // Hand 1: (K, J), p1 first: p1 bets, p0 folds: p1 +1. Hand 2: (K, J), p0 first:
        // p0 bets, p1 folds: p0 +1.
        let state = play_match(
            &match_game("kuhn(hands=2)"),
            &[2, 0, BET, PASS, 2, 0, BET, PASS],
        );
        assert_eq!(state.returns(), vec![0.0, 0.0]);
    }

    #[test]
    fn match_playthrough_snapshot() {
        insta::assert_snapshot!(playthrough_text(&match_game("kuhn(hands=5)"), 3));
    }
}
