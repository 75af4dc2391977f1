//! One-Card Bluff: the worked example of `docs/adding-a-game.md`, a complete game written
//! the way a game of `spar-games` is, in one file so that it compiles and runs as a test.
//! In the crate it would be three files: the rules in `src/bluff.rs`, the text view in
//! `src/text/bluff.rs` and one line in `src/heuristic.rs`. The guide quotes this file, and
//! the last test checks that every quoted block is still here, character for character.
//!
//! # Rules
//! Each player antes 1 chip. Chance deals player 0 one card, low or high with probability
//! 1/2 each, that only player 0 sees. Player 0 may **Fold** (action 0: player 1 takes the
//! pot, player 0 loses 1) or **Raise** (action 1: put in `bet` more chips). Facing a raise,
//! player 1 may **Fold** (action 0: player 0 wins 1) or **Call** (action 1: put in `bet`
//! chips too); after a call the card is shown and player 0 wins `1 + bet` with a high card
//! and loses `1 + bet` with a low one. Chance outcomes: 0 low, 1 high.
//!
//! # Parameters
//! | name | default | meaning |
//! |---|---|---|
//! | `bet` | 1 | chips of a raise and of a call (at least 1) |
//!
//! # Information states
//! Player 0: its card (`L` or `H`) followed by the moves so far, `f` (fold) or `b` (raise,
//! call): `"H"`, `"Lb"`, `"Hbf"`. Player 1: the moves only (`""`, `"b"`). Empty before the
//! deal. Three decision information states: `"L"`, `"H"`, `"b"`.
//!
//! # Reference policies
//! [`nash_policy`] is the unique equilibrium. A high card always raises. If player 1 calls
//! with probability `c`, a low card's raise is worth `c (-(1 + bet)) + (1 - c)` to player 0
//! against `-1` for folding, equal when `c = 2 / (bet + 2)`; player 1 is indifferent between
//! calling and folding when player 0 bluffs a low card with probability `bet / (bet + 2)`.
//! The game's value for player 0 is `bet / (bet + 2)` (1/3 with the default bet). Uniform
//! random play has NashConv 1 at `bet = 1` (worked out in the test that checks it).

use std::fmt;

use spar_core::{
    Action, Error, Game, GameInfo, GameSpec, GameText, Information, Player, State, TabularPolicy,
    Turn, Utility,
};
use spar_games::heuristic::Heuristic;
use spar_games::text::TextView;

/// Fold: give up the ante.
pub const FOLD: Action = 0;
/// Bet: raise by `bet` chips (player 0), or call the raise (player 1).
pub const BET: Action = 1;
/// Chance outcome: player 0's card is low.
pub const LOW: Action = 0;
/// Chance outcome: player 0's card is high.
pub const HIGH: Action = 1;

const CARD_NAMES: [&str; 2] = ["low", "high"];
const CARD_LETTERS: [char; 2] = ['L', 'H'];
/// Move names by player: player 0 folds or raises, player 1 folds or calls.
const MOVE_NAMES: [[&str; 2]; 2] = [["fold", "raise"], ["fold", "call"]];

/// One-Card Bluff.
#[derive(Debug, Clone)]
pub struct Bluff {
    info: GameInfo,
    bet: u32,
}

impl Bluff {
    /// The game with a raise of `bet` chips (at least 1).
    pub fn new(bet: u32) -> Self {
        assert!(bet >= 1, "the bet is at least one chip");
        let stake = 1.0 + f64::from(bet);
        Self {
            info: GameInfo {
                name: "bluff".to_string(),
                long_name: "One-Card Bluff".to_string(),
                // Canonical: parameters at their defaults are left out.
                spec: if bet == 1 {
                    "bluff".to_string()
                } else {
                    format!("bluff(bet={bet})")
                },
                num_players: 2,
                utility: Utility::ZeroSum,
                information: Information::Imperfect,
                has_chance: true,
                min_utility: -stake,
                max_utility: stake,
                num_distinct_actions: 2,
                max_chance_outcomes: 2,
                max_game_length: 3,
            },
            bet,
        }
    }

    /// The game from a specification: `bluff`, `bluff(bet=3)`.
    pub fn from_spec(spec: &GameSpec) -> spar_core::Result<Self> {
        spec.check_known(&["bet"])?;
        let bet: u32 = spec.get("bet", 1)?;
        if bet == 0 {
            return Err(Error::BadParameter {
                game: spec.name.clone(),
                key: "bet".to_string(),
                value: "0".to_string(),
                reason: "the bet is at least one chip".to_string(),
            });
        }
        Ok(Self::new(bet))
    }
}

