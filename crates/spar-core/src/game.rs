//! The tree contract: a finite extensive-form game, OpenSpiel's `spiel.h` in Rust.
//!
//! A [`Game`] holds the static facts and parameters of a game and creates the initial
//! [`State`]. A [`State`] is a node of the game tree: it knows whose [`Turn`] it is, which
//! actions are legal, how to apply one, what each player may observe (their
//! information-state string) and, at the end, what each player gets.
//!
//! Invariants every implementation keeps (the conformance suite in [`crate::testing`]
//! checks each one):
//!
//! * **Actions are integers, legal actions ascending.** `legal_actions()` is strictly
//!   increasing and non-empty exactly when the state is not terminal. Every legal action is
//!   below [`GameInfo::num_distinct_actions`] at decision nodes (chance outcomes may use
//!   their own numbering, bounded by [`GameInfo::max_chance_outcomes`]).
//! * **Randomness only through chance nodes.** A state is a pure function of its history:
//!   replaying `history()` from the initial state reaches an equal state. The caller who
//!   samples chance outcomes owns the random number generator.
//! * **Chance outcomes are a distribution.** At a chance node, `chance_outcomes()` lists the
//!   legal actions in ascending order, each with a positive probability, summing to 1.
//! * **Perfect recall.** `information_state_string(p)` determines everything player `p`
//!   has observed and done, in order, and nothing else: two states that differ only in
//!   another player's private information give `p` the same string.
//! * **Returns at the end.** `returns()` has one entry per player; at a terminal node it is
//!   the final payoff, within `[min_utility, max_utility]`; before that it is what has been
//!   banked so far (zero for every game in `spar-games`). Zero-sum games' returns sum to 0.
//!
//! Applying an illegal action is a programmer error and may panic: callers that handle
//! untrusted input (a human, a language model) check legality first, which is what the
//! text view does.

use std::fmt;

/// An action: an index into the game's action space (or, at chance nodes, its outcomes).
pub type Action = usize;

/// A player, numbered from 0.
pub type Player = usize;

/// Name shown for the chance "player" in histories and transcripts.
pub const CHANCE_PLAYER_NAME: &str = "chance";

/// Whose move it is at a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Turn {
    /// A player chooses among `legal_actions()`.
    Player(Player),
    /// Chance samples among `chance_outcomes()`.
    Chance,
    /// The game is over; `returns()` holds the payoffs.
    Terminal,
}

/// How the players' payoffs relate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Utility {
    /// Payoffs sum to zero at every terminal node.
    ZeroSum,
    /// Payoffs sum to the given constant at every terminal node.
    ConstantSum(f64),
    /// Payoffs obey no sum rule (cooperative or mixed-motive games).
    GeneralSum,
}

/// Whether players see everything that happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Information {
    /// Every player sees the whole state (TicTacToe, Connect Four).
    Perfect,
    /// Some information is private (cards, valuations).
    Imperfect,
}

/// Static facts about a game (OpenSpiel's `GameType` and the `Game` getters in one place).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GameInfo {
    /// Short name used on the command line and in information files (`kuhn`).
    pub name: String,
    /// Human-readable name (`Kuhn Poker`).
    pub long_name: String,
    /// The parameters this instance was created with, as a canonical spec string
    /// (`kuhn(hands=5)`); equals `name` when all parameters are at their defaults.
    pub spec: String,
    /// Number of players (excluding chance).
    pub num_players: usize,
    /// Payoff structure.
    pub utility: Utility,
    /// Perfect or imperfect information.
    pub information: Information,
    /// Whether the game has chance nodes.
    pub has_chance: bool,
    /// The smallest payoff any player can receive at a terminal node.
    pub min_utility: f64,
    /// The largest payoff any player can receive at a terminal node.
    pub max_utility: f64,
    /// Size of the decision action space: every player action is below this.
    pub num_distinct_actions: usize,
    /// Largest number of outcomes at any chance node (0 when there is no chance).
    pub max_chance_outcomes: usize,
    /// Upper bound on the number of actions (chance included) in any playthrough.
    pub max_game_length: usize,
}

