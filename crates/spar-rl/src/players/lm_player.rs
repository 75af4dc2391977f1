//! A language model as a game player ([`Policy`]) for tournaments, evaluation opponents and
//! fixed opponents in training: the model in this process (`model:DIR`) or one behind an
//! OpenAI-compatible server (`remote:URL#NAME`).
//!
//! At each decision the player writes the observation as a prompt, asks for one completion
//! and parses it with the game's protocol. The chosen action gets probability 1. An answer
//! that names no legal action, or a call that fails after every retry, is the empty
//! distribution: the player forfeits under the caller's invalid-move rule
//! ([`Policy`]'s contract). Both are counted ([`LmPlayer::counts`]).
//!
//! Sampling is seeded: decision `k` of a player uses seed `spar_core::seeds::game(seed, k)` and random stream
//! 0, both in this process and on a spar server (its `seed` and `seed_stream` fields), so a
//! local model and the same model served by `spar serve` play identical games from the same
//! seeds. A [`Decode::Legal`] local player instead gives the exact distribution over the
//! legal actions' canonical completions (GLAM's normalisation, as in `rollout.policy =
//! "legal"`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use spar_core::{Action, Game, GameText, Observation, Policy, TextGame};
use spar_lm::sample::{generate, SamplingParams};
use spar_lm::score::score_values_at_temperature;
use spar_lm::{Llama, TextTokenizer};
use spar_remote::protocol::{ChatMessage, ChatRequest, CompletionRequest, Prompt};
use spar_remote::Client;

use crate::players::lm_policy::normalise;
use crate::rollout::prompt::{completion_ids, prompt_ids, PromptStyle};
use crate::rollout::Decode;

/// Answers an observation with a completion (or says why it could not).
pub trait Answerer: Send + Sync {
    /// One completion of `observation`'s prompt, sampled with `seed` (random stream 0).
    fn answer(&self, observation: &Observation, seed: u64) -> Result<String, String>;

    /// The exact distribution over `completions` (the legal actions' canonical answers),
    /// when this answerer can score them.
    fn distribution(
        &self,
        _observation: &Observation,
        _completions: &[String],
    ) -> Option<Result<Vec<f64>, String>> {
        None
    }
}

/// The model in this process.
#[derive(Debug)]
pub struct LocalAnswerer {
    /// The model.
    pub model: Llama,
    /// Its tokenizer.
    pub tokenizer: TextTokenizer,
    /// How prompts are written.
    pub style: PromptStyle,
    /// Temperature and token budget (the seed is set per decision).
    pub params: SamplingParams,
}

impl Answerer for LocalAnswerer {
    fn answer(&self, observation: &Observation, seed: u64) -> Result<String, String> {
        let prompt =
            prompt_ids(&self.tokenizer, observation, self.style).map_err(|e| e.to_string())?;
        let params = SamplingParams {
            seed,
            ..self.params.clone()
        };
        let mut out = generate(&self.model, &self.tokenizer, &[prompt], &params)
            .map_err(|e| e.to_string())?;
        Ok(out.pop().map(|c| c.text).unwrap_or_default())
    }

    fn distribution(
        &self,
        observation: &Observation,
        completions: &[String],
    ) -> Option<Result<Vec<f64>, String>> {
        let run = || -> crate::Result<Vec<f64>> {
            let prompt = prompt_ids(&self.tokenizer, observation, self.style)?;
            let pairs = completions
                .iter()
                .map(|c| Ok((prompt.clone(), completion_ids(&self.tokenizer, c)?)))
                .collect::<crate::Result<Vec<_>>>()?;
            let values = score_values_at_temperature(&self.model, &pairs, self.params.temperature)?;
            let logps: Vec<f64> = values
                .iter()
                .map(|v| v.iter().map(|&x| f64::from(x)).sum())
                .collect();
            Ok(normalise(&logps).0)
        };
        Some(run().map_err(|e| e.to_string()))
    }
}

/// How a remote player's prompt is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteApi {
    /// `/v1/chat/completions`: a system message with the rules, a user message with the rest
    /// (the server applies its chat template).
    Chat,
    /// `/v1/completions` with the prompt as plain text (`full_prompt()` and a newline).
    Completions,
}

/// A model behind an OpenAI-compatible server.
#[derive(Debug)]
pub struct RemoteAnswerer {
    /// The server's client.
    pub client: Client,
    /// The model name (or adapter name) in requests.
    pub model: String,
    /// Chat or plain completions.
    pub api: RemoteApi,
    /// Temperature and token budget (the seed is set per decision).
    pub params: SamplingParams,
}