impl Game for Bluff {
    type State = BluffState;

    fn info(&self) -> &GameInfo {
        &self.info
    }

    fn new_initial_state(&self) -> BluffState {
        BluffState {
            bet: self.bet,
            history: Vec::with_capacity(3),
        }
    }
}

/// A One-Card Bluff state: the bet and the history (the card, then at most two moves).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BluffState {
    bet: u32,
    history: Vec<Action>,
}

impl BluffState {
    /// Player 0's card ([`LOW`] or [`HIGH`]), once dealt.
    pub fn card(&self) -> Option<Action> {
        self.history.first().copied()
    }

    /// The players' moves so far: player 0's, then player 1's.
    pub fn moves(&self) -> &[Action] {
        self.history.get(1..).unwrap_or(&[])
    }
}

impl State for BluffState {
    fn turn(&self) -> Turn {
        match (self.card(), self.moves()) {
            (None, _) => Turn::Chance,
            (Some(_), []) => Turn::Player(0),
            (Some(_), [BET]) => Turn::Player(1),
            _ => Turn::Terminal,
        }
    }

    fn legal_actions(&self) -> Vec<Action> {
        match self.turn() {
            Turn::Chance => vec![LOW, HIGH],
            Turn::Player(_) => vec![FOLD, BET],
            Turn::Terminal => Vec::new(),
        }
    }

    fn chance_outcomes(&self) -> Vec<(Action, f64)> {
        match self.turn() {
            Turn::Chance => vec![(LOW, 0.5), (HIGH, 0.5)],
            _ => Vec::new(),
        }
    }

    fn apply_action(&mut self, action: Action) {
        assert!(
            self.legal_actions().contains(&action),
            "illegal One-Card Bluff action {action} after {:?}",
            self.history
        );
        self.history.push(action);
    }

    fn returns(&self) -> Vec<f64> {
        let stake = 1.0 + f64::from(self.bet);
        let player0 = match (self.card(), self.moves()) {
            (_, [FOLD]) => -1.0,
            (_, [BET, FOLD]) => 1.0,
            (Some(HIGH), [BET, BET]) => stake,
            (Some(_), [BET, BET]) => -stake,
            _ => return vec![0.0, 0.0],
        };
        vec![player0, -player0]
    }

    fn information_state_string(&self, player: Player) -> String {
        let mut text = String::new();
        // The card is private to player 0; the moves are public.
        if let (0, Some(card)) = (player, self.card()) {
            text.push(CARD_LETTERS[card]);
        }
        for &action in self.moves() {
            text.push(if action == FOLD { 'f' } else { 'b' });
        }
        text
    }

    fn action_to_string(&self, player: Player, action: Action) -> String {
        match self.turn() {
            Turn::Chance => CARD_NAMES[action].to_string(),
            _ => MOVE_NAMES[player][action].to_string(),
        }
    }

    fn history(&self) -> &[Action] {
        &self.history
    }
}

impl fmt::Display for BluffState {
    /// The whole state, the hidden card included: `card high, raise, call`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "card {}",
            self.card().map_or("?", |card| CARD_NAMES[card])
        )?;
        for (player, &action) in self.moves().iter().enumerate() {
            write!(f, ", {}", MOVE_NAMES[player][action])?;
        }
        Ok(())
    }
}

/// Who alone observes a chance outcome: the only one is player 0's card.
pub fn private_chance(_state: &BluffState) -> Option<Player> {
    Some(0)
}

/// The equilibrium (see the header doc): raise a high card, bluff a low one with probability
/// `bet / (bet + 2)`, call with probability `2 / (bet + 2)`.
pub fn nash_policy(bet: u32) -> TabularPolicy {
    let bet = f64::from(bet);
    let bluff = bet / (bet + 2.0);
    let call = 2.0 / (bet + 2.0);
    let mut policy = TabularPolicy::default();
    policy.insert("H", vec![(FOLD, 0.0), (BET, 1.0)]);
    policy.insert("L", vec![(FOLD, 1.0 - bluff), (BET, bluff)]);
    policy.insert("b", vec![(FOLD, 1.0 - call), (BET, call)]);
    policy
}

/// The text view of [`Bluff`]: the rules in words, the acting player's card and the moves.
#[derive(Debug, Clone)]
pub struct BluffText {
    bet: u32,
}

impl TextView for Bluff {
    type Text = BluffText;

    fn text_view(&self) -> BluffText {
        BluffText { bet: self.bet }
    }
}

fn chips(n: u32) -> String {
    if n == 1 {
        "1 chip".to_string()
    } else {
        format!("{n} chips")
    }
}

