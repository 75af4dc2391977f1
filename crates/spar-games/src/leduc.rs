//! Leduc Hold'em, two players, exactly as OpenSpiel's `leduc_poker` (default parameters).
//!
//! # Rules
//! A deck of six cards, ids 0 to 5; a card's rank is `id / 2` (0 Jack, 1 Queen, 2 King), two
//! suits per rank. Each player antes 1 chip (from a stack of 100) and chance deals one
//! private card to player 0, then one to player 1. Two betting rounds follow; between them
//! chance deals one public card. Player 0 acts first in each round. Actions:
//!
//! | action | id | legal when |
//! |---|---|---|
//! | Fold | 0 | facing a bet |
//! | Call | 1 | always (a check when nothing is owed) |
//! | Raise | 2 | fewer than 2 raises this round; raise size 2 in round 1, 4 in round 2 |
//!
//! A round ends when a player calls after the other has acted (check-check, raise-call,
//! ...). A fold ends the game: the other player wins what the folder put in. After round 2,
//! showdown: a player whose private card pairs the public card wins; otherwise the higher
//! rank wins; equal ranks split the pot (returns 0).
//!
//! # Parameters
//! None (OpenSpiel's defaults: 2 players, no suit isomorphism).
//!
//! # Information states
//! OpenSpiel's strings, e.g.
//! `[Observer: 0][Private: 0][Round 2][Player: 0][Pot: 6][Money: 97 97][Public: 4][Round1: 2 1][Round2: ]`:
//! the observer, their card (`-10000` before it is dealt), the round (2 from the chance node
//! that deals the public card on), the player to move (`-1` at chance, the last actor at the
//! end), the pot and each player's money (at the end: the pot paid out), the public card once
//! dealt, and each round's actions. A golden test compares every node of the tree with
//! OpenSpiel 2.0.2. There are 9,457 histories and 936 decision information states.
//!
//! # Reference policies
//! [`always_fold_policy`]: fold when facing a bet, otherwise call (OpenSpiel's
//! `FirstActionPolicy`; NashConv 2).
//!
//! # References
//! Southey et al., "Bayes' Bluff: Opponent Modelling in Poker", UAI 2005; OpenSpiel
//! `open_spiel/games/leduc_poker/leduc_poker.cc`.

use std::fmt;

use spar_core::{
    Action, Game, GameInfo, GameSpec, Information, Player, State, TabularPolicy, Turn, Utility,
};

/// Fold: give up (legal only when facing a bet).
pub const FOLD: Action = 0;
/// Call: match the opponent's bet (a check when nothing is owed).
pub const CALL: Action = 1;
/// Raise: bet 2 (round 1) or 4 (round 2) more than the opponent.
pub const RAISE: Action = 2;
/// Cards in the deck.
pub const NUM_CARDS: usize = 6;
const STARTING_MONEY: u32 = 100;
const MAX_ROUND_ACTIONS: usize = 4;
const RANK_NAMES: [&str; 3] = ["J", "Q", "K"];

/// Leduc Hold'em (two players).
#[derive(Debug, Clone)]
pub struct LeducPoker {
    info: GameInfo,
}

impl LeducPoker {
    /// The game with OpenSpiel's default rules.
    pub fn new() -> Self {
        Self {
            info: GameInfo {
                name: "leduc".to_string(),
                long_name: "Leduc Hold'em".to_string(),
                spec: "leduc".to_string(),
                num_players: 2,
                utility: Utility::ZeroSum,
                information: Information::Imperfect,
                has_chance: true,
                min_utility: -13.0,
                max_utility: 13.0,
                num_distinct_actions: 3,
                max_chance_outcomes: NUM_CARDS,
                // 8 player actions (4 a round) and 3 deals.
                max_game_length: 11,
            },
        }
    }

    /// The game from a specification (`leduc`); no parameters are accepted.
    pub fn from_spec(spec: &GameSpec) -> spar_core::Result<Self> {
        spec.check_known(&[])?;
        Ok(Self::new())
    }
}

impl Default for LeducPoker {
    fn default() -> Self {
        Self::new()
    }
}

