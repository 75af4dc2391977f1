//! One adapter from every tree game to an [`Env`]: [`TextGame`].
//!
//! Three swappable parts make a tree game speak text:
//!
//! * a [`GameText`] (one per game, in `spar-games`) renders the rules, the player's role,
//!   the acting player's information state and the action names;
//! * a [`Protocol`] says how a completion carries its answer ([`Boxed`]: SPIRAL's
//!   `\boxed{...}`, the default; [`Bracketed`]: TextArena's `[action]`; [`BareName`]: the
//!   completion is the action name) and gives each action's canonical completion;
//! * an [`InvalidMoveRule`] says what an unparsable or illegal answer costs (`spiral`,
//!   `textarena`, `retry:N`), plus an optional turn limit whose truncation scores a draw.
//!
//! Matching an answer to a legal action: surrounding whitespace is trimmed, inner runs of
//! whitespace collapse to one space, and one pair of enclosing square brackets is optional on
//! both sides (`\boxed{[bet]}`, `\boxed{bet}` and `[bet]` all name `bet`). Letter case
//! matters, as in SPIRAL (`\boxed{Bet}` is invalid when the action is `bet`).

use std::fmt;
use std::str::FromStr;

use crate::env::{Env, Observation, Step, StepOutcome, Transcript, TranscriptTurn};
use crate::game::{Action, Game, Player, State, Turn};
use crate::policy::sample_action;
use crate::role::Role;

/// How one game is shown to language models. Implementations live beside the games, apart
/// from the rules (STYLE rule 3).
///
/// Contract: `state_text(state, p)` and every `action_name(state, p, a)` must be functions of
/// `state.information_state_string(p)` alone (the text conformance suite checks it), and the
/// names of the legal actions at a state must be distinct, non-empty, and free of `{`, `}`,
/// `[`, `]` and line breaks so that every protocol can carry them.
pub trait GameText<S: State>: Send + Sync {
    /// The rules of the game, as the system text. Fixed for a game instance.
    fn rules(&self) -> String;

    /// Who the player is (`You are Player 0 in a 5 hand match of Kuhn Poker.`).
    fn role_text(&self, player: Player) -> String {
        format!("You are Player {player}.")
    }

    /// The state as `player` sees it.
    fn state_text(&self, state: &S, player: Player) -> String;

    /// The name of `action` for `player` at `state`, as the model must write it.
    fn action_name(&self, state: &S, player: Player, action: Action) -> String {
        state.action_to_string(player, action)
    }
}

/// Why a completion did not name a legal action.
pub type InvalidReason = String;

/// How a completion carries its answer.
pub trait Protocol: Send + Sync + fmt::Debug {
    /// A short name (`boxed`, `bracketed`, `bare`).
    fn name(&self) -> &'static str;

    /// The answer-format instruction shown in every prompt.
    fn instruction(&self) -> String;

    /// The answer text a completion carries, or why there is none. Never panics.
    fn extract(&self, completion: &str) -> Result<String, InvalidReason>;

    /// The shortest completion that names `action_name` (used by scripted players and to
    /// score every legal action under a language model).
    fn render(&self, action_name: &str) -> String;
}

/// SPIRAL's protocol: the final answer inside the last `\boxed{...}`, brace-matched. A
/// completion without `\boxed{` is read whole (SPIRAL's fallback), so a bare action name
/// is accepted and prose is not.
#[derive(Debug, Clone, Copy, Default)]
pub struct Boxed;

/// TextArena's protocol: the last `[...]` in the completion.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bracketed;

/// The completion itself, trimmed, is the action name.
#[derive(Debug, Clone, Copy, Default)]
pub struct BareName;

const BOX_OPEN: &str = "\\boxed{";

impl Protocol for Boxed {
    fn name(&self) -> &'static str {
        "boxed"
    }

    fn instruction(&self) -> String {
        "Please reason step by step, and put your final answer within \\boxed{}.".to_string()
    }

    fn extract(&self, completion: &str) -> Result<String, InvalidReason> {
        let Some(start) = completion.rfind(BOX_OPEN) else {
            return Ok(completion.to_string());
        };
        let body = &completion[start + BOX_OPEN.len()..];
        let mut depth = 1usize;
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(body[..i].to_string());
                    }
                }
                _ => {}
            }
        }
        Err("the last \\boxed{ is never closed (unbalanced braces)".to_string())
    }

    fn render(&self, action_name: &str) -> String {
        format!("\\boxed{{{action_name}}}")
    }
}