impl GameInfo {
    /// Whether exploitability and NashConv apply: two players, zero or constant sum.
    pub fn is_two_player_zero_sum(&self) -> bool {
        self.num_players == 2 && !matches!(self.utility, Utility::GeneralSum)
    }
}

/// A game: its static facts and a factory for its initial state.
///
/// Games are cheap immutable values, shared between threads; all mutable data lives in
/// [`State`]s.
pub trait Game: Send + Sync + fmt::Debug {
    /// The state type of this game.
    type State: State;

    /// Static facts about the game (players, utility structure, action space size).
    fn info(&self) -> &GameInfo;

    /// The root of the game tree. Calling it twice gives equal states.
    fn new_initial_state(&self) -> Self::State;
}

/// A node of the game tree.
///
/// States are values: `clone()` gives an independent copy that can be explored without
/// touching the original (tree algorithms rely on it), and `Display` renders a human
/// readable picture of the full state (hidden information included; for debugging and
/// transcripts, never for a player's prompt).
pub trait State: Clone + fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// Whose move it is.
    fn turn(&self) -> Turn;

    /// Legal actions, strictly ascending. Empty exactly when the state is terminal. At chance
    /// nodes these are the chance outcomes' actions.
    fn legal_actions(&self) -> Vec<Action>;

    /// At a chance node, every outcome with its probability (ascending by action, positive,
    /// summing to 1). Empty at other nodes.
    fn chance_outcomes(&self) -> Vec<(Action, f64)>;

    /// Applies `action` for the player (or chance) to move. `action` must be in
    /// `legal_actions()`; anything else is a programmer error and may panic.
    fn apply_action(&mut self, action: Action);

    /// Per-player payoffs: final at terminal nodes, banked-so-far before (see module doc).
    fn returns(&self) -> Vec<f64>;

    /// Everything `player` has observed and done, in order, as a string: the key of
    /// tabular policies and the only thing a player's decision may depend on. For Kuhn Poker
    /// and Leduc Hold'em the strings are exactly OpenSpiel's, so tabular policies move
    /// between the two systems unchanged.
    fn information_state_string(&self, player: Player) -> String;

    /// A short name for `action` when taken by `player` at this state (`"Pass"`, `"x(1,1)"`;
    /// for chance outcomes, e.g. the card dealt, with `player` ignored). The text view shows
    /// a player only the names of actions that player may observe.
    fn action_to_string(&self, player: Player, action: Action) -> String;

    /// Every action applied since the initial state, chance outcomes included, in order.
    fn history(&self) -> &[Action];

    /// Whether the game is over.
    fn is_terminal(&self) -> bool {
        self.turn() == Turn::Terminal
    }

    /// Whether chance moves next.
    fn is_chance_node(&self) -> bool {
        self.turn() == Turn::Chance
    }

    /// The player to move, if a player (not chance, not the end) moves next.
    fn current_player(&self) -> Option<Player> {
        match self.turn() {
            Turn::Player(player) => Some(player),
            Turn::Chance | Turn::Terminal => None,
        }
    }

    /// The state after `action`, leaving `self` untouched.
    fn child(&self, action: Action) -> Self {
        let mut next = self.clone();
        next.apply_action(action);
        next
    }

    /// The payoff of `player` (shorthand for `returns()[player]`).
    fn player_return(&self, player: Player) -> f64 {
        self.returns()[player]
    }
}

/// Replays `history` from the initial state of `game`.
///
/// # Panics
/// When an action is illegal at the point it is applied (a programmer error: histories
/// come from states of the same game).
pub fn replay<G: Game>(game: &G, history: &[Action]) -> G::State {
    let mut state = game.new_initial_state();
    for &action in history {
        assert!(
            state.legal_actions().contains(&action),
            "replay: action {action} is illegal after {:?}",
            state.history()
        );
        state.apply_action(action);
    }
    state
}
