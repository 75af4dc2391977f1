//! Playing episodes through the text environment with a language model in the seats.
//!
//! Many episodes run side by side; every round, the model answers all the prompts of the
//! episodes where it is to move in one sampling batch. Each model turn becomes one sample
//! (prompt ids, completion ids, role, episode); invalid moves, truncated answers and answer
//! lengths are counted. Randomness: game `g` of a batch is reset with seed `seed + g`, and
//! round `k`'s sampling uses seed `seed ^ (k << 32)`, so a batch is a pure function of its
//! seed and the weights.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use spar_core::{sample_action, Env, Game, GameText, Policy, StepOutcome, TextGame};
use spar_lm::sample::{FinishReason, SamplingParams};
use spar_lm::{Engine, TextTokenizer};

use crate::error::Result;
use crate::players::lm_policy::normalise;
use prompt::{completion_ids, prompt_ids, PromptStyle};

mod episodes;
pub mod prompt;
mod sample;
pub mod servers;

pub use episodes::{groups, play_envs};
pub use sample::Sample;

/// Who plays a seat.
pub enum Seat<'a, S> {
    /// The language model (its turns become samples).
    Model,
    /// Uniformly random legal actions, written canonically.
    Random,
    /// A game policy (a CFR+ solution, a tabular file, a remote model) on the game state, its
    /// actions written canonically. A policy that answers with no action (a remote model's
    /// failed call) plays an empty answer, which the invalid-move rule handles.
    Policy(&'a dyn Policy<S>),
}

impl<S> Clone for Seat<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Seat<'_, S> {}

impl<S> Seat<'_, S> {
    /// The language model plays this seat.
    pub fn is_model(&self) -> bool {
        matches!(self, Seat::Model)
    }
}

impl<S: spar_core::State> std::fmt::Debug for Seat<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seat::Model => write!(f, "Model"),
            Seat::Random => write!(f, "Random"),
            Seat::Policy(p) => write!(f, "Policy({})", p.name()),
        }
    }
}

/// How the model's answer is produced at its turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decode {
    /// Free text, sampled token by token and parsed by the protocol (SPIRAL).
    #[default]
    Sample,
    /// One of the canonical completions of the legal actions, drawn with probability
    /// proportional to the model's probability of the whole completion at the sampling
    /// temperature: the language model's policy normalised over the valid actions, as in
    /// GLAM (Carta et al. 2023, "Grounding Large Language Models in Interactive Environments
    /// with Online Reinforcement Learning", sec. 3.1). Answers are never invalid; the mass
    /// the model puts elsewhere is still measured by the exact evaluation (`outside_mass`).
    Legal,
}

impl std::str::FromStr for Decode {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sample" => Ok(Decode::Sample),
            "legal" => Ok(Decode::Legal),
            other => Err(crate::Error::Invalid(format!(
                "rollout policy {other:?} is not sample or legal"
            ))),
        }
    }
}

/// A batch of finished episodes.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Every model turn, in the order played (rewards and advantages not yet set).
    pub turns: Vec<Sample>,
    /// Returns per episode and seat.
    pub returns: Vec<Vec<f64>>,
    /// The role of each seat, per episode (from the environment).
    pub roles: Vec<Vec<spar_core::Role>>,
    /// Episodes that ended by the turn limit.
    pub truncated_episodes: usize,
    /// The transcript of every episode (prompts, completions, outcomes, returns).
    pub transcripts: Vec<spar_core::Transcript>,
    /// Model turns whose request failed (a server's timeout or error after every retry):
    /// each was played as an empty, invalid answer.
    pub failed_calls: usize,
    /// Opponent turns (a [`Seat::Policy`]) that named no action, played as invalid answers.
    pub opponent_failures: usize,
}

impl Batch {
    /// Per episode: the return of each role the model played (role key -> return).
    pub fn model_returns<S>(&self, seats: &[Seat<S>]) -> Vec<BTreeMap<String, f64>> {
        self.returns
            .iter()
            .zip(&self.roles)
            .map(|(r, roles)| {
                r.iter()
                    .zip(roles)
                    .enumerate()
                    .filter(|(p, _)| seats[*p].is_model())
                    .map(|(_, (&v, role))| (role.key(), v))
                    .collect()
            })
            .collect()
    }

