//! The conformance suite every game runs (OpenSpiel's `basic_tests`).
//!
//! A game's test calls [`check_conformance`] with a [`Conformance`] describing what to check;
//! the suite plays seeded random playthroughs and panics (with the seed and history) on the
//! first broken invariant of the contract in [`crate::game`]:
//!
//! * no panic in `playthroughs` random games;
//! * legal actions strictly ascending, below the action-space size, non-empty exactly when
//!   not terminal; chance outcomes match the legal actions and sum to 1;
//! * returns within `[min_utility, max_utility]`; zero-sum (constant-sum) games' returns sum
//!   to 0 (the constant); every game ends within `max_game_length` actions;
//! * replaying the history reaches an equal state, and the same seed gives the same
//!   playthrough;
//! * information-state strings hide other players' private information: every chance outcome
//!   that [`Conformance::private_chance`] says only one player sees is swapped for each
//!   alternative, the rest of the history replayed, and every *other* player's strings
//!   compared, node by node (terminal nodes excepted: a showdown reveals cards), with the
//!   original ones.
//!
//! [`playthrough_text`] renders a seeded playthrough for `insta` snapshots.
//!
//! The text view has its own checks: [`check_text_conformance`] (prompts depend on the
//! acting player's information state only; action names are usable by every protocol) and
//! [`check_parser_robustness`] (a million adversarial completions, no panic).
//!
//! The developer guides have one: [`check_guide_quotes`] (`docs/adding-a-game.md` and
//! `docs/adding-a-loop.md` quote their worked example, a test file, verbatim).

use std::fmt::Write as _;

use crate::game::{Action, Game, Player, State, Turn, Utility};
use crate::policy::sample_action;

mod guide;
pub use guide::{check_guide_quotes, GuideQuotes};

/// Which chance outcome is private: given a chance node, the one player who observes its
/// outcome, or `None` when everyone does (or the outcome is public).
pub type PrivateChance<S> = fn(&S) -> Option<Player>;

/// What the conformance suite checks for one game.
#[derive(Debug, Clone)]
pub struct Conformance<S: State> {
    /// Number of seeded random playthroughs (the issue asks for 10,000).
    pub playthroughs: usize,
    /// First seed; playthrough `i` uses seed `first_seed + i`.
    pub first_seed: u64,
    /// For imperfect-information games: who alone sees a chance outcome.
    pub private_chance: Option<PrivateChance<S>>,
    /// How many of the playthroughs also run the (slower) hidden-information check.
    pub hidden_information_checks: usize,
    /// For games that reveal private outcomes before the end (a showdown in a match of
    /// hands): whether the private chance outcomes dealt so far are public at this node.
    /// The hidden-information checks compare nodes only up to the first such node after a
    /// swapped outcome.
    pub reveals: Option<fn(&S) -> bool>,
}

impl<S: State> Default for Conformance<S> {
    fn default() -> Self {
        Self {
            playthroughs: 10_000,
            first_seed: 0,
            private_chance: None,
            hidden_information_checks: 300,
            reveals: None,
        }
    }
}

/// Plays one seeded random playthrough (uniform over legal actions, chance by its
/// probabilities) and returns every state visited, the initial and terminal ones included.
pub fn random_playthrough<G: Game>(game: &G, seed: u64) -> Vec<G::State> {
    let mut rng = crate::seeded_rng(seed);
    let mut state = game.new_initial_state();
    let mut states = vec![state.clone()];
    while !state.is_terminal() {
        let action = match state.turn() {
            Turn::Chance => sample_action(&state.chance_outcomes(), &mut rng),
            Turn::Player(_) => {
                let legal = state.legal_actions();
                legal[rand::Rng::gen_range(&mut rng, 0..legal.len())]
            }
            Turn::Terminal => unreachable!(),
        };
        state.apply_action(action);
        states.push(state.clone());
        assert!(
            states.len() <= game.info().max_game_length + 1,
            "seed {seed}: game longer than max_game_length {} (history {:?})",
            game.info().max_game_length,
            state.history()
        );
    }
    states
}

