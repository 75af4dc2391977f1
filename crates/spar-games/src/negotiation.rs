//! Simple Negotiation: SPIRAL's `SimpleNegotiation-v1` as a finite game with enumerated
//! offers.
//!
//! # Rules
//! Two players trade two resources, **Wood** and **Gold**. Each starts with `wood` Wood and
//! `gold` Gold. Per-unit values are public and opposite: player 0 values Wood 5 and Gold 15,
//! player 1 values Wood 15 and Gold 5.
//!
//! The game lasts `max_turns` turns; players alternate, player 0 first (turn `t` belongs to
//! player `t % 2`). A turn is made of up to two actions:
//!
//! 1. **Response** (only when the opponent's previous turn ended with an offer): `Accept`
//!    (the trade executes at once) or `Deny` (the offer is dropped). Responding does not end
//!    the turn.
//! 2. **Proposal**, which ends the turn: `Pass`, or an offer `Offer: a Wood -> b Gold` (the
//!    proposer gives `a` Wood and asks `b` Gold) or `Offer: a Gold -> b Wood`, with
//!    `1 <= a, b <= max_quantity`. An offer is legal only when the proposer holds `a` of
//!    what it gives and the responder holds `b` of what is asked, so no inventory goes
//!    negative.
//!
//! After `max_turns` turns the game ends; an offer made in the last turn lapses. Each
//! player's gain is the value of their inventory now minus at the start (at their own
//! values); the larger gain wins (+1, the other -1), equal gains draw (0 each). Perfect
//! information, no chance, zero-sum.
//!
//! # Parameters
//! | name | default | meaning |
//! |---|---|---|
//! | `wood` | 10 | Wood each player starts with (SPIRAL: 10) |
//! | `gold` | 10 | Gold each player starts with (SPIRAL: 10) |
//! | `max_turns` | 10 | turns before the game ends, at least 1 (SPIRAL: 10) |
//! | `max_quantity` | 3 | largest amount given or asked in one offer, at least 1 |
//!
//! # Actions
//! `0` = `Pass`, `1` = `Accept`, `2` = `Deny`, then the offers: `3 + d * q * q + (a - 1) * q
//! + (b - 1)` for `q = max_quantity`, direction `d` (0: give Wood for Gold, 1: give Gold for
//! Wood), give `a`, ask `b`. With the defaults there are 21 distinct actions.
//!
//! # Strings
//! * Action names: `Pass`, `Accept`, `Deny`, `Offer: 3 Wood -> 2 Gold` (no brackets; the
//!   text view adds them, as in SPIRAL's `[Offer: 3 Wood -> 2 Gold]`).
//! * Information states: the history of actions joined by `", "` (perfect information, the
//!   same convention as OpenSpiel's TicTacToe).
//!
//! # Size
//! [`NegotiationState::count_histories`] counts the histories of a subtree exactly (memoised
//! on turn, pending offer and inventories). With the defaults the tree has
//! 2,436,293,570,068,533 histories (about 2.4e15; an independent Python count agrees), far
//! beyond exact evaluation; small instances such as
//! `negotiation(max_turns=4,max_quantity=1)` (593 histories) can be solved exactly.
//!
//! # Deviations from SPIRAL
//! * Offers are enumerated actions with bounded amounts, so tree algorithms apply; there is
//!   no free-text chat, and one offer per turn.
//! * A turn's response and new offer are two actions of the same player (SPIRAL writes both
//!   in one message).
//! * `Pass` ends a turn without an offer (SPIRAL's players simply talk).
//! * Invalid moves are impossible here: illegal actions are not offered (the text view
//!   handles malformed answers).
//!
//! # References
//! SPIRAL `spiral/envs/SimpleNegotiation/env.py` (`spiral-rl/spiral`), built on TextArena's
//! negotiation environments.

use std::collections::HashMap;
use std::fmt;

use spar_core::{
    Action, Error, Game, GameInfo, GameSpec, Information, Player, State, Turn, Utility,
};

/// End the turn without an offer.
pub const PASS: Action = 0;
/// Accept the pending offer: the trade executes.
pub const ACCEPT: Action = 1;
/// Deny the pending offer.
pub const DENY: Action = 2;
/// The first offer action.
const FIRST_OFFER: Action = 3;

/// A tradable resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Wood: worth 5 to player 0, 15 to player 1.
    Wood = 0,
    /// Gold: worth 15 to player 0, 5 to player 1.
    Gold = 1,
}