impl Protocol for Bracketed {
    fn name(&self) -> &'static str {
        "bracketed"
    }

    fn instruction(&self) -> String {
        "Put your final answer in square brackets, e.g. [action].".to_string()
    }

    fn extract(&self, completion: &str) -> Result<String, InvalidReason> {
        let close = completion
            .rfind(']')
            .ok_or_else(|| "no [action] in square brackets found".to_string())?;
        let open = completion[..close]
            .rfind('[')
            .ok_or_else(|| "the last ']' has no matching '['".to_string())?;
        Ok(completion[open + 1..close].to_string())
    }

    fn render(&self, action_name: &str) -> String {
        format!("[{action_name}]")
    }
}

impl Protocol for BareName {
    fn name(&self) -> &'static str {
        "bare"
    }

    fn instruction(&self) -> String {
        "Answer with the name of one legal action and nothing else.".to_string()
    }

    fn extract(&self, completion: &str) -> Result<String, InvalidReason> {
        Ok(completion.to_string())
    }

    fn render(&self, action_name: &str) -> String {
        action_name.to_string()
    }
}

/// Which [`Protocol`]: the value of a config's `game.protocol` and of `--protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolKind {
    /// [`Boxed`] (`boxed`).
    #[default]
    Boxed,
    /// [`Bracketed`] (`bracketed`).
    Bracketed,
    /// [`BareName`] (`bare`).
    Bare,
}

impl ProtocolKind {
    /// Every protocol, in the order help and errors list them.
    pub const ALL: [ProtocolKind; 3] = [
        ProtocolKind::Boxed,
        ProtocolKind::Bracketed,
        ProtocolKind::Bare,
    ];

    /// The name used in configs and on the command line ([`Protocol::name`]).
    pub fn name(self) -> &'static str {
        match self {
            ProtocolKind::Boxed => "boxed",
            ProtocolKind::Bracketed => "bracketed",
            ProtocolKind::Bare => "bare",
        }
    }

    /// The protocol object.
    pub fn protocol(self) -> Box<dyn Protocol> {
        match self {
            ProtocolKind::Boxed => Box::new(Boxed),
            ProtocolKind::Bracketed => Box::new(Bracketed),
            ProtocolKind::Bare => Box::new(BareName),
        }
    }
}

impl FromStr for ProtocolKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ProtocolKind::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ProtocolKind::ALL.iter().map(|p| p.name()).collect();
                format!("unknown protocol {s:?}; accepted: {}", names.join(", "))
            })
    }
}

/// The protocol named `boxed`, `bracketed` or `bare` ([`ProtocolKind`]).
pub fn protocol_by_name(name: &str) -> Option<Box<dyn Protocol>> {
    name.parse::<ProtocolKind>()
        .ok()
        .map(ProtocolKind::protocol)
}

/// Canonical form for matching: trimmed, whitespace collapsed, one pair of enclosing
/// brackets removed.
fn normalize(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
    {
        Some(inner) => inner.trim().to_string(),
        None => collapsed,
    }
}

/// Maps an extracted answer to one of the legal actions (`(action, name)` pairs).
pub fn match_action(answer: &str, legal: &[(Action, String)]) -> Result<Action, InvalidReason> {
    let wanted = normalize(answer);
    if let Some(&(action, _)) = legal.iter().find(|(_, name)| normalize(name) == wanted) {
        return Ok(action);
    }
    let shown: String = wanted.chars().take(60).collect();
    let ellipsis = if wanted.chars().count() > 60 {
        "..."
    } else {
        ""
    };
    let names: Vec<&str> = legal.iter().map(|(_, name)| name.as_str()).collect();
    Err(format!(
        "{shown:?}{ellipsis} is not a legal action; legal actions: {}",
        names.join(", ")
    ))
}

/// What an invalid move costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidMoveRule {
    /// SPIRAL's training rule: the game ends at once, -1.5 for the offender and +0.5 for
    /// every other player (deliberately not zero-sum).
    Spiral,
    /// TextArena's default (`error_allowance = 1`): one retry, then forfeit, -1 for the
    /// offender and +1 for the others.
    TextArena,
    /// `N` retries per turn, then forfeit (-1 / +1).
    Retry(u32),
}