impl Answerer for RemoteAnswerer {
    fn answer(&self, observation: &Observation, seed: u64) -> Result<String, String> {
        let p = &self.params;
        let text = match self.api {
            RemoteApi::Chat => {
                let mut messages = Vec::new();
                if !observation.system.trim().is_empty() {
                    messages.push(ChatMessage {
                        role: "system".into(),
                        content: observation.system.trim_end().to_string(),
                    });
                }
                messages.push(ChatMessage {
                    role: "user".into(),
                    content: observation.prompt(),
                });
                let r = self
                    .client
                    .chat(&ChatRequest {
                        model: self.model.clone(),
                        messages,
                        max_tokens: Some(p.max_tokens),
                        temperature: Some(p.temperature),
                        top_p: Some(p.top_p),
                        seed: Some(seed),
                        seed_stream: Some(0),
                        ..ChatRequest::default()
                    })
                    .map_err(|e| e.to_string())?;
                r.choices
                    .first()
                    .and_then(|c| c.message.as_ref())
                    .and_then(|m| m.content.clone())
                    .ok_or("the server answered with no message")?
            }
            RemoteApi::Completions => {
                let r = self
                    .client
                    .completions(&CompletionRequest {
                        model: self.model.clone(),
                        prompt: Some(Prompt::Text(format!("{}\n", observation.full_prompt()))),
                        max_tokens: Some(p.max_tokens),
                        temperature: Some(p.temperature),
                        top_p: Some(p.top_p),
                        seed: Some(seed),
                        seed_stream: Some(0),
                        ..CompletionRequest::default()
                    })
                    .map_err(|e| e.to_string())?;
                r.choices
                    .first()
                    .map(|c| c.text.clone())
                    .ok_or("the server answered with no choices")?
            }
        };
        Ok(text)
    }
}

/// What an [`LmPlayer`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlayerCounts {
    /// Decisions asked for.
    pub decisions: u64,
    /// Answers that named no legal action (forfeits).
    pub invalid: u64,
    /// Calls that failed (forfeits).
    pub failed: u64,
}

/// The live counts of an [`LmPlayer`], shared with whoever keeps a handle
/// ([`LmPlayer::counter`]).
#[derive(Debug, Default)]
pub struct Counter {
    decisions: AtomicU64,
    invalid: AtomicU64,
    failed: AtomicU64,
}

impl Counter {
    /// The counts now.
    pub fn snapshot(&self) -> PlayerCounts {
        PlayerCounts {
            decisions: self.decisions.load(Ordering::Relaxed),
            invalid: self.invalid.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// A language model playing a game through its text view.
pub struct LmPlayer<G: Game, T: GameText<G::State>> {
    name: String,
    env: TextGame<G, T>,
    answerer: Box<dyn Answerer>,
    decode: Decode,
    seed: u64,
    counter: Arc<Counter>,
}

impl<G: Game, T: GameText<G::State>> std::fmt::Debug for LmPlayer<G, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmPlayer")
            .field("name", &self.name)
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

impl<G: Game, T: GameText<G::State>> LmPlayer<G, T> {
    /// A player named `name` that sees `env`'s text view (its protocol, view and rules) and
    /// answers with `answerer`.
    pub fn new(
        name: &str,
        env: TextGame<G, T>,
        answerer: Box<dyn Answerer>,
        decode: Decode,
        seed: u64,
    ) -> Self {
        LmPlayer {
            name: name.to_string(),
            env,
            answerer,
            decode,
            seed,
            counter: Arc::new(Counter::default()),
        }
    }

    /// Decisions, invalid answers and failed calls so far.
    pub fn counts(&self) -> PlayerCounts {
        self.counter.snapshot()
    }

    /// A handle on the counts that outlives the player's boxing.
    pub fn counter(&self) -> Arc<Counter> {
        self.counter.clone()
    }
}

impl<G: Game, T: GameText<G::State>> Policy<G::State> for LmPlayer<G, T> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn action_probabilities(&self, state: &G::State) -> Vec<(Action, f64)> {
        use spar_core::State as _;
        let index = self.counter.decisions.fetch_add(1, Ordering::Relaxed);
        let Some(player) = state.current_player() else {
            return Vec::new();
        };
        let observation = self.env.observation_at(state, player);
        let legal: Vec<(Action, String)> = state
            .legal_actions()
            .into_iter()
            .map(|a| (a, self.env.text().action_name(state, player, a)))
            .collect();
        if self.decode == Decode::Legal {
            let completions: Vec<String> = legal
                .iter()
                .map(|(_, name)| self.env.options().protocol.render(name))
                .collect();
            match self.answerer.distribution(&observation, &completions) {
                Some(Ok(probs)) => {
                    return legal.iter().map(|(a, _)| *a).zip(probs).collect();
                }
                Some(Err(_)) => {
                    self.counter.failed.fetch_add(1, Ordering::Relaxed);
                    return Vec::new();
                }
                None => {}
            }
        }
        match self
            .answerer
            .answer(&observation, spar_core::seeds::game(self.seed, index))
        {
            Err(_) => {
                self.counter.failed.fetch_add(1, Ordering::Relaxed);
                Vec::new()
            }
            Ok(text) => {
                let parsed = self
                    .env
                    .options()
                    .protocol
                    .extract(&text)
                    .and_then(|answer| spar_core::text::match_action(&answer, &legal));
                match parsed {
                    Ok(action) => vec![(action, 1.0)],
                    Err(_) => {
                        self.counter.invalid.fetch_add(1, Ordering::Relaxed);
                        Vec::new()
                    }
                }
            }
        }
    }
}