impl Game for LeducPoker {
    type State = LeducState;

    fn info(&self) -> &GameInfo {
        &self.info
    }

    fn new_initial_state(&self) -> LeducState {
        LeducState {
            history: Vec::with_capacity(11),
            private: [None; 2],
            public: None,
            round: 0,
            actions: [[0; MAX_ROUND_ACTIONS]; 2],
            action_counts: [0; 2],
            paid: [1, 1],
            folded: None,
            last_actor: None,
        }
    }
}

/// A Leduc Hold'em state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeducState {
    history: Vec<Action>,
    private: [Option<usize>; 2],
    public: Option<usize>,
    /// 0 or 1; becomes 1 as soon as round 1 ends (at the public-card chance node).
    round: usize,
    actions: [[Action; MAX_ROUND_ACTIONS]; 2],
    action_counts: [usize; 2],
    /// Chips each player has put in the pot (ante included).
    paid: [u32; 2],
    folded: Option<Player>,
    last_actor: Option<Player>,
}

impl LeducState {
    /// The private card of `player`, if dealt.
    pub fn private_card(&self, player: Player) -> Option<usize> {
        self.private[player]
    }

    /// The public card, if dealt.
    pub fn public_card(&self) -> Option<usize> {
        self.public
    }

    /// The betting round, 0 or 1 (1 from the end of round 0 on).
    pub fn round(&self) -> usize {
        self.round
    }

    /// The actions of betting round `round` (0 or 1).
    pub fn round_actions(&self, round: usize) -> &[Action] {
        &self.actions[round][..self.action_counts[round]]
    }

    /// Chips each player has put in the pot, ante included.
    pub fn contributions(&self) -> [u32; 2] {
        self.paid
    }

    /// The pot (before it is paid out).
    pub fn pot(&self) -> u32 {
        self.paid[0] + self.paid[1]
    }

    /// The name of a card's rank (`J`, `Q`, `K`).
    pub fn rank_name(card: usize) -> &'static str {
        RANK_NAMES[card / 2]
    }

    /// Whether the player to move faces a bet (owes chips).
    pub fn facing_bet(&self) -> bool {
        self.paid[0] != self.paid[1]
    }

    fn raises_this_round(&self) -> usize {
        self.round_actions(self.round)
            .iter()
            .filter(|&&a| a == RAISE)
            .count()
    }

    fn betting_over(&self, round: usize) -> bool {
        let actions = self.round_actions(round);
        actions.len() >= 2 && actions[actions.len() - 1] == CALL
    }

    fn winner(&self) -> Option<Player> {
        if let Some(loser) = self.folded {
            return Some(1 - loser);
        }
        let public_rank = self.public? / 2;
        let strength = |p: Player| {
            let rank = self.private[p].expect("dealt") / 2;
            if rank == public_rank {
                10 + rank
            } else {
                rank
            }
        };
        match strength(0).cmp(&strength(1)) {
            std::cmp::Ordering::Greater => Some(0),
            std::cmp::Ordering::Less => Some(1),
            std::cmp::Ordering::Equal => None,
        }
    }

    fn money(&self) -> [i64; 2] {
        let mut money = [0, 1].map(|p| i64::from(STARTING_MONEY) - i64::from(self.paid[p]));
        if self.is_terminal() {
            let returns = self.returns();
            for p in 0..2 {
                money[p] = i64::from(STARTING_MONEY) + returns[p] as i64;
            }
        }
        money
    }
}

impl State for LeducState {
    fn turn(&self) -> Turn {
        if self.folded.is_some() {
            return Turn::Terminal;
        }
        if self.private[1].is_none() {
            return Turn::Chance;
        }
        if self.round == 1 && self.public.is_none() {
            return Turn::Chance;
        }
        if self.round == 1 && self.betting_over(1) {
            return Turn::Terminal;
        }
        Turn::Player(self.action_counts[self.round] % 2)
    }