impl InvalidMoveRule {
    /// The accepted forms, in the order help and errors list them (`retry:N` for any `N`).
    pub const FORMS: [&'static str; 3] = ["spiral", "textarena", "retry:N"];

    /// Retries allowed per turn before the forfeit.
    pub fn retries(self) -> u32 {
        match self {
            Self::Spiral => 0,
            Self::TextArena => 1,
            Self::Retry(n) => n,
        }
    }

    /// Returns after `offender` forfeits a game of `num_players`.
    pub fn forfeit_returns(self, offender: Player, num_players: usize) -> Vec<f64> {
        let (penalty, others) = match self {
            Self::Spiral => (-1.5, 0.5),
            Self::TextArena | Self::Retry(_) => (-1.0, 1.0),
        };
        (0..num_players)
            .map(|p| if p == offender { penalty } else { others })
            .collect()
    }
}

impl fmt::Display for InvalidMoveRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spiral => f.write_str("spiral"),
            Self::TextArena => f.write_str("textarena"),
            Self::Retry(n) => write!(f, "retry:{n}"),
        }
    }
}

impl FromStr for InvalidMoveRule {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "spiral" => Ok(Self::Spiral),
            "textarena" => Ok(Self::TextArena),
            other => other
                .strip_prefix("retry:")
                .and_then(|n| n.parse().ok())
                .map(Self::Retry)
                .ok_or_else(|| {
                    format!(
                        "unknown invalid-move rule {other:?}; accepted: {} (N a non-negative \
                         integer)",
                        Self::FORMS.join(", ")
                    )
                }),
        }
    }
}

/// How a [`TextGame`] runs: protocol, invalid-move rule, turn limit.
#[derive(Debug)]
pub struct TextOptions {
    /// How completions carry answers (default [`Boxed`]).
    pub protocol: Box<dyn Protocol>,
    /// What an invalid move costs (default [`InvalidMoveRule::Spiral`]).
    pub invalid_move_rule: InvalidMoveRule,
    /// Player turns after which the episode is truncated and scored as a draw (SPIRAL: 50).
    pub max_turns: Option<usize>,
    /// What an observation holds (default [`View::Full`]).
    pub view: View,
}

/// What an observation holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// The rules as system text, then the role, the state, the legal actions and the answer
    /// format, all in words (SPIRAL's prompts).
    #[default]
    Full,
    /// [`View::Full`] without the rules: for small models trained from scratch, to which
    /// the rules are a constant prefix that carries no information but costs attention.
    NoRules,
    /// `Player N`, the game's information-state string (OpenSpiel's, e.g. Kuhn `2pb`: card
    /// K, then pass, bet), and the legal actions; no rules, no answer-format sentence. For
    /// tiny models trained from scratch (prompts of ~40 bytes instead of ~1,000).
    Compact,
}

impl View {
    /// Every view, in the order help and errors list them.
    pub const ALL: [View; 3] = [View::Full, View::NoRules, View::Compact];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            View::Full => "full",
            View::NoRules => "norules",
            View::Compact => "compact",
        }
    }
}

impl FromStr for View {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(View::Full),
            "norules" => Ok(View::NoRules),
            "compact" => Ok(View::Compact),
            other => Err(format!(
                "unknown observation view {other:?}; accepted: full, norules, compact"
            )),
        }
    }
}

impl Default for TextOptions {
    fn default() -> Self {
        Self {
            protocol: Box::new(Boxed),
            invalid_move_rule: InvalidMoveRule::Spiral,
            max_turns: Some(50),
            view: View::Full,
        }
    }
}

/// A tree game seen as a text environment.
pub struct TextGame<G: Game, T: GameText<G::State>> {
    game: G,
    text: T,
    options: TextOptions,
    state: G::State,
    rng: crate::Rng,
    transcript: Transcript,
    turns_taken: usize,
    retries_used: u32,
    pending_reason: Option<String>,
    final_returns: Option<Vec<f64>>,
}