/// Runs the whole suite; panics with the seed and history of the first violation.
pub fn check_conformance<G: Game>(game: &G, options: &Conformance<G::State>) {
    let info = game.info();
    assert!(info.num_players >= 1, "a game needs players");
    assert!(
        info.min_utility <= info.max_utility,
        "min_utility above max_utility"
    );
    let initial = game.new_initial_state();
    assert!(
        initial.history().is_empty(),
        "the initial state has a history"
    );
    assert_eq!(
        format!("{initial:?}"),
        format!("{:?}", game.new_initial_state()),
        "two initial states differ"
    );

    for i in 0..options.playthroughs {
        let seed = options.first_seed + i as u64;
        let states = random_playthrough(game, seed);
        for state in &states {
            check_node(game, state, seed);
        }
        let terminal = states.last().expect("a playthrough has states");
        check_terminal(game, terminal, seed);
        check_replay(game, terminal, seed);
        if i < 3 {
            let again = random_playthrough(game, seed);
            assert_eq!(
                again.last().map(|s| s.history().to_vec()),
                Some(terminal.history().to_vec()),
                "seed {seed}: the same seed gave a different playthrough"
            );
        }
        if let Some(private_chance) = options.private_chance {
            if i < options.hidden_information_checks {
                check_hidden(
                    game,
                    terminal.history(),
                    options,
                    private_chance,
                    seed,
                    "information state",
                    |state, player| state.information_state_string(player),
                );
            }
        }
    }
}

fn check_node<G: Game>(game: &G, state: &G::State, seed: u64) {
    let info = game.info();
    let legal = state.legal_actions();
    let context = || format!("seed {seed}, history {:?}", state.history());
    assert!(
        legal.windows(2).all(|w| w[0] < w[1]),
        "{}: legal actions {legal:?} not strictly ascending",
        context()
    );
    match state.turn() {
        Turn::Terminal => {
            assert!(
                legal.is_empty(),
                "{}: terminal state has legal actions",
                context()
            );
            assert!(state.chance_outcomes().is_empty(), "{}", context());
        }
        Turn::Chance => {
            assert!(
                !legal.is_empty(),
                "{}: chance node without outcomes",
                context()
            );
            let outcomes = state.chance_outcomes();
            let actions: Vec<Action> = outcomes.iter().map(|&(a, _)| a).collect();
            assert_eq!(
                actions,
                legal,
                "{}: chance outcomes differ from legal actions",
                context()
            );
            assert!(
                outcomes.iter().all(|&(_, p)| p > 0.0),
                "{}: non-positive chance probability",
                context()
            );
            let total: f64 = outcomes.iter().map(|&(_, p)| p).sum();
            assert!(
                (total - 1.0).abs() < 1e-12,
                "{}: chance probabilities sum to {total}",
                context()
            );
            assert!(
                legal.len() <= info.max_chance_outcomes,
                "{}: more chance outcomes than max_chance_outcomes",
                context()
            );
        }
        Turn::Player(player) => {
            assert!(
                player < info.num_players,
                "{}: player {player} out of range",
                context()
            );
            assert!(
                !legal.is_empty(),
                "{}: decision node without actions",
                context()
            );
            assert!(
                legal.iter().all(|&a| a < info.num_distinct_actions),
                "{}: action beyond num_distinct_actions {}",
                context(),
                info.num_distinct_actions
            );
            assert!(state.chance_outcomes().is_empty(), "{}", context());
            for &action in &legal {
                let name = state.action_to_string(player, action);
                assert!(!name.is_empty(), "{}: empty action name", context());
            }
            // Cloning gives an independent copy.
            let mut copy = state.clone();
            copy.apply_action(legal[0]);
            assert_ne!(copy.history(), state.history(), "{}", context());
        }
    }
    for player in 0..info.num_players {
        // Must not panic at any node, terminal included.
        let _ = state.information_state_string(player);
    }
}

fn check_terminal<G: Game>(game: &G, terminal: &G::State, seed: u64) {
    let info = game.info();
    let returns = terminal.returns();
    let context = || format!("seed {seed}, history {:?}", terminal.history());
    assert_eq!(
        returns.len(),
        info.num_players,
        "{}: one return per player",
        context()
    );
    for &r in &returns {
        assert!(
            r.is_finite() && r >= info.min_utility - 1e-9 && r <= info.max_utility + 1e-9,
            "{}: return {r} outside [{}, {}]",
            context(),
            info.min_utility,
            info.max_utility
        );
    }
    let sum: f64 = returns.iter().sum();
    match info.utility {
        Utility::ZeroSum => assert!(
            sum.abs() < 1e-9,
            "{}: zero-sum returns sum to {sum}",
            context()
        ),
        Utility::ConstantSum(constant) => assert!(
            (sum - constant).abs() < 1e-9,
            "{}: constant-sum returns sum to {sum}",
            context()
        ),
        Utility::GeneralSum => {}
    }
}