    /// Appends `other`'s episodes after this batch's (their turns' episode indices shifted).
    pub fn append(&mut self, other: Batch) {
        let offset = self.returns.len();
        self.turns.extend(other.turns.into_iter().map(|mut t| {
            t.episode += offset;
            t
        }));
        self.returns.extend(other.returns);
        self.roles.extend(other.roles);
        self.truncated_episodes += other.truncated_episodes;
        self.transcripts.extend(other.transcripts);
        self.failed_calls += other.failed_calls;
        self.opponent_failures += other.opponent_failures;
    }

    /// Fraction of model turns that were invalid.
    pub fn invalid_rate(&self) -> f64 {
        let n = self.turns.len().max(1) as f64;
        self.turns.iter().filter(|t| t.invalid).count() as f64 / n
    }

    /// Fraction of model turns cut by the token budget.
    pub fn truncation_rate(&self) -> f64 {
        let n = self.turns.len().max(1) as f64;
        self.turns.iter().filter(|t| t.truncated).count() as f64 / n
    }

    /// Mean completion length in tokens.
    pub fn mean_response_tokens(&self) -> f64 {
        let n = self.turns.len().max(1) as f64;
        self.turns.iter().map(|t| t.completion.len()).sum::<usize>() as f64 / n
    }
}

/// Plays `episodes` games from `make_env()` with the given seats; the model's answers come
/// from `engine` (the model in this process, or a server).
#[allow(clippy::too_many_arguments)]
pub fn play_batch<G: Game, T: GameText<G::State>>(
    make_env: &dyn Fn() -> TextGame<G, T>,
    engine: &dyn Engine,
    tokenizer: &TextTokenizer,
    style: PromptStyle,
    seats: &[Seat<G::State>],
    episodes: usize,
    params: &SamplingParams,
    decode: Decode,
    seed: u64,
) -> Result<Batch> {
    let mut envs: Vec<TextGame<G, T>> = (0..episodes)
        .map(|g| {
            let mut env = make_env();
            env.reset(seed.wrapping_add(g as u64));
            env
        })
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x7a4d_0000);
    let mut batch = Batch::default();
    for round in 0u64.. {
        // Random seats move at once; model seats are collected for one sampling batch.
        let mut asks: Vec<(usize, Sample)> = Vec::new();
        let mut any = false;
        for (g, env) in envs.iter_mut().enumerate() {
            while let Some(player) = env.current_player() {
                any = true;
                let action = match seats[player] {
                    Seat::Model => {
                        let observation = env.observation(player);
                        let prompt = prompt_ids(tokenizer, &observation, style)?;
                        let mut ask = Sample::new(observation.role, prompt, Vec::new());
                        ask.episode = g;
                        ask.group = g as u64;
                        ask.turn = env.transcript().turns.len();
                        asks.push((player, ask));
                        break;
                    }
                    Seat::Random => {
                        let legal = env.legal_action_names();
                        legal.choose(&mut rng).expect("a legal action").0
                    }
                    Seat::Policy(policy) => {
                        let distribution = policy.action_probabilities(env.state());
                        if distribution.is_empty() {
                            batch.opponent_failures += 1;
                            env.step(player, "");
                            continue;
                        }
                        sample_action(&distribution, &mut rng)
                    }
                };
                let completion = env.completion_for(action);
                env.step(player, &completion);
            }
        }
        if !any {
            break;
        }
        if asks.is_empty() {
            continue;
        }
        if decode == Decode::Legal {
            legal_round(
                &mut envs,
                &mut batch,
                asks,
                engine,
                tokenizer,
                params,
                seed ^ (round << 32) ^ 0x1e9a1,
            )?;
            continue;
        }
        let prompts: Vec<Vec<u32>> = asks.iter().map(|(_, a)| a.prompt.clone()).collect();
        let round_params = SamplingParams {
            seed: seed ^ (round << 32) ^ 0x5eed,
            ..params.clone()
        };
        let completions = engine.generate(&prompts, &round_params)?;
        for ((player, mut turn), completion) in asks.into_iter().zip(completions) {
            let failed = completion.is_err();
            let completion = completion.unwrap_or_else(|_| {
                batch.failed_calls += 1;
                spar_lm::sample::Completion {
                    token_ids: Vec::new(),
                    text: String::new(),
                    logprobs: Vec::new(),
                    finish_reason: FinishReason::Stop,
                }
            });
            let step = envs[turn.episode].step(player, &completion.text);
            turn.truncated = completion.finish_reason == FinishReason::Length;
            turn.invalid = matches!(step.outcome, StepOutcome::Invalid { .. });
            turn.failed = failed;
            turn.completion = completion.token_ids;
            turn.text = completion.text;
            batch.turns.push(turn);
        }
    }
    for env in &envs {
        batch.returns.push(env.returns());
        batch
            .roles
            .push((0..env.num_players()).map(|p| env.role(p)).collect());
        batch.transcripts.push(env.transcript().clone());
        if env.transcript().truncated {
            batch.truncated_episodes += 1;
        }
    }
    Ok(batch)
}

