//! The text view: multi-agent text environments, TextArena's contract.
//!
//! A language model never sees a game tree: it reads an [`Observation`] and writes a
//! completion. An [`Env`] is everything a learner or a language-model player touches:
//!
//! ```text
//! env.reset(seed)
//! while let Some(player) = env.current_player() {
//!     let observation = env.observation(player);      // system, role, state, legal actions
//!     let completion = model(observation.prompt());    // free text
//!     let step = env.step(player, &completion);        // a move, an invalid move, the end
//! }
//! env.returns(); env.transcript();
//! ```
//!
//! Tree games become environments through one adapter ([`crate::text::TextGame`]);
//! verifiable tasks implement [`Env`] directly (`spar_games::tasks::TaskEnv`: one seat, a
//! free-text answer, a verifier's verdict). Actions are text, and a tree game's integer action
//! is optional, so that the open-ended loops this contract is designed for (proposer/solver,
//! self-correction, critics; none of them exists yet) can implement it the same way.
//!
//! Invariants every implementation keeps:
//! * `observation(p)` depends only on what player `p` may know (for tree games: their
//!   information state), never on another player's private information;
//! * all randomness comes from the seed given to `reset`;
//! * `step` never panics on any completion text: unparsable or illegal output is an
//!   [`StepOutcome::Invalid`] with a reason, handled by the environment's invalid-move rule;
//! * every observation and every transcript turn carries the acting [`Role`].

use serde::{Deserialize, Serialize};

use crate::game::{Action, Player};
use crate::role::Role;

/// What a player sees before acting: the parts of a prompt, kept apart so that chat
/// templates can place them (system message, user message) and tests can pin each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Who is acting.
    pub role: Role,
    /// The rules of the game or task (the system prompt). The same for every turn of a role.
    pub system: String,
    /// The role text: who the player is (`You are Player 0 ...`).
    pub role_text: String,
    /// The current state as this player sees it.
    pub state_text: String,
    /// Names of the legal actions, when the action space is finite (tree games); `None`
    /// for free-text environments.
    pub legal_actions: Option<Vec<String>>,
    /// How to write the answer (`Put your final answer within \boxed{}`).
    pub answer_format: String,
}

impl Observation {
    /// The user message: role text, state, legal actions and answer format, in that order.
    /// The system text is kept separate for chat templates that have a system role; use
    /// [`Observation::full_prompt`] for a single plain-text prompt.
    pub fn prompt(&self) -> String {
        let mut parts = vec![self.role_text.trim_end(), self.state_text.trim_end()];
        let legal;
        if let Some(actions) = &self.legal_actions {
            let bracketed: Vec<String> = actions.iter().map(|a| format!("[{a}]")).collect();
            legal = format!("Legal actions: {}", bracketed.join(", "));
            parts.push(&legal);
        }
        parts.push(self.answer_format.trim_end());
        parts.retain(|p| !p.is_empty());
        parts.join("\n\n")
    }

    /// System text followed by the user message, for models without a system role.
    pub fn full_prompt(&self) -> String {
        if self.system.trim().is_empty() {
            self.prompt()
        } else {
            format!("{}\n\n{}", self.system.trim_end(), self.prompt())
        }
    }
}

/// What one call to [`Env::step`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepOutcome {
    /// The completion was a legal move and was applied.
    Move {
        /// The action as text (the legal action's name, or the free-text answer).
        action_text: String,
        /// The tree action, for tree games.
        action: Option<Action>,
    },
    /// The completion broke the protocol or named an illegal action.
    Invalid {
        /// Why, in words (shown in transcripts; may be shown to the player on a retry).
        reason: String,
        /// Whether the same player must now try again (otherwise the rule ended the game).
        retry: bool,
    },
}

/// The result of [`Env::step`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The player who acted.
    pub player: Player,
    /// What happened.
    pub outcome: StepOutcome,
    /// Whether the episode is over.
    pub done: bool,
    /// Whether it ended by the turn limit (scored as a draw).
    pub truncated: bool,
}

/// One turn of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptTurn {
    /// Who acted.
    pub role: Role,
    /// The player index.
    pub player: Player,
    /// The system text the player saw.
    pub system: String,
    /// The user prompt the player saw ([`Observation::prompt`]).
    pub prompt: String,
    /// The completion the player wrote.
    pub completion: String,
    /// What the completion did.
    pub outcome: StepOutcome,
}

/// Everything that happened in one episode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The environment's name (a game specification for tree games).
    pub env: String,
    /// The seed given to `reset`.
    pub seed: u64,
    /// Player turns in order (chance moves are not turns).
    pub turns: Vec<TranscriptTurn>,
    /// Invalid moves per player.
    pub invalid_moves: Vec<usize>,
    /// Final returns per player, once the episode is over.
    pub returns: Option<Vec<f64>>,
    /// Whether the turn limit ended the episode.
    pub truncated: bool,
}

/// A multi-agent text environment (TextArena's `reset`/`get_observation`/`step`/`close`).
pub trait Env: Send {
    /// The environment's name, e.g. `kuhn` or `kuhn(hands=5)`.
    fn name(&self) -> String;

    /// Number of players (seats).
    fn num_players(&self) -> usize;

    /// The role of each seat.
    fn role(&self, player: Player) -> Role;

    /// Starts a new episode. All randomness of the episode (chance) derives from `seed`.
    fn reset(&mut self, seed: u64);

    /// The player expected to act, or `None` when the episode is over.
    fn current_player(&self) -> Option<Player>;

    /// What `player` sees now. Meaningful for the current player; for others it is their
    /// view of the same moment.
    fn observation(&self, player: Player) -> Observation;

    /// `player` answers with `completion`. Never panics on any text; a `player` who is not
    /// the current player is an invalid move. Calling it after the end is a programmer error.
    fn step(&mut self, player: Player, completion: &str) -> Step;

    /// Per-player returns: final once the episode is over, zeros before.
    fn returns(&self) -> Vec<f64>;

    /// The transcript of the current episode so far.
    fn transcript(&self) -> &Transcript;

    /// Whether the episode is over.
    fn is_done(&self) -> bool {
        self.current_player().is_none()
    }

    /// The answers naming each legal move of the player to move, written canonically (what a
    /// scripted player writes), for an environment whose moves are a finite set (tree
    /// games); `None` (the default) for free-text environments such as tasks. Random seats
    /// and action-level play (`rollout.policy = "legal"`) draw among these answers.
    fn legal_answers(&self) -> Option<Vec<String>> {
        None
    }
}