fn check_replay<G: Game>(game: &G, terminal: &G::State, seed: u64) {
    let replayed = crate::game::replay(game, terminal.history());
    assert_eq!(
        format!("{replayed:?}"),
        format!("{terminal:?}"),
        "seed {seed}: replaying the history reached a different state"
    );
    assert_eq!(replayed.returns(), terminal.returns());
}

/// Replays `history` with the outcome of chance node `index` replaced by `outcome`; `None`
/// when the altered history becomes illegal somewhere.
fn replay_altered<G: Game>(
    game: &G,
    history: &[Action],
    index: usize,
    outcome: Action,
) -> Option<Vec<G::State>> {
    let mut state = game.new_initial_state();
    let mut states = vec![state.clone()];
    for (i, &action) in history.iter().enumerate() {
        let action = if i == index { outcome } else { action };
        if !state.legal_actions().contains(&action) {
            return None;
        }
        state.apply_action(action);
        states.push(state.clone());
    }
    Some(states)
}

/// Swaps every private chance outcome of `history` for each alternative and asserts that
/// `view` (an information-state string or a prompt) of every other player is unchanged at
/// every node while the outcome stays hidden.
fn check_hidden<G: Game>(
    game: &G,
    history: &[Action],
    options: &Conformance<G::State>,
    private_chance: PrivateChance<G::State>,
    seed: u64,
    what: &str,
    view: impl Fn(&G::State, Player) -> String,
) {
    let original = replay_altered(game, history, usize::MAX, 0).expect("history is legal");
    for (index, node) in original.iter().enumerate().take(history.len()) {
        if !node.is_chance_node() {
            continue;
        }
        let Some(owner) = private_chance(node) else {
            continue;
        };
        for alternative in node.legal_actions() {
            if alternative == history[index] {
                continue;
            }
            let Some(altered) = replay_altered(game, history, index, alternative) else {
                continue;
            };
            // Terminal nodes are exempt: a showdown legitimately reveals cards (OpenSpiel's
            // Leduc strings show the pot paid out), and no decision is taken there. So are
            // nodes from the first one where `reveals` says the cards are public.
            let live = original
                .iter()
                .zip(&altered)
                .skip(index + 1)
                .take_while(|(a, _)| !options.reveals.is_some_and(|revealed| revealed(a)))
                .filter(|(a, _)| !a.is_terminal());
            for (a, b) in live {
                for player in (0..game.info().num_players).filter(|&p| p != owner) {
                    assert_eq!(
                        view(a, player),
                        view(b, player),
                        "seed {seed}: player {player}'s {what} reveals player {owner}'s \
                         private chance outcome at history index {index} ({:?} vs {:?})",
                        a.history(),
                        b.history()
                    );
                }
            }
        }
    }
}

/// A readable record of one seeded random playthrough: at every node, whose turn it is,
/// the legal actions with their names, each player's information-state string, and the
/// action taken; at the end the returns. Pinned by `insta` snapshots in each game's tests.
pub fn playthrough_text<G: Game>(game: &G, seed: u64) -> String {
    let states = random_playthrough(game, seed);
    let info = game.info();
    let mut out = String::new();
    let _ = writeln!(out, "game: {}\nseed: {seed}", info.spec);
    for (i, state) in states.iter().enumerate() {
        let _ = writeln!(out, "\n# node {i}\n{state}");
        for player in 0..info.num_players {
            let _ = writeln!(
                out,
                "info[{player}]: {:?}",
                state.information_state_string(player)
            );
        }
        match state.turn() {
            Turn::Terminal => {
                let _ = writeln!(out, "terminal, returns: {:?}", state.returns());
            }
            Turn::Chance => {
                let outcomes: Vec<String> = state
                    .chance_outcomes()
                    .iter()
                    .map(|&(a, p)| format!("{a}:{p:.4}"))
                    .collect();
                let _ = writeln!(out, "chance: {}", outcomes.join(" "));
            }
            Turn::Player(player) => {
                let names: Vec<String> = state
                    .legal_actions()
                    .iter()
                    .map(|&a| format!("{a}={}", state.action_to_string(player, a)))
                    .collect();
                let _ = writeln!(out, "player {player} to move: {}", names.join(" "));
            }
        }
        if let Some(next) = states.get(i + 1) {
            let action = *next.history().last().expect("a step adds an action");
            // At chance nodes the player argument is ignored (see `State::action_to_string`).
            let name = state.action_to_string(state.current_player().unwrap_or(0), action);
            let _ = writeln!(out, "action: {action} ({name})");
        }
    }
    out
}