    fn legal_actions(&self) -> Vec<Action> {
        match self.turn() {
            Turn::Terminal => Vec::new(),
            Turn::Chance => (0..NUM_CARDS)
                .filter(|&c| self.private[0] != Some(c) && self.private[1] != Some(c))
                .collect(),
            Turn::Player(_) => {
                let mut actions = Vec::with_capacity(3);
                if self.facing_bet() {
                    actions.push(FOLD);
                }
                actions.push(CALL);
                if self.raises_this_round() < 2 {
                    actions.push(RAISE);
                }
                actions
            }
        }
    }

    fn chance_outcomes(&self) -> Vec<(Action, f64)> {
        if self.turn() != Turn::Chance {
            return Vec::new();
        }
        let legal = self.legal_actions();
        let p = 1.0 / legal.len() as f64;
        legal.into_iter().map(|c| (c, p)).collect()
    }

    fn apply_action(&mut self, action: Action) {
        match self.turn() {
            Turn::Chance => {
                if self.private[0].is_none() {
                    self.private[0] = Some(action);
                } else if self.private[1].is_none() {
                    self.private[1] = Some(action);
                } else {
                    self.public = Some(action);
                }
            }
            Turn::Player(player) => {
                let other = 1 - player;
                match action {
                    FOLD => self.folded = Some(player),
                    CALL => self.paid[player] = self.paid[other],
                    RAISE => {
                        let size = if self.round == 0 { 2 } else { 4 };
                        self.paid[player] = self.paid[other] + size;
                    }
                    _ => panic!("Leduc: action {action} is not an action"),
                }
                let round = self.round;
                self.actions[round][self.action_counts[round]] = action;
                self.action_counts[round] += 1;
                self.last_actor = Some(player);
                if round == 0 && self.betting_over(0) {
                    self.round = 1;
                }
            }
            Turn::Terminal => panic!("Leduc: apply_action at a terminal state"),
        }
        self.history.push(action);
    }

    fn returns(&self) -> Vec<f64> {
        if !self.is_terminal() {
            return vec![0.0, 0.0];
        }
        match self.winner() {
            None => vec![0.0, 0.0],
            Some(winner) => {
                let won = f64::from(self.paid[1 - winner]);
                let mut returns = vec![0.0, 0.0];
                returns[winner] = won;
                returns[1 - winner] = -won;
                returns
            }
        }
    }

    fn information_state_string(&self, player: Player) -> String {
        let private = self.private[player].map_or(-10000, |c| c as i64);
        let to_move: i64 = match self.turn() {
            Turn::Chance => -1,
            Turn::Player(p) => p as i64,
            Turn::Terminal => self.last_actor.map_or(-1, |p| p as i64),
        };
        let pot = if self.is_terminal() { 0 } else { self.pot() };
        let money = self.money();
        let public = match self.public {
            Some(card) => format!("[Public: {card}]"),
            None => String::new(),
        };
        let sequence = |round: usize| {
            self.round_actions(round)
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        format!(
            "[Observer: {player}][Private: {private}][Round {}][Player: {to_move}][Pot: {pot}]\
             [Money: {} {}]{public}[Round1: {}][Round2: {}]",
            self.round + 1,
            money[0],
            money[1],
            sequence(0),
            sequence(1)
        )
    }

    fn action_to_string(&self, _player: Player, action: Action) -> String {
        if self.turn() == Turn::Chance {
            return format!("Chance outcome:{action}");
        }
        match action {
            FOLD => "Fold",
            CALL => "Call",
            _ => "Raise",
        }
        .to_string()
    }

    fn history(&self) -> &[Action] {
        &self.history
    }
}

impl fmt::Display for LeducState {
    /// The whole state: cards (public, then private), round, pot and both sequences.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let card = |c: Option<usize>| c.map_or("-".to_string(), |c| c.to_string());
        let names = |round: usize| {
            self.round_actions(round)
                .iter()
                .map(|&a| self.action_to_string(0, a))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "Round: {}\nPot: {}\nCards (public player_0 player_1): {} {} {}\n\
             Round 1 sequence: {}\nRound 2 sequence: {}",
            self.round + 1,
            self.pot(),
            card(self.public),
            card(self.private[0]),
            card(self.private[1]),
            names(0),
            names(1)
        )
    }
}