impl Resource {
    /// The other resource.
    pub fn other(self) -> Self {
        match self {
            Resource::Wood => Resource::Gold,
            Resource::Gold => Resource::Wood,
        }
    }

    /// The name used in action strings.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Wood => "Wood",
            Resource::Gold => "Gold",
        }
    }
}

/// Per-unit values, `VALUES[player][resource]` (SPIRAL's defaults).
pub const VALUES: [[i64; 2]; 2] = [[5, 15], [15, 5]];

/// An offer: the proposer gives `give_amount` of `give` and asks `ask_amount` of the other
/// resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Offer {
    /// The resource the proposer gives.
    pub give: Resource,
    /// How much of it.
    pub give_amount: u32,
    /// How much of the other resource the proposer asks.
    pub ask_amount: u32,
}

impl fmt::Display for Offer {
    /// `Offer: 3 Wood -> 2 Gold`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Offer: {} {} -> {} {}",
            self.give_amount,
            self.give.name(),
            self.ask_amount,
            self.give.other().name()
        )
    }
}

/// The parameters (see the module doc's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NegotiationConfig {
    /// Wood each player starts with.
    pub wood: u32,
    /// Gold each player starts with.
    pub gold: u32,
    /// Turns before the game ends (at least 1).
    pub max_turns: usize,
    /// Largest amount given or asked in one offer (at least 1).
    pub max_quantity: u32,
}

impl Default for NegotiationConfig {
    fn default() -> Self {
        Self {
            wood: 10,
            gold: 10,
            max_turns: 10,
            max_quantity: 3,
        }
    }
}

impl NegotiationConfig {
    /// Number of offer actions: two directions times `max_quantity` squared.
    pub fn num_offers(&self) -> usize {
        2 * (self.max_quantity as usize).pow(2)
    }

    /// The action of `offer`.
    ///
    /// # Panics
    /// When an amount is 0 or above `max_quantity`.
    pub fn offer_action(&self, offer: Offer) -> Action {
        let q = self.max_quantity;
        assert!(
            (1..=q).contains(&offer.give_amount) && (1..=q).contains(&offer.ask_amount),
            "offer amounts must lie in 1..={q}: {offer:?}"
        );
        let q = q as usize;
        FIRST_OFFER
            + offer.give as usize * q * q
            + (offer.give_amount as usize - 1) * q
            + (offer.ask_amount as usize - 1)
    }

    /// The offer an action stands for, if it is an offer action.
    pub fn offer(&self, action: Action) -> Option<Offer> {
        let index = action.checked_sub(FIRST_OFFER)?;
        if index >= self.num_offers() {
            return None;
        }
        let q = self.max_quantity as usize;
        let give = if index / (q * q) == 0 {
            Resource::Wood
        } else {
            Resource::Gold
        };
        Some(Offer {
            give,
            give_amount: ((index % (q * q)) / q + 1) as u32,
            ask_amount: (index % q + 1) as u32,
        })
    }
}

/// Simple Negotiation.
#[derive(Debug, Clone)]
pub struct Negotiation {
    config: NegotiationConfig,
    info: GameInfo,
}

impl Negotiation {
    /// The game with the given parameters.
    ///
    /// # Panics
    /// When `max_turns` or `max_quantity` is 0 (use [`Negotiation::from_spec`] for input
    /// from users, which reports an error instead).
    pub fn new(config: NegotiationConfig) -> Self {
        assert!(config.max_turns >= 1, "max_turns must be at least 1");
        assert!(config.max_quantity >= 1, "max_quantity must be at least 1");
        let defaults = NegotiationConfig::default();
        let mut spec = GameSpec {
            name: "negotiation".to_string(),
            ..GameSpec::default()
        };
        let mut set = |key: &str, value: String, default: String| {
            if value != default {
                spec.params.insert(key.to_string(), value);
            }
        };
        set("wood", config.wood.to_string(), defaults.wood.to_string());
        set("gold", config.gold.to_string(), defaults.gold.to_string());
        set(
            "max_turns",
            config.max_turns.to_string(),
            defaults.max_turns.to_string(),
        );
        set(
            "max_quantity",
            config.max_quantity.to_string(),
            defaults.max_quantity.to_string(),
        );
        Self {
            config,
            info: GameInfo {
                name: "negotiation".to_string(),
                long_name: "Simple Negotiation".to_string(),
                spec: spec.to_string(),
                num_players: 2,
                utility: Utility::ZeroSum,
                information: Information::Perfect,
                has_chance: false,
                min_utility: -1.0,
                max_utility: 1.0,
                num_distinct_actions: FIRST_OFFER + config.num_offers(),
                max_chance_outcomes: 0,
                // Every turn but the first may open with a response.
                max_game_length: 2 * config.max_turns - 1,
            },
        }
    }