/// The text view's conformance suite for one game: over seeded random playthroughs,
///
/// * every player's state text is a function of their information state alone: the same
///   information-state string never yields two different texts, and swapping another
///   player's private chance outcome leaves the text unchanged at every node;
/// * the legal action names at every decision node are distinct, non-empty and free of
///   `{}[]` and line breaks, and each one's canonical completion parses back to its action
///   under every protocol.
pub fn check_text_conformance<G: Game, T: crate::text::GameText<G::State>>(
    game: &G,
    text: &T,
    options: &Conformance<G::State>,
) {
    use std::collections::HashMap;
    let protocols: Vec<Box<dyn crate::text::Protocol>> = ["boxed", "bracketed", "bare"]
        .iter()
        .filter_map(|name| crate::text::protocol_by_name(name))
        .collect();
    let players = game.info().num_players;
    let mut seen: HashMap<(Player, bool, String), String> = HashMap::new();
    for i in 0..options.playthroughs {
        let seed = options.first_seed + i as u64;
        let states = random_playthrough(game, seed);
        // Prompts are shown before the end only; a terminal text may reveal a showdown.
        for state in states.iter().filter(|s| !s.is_terminal()) {
            for player in 0..players {
                let view = text_view(text, state, player);
                let to_move = state.current_player() == Some(player);
                let key = (player, to_move, state.information_state_string(player));
                if let Some(previous) = seen.get(&key) {
                    assert_eq!(
                        previous,
                        &view,
                        "seed {seed}: player {player}'s text differs for the same information \
                         state {:?} (history {:?})",
                        key.2,
                        state.history()
                    );
                } else {
                    seen.insert(key, view);
                }
            }
            if let Turn::Player(player) = state.turn() {
                let legal: Vec<(Action, String)> = state
                    .legal_actions()
                    .into_iter()
                    .map(|a| (a, text.action_name(state, player, a)))
                    .collect();
                for (action, name) in &legal {
                    assert!(
                        !name.trim().is_empty() && !name.contains(['{', '}', '[', ']', '\n', '\r']),
                        "seed {seed}: action {action} has an unusable name {name:?}"
                    );
                    for protocol in &protocols {
                        let answer = protocol
                            .extract(&protocol.render(name))
                            .expect("a rendered answer extracts");
                        assert_eq!(
                            crate::text::match_action(&answer, &legal),
                            Ok(*action),
                            "seed {seed}: protocol {} does not read back {name:?}",
                            protocol.name()
                        );
                    }
                }
            }
        }
        if let Some(private_chance) = options.private_chance {
            if i < options.hidden_information_checks {
                let history = states.last().expect("states").history().to_vec();
                check_hidden(
                    game,
                    &history,
                    options,
                    private_chance,
                    seed,
                    "prompt",
                    |state, player| text_view(text, state, player),
                );
            }
        }
    }
}

/// Everything a player's prompt is made of at a state (role, state text, action names when
/// the player is to move).
fn text_view<S: State, T: crate::text::GameText<S>>(text: &T, state: &S, player: Player) -> String {
    let mut view = format!(
        "{}\n{}",
        text.role_text(player),
        text.state_text(state, player)
    );
    if state.current_player() == Some(player) {
        for action in state.legal_actions() {
            let _ = write!(view, "\n{}", text.action_name(state, player, action));
        }
    }
    view
}