impl<G: Game, T: GameText<G::State>> fmt::Debug for TextGame<G, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextGame")
            .field("game", &self.game.info().spec)
            .field("state", &self.state)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<G: Game, T: GameText<G::State>> TextGame<G, T> {
    /// The environment for `game` shown through `text`, reset with seed 0.
    pub fn new(game: G, text: T, options: TextOptions) -> Self {
        let state = game.new_initial_state();
        let mut env = Self {
            game,
            text,
            options,
            state,
            rng: crate::seeded_rng(0),
            transcript: Transcript::default(),
            turns_taken: 0,
            retries_used: 0,
            pending_reason: None,
            final_returns: None,
        };
        env.reset(0);
        env
    }

    /// The underlying tree state (for tree players such as minimax, and for evaluation).
    pub fn state(&self) -> &G::State {
        &self.state
    }

    /// The game.
    pub fn game(&self) -> &G {
        &self.game
    }

    /// The game's text view.
    pub fn text(&self) -> &T {
        &self.text
    }

    /// The protocol, rule and turn limit in force.
    pub fn options(&self) -> &TextOptions {
        &self.options
    }

    /// The legal actions of the player to move, with the names a model must write.
    pub fn legal_action_names(&self) -> Vec<(Action, String)> {
        let Some(player) = self.state.current_player() else {
            return Vec::new();
        };
        self.state
            .legal_actions()
            .into_iter()
            .map(|a| (a, self.text.action_name(&self.state, player, a)))
            .collect()
    }

    /// Parses `completion` into a legal action of the player to move, or says why not.
    /// Pure: changes nothing.
    pub fn parse(&self, completion: &str) -> Result<Action, InvalidReason> {
        let answer = self.options.protocol.extract(completion)?;
        match_action(&answer, &self.legal_action_names())
    }

    /// What `player` would see at an arbitrary `state` of this game as the first attempt of a
    /// turn: the prompt a language-model policy is evaluated on at that information state
    /// (exact evaluation walks every information set this way). Legal actions are listed
    /// when `player` is to move at `state`.
    pub fn observation_at(&self, state: &G::State, player: Player) -> Observation {
        let to_move = state.current_player() == Some(player);
        let compact = self.options.view == View::Compact;
        Observation {
            role: Role::player(self.game.info().name.clone(), player),
            system: if self.options.view == View::Full {
                self.text.rules()
            } else {
                String::new()
            },
            role_text: if compact {
                format!("Player {player}")
            } else {
                self.text.role_text(player)
            },
            state_text: if compact {
                state.information_state_string(player)
            } else {
                self.text.state_text(state, player)
            },
            legal_actions: to_move.then(|| {
                state
                    .legal_actions()
                    .into_iter()
                    .map(|a| self.text.action_name(state, player, a))
                    .collect()
            }),
            answer_format: if compact {
                String::new()
            } else {
                self.options.protocol.instruction()
            },
        }
    }

    /// The canonical completion for a tree action (what a scripted player writes).
    pub fn completion_for(&self, action: Action) -> String {
        let player = self.state.current_player().unwrap_or(0);
        let name = self.text.action_name(&self.state, player, action);
        self.options.protocol.render(&name)
    }

    fn advance_chance(&mut self) {
        while self.state.turn() == Turn::Chance {
            let action = sample_action(&self.state.chance_outcomes(), &mut self.rng);
            self.state.apply_action(action);
        }
    }

    fn finish(&mut self, returns: Vec<f64>, truncated: bool) {
        self.transcript.returns = Some(returns.clone());
        self.transcript.truncated = truncated;
        self.final_returns = Some(returns);
    }
}

impl<G: Game, T: GameText<G::State>> Env for TextGame<G, T> {
    fn name(&self) -> String {
        self.game.info().spec.clone()
    }

    fn num_players(&self) -> usize {
        self.game.info().num_players
    }

    fn role(&self, player: Player) -> Role {
        Role::player(self.game.info().name.clone(), player)
    }

    fn legal_answers(&self) -> Option<Vec<String>> {
        Some(
            self.legal_action_names()
                .into_iter()
                .map(|(a, _)| self.completion_for(a))
                .collect(),
        )
    }

    fn reset(&mut self, seed: u64) {
        self.state = self.game.new_initial_state();
        self.rng = crate::seeded_rng(seed);
        self.transcript = Transcript {
            env: self.name(),
            seed,
            invalid_moves: vec![0; self.num_players()],
            ..Transcript::default()
        };
        self.turns_taken = 0;
        self.retries_used = 0;
        self.pending_reason = None;
        self.final_returns = None;
        self.advance_chance();
        if self.state.is_terminal() {
            let returns = self.state.returns();
            self.finish(returns, false);
        }
    }

    fn current_player(&self) -> Option<Player> {
        if self.final_returns.is_some() {
            return None;
        }
        self.state.current_player()
    }

    fn observation(&self, player: Player) -> Observation {
        let to_move = self.current_player() == Some(player);
        let mut observation = self.observation_at(&self.state, player);
        if !to_move {
            observation.legal_actions = None;
        }
        if let (true, Some(reason)) = (to_move, &self.pending_reason) {
            observation.state_text.push_str(&format!(
                "\n\nYour previous answer was invalid: {reason}. Please answer again."
            ));
        }
        observation
    }