    /// The game from a specification, e.g. `negotiation(max_turns=4,max_quantity=1)`.
    pub fn from_spec(spec: &GameSpec) -> spar_core::Result<Self> {
        spec.check_known(&["wood", "gold", "max_turns", "max_quantity"])?;
        let defaults = NegotiationConfig::default();
        let config = NegotiationConfig {
            wood: spec.get("wood", defaults.wood)?,
            gold: spec.get("gold", defaults.gold)?,
            max_turns: spec.get("max_turns", defaults.max_turns)?,
            max_quantity: spec.get("max_quantity", defaults.max_quantity)?,
        };
        for (key, value) in [
            ("max_turns", config.max_turns),
            ("max_quantity", config.max_quantity as usize),
        ] {
            if value == 0 {
                return Err(Error::BadParameter {
                    game: spec.name.clone(),
                    key: key.to_string(),
                    value: value.to_string(),
                    reason: "must be at least 1".to_string(),
                });
            }
        }
        Ok(Self::new(config))
    }

    /// The parameters.
    pub fn config(&self) -> &NegotiationConfig {
        &self.config
    }
}

impl Default for Negotiation {
    fn default() -> Self {
        Self::new(NegotiationConfig::default())
    }
}

impl Game for Negotiation {
    type State = NegotiationState;

    fn info(&self) -> &GameInfo {
        &self.info
    }

    fn new_initial_state(&self) -> NegotiationState {
        let start = [self.config.wood, self.config.gold];
        NegotiationState {
            config: self.config,
            inventory: [start, start],
            turns_done: 0,
            pending: None,
            history: Vec::with_capacity(self.info.max_game_length),
        }
    }
}

/// A Simple Negotiation state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NegotiationState {
    config: NegotiationConfig,
    /// `inventory[player][resource]`.
    inventory: [[u32; 2]; 2],
    /// Completed turns.
    turns_done: usize,
    /// The offer the opponent's last turn ended with, awaiting a response.
    pending: Option<Offer>,
    history: Vec<Action>,
}

impl NegotiationState {
    /// How much of `resource` `player` holds.
    pub fn inventory(&self, player: Player, resource: Resource) -> u32 {
        self.inventory[player][resource as usize]
    }

    /// The value of `player`'s inventory at their own per-unit values.
    pub fn value(&self, player: Player) -> i64 {
        (0..2)
            .map(|r| VALUES[player][r] * i64::from(self.inventory[player][r]))
            .sum()
    }

    /// `player`'s gain: inventory value now minus at the start.
    pub fn gain(&self, player: Player) -> i64 {
        let start = VALUES[player][0] * i64::from(self.config.wood)
            + VALUES[player][1] * i64::from(self.config.gold);
        self.value(player) - start
    }

    /// Completed turns.
    pub fn turns_done(&self) -> usize {
        self.turns_done
    }

    /// The offer awaiting a response, if any.
    pub fn pending_offer(&self) -> Option<Offer> {
        self.pending
    }

    /// Whether `proposer` may make `offer` now: both sides can pay.
    fn affordable(&self, proposer: Player, offer: Offer) -> bool {
        let give = offer.give as usize;
        self.inventory[proposer][give] >= offer.give_amount
            && self.inventory[1 - proposer][1 - give] >= offer.ask_amount
    }

    /// The number of histories in the subtree rooted here (this state included), counted
    /// with memoisation on what determines the subtree: completed turns, the pending offer
    /// and player 0's inventory (player 1's follows, trades conserve resources).
    pub fn count_histories(&self) -> u128 {
        type Key = (usize, Option<Offer>, [u32; 2]);
        fn count(state: &NegotiationState, memo: &mut HashMap<Key, u128>) -> u128 {
            let key = (state.turns_done, state.pending, state.inventory[0]);
            if let Some(&n) = memo.get(&key) {
                return n;
            }
            let n = 1 + state
                .legal_actions()
                .into_iter()
                .map(|a| count(&state.child(a), memo))
                .sum::<u128>();
            memo.insert(key, n);
            n
        }
        count(self, &mut HashMap::new())
    }
}

