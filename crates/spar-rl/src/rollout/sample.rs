//! [`Sample`]: one learnable turn, the vocabulary every loop, estimator and loss shares.

use spar_core::Role;

/// One turn of a model in an episode, from the rollout to the loss: the prompt it read, the
/// tokens it wrote, whose turn it was ([`Role`], carried from the observation, never rebuilt),
/// its reward and advantage, its group (GRPO's group: the answers to one prompt) and the
/// log-probabilities the update compares against.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Who acted (`kuhn/player1`, `arithmetic/solver`); baselines and metrics are keyed by
    /// [`Role::key`].
    pub role: Role,
    /// Index of the episode in its batch.
    pub episode: usize,
    /// Index of the turn within its episode (0 for one-turn tasks).
    pub turn: usize,
    /// The group the sample was drawn in (the prompt's index for group sampling; the
    /// episode's for games).
    pub group: u64,
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// Completion token ids (the stop token included when the model stopped).
    pub completion: Vec<u32>,
    /// The completion's text as the environment read it.
    pub text: String,
    /// The reward of the sample's role in its episode (the return, for games).
    pub reward: f64,
    /// Its advantage (the same for every token), set by the loop's estimator.
    pub advantage: f64,
    /// The sampling policy's log-probabilities of the completion's tokens (recomputed by the
    /// learner before the update); action-level samples hold one value, the chosen action's
    /// normalised log-probability.
    pub old_logprobs: Vec<f32>,
    /// The frozen reference's log-probabilities (empty without a KL term), shaped as
    /// `old_logprobs`.
    pub ref_logprobs: Vec<f32>,
    /// Action-level samples (`rollout.policy = "legal"`): the canonical completions of every
    /// legal action, `completion` among them at `chosen`; empty for free text.
    pub alternatives: Vec<Vec<u32>>,
    /// Index of `completion` in `alternatives`.
    pub chosen: usize,
    /// The answer did not stop within the token budget.
    pub truncated: bool,
    /// The answer named no legal action (an invalid move).
    pub invalid: bool,
    /// The engine failed to answer (a server's error after every retry): the turn was played
    /// as an empty, invalid answer and is not learnt from.
    pub failed: bool,
}

impl Sample {
    /// A sample of `role` with the given prompt and completion; every other field empty.
    pub fn new(role: Role, prompt: Vec<u32>, completion: Vec<u32>) -> Sample {
        Sample {
            role,
            episode: 0,
            turn: 0,
            group: 0,
            prompt,
            completion,
            text: String::new(),
            reward: 0.0,
            advantage: 0.0,
            old_logprobs: Vec::new(),
            ref_logprobs: Vec::new(),
            alternatives: Vec::new(),
            chosen: 0,
            truncated: false,
            invalid: false,
            failed: false,
        }
    }
}
