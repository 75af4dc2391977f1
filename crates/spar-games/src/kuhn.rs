//! Kuhn Poker, two players, exactly as OpenSpiel's `kuhn_poker`.
//!
//! # Rules
//! A deck of three cards, 0 (Jack) < 1 (Queen) < 2 (King). Each player antes 1 chip and
//! chance deals one private card to player 0, then one to player 1. Player 0 acts first;
//! each player may **Pass** (action 0: check, or fold when facing a bet) or **Bet**
//! (action 1: bet 1 chip, or call a bet):
//!
//! | history | outcome |
//! |---|---|
//! | pass, pass | showdown, pot 2: the higher card wins 1 |
//! | pass, bet, pass | player 0 folds: player 1 wins 1 |
//! | pass, bet, bet | showdown, pot 4: the higher card wins 2 |
//! | bet, pass | player 1 folds: player 0 wins 1 |
//! | bet, bet | showdown, pot 4: the higher card wins 2 |
//!
//! # Parameters
//! None (OpenSpiel's `players` parameter is fixed at 2 here).
//!
//! # Information states
//! OpenSpiel's strings: the player's card followed by the betting so far as `p`/`b`, e.g.
//! `"0"`, `"1pb"`, `"2b"`; empty before the player's card is dealt. There are 12 decision
//! information states (6 per player).
//!
//! # Reference policies
//! [`nash_policy`] gives the one-parameter family of Nash equilibria (Kuhn 1950): player 0
//! bets a Jack with probability alpha in [0, 1/3]; the game value is -1/18 for player 0.
//!
//! # References
//! H. W. Kuhn, "A simplified two-person poker", 1950; OpenSpiel
//! `open_spiel/games/kuhn_poker/kuhn_poker.cc`.

use std::fmt;

use spar_core::{
    Action, Game, GameInfo, GameSpec, Information, Player, State, TabularPolicy, Turn, Utility,
};

/// Pass: check, or fold when facing a bet.
pub const PASS: Action = 0;
/// Bet: bet one chip, or call a bet.
pub const BET: Action = 1;
/// Number of cards in the deck.
pub const NUM_CARDS: usize = 3;
const CARD_NAMES: [&str; NUM_CARDS] = ["J", "Q", "K"];

/// Kuhn Poker (two players).
#[derive(Debug, Clone)]
pub struct KuhnPoker {
    info: GameInfo,
}

impl KuhnPoker {
    /// The game with OpenSpiel's rules.
    pub fn new() -> Self {
        Self {
            info: GameInfo {
                name: "kuhn".to_string(),
                long_name: "Kuhn Poker".to_string(),
                spec: "kuhn".to_string(),
                num_players: 2,
                utility: Utility::ZeroSum,
                information: Information::Imperfect,
                has_chance: true,
                min_utility: -2.0,
                max_utility: 2.0,
                num_distinct_actions: 2,
                max_chance_outcomes: NUM_CARDS,
                max_game_length: 5,
            },
        }
    }

    /// The game from a specification (`kuhn`); Kuhn Poker takes no parameters.
    pub fn from_spec(spec: &GameSpec) -> spar_core::Result<Self> {
        spec.check_known(&[])?;
        Ok(Self::new())
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
            history: Vec::with_capacity(5),
        }
    }
}

/// A Kuhn Poker state: the history is the whole state (two deals, then bets).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KuhnState {
    history: Vec<Action>,
}

impl KuhnState {
    /// The card dealt to `player`, if dealt yet.
    pub fn card(&self, player: Player) -> Option<usize> {
        self.history.get(player).copied()
    }

    /// The betting actions so far (after the two deals).
    pub fn betting(&self) -> &[Action] {
        self.history.get(2..).unwrap_or(&[])
    }

    /// Chips each player has put in the pot (ante included).
    pub fn contributions(&self) -> [f64; 2] {
        let mut paid = [1.0, 1.0];
        for (i, &action) in self.betting().iter().enumerate() {
            if action == BET {
                paid[i % 2] += 1.0;
            }
        }
        paid
    }

    /// The betting sequence as OpenSpiel writes it (`p`/`b`).
    pub fn betting_string(&self) -> String {
        self.betting()
            .iter()
            .map(|&a| if a == BET { 'b' } else { 'p' })
            .collect()
    }

    /// The name of a card (`J`, `Q`, `K`).
    pub fn card_name(card: usize) -> &'static str {
        CARD_NAMES[card]
    }
}

impl State for KuhnState {
    fn turn(&self) -> Turn {
        if self.history.len() < 2 {
            return Turn::Chance;
        }
        match self.betting() {
            [PASS, PASS] | [BET, _] | [PASS, BET, _] => Turn::Terminal,
            betting => Turn::Player(betting.len() % 2),
        }
    }

    fn legal_actions(&self) -> Vec<Action> {
        match self.turn() {
            Turn::Terminal => Vec::new(),
            Turn::Chance => (0..NUM_CARDS)
                .filter(|card| !self.history.contains(card))
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
        self.history.push(action);
    }

    fn returns(&self) -> Vec<f64> {
        if !self.is_terminal() {
            return vec![0.0, 0.0];
        }
        let paid = self.contributions();
        let winner = match self.betting() {
            [BET, PASS] => 0,
            [PASS, BET, PASS] => 1,
            _ => usize::from(self.history[1] > self.history[0]),
        };
        let loser = 1 - winner;
        let mut returns = vec![0.0, 0.0];
        returns[winner] = paid[loser];
        returns[loser] = -paid[loser];
        returns
    }

    fn information_state_string(&self, player: Player) -> String {
        match self.card(player) {
            None => String::new(),
            Some(card) => format!("{card}{}", self.betting_string()),
        }
    }

    fn action_to_string(&self, _player: Player, action: Action) -> String {
        if self.history.len() < 2 {
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
    /// OpenSpiel's `ToString`: the cards dealt, then the betting (`2 0 pb`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cards: Vec<String> = self.history.iter().take(2).map(|c| c.to_string()).collect();
        write!(f, "{}", cards.join(" "))?;
        if self.history.len() > 2 {
            write!(f, " {}", self.betting_string())?;
        }
        Ok(())
    }
}

/// Who alone observes a chance outcome: the deal at index `i` goes to player `i`.
pub fn private_chance(state: &KuhnState) -> Option<Player> {
    Some(state.history().len())
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
    for key in ["0", "1", "2", "0pb", "1pb", "2pb", "0p", "1p", "2p", "0b", "1b", "2b"] {
        policy.insert(key, vec![(PASS, 1.0), (BET, 0.0)]);
    }
    policy
}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_core::testing::{check_conformance, playthrough_text, Conformance};

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
}