impl State for NegotiationState {
    fn turn(&self) -> Turn {
        if self.turns_done >= self.config.max_turns {
            Turn::Terminal
        } else {
            Turn::Player(self.turns_done % 2)
        }
    }

    fn legal_actions(&self) -> Vec<Action> {
        let Turn::Player(player) = self.turn() else {
            return Vec::new();
        };
        if self.pending.is_some() {
            return vec![ACCEPT, DENY];
        }
        let offers = (FIRST_OFFER..FIRST_OFFER + self.config.num_offers()).filter(|&a| {
            let offer = self.config.offer(a).expect("an offer action");
            self.affordable(player, offer)
        });
        std::iter::once(PASS).chain(offers).collect()
    }

    fn chance_outcomes(&self) -> Vec<(Action, f64)> {
        Vec::new()
    }

    fn apply_action(&mut self, action: Action) {
        let player = match self.turn() {
            Turn::Player(player) => player,
            turn => panic!("apply_action({action}) at a {turn:?} node"),
        };
        match (self.pending, action) {
            (Some(offer), ACCEPT) => {
                // The responder pays what is asked and receives what is given.
                let give = offer.give as usize;
                let proposer = 1 - player;
                self.inventory[proposer][give] -= offer.give_amount;
                self.inventory[player][give] += offer.give_amount;
                self.inventory[player][1 - give] -= offer.ask_amount;
                self.inventory[proposer][1 - give] += offer.ask_amount;
                self.pending = None;
            }
            (Some(_), DENY) => self.pending = None,
            (None, PASS) => self.turns_done += 1,
            (None, _) => {
                let offer = self
                    .config
                    .offer(action)
                    .filter(|&offer| self.affordable(player, offer))
                    .unwrap_or_else(|| panic!("illegal negotiation action {action}"));
                self.pending = Some(offer);
                self.turns_done += 1;
            }
            (Some(_), _) => panic!("illegal negotiation action {action}: an offer is pending"),
        }
        self.history.push(action);
    }

    fn returns(&self) -> Vec<f64> {
        if !self.is_terminal() {
            return vec![0.0, 0.0];
        }
        match self.gain(0).cmp(&self.gain(1)) {
            std::cmp::Ordering::Greater => vec![1.0, -1.0],
            std::cmp::Ordering::Less => vec![-1.0, 1.0],
            std::cmp::Ordering::Equal => vec![0.0, 0.0],
        }
    }

    fn information_state_string(&self, _player: Player) -> String {
        crate::tictactoe::history_string(&self.history)
    }

    fn action_to_string(&self, _player: Player, action: Action) -> String {
        match action {
            PASS => "Pass".to_string(),
            ACCEPT => "Accept".to_string(),
            DENY => "Deny".to_string(),
            _ => match self.config.offer(action) {
                Some(offer) => offer.to_string(),
                None => format!("Unknown action {action}"),
            },
        }
    }

    fn history(&self) -> &[Action] {
        &self.history
    }
}