impl GameText<BluffState> for BluffText {
    fn rules(&self) -> String {
        format!(
            "You are playing One-Card Bluff, a two-player zero-sum card game.

Game rules:
- Each player puts 1 chip in the pot. Player 0 is dealt one card, high or low, that only Player 0 sees.
- Player 0 may fold (and lose 1 chip) or raise by {bet}.
- Facing a raise, Player 1 may fold (and lose 1 chip) or call by putting in {bet} too.
- After a call the card is shown: Player 0 wins {stake} with a high card and loses {stake} with a low card.",
            bet = chips(self.bet),
            stake = chips(self.bet + 1),
        )
    }

    fn role_text(&self, player: Player) -> String {
        if player == 0 {
            "You are Player 0 in One-Card Bluff: you hold the card.".to_string()
        } else {
            "You are Player 1 in One-Card Bluff: you cannot see Player 0's card.".to_string()
        }
    }

    fn state_text(&self, state: &BluffState, player: Player) -> String {
        // Only what `player` knows: the card is read for player 0 alone.
        let card = match (player, state.card()) {
            (0, Some(card)) => format!("Your card is {}.", CARD_NAMES[card]),
            (0, None) => "You have no card yet.".to_string(),
            _ => "Player 0's card is hidden from you.".to_string(),
        };
        let moves = match state.moves() {
            [] => "No one has acted yet.".to_string(),
            [FOLD] => "Player 0 folded.".to_string(),
            [BET] => format!("Player 0 raised by {}.", chips(self.bet)),
            [BET, FOLD] => "Player 0 raised and Player 1 folded.".to_string(),
            _ => "Player 0 raised and Player 1 called.".to_string(),
        };
        format!("{card} {moves}")
    }
}