/// Who alone observes a chance outcome: the first two deals are private to players 0 and 1;
/// the public card is seen by both.
pub fn private_chance(state: &LeducState) -> Option<Player> {
    match (state.private_card(0), state.private_card(1)) {
        (None, _) => Some(0),
        (Some(_), None) => Some(1),
        _ => None,
    }
}

/// OpenSpiel's `FirstActionPolicy` on Leduc: the lowest legal action everywhere (fold when
/// facing a bet, otherwise call). NashConv 2 (OpenSpiel `exploitability_test.py`).
pub fn always_fold_policy() -> TabularPolicy {
    let mut policy = TabularPolicy::default();
    let mut stack = vec![LeducPoker::new().new_initial_state()];
    while let Some(state) = stack.pop() {
        if let Turn::Player(player) = state.turn() {
            let legal = state.legal_actions();
            let distribution = legal
                .iter()
                .map(|&a| (a, if a == legal[0] { 1.0 } else { 0.0 }))
                .collect();
            policy.insert(state.information_state_string(player), distribution);
        }
        for action in state.legal_actions() {
            stack.push(state.child(action));
        }
    }
    policy
}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_core::testing::{check_conformance, playthrough_text, Conformance};

    fn play(actions: &[Action]) -> LeducState {
        let mut state = LeducPoker::new().new_initial_state();
        for &a in actions {
            assert!(state.legal_actions().contains(&a), "{a} after {actions:?}");
            state.apply_action(a);
        }
        state
    }

    #[test]
    fn conformance() {
        check_conformance(
            &LeducPoker::new(),
            &Conformance {
                private_chance: Some(private_chance),
                ..Conformance::default()
            },
        );
    }

    #[test]
    fn payoffs_by_hand() {
        // Deal (p0, p1), betting, public, betting -> returns, computed from the rules.
        // J vs J (cards 0, 1), check-check twice: split.
        assert_eq!(play(&[0, 1, 1, 1, 2, 1, 1]).returns(), vec![0.0, 0.0]);
        // J vs Q, public Q (3): player 1 pairs; check-check, check-check: wins the ante.
        assert_eq!(play(&[0, 2, 1, 1, 3, 1, 1]).returns(), vec![-1.0, 1.0]);
        // Player 0 raises (2), player 1 folds: player 0 wins 1.
        assert_eq!(play(&[0, 1, RAISE, FOLD]).returns(), vec![1.0, -1.0]);
        // Raise, call (3 each); round 2: raise 4, re-raise 4, call: 3 + 8 = 11 each.
        // Player 0 holds J (0), player 1 K (4), public K (5): player 1 pairs and wins 11.
        let state = play(&[0, 4, RAISE, CALL, 5, RAISE, RAISE, CALL]);
        assert_eq!(state.returns(), vec![-11.0, 11.0]);
        // Two raises in a round: no third.
        assert_eq!(
            play(&[0, 4, RAISE, RAISE]).legal_actions(),
            vec![FOLD, CALL]
        );
    }

    #[test]
    fn information_states_are_openspiels() {
        // Strings printed by OpenSpiel 2.0.2 (pyspiel) for the same histories.
        let state = play(&[0, 3, RAISE, CALL, 4]);
        assert_eq!(
            state.information_state_string(0),
            "[Observer: 0][Private: 0][Round 2][Player: 0][Pot: 6][Money: 97 97][Public: 4][Round1: 2 1][Round2: ]"
        );
        assert_eq!(
            play(&[5]).information_state_string(1),
            "[Observer: 1][Private: -10000][Round 1][Player: -1][Pot: 2][Money: 99 99][Round1: ][Round2: ]"
        );
        assert_eq!(
            play(&[0, 1, RAISE, FOLD]).information_state_string(1),
            "[Observer: 1][Private: 1][Round 1][Player: 1][Pot: 0][Money: 101 99][Round1: 2 0][Round2: ]"
        );
    }

    #[test]
    fn has_936_decision_information_states() {
        let policy = always_fold_policy();
        assert_eq!(policy.table.len(), 936);
    }

    #[test]
    fn playthrough_snapshot() {
        insta::assert_snapshot!(playthrough_text(&LeducPoker::new(), 7));
    }
}