/// One round of [`Decode::Legal`]: every waiting episode's legal completions scored in one
/// batch, one drawn per episode from the normalised probabilities.
#[allow(clippy::too_many_arguments)]
fn legal_round<G: Game, T: GameText<G::State>>(
    envs: &mut [TextGame<G, T>],
    batch: &mut Batch,
    asks: Vec<(usize, Sample)>,
    engine: &dyn Engine,
    tokenizer: &TextTokenizer,
    params: &SamplingParams,
    seed: u64,
) -> Result<()> {
    // Per waiting episode: (action, canonical completion, its token ids) of each legal action.
    let mut pairs = Vec::new();
    let mut options: Vec<Vec<(spar_core::Action, String, Vec<u32>)>> = Vec::new();
    for (_, ask) in &asks {
        let env = &envs[ask.episode];
        let mut opts = Vec::new();
        for (action, _) in env.legal_action_names() {
            let text = env.completion_for(action);
            let ids = completion_ids(tokenizer, &text)?;
            pairs.push((ask.prompt.clone(), ids.clone()));
            opts.push((action, text, ids));
        }
        options.push(opts);
    }
    let values = engine.score(&pairs, params.temperature)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut offset = 0;
    for ((player, mut turn), opts) in asks.into_iter().zip(options) {
        let scored: std::result::Result<Vec<f64>, _> = values[offset..offset + opts.len()]
            .iter()
            .map(|v| {
                v.as_ref()
                    .map(|v| v.iter().map(|&x| f64::from(x)).sum::<f64>())
            })
            .collect();
        offset += opts.len();
        let Ok(logps) = scored else {
            // The server failed to score this turn: an empty, invalid answer.
            batch.failed_calls += 1;
            let step = envs[turn.episode].step(player, "");
            turn.invalid = matches!(step.outcome, StepOutcome::Invalid { .. });
            turn.failed = true;
            batch.turns.push(turn);
            continue;
        };
        let (probs, _) = normalise(&logps);
        let dist: Vec<(spar_core::Action, f64)> =
            opts.iter().map(|(a, _, _)| *a).zip(probs).collect();
        let action = sample_action(&dist, &mut rng);
        let chosen = opts
            .iter()
            .position(|(a, _, _)| *a == action)
            .expect("drawn");
        let step = envs[turn.episode].step(player, &opts[chosen].1);
        turn.invalid = matches!(step.outcome, StepOutcome::Invalid { .. });
        turn.completion = opts[chosen].2.clone();
        turn.text = opts[chosen].1.clone();
        turn.alternatives = opts.into_iter().map(|(_, _, ids)| ids).collect();
        turn.chosen = chosen;
        batch.turns.push(turn);
    }
    Ok(())
}