// Alpha-beta refuses games with chance or hidden information, so One-Card Bluff keeps the
// default evaluation (0 at every unfinished position).
impl Heuristic for Bluff {}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_core::testing::{
        check_conformance, check_parser_robustness, check_text_conformance, playthrough_text,
        Conformance,
    };

    fn conformance_options() -> Conformance<BluffState> {
        Conformance {
            private_chance: Some(private_chance),
            ..Conformance::default()
        }
    }

    #[test]
    fn conformance() {
        for bet in [1, 3] {
            check_conformance(&Bluff::new(bet), &conformance_options());
        }
    }

    #[test]
    fn text_conformance() {
        let game = Bluff::new(2);
        check_text_conformance(&game, &game.text_view(), &conformance_options());
        assert!(check_parser_robustness(&game, &game.text_view(), 100_000, 5) > 0);
    }

    #[test]
    fn payoffs_and_strings_by_hand() {
        // (history, returns, player 0's and player 1's information states); bet 2, stake 3.
        let cases: [(&[Action], [f64; 2], &str, &str); 4] = [
            (&[HIGH, FOLD], [-1.0, 1.0], "Hf", "f"),
            (&[LOW, BET, FOLD], [1.0, -1.0], "Lbf", "bf"),
            (&[HIGH, BET, BET], [3.0, -3.0], "Hbb", "bb"),
            (&[LOW, BET, BET], [-3.0, 3.0], "Lbb", "bb"),
        ];
        let game = Bluff::new(2);
        for (history, returns, info0, info1) in cases {
            let state = spar_core::game::replay(&game, history);
            assert!(state.is_terminal(), "{history:?}");
            assert_eq!(state.returns(), returns, "{history:?}");
            assert_eq!(state.information_state_string(0), info0);
            assert_eq!(state.information_state_string(1), info1);
        }
        let facing = spar_core::game::replay(&game, &[LOW, BET]);
        assert_eq!(facing.to_string(), "card low, raise");
        assert_eq!(facing.current_player(), Some(1));
        assert_eq!(facing.action_to_string(1, BET), "call");
    }

    #[test]
    fn specifications_parse_and_refuse_bad_parameters() {
        let game = |text: &str| Bluff::from_spec(&GameSpec::parse(text).unwrap());
        assert_eq!(game("bluff").unwrap().info().spec, "bluff");
        assert_eq!(game("bluff(bet=3)").unwrap().info().max_utility, 4.0);
        assert_eq!(game("bluff(bet=3)").unwrap().info().spec, "bluff(bet=3)");
        for bad in ["bluff(bet=0)", "bluff(bet=x)", "bluff(ante=2)"] {
            assert!(game(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uniform_random_has_nash_conv_one() {
        // Bet 1, stake 2. Uniform play is worth -1/4 to player 0: a high card 1/2 (-1) +
        // 1/2 (1/2 2 + 1/2 1) = 1/4, a low card 1/2 (-1) + 1/2 (1/2 (-2) + 1/2 1) = -3/4.
        // Player 0's best response raises both cards: 1/2 (3/2) + 1/2 (-1/2) = 1/2, a gain of
        // 3/4. Player 1's best response calls (a raise is high or low equally often: 0 against
        // -1 for folding) and gets 1/2 (player 0 folds half the time), a gain of 1/4 over 1/4.
        let result = spar_eval::nash_conv(&Bluff::new(1), &spar_core::UniformRandom).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(result.nash_conv, 1.0), "{result:?}");
        assert!(close(result.exploitability, 0.5), "{result:?}");
        assert!(close(result.on_policy_values[0], -0.25), "{result:?}");
        assert!(close(result.best_response_values[0], 0.5), "{result:?}");
        assert!(close(result.best_response_values[1], 0.5), "{result:?}");
    }

    #[test]
    fn the_equilibrium_has_nash_conv_zero_and_value_bet_over_bet_plus_two() {
        for bet in [1, 2, 5] {
            let result = spar_eval::nash_conv(&Bluff::new(bet), &nash_policy(bet)).unwrap();
            let value = f64::from(bet) / f64::from(bet + 2);
            assert!(result.nash_conv.abs() < 1e-12, "bet {bet}: {result:?}");
            assert!(
                (result.on_policy_values[0] - value).abs() < 1e-12,
                "bet {bet}"
            );
        }
    }

    #[test]
    fn cfr_plus_finds_the_bluffing_frequency() {
        let game = Bluff::new(1);
        let mut solver = spar_eval::CfrSolver::new(&game, spar_eval::CfrVariant::CfrPlus).unwrap();
        solver.run(2_000);
        assert!(solver.nash_conv().unwrap().nash_conv < 1e-3);
        let average = solver.average_policy();
        let bluff = average.table["L"][1].1;
        let call = average.table["b"][1].1;
        assert!(
            (bluff - 1.0 / 3.0).abs() < 0.01,
            "bluffs a low card {bluff}"
        );
        assert!((call - 2.0 / 3.0).abs() < 0.01, "calls {call}");
    }

    #[test]
    fn playthrough_snapshot() {
        insta::assert_snapshot!(playthrough_text(&Bluff::new(1), 5));
    }

    #[test]
    fn prompt_snapshot_and_a_called_bluff() {
        use spar_core::{Env, TextOptions};
        let mut env = spar_games::text::text_env(Bluff::new(1), TextOptions::default());
        // The reset seed drives the deal; look for a low card to bluff with.
        let seed = (0..)
            .find(|&seed| {
                env.reset(seed);
                env.state().card() == Some(LOW)
            })
            .unwrap();
        env.reset(seed);
        assert!(!env.step(0, "A bluff: \\boxed{raise}").done);
        let observation = env.observation(1);
        insta::assert_snapshot!(format!(
            "--- system ---\n{}\n--- prompt ---\n{}",
            observation.system,
            observation.prompt()
        ));
        assert!(env.step(1, "\\boxed{call}").done);
        assert_eq!(env.returns(), vec![-2.0, 2.0]);
    }
}

/// A guard on registration: every entry of `registry::GAMES` must build through
/// `with_game!` (an entry without its arm fails here) and name itself.
#[test]
fn every_registered_game_builds_through_with_game() {
    for entry in spar_games::registry::GAMES {
        let info = spar_games::registry::game_info(entry.name)
            .unwrap_or_else(|e| panic!("{}: {e} (is its with_game! arm missing?)", entry.name));
        assert_eq!(info.name, entry.name);
    }
}

/// The guide quotes only text of this file, and every part a game is made of, in order
/// (`spar_core::testing::check_guide_quotes`).
#[test]
fn the_guide_quotes_this_file_verbatim() {
    spar_core::testing::check_guide_quotes(&spar_core::testing::GuideQuotes {
        guide: concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/adding-a-game.md"),
        file: "crates/spar-games/tests/adding_a_game.rs",
        text: include_str!("adding_a_game.rs"),
        parts: &[
            "//! # Rules",
            "impl Game for Bluff",
            "impl State for BluffState",
            "impl fmt::Display for BluffState",
            "pub fn private_chance",
            "pub fn nash_policy",
            "impl TextView for Bluff",
            "impl GameText<BluffState> for BluffText",
            "impl Heuristic for Bluff {}",
            "check_conformance(&Bluff::new(bet)",
            "check_text_conformance(",
            "spar_eval::nash_conv(&Bluff::new(1)",
            "insta::assert_snapshot!(playthrough_text",
        ],
    });
}