/// Feeds `completions` random and adversarial completions (empty, huge, unbalanced
/// braces, nested boxes, unicode, control characters, legal names hidden in prose, correct
/// answers) through every protocol's parser at states of seeded random playthroughs.
/// Panics unless every outcome is a legal action or an invalid move with a reason.
/// Returns how many completions parsed to a legal action (a sanity figure for tests).
pub fn check_parser_robustness<G: Game, T: crate::text::GameText<G::State>>(
    game: &G,
    text: &T,
    completions: usize,
    seed: u64,
) -> usize {
    use rand::Rng as _;
    let protocols: Vec<Box<dyn crate::text::Protocol>> = ["boxed", "bracketed", "bare"]
        .iter()
        .filter_map(|name| crate::text::protocol_by_name(name))
        .collect();
    let mut rng = crate::seeded_rng(seed);
    let mut decision_nodes = Vec::new();
    let mut playthrough = 0;
    while decision_nodes.len() < 200 {
        for state in random_playthrough(game, seed.wrapping_add(playthrough)) {
            if let Turn::Player(player) = state.turn() {
                let legal: Vec<(Action, String)> = state
                    .legal_actions()
                    .into_iter()
                    .map(|a| (a, text.action_name(&state, player, a)))
                    .collect();
                decision_nodes.push(legal);
            }
        }
        playthrough += 1;
        assert!(playthrough < 10_000, "the game has no decision nodes");
    }
    let mut legal_count = 0;
    for i in 0..completions {
        let legal = &decision_nodes[i % decision_nodes.len()];
        let protocol = &protocols[i % protocols.len()];
        let completion = adversarial_completion(&mut rng, legal, protocol.as_ref());
        match protocol
            .extract(&completion)
            .and_then(|answer| crate::text::match_action(&answer, legal))
        {
            Ok(action) => {
                assert!(
                    legal.iter().any(|(a, _)| *a == action),
                    "parsed an illegal action {action} from {completion:?}"
                );
                legal_count += 1;
            }
            Err(reason) => assert!(!reason.is_empty(), "empty reason for {completion:?}"),
        }
        let _ = rng.gen::<u8>();
    }
    legal_count
}