impl fmt::Display for NegotiationState {
    /// The turn, both inventories with their gains, and the pending offer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.turn() {
            Turn::Player(player) => writeln!(
                f,
                "turn {} of {}, player {player} to move",
                self.turns_done + 1,
                self.config.max_turns
            )?,
            _ => writeln!(f, "game over after {} turns", self.config.max_turns)?,
        }
        for player in 0..2 {
            writeln!(
                f,
                "player {player}: {} Wood, {} Gold (gain {})",
                self.inventory[player][0],
                self.inventory[player][1],
                self.gain(player)
            )?;
        }
        match self.pending {
            Some(offer) if !self.is_terminal() => {
                write!(
                    f,
                    "pending from player {}: {offer}",
                    1 - self.turns_done % 2
                )
            }
            _ => write!(f, "no pending offer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_core::testing::{check_conformance, playthrough_text, Conformance};

    fn game(spec: &str) -> Negotiation {
        Negotiation::from_spec(&GameSpec::parse(spec).unwrap()).unwrap()
    }

    /// Plays actions given by name.
    fn play(game: &Negotiation, names: &[&str]) -> NegotiationState {
        let mut state = game.new_initial_state();
        for name in names {
            let player = state.current_player().expect("not terminal");
            let action = state
                .legal_actions()
                .into_iter()
                .find(|&a| state.action_to_string(player, a) == *name)
                .unwrap_or_else(|| panic!("{name} is not legal after {:?}", state.history()));
            state.apply_action(action);
        }
        state
    }

    fn names(state: &NegotiationState) -> Vec<String> {
        let player = state.current_player().unwrap();
        state
            .legal_actions()
            .into_iter()
            .map(|a| state.action_to_string(player, a))
            .collect()
    }

    #[test]
    fn conformance() {
        check_conformance(&Negotiation::default(), &Conformance::default());
        check_conformance(
            &game("negotiation(wood=2,gold=1,max_turns=5)"),
            &Conformance {
                playthroughs: 2_000,
                ..Conformance::default()
            },
        );
    }

    #[test]
    fn actions_and_spec() {
        let g = Negotiation::default();
        assert_eq!(g.info().spec, "negotiation");
        assert_eq!(g.info().num_distinct_actions, 21);
        assert_eq!(g.info().max_game_length, 19);
        let state = g.new_initial_state();
        let all = names(&state);
        assert_eq!(all.len(), 19);
        assert_eq!(all[0], "Pass");
        assert_eq!(all[1], "Offer: 1 Wood -> 1 Gold");
        assert_eq!(all[6], "Offer: 2 Wood -> 3 Gold");
        assert_eq!(all[18], "Offer: 3 Gold -> 3 Wood");
        for action in 0..21 {
            if let Some(offer) = g.config().offer(action) {
                assert_eq!(g.config().offer_action(offer), action);
            }
        }
        // By hand for max_turns=4, max_quantity=1 (two offers, always affordable): with
        // P(t) the subtree of a proposal after t turns and R(t) that of a pending offer,
        // P(4) = R(4) = 1, P(t) = 1 + P(t+1) + 2 R(t+1), R(t) = 1 + 2 P(t) for t < 4:
        // P(3) = 4, R(3) = 9, P(2) = 23, R(2) = 47, P(1) = 118, R(1) = 237, P(0) = 593.
        assert_eq!(
            game("negotiation(max_turns=4,max_quantity=1)").info().spec,
            "negotiation(max_quantity=1,max_turns=4)"
        );
        assert!(
            Negotiation::from_spec(&GameSpec::parse("negotiation(max_turns=0)").unwrap()).is_err()
        );
        assert!(
            Negotiation::from_spec(&GameSpec::parse("negotiation(silver=1)").unwrap()).is_err()
        );
    }

    #[test]
    fn accepted_trade_and_final_returns() {
        let g = Negotiation::default();
        // Turn 1: player 0 offers 3 Wood for 2 Gold. Turn 2: player 1 accepts, then passes.
        let mut moves = vec!["Offer: 3 Wood -> 2 Gold", "Accept", "Pass"];
        let state = play(&g, &moves);
        // Player 0: 7 Wood, 12 Gold, gain -3*5 + 2*15 = 15.
        // Player 1: 13 Wood, 8 Gold, gain 3*15 - 2*5 = 35.
        assert_eq!(state.inventory(0, Resource::Wood), 7);
        assert_eq!(state.inventory(0, Resource::Gold), 12);
        assert_eq!(state.inventory(1, Resource::Wood), 13);
        assert_eq!(state.inventory(1, Resource::Gold), 8);
        assert_eq!((state.gain(0), state.gain(1)), (15, 35));
        assert_eq!(state.turns_done(), 2);
        assert_eq!(
            state.returns(),
            vec![0.0, 0.0],
            "nothing banked before the end"
        );
        // Turns 3 to 10: everybody passes.
        moves.extend(["Pass"; 8]);
        let state = play(&g, &moves);
        assert!(state.is_terminal());
        assert_eq!(state.history().len(), 11);
        assert_eq!(state.returns(), vec![-1.0, 1.0]);
    }

    #[test]
    fn larger_gain_wins_and_equal_gains_draw() {
        let g = game("negotiation(max_turns=2)");
        // Player 0 gives 1 Wood for 3 Gold: gain -5 + 45 = 40; player 1: 15 - 15 = 0.
        let state = play(&g, &["Offer: 1 Wood -> 3 Gold", "Accept", "Pass"]);
        assert_eq!((state.gain(0), state.gain(1)), (40, 0));
        assert_eq!(state.returns(), vec![1.0, -1.0]);
        // Player 0 gives 1 Gold for 1 Wood: both lose 10, a draw.
        let state = play(&g, &["Offer: 1 Gold -> 1 Wood", "Accept", "Pass"]);
        assert_eq!((state.gain(0), state.gain(1)), (-10, -10));
        assert_eq!(state.returns(), vec![0.0, 0.0]);
        // A denied offer changes nothing.
        let state = play(&g, &["Offer: 1 Wood -> 3 Gold", "Deny", "Pass"]);
        assert_eq!((state.gain(0), state.gain(1)), (0, 0));
        assert_eq!(state.returns(), vec![0.0, 0.0]);
        // The responder may make a new offer in the same turn; one made in the last turn
        // lapses.
        let state = play(&g, &["Pass", "Offer: 3 Wood -> 1 Gold"]);
        assert!(state.is_terminal());
        assert_eq!((state.gain(0), state.gain(1)), (0, 0));
        assert_eq!(state.returns(), vec![0.0, 0.0]);
    }

    #[test]
    fn unaffordable_offers_are_illegal() {
        let g = game("negotiation(wood=2,gold=2,max_turns=4)");
        // Both sides hold 2 of each: amounts of 3 are out.
        let first = names(&g.new_initial_state());
        assert_eq!(first.len(), 1 + 8);
        assert!(first.iter().all(|n| !n.contains('3')), "{first:?}");
        // Player 0 trades away both Wood: 0 Wood, 3 Gold; player 1: 4 Wood, 1 Gold.
        let state = play(&g, &["Offer: 2 Wood -> 1 Gold", "Accept", "Pass"]);
        assert_eq!(state.inventory(0, Resource::Wood), 0);
        assert_eq!(state.inventory(1, Resource::Gold), 1);
        // Player 0 can give no Wood; giving Gold, it may ask up to 3 of player 1's 4 Wood.
        let offers = names(&state);
        let expected: Vec<String> = std::iter::once("Pass".to_string())
            .chain(
                (1..=3).flat_map(|a| (1..=3).map(move |b| format!("Offer: {a} Gold -> {b} Wood"))),
            )
            .collect();
        assert_eq!(offers, expected);
        // Player 1 (4 Wood, 1 Gold) may give up to 3 Wood for up to 3 of player 0's Gold, but
        // cannot ask for Wood: player 0 has none.
        let state = play(&g, &["Offer: 2 Wood -> 1 Gold", "Accept", "Pass", "Pass"]);
        assert_eq!(state.current_player(), Some(1));
        let expected: Vec<String> = std::iter::once("Pass".to_string())
            .chain(
                (1..=3).flat_map(|a| (1..=3).map(move |b| format!("Offer: {a} Wood -> {b} Gold"))),
            )
            .collect();
        assert_eq!(names(&state), expected);
    }

    #[test]
    #[should_panic(expected = "illegal negotiation action")]
    fn applying_an_unaffordable_offer_panics() {
        let g = game("negotiation(wood=1)");
        let action = g.config().offer_action(Offer {
            give: Resource::Wood,
            give_amount: 2,
            ask_amount: 1,
        });
        g.new_initial_state().apply_action(action);
    }

    #[test]
    fn history_count_matches_a_full_walk() {
        fn walk(state: &NegotiationState) -> u128 {
            1 + state
                .legal_actions()
                .into_iter()
                .map(|a| walk(&state.child(a)))
                .sum::<u128>()
        }
        // The memoised count agrees with a plain walk.
        for spec in [
            "negotiation(max_turns=4,max_quantity=1)",
            "negotiation(wood=2,gold=1,max_turns=5,max_quantity=2)",
            "negotiation(max_turns=4,max_quantity=2)",
        ] {
            let root = game(spec).new_initial_state();
            assert_eq!(root.count_histories(), walk(&root), "{spec}");
        }
        // By hand for max_turns=4, max_quantity=1 (two offers, always affordable): with
        // P(t) the subtree of a proposal after t turns and R(t) that of a pending offer,
        // P(4) = R(4) = 1, P(t) = 1 + P(t+1) + 2 R(t+1), R(t) = 1 + 2 P(t) for t < 4:
        // P(3) = 4, R(3) = 9, P(2) = 23, R(2) = 47, P(1) = 118, R(1) = 237, P(0) = 593.
        assert_eq!(
            game("negotiation(max_turns=4,max_quantity=1)")
                .new_initial_state()
                .count_histories(),
            593
        );
        assert_eq!(
            Negotiation::default().new_initial_state().count_histories(),
            2_436_293_570_068_533
        );
    }

    #[test]
    fn playthrough_snapshot() {
        insta::assert_snapshot!(playthrough_text(&Negotiation::default(), 42));
    }
}