    fn step(&mut self, player: Player, completion: &str) -> Step {
        let expected = self
            .current_player()
            .expect("step called after the episode ended");
        let observation = self.observation(player);
        let parsed = if player == expected {
            self.parse(completion)
        } else {
            Err(format!(
                "player {player} is not to move (player {expected} is)"
            ))
        };
        let outcome = match parsed {
            Ok(action) => {
                let action_text = self.text.action_name(&self.state, player, action);
                self.state.apply_action(action);
                self.advance_chance();
                self.turns_taken += 1;
                self.retries_used = 0;
                self.pending_reason = None;
                if self.state.is_terminal() {
                    let returns = self.state.returns();
                    self.finish(returns, false);
                } else if self
                    .options
                    .max_turns
                    .is_some_and(|m| self.turns_taken >= m)
                {
                    self.finish(vec![0.0; self.num_players()], true);
                }
                StepOutcome::Move {
                    action_text,
                    action: Some(action),
                }
            }
            Err(reason) if player != expected => StepOutcome::Invalid {
                reason,
                retry: true,
            },
            Err(reason) => {
                self.transcript.invalid_moves[player] += 1;
                let retry = self.retries_used < self.options.invalid_move_rule.retries();
                if retry {
                    self.retries_used += 1;
                    self.pending_reason = Some(reason.clone());
                } else {
                    let returns = self
                        .options
                        .invalid_move_rule
                        .forfeit_returns(player, self.num_players());
                    self.finish(returns, false);
                }
                StepOutcome::Invalid { reason, retry }
            }
        };
        self.transcript.turns.push(TranscriptTurn {
            role: observation.role.clone(),
            player,
            system: observation.system.clone(),
            prompt: observation.prompt(),
            completion: completion.to_string(),
            outcome: outcome.clone(),
        });
        Step {
            player,
            outcome,
            done: self.final_returns.is_some(),
            truncated: self.transcript.truncated,
        }
    }

    fn returns(&self) -> Vec<f64> {
        self.final_returns
            .clone()
            .unwrap_or_else(|| vec![0.0; self.num_players()])
    }

    fn transcript(&self) -> &Transcript {
        &self.transcript
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_takes_the_last_brace_matched_box() {
        let boxed = Boxed;
        assert_eq!(boxed.extract("I think \\boxed{bet}").unwrap(), "bet");
        assert_eq!(
            boxed
                .extract("\\boxed{check} no wait \\boxed{ [bet] }")
                .unwrap(),
            " [bet] "
        );
        assert_eq!(boxed.extract("\\boxed{a{b}c}").unwrap(), "a{b}c");
        assert_eq!(boxed.extract("\\boxed{\\boxed{x}}").unwrap(), "x");
        assert_eq!(boxed.extract("no box").unwrap(), "no box");
        assert!(boxed.extract("\\boxed{open {").is_err());
    }

    #[test]
    fn bracketed_takes_the_last_bracket_pair() {
        assert_eq!(Bracketed.extract("[check] then [bet]").unwrap(), "bet");
        assert!(Bracketed.extract("nothing").is_err());
        assert!(Bracketed.extract("only ] closes").is_err());
    }

    #[test]
    fn matching_is_exact_up_to_whitespace_and_brackets() {
        let legal = vec![(0, "check".to_string()), (1, "Offer: 3 Wood".to_string())];
        assert_eq!(match_action(" [check] ", &legal), Ok(0));
        assert_eq!(match_action("Offer:  3\nWood", &legal), Ok(1));
        assert_eq!(match_action("[ Offer: 3 Wood ]", &legal), Ok(1));
        let err = match_action("Check", &legal).unwrap_err();
        assert!(err.contains("not a legal action") && err.contains("check, Offer: 3 Wood"));
        assert!(match_action("I will check", &legal).is_err());
    }

    #[test]
    fn rules_parse_and_price_forfeits() {
        assert_eq!("spiral".parse(), Ok(InvalidMoveRule::Spiral));
        assert_eq!("retry:3".parse(), Ok(InvalidMoveRule::Retry(3)));
        assert!("retry:x".parse::<InvalidMoveRule>().is_err());
        assert_eq!(
            InvalidMoveRule::Spiral.forfeit_returns(1, 2),
            vec![0.5, -1.5]
        );
        assert_eq!(
            InvalidMoveRule::TextArena.forfeit_returns(0, 2),
            vec![-1.0, 1.0]
        );
        assert_eq!(InvalidMoveRule::TextArena.retries(), 1);
    }

    #[test]
    fn every_protocol_reads_back_its_own_rendering() {
        let legal = vec![(0, "check".to_string()), (4, "x(1,1)".to_string())];
        for protocol in ["boxed", "bracketed", "bare"] {
            let protocol = protocol_by_name(protocol).unwrap();
            for (action, name) in &legal {
                let answer = protocol.extract(&protocol.render(name)).unwrap();
                assert_eq!(match_action(&answer, &legal), Ok(*action));
            }
        }
    }
}