fn adversarial_completion(
    rng: &mut crate::Rng,
    legal: &[(Action, String)],
    protocol: &dyn crate::text::Protocol,
) -> String {
    use rand::Rng as _;
    const PIECES: &[&str] = &[
        "\\boxed{",
        "}",
        "{",
        "[",
        "]",
        "\\boxed{}",
        "\\boxed",
        " ",
        "\n",
        "\t",
        "\u{0}",
        "\u{7f}",
        "\u{1b}[31m",
        "é",
        "🂡",
        "\u{202e}",
        "日本",
        "I think",
        "answer:",
        "\\\\",
        "boxed{",
        "}}",
        "{{",
        "[[",
        "]]",
        "\r\n",
        "\u{feff}",
        "…",
    ];
    let name = |rng: &mut crate::Rng| legal[rng.gen_range(0..legal.len())].1.clone();
    match rng.gen_range(0..10) {
        0 => String::new(),
        1 => {
            // Huge: up to 20,000 characters, sometimes ending in a valid answer.
            let mut text = "x".repeat(rng.gen_range(1_000..20_000));
            if rng.gen_bool(0.5) {
                text.push_str(&protocol.render(&name(rng)));
            }
            text
        }
        2 => protocol.render(&name(rng)),
        3 => format!(
            "Let me think. I could {} or not. {}",
            name(rng),
            protocol.render(&name(rng))
        ),
        4 => format!("After careful thought I choose to {} now.", name(rng)),
        5 => format!("\\boxed{{\\boxed{{{}}}}}", name(rng)),
        6 => format!("\\boxed{{{}", name(rng)),
        7 => (0..rng.gen_range(1..8))
            .map(|_| rng.gen::<char>())
            .collect::<String>(),
        _ => {
            let mut text = String::new();
            for _ in 0..rng.gen_range(1..12) {
                if rng.gen_bool(0.3) {
                    text.push_str(&name(rng));
                } else {
                    text.push_str(PIECES[rng.gen_range(0..PIECES.len())]);
                }
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    //! The suite must catch broken games: a toy "high card" game in a correct and in broken
    //! variants.
    use super::*;
    use crate::game::{GameInfo, Information, Utility};
    use std::fmt;

    #[derive(Debug, Clone, Copy)]
    enum Flaw {
        None,
        LeaksOpponentCard,
        ReturnsNotZeroSum,
        UnsortedActions,
    }

    #[derive(Debug)]
    struct HighCard {
        info: GameInfo,
        flaw: Flaw,
    }

    #[derive(Debug, Clone)]
    struct HighCardState {
        history: Vec<Action>,
        flaw: Flaw,
    }

    impl HighCard {
        fn new(flaw: Flaw) -> Self {
            Self {
                flaw,
                info: GameInfo {
                    name: "high_card".into(),
                    long_name: "High Card".into(),
                    spec: "high_card".into(),
                    num_players: 2,
                    utility: Utility::ZeroSum,
                    information: Information::Imperfect,
                    has_chance: true,
                    min_utility: -1.0,
                    max_utility: 1.0,
                    num_distinct_actions: 2,
                    max_chance_outcomes: 3,
                    max_game_length: 3,
                },
            }
        }
    }

    impl Game for HighCard {
        type State = HighCardState;
        fn info(&self) -> &GameInfo {
            &self.info
        }
        fn new_initial_state(&self) -> HighCardState {
            HighCardState {
                history: Vec::new(),
                flaw: self.flaw,
            }
        }
    }

    impl fmt::Display for HighCardState {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{:?}", self.history)
        }
    }

    // Two cards dealt from three, then player 0 says "stay" (0) or "swap" (1, a no-op);
    // the higher card wins 1.
    impl State for HighCardState {
        fn turn(&self) -> Turn {
            match self.history.len() {
                0 | 1 => Turn::Chance,
                2 => Turn::Player(0),
                _ => Turn::Terminal,
            }
        }
        fn legal_actions(&self) -> Vec<Action> {
            match self.turn() {
                Turn::Chance => (0..3).filter(|c| !self.history.contains(c)).collect(),
                Turn::Player(_) if matches!(self.flaw, Flaw::UnsortedActions) => vec![1, 0],
                Turn::Player(_) => vec![0, 1],
                Turn::Terminal => vec![],
            }
        }
        fn chance_outcomes(&self) -> Vec<(Action, f64)> {
            if self.turn() != Turn::Chance {
                return vec![];
            }
            let legal = self.legal_actions();
            let p = 1.0 / legal.len() as f64;
            legal.into_iter().map(|a| (a, p)).collect()
        }
        fn apply_action(&mut self, action: Action) {
            self.history.push(action);
        }
        fn returns(&self) -> Vec<f64> {
            if !self.is_terminal() {
                return vec![0.0, 0.0];
            }
            let sign = if self.history[0] > self.history[1] {
                1.0
            } else {
                -1.0
            };
            match self.flaw {
                Flaw::ReturnsNotZeroSum => vec![sign, sign],
                _ => vec![sign, -sign],
            }
        }
        fn information_state_string(&self, player: Player) -> String {
            let own = self.history.get(player).map(|c| c.to_string());
            let mut text = own.unwrap_or_default();
            if let (Flaw::LeaksOpponentCard, Some(other)) =
                (self.flaw, self.history.get(1 - player))
            {
                text.push_str(&format!(" vs {other}"));
            }
            text
        }
        fn action_to_string(&self, _player: Player, action: Action) -> String {
            format!("a{action}")
        }
        fn history(&self) -> &[Action] {
            &self.history
        }
    }

    fn options() -> Conformance<HighCardState> {
        Conformance {
            playthroughs: 200,
            private_chance: Some(|state: &HighCardState| Some(state.history().len())),
            ..Conformance::default()
        }
    }

    #[test]
    fn a_correct_game_passes() {
        check_conformance(&HighCard::new(Flaw::None), &options());
    }

    #[test]
    #[should_panic(expected = "reveals player")]
    fn a_leaking_information_state_is_caught() {
        check_conformance(&HighCard::new(Flaw::LeaksOpponentCard), &options());
    }

    #[test]
    #[should_panic(expected = "zero-sum returns sum to")]
    fn non_zero_sum_returns_are_caught() {
        check_conformance(&HighCard::new(Flaw::ReturnsNotZeroSum), &options());
    }

    #[test]
    #[should_panic(expected = "not strictly ascending")]
    fn unsorted_legal_actions_are_caught() {
        check_conformance(&HighCard::new(Flaw::UnsortedActions), &options());
    }

    #[test]
    fn playthrough_text_is_seeded() {
        let game = HighCard::new(Flaw::None);
        assert_eq!(playthrough_text(&game, 3), playthrough_text(&game, 3));
        assert!(playthrough_text(&game, 3).contains("terminal, returns"));
    }

    struct HighCardText {
        leak: bool,
    }

    impl crate::text::GameText<HighCardState> for HighCardText {
        fn rules(&self) -> String {
            "Two cards from J, Q, K; the higher card wins.".into()
        }
        fn state_text(&self, state: &HighCardState, player: Player) -> String {
            let mut text = match state.history().get(player) {
                Some(card) => format!("Your card: {card}"),
                None => "No card yet".into(),
            };
            if let (true, Some(other)) = (self.leak, state.history().get(1 - player)) {
                text.push_str(&format!(" (opponent: {other})"));
            }
            text
        }
        fn action_name(&self, _: &HighCardState, _: Player, action: Action) -> String {
            ["stay", "swap"][action].into()
        }
    }

    #[test]
    fn honest_text_passes_and_leaking_text_is_caught() {
        let game = HighCard::new(Flaw::None);
        check_text_conformance(&game, &HighCardText { leak: false }, &options());
        let caught = std::panic::catch_unwind(|| {
            check_text_conformance(&game, &HighCardText { leak: true }, &options())
        });
        let message = *caught.unwrap_err().downcast::<String>().unwrap();
        assert!(
            message.contains("reveals player") || message.contains("differs for the same"),
            "{message}"
        );
        let legal = check_parser_robustness(&game, &HighCardText { leak: false }, 20_000, 1);
        assert!(legal > 1_000 && legal < 20_000, "{legal} parsed legally");
    }

    fn text_game(rule: &str, max_turns: Option<usize>) -> crate::TextGame<HighCard, HighCardText> {
        crate::TextGame::new(
            HighCard::new(Flaw::None),
            HighCardText { leak: false },
            crate::TextOptions {
                invalid_move_rule: rule.parse().unwrap(),
                max_turns,
                ..crate::TextOptions::default()
            },
        )
    }

    #[test]
    fn spiral_rule_ends_the_game_on_an_invalid_move() {
        use crate::env::{Env, StepOutcome};
        let mut env = text_game("spiral", Some(50));
        env.reset(5);
        assert_eq!(env.current_player(), Some(0));
        let observation = env.observation(0);
        assert_eq!(
            observation.legal_actions,
            Some(vec!["stay".into(), "swap".into()])
        );
        assert!(observation.prompt().contains("\\boxed{}"));
        let step = env.step(0, "I pick \\boxed{Stay}");
        assert!(step.done && matches!(step.outcome, StepOutcome::Invalid { retry: false, .. }));
        assert_eq!(env.returns(), vec![-1.5, 0.5]);
        assert_eq!(env.transcript().invalid_moves, vec![1, 0]);
        assert_eq!(env.transcript().turns.len(), 1);
    }

    #[test]
    fn textarena_rule_allows_one_retry_then_forfeits() {
        use crate::env::Env;
        let mut env = text_game("textarena", Some(50));
        env.reset(5);
        assert!(!env.step(0, "nonsense").done);
        assert!(env
            .observation(0)
            .state_text
            .contains("previous answer was invalid"));
        assert!(
            env.step(0, "\\boxed{swap}").done,
            "a valid retry finishes the hand"
        );
        let cards = &env.state().history()[..2];
        let expected = if cards[0] > cards[1] { 1.0 } else { -1.0 };
        assert_eq!(env.returns(), vec![expected, -expected]);

        env.reset(5);
        env.step(0, "nonsense");
        let step = env.step(0, "still nonsense");
        assert!(step.done);
        assert_eq!(env.returns(), vec![-1.0, 1.0]);
        assert_eq!(env.transcript().invalid_moves, vec![2, 0]);
    }

    #[test]
    fn reset_with_a_seed_replays_the_same_deal() {
        use crate::env::Env;
        let mut env = text_game("spiral", Some(1));
        env.reset(9);
        let first = env.state().history().to_vec();
        env.reset(9);
        assert_eq!(env.state().history(), first.as_slice());
        // One turn allowed, and the game would end after it anyway: returns are the game's.
        let step = env.step(0, "\\boxed{stay}");
        assert!(step.done && !step.truncated);
    }
}
