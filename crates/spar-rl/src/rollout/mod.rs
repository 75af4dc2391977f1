//! Playing episodes of any [`Env`] with a language model in some or all seats: the one
//! rollout of every loop ([`Rollout::play`]).
//!
//! Many episodes run side by side; every round, the model answers all the prompts of the
//! episodes where it is to move in batched engine calls, and scripted seats (random, a game
//! policy, a loop's rule) answer in between. Each model turn becomes one [`Sample`] (prompt
//! ids, completion ids, its [`spar_core::Role`] from the observation, episode, group, turn,
//! reward); invalid moves, truncated answers, failed engine calls and answer lengths are
//! counted. Group sampling (GRPO's G answers to one prompt) is copies of an environment
//! ([`groups`]) played with [`Rollout::group_size`]. Randomness is per episode (see
//! [`Rollout::play`]), so a batch is a pure function of its environments, seed and weights.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use spar_core::{sample_action, Env, Game, GameText, Player, Policy, StepOutcome, TextGame};
use spar_lm::sample::{Completion, FinishReason, SamplingParams};
use spar_lm::{Engine, TextTokenizer};

use crate::error::{Error, Result};
use crate::players::lm_policy::normalise;
use prompt::{completion_ids, prompt_ids, PromptStyle};

pub mod prompt;
mod sample;
pub mod servers;

pub use sample::Sample;

/// Who plays a seat.
pub enum Seat<'a, E> {
    /// The language model (its turns become samples).
    Model,
    /// Uniformly random legal moves, written canonically ([`Env::legal_answers`]; an
    /// environment without a finite set of moves cannot seat a random player).
    Random,
    /// A scripted player: a CFR+ solution, a tabular file or a remote model on a game's
    /// state ([`PolicySeat`]), or any rule a loop writes.
    Scripted(&'a dyn Scripted<E>),
}

impl<E> Clone for Seat<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Seat<'_, E> {}

impl<E> Seat<'_, E> {
    /// The language model plays this seat.
    pub fn is_model(&self) -> bool {
        matches!(self, Seat::Model)
    }
}

impl<E> std::fmt::Debug for Seat<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seat::Model => write!(f, "Model"),
            Seat::Random => write!(f, "Random"),
            Seat::Scripted(p) => write!(f, "Scripted({})", p.name()),
        }
    }
}

/// A seat played by a rule rather than the model.
pub trait Scripted<E>: Sync {
    /// A name for logs.
    fn name(&self) -> String;

    /// The answer of `player`, who is to move in `env`, drawing any randomness from `rng` (the
    /// episode's own stream). `None` when the player has no answer (a remote model's failed
    /// call): the turn is played as an empty answer, which the environment's invalid-move
    /// rule handles, and counted in [`Batch::opponent_failures`].
    fn answer(&self, env: &E, player: Player, rng: &mut ChaCha8Rng) -> Option<String>;
}

/// A game [`Policy`] as a [`Scripted`] seat of its text game: an action drawn from the
/// policy's distribution at the game state, written canonically.
pub struct PolicySeat<'a, S>(pub &'a dyn Policy<S>);

impl<S: spar_core::State> std::fmt::Debug for PolicySeat<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PolicySeat({})", self.0.name())
    }
}

impl<G: Game, T: GameText<G::State>> Scripted<TextGame<G, T>> for PolicySeat<'_, G::State> {
    fn name(&self) -> String {
        self.0.name()
    }

    fn answer(
        &self,
        env: &TextGame<G, T>,
        _player: Player,
        rng: &mut ChaCha8Rng,
    ) -> Option<String> {
        let distribution = self.0.action_probabilities(env.state());
        if distribution.is_empty() {
            return None;
        }
        Some(env.completion_for(sample_action(&distribution, rng)))
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
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sample" => Ok(Decode::Sample),
            "legal" => Ok(Decode::Legal),
            other => Err(Error::Invalid(format!(
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
    /// Per episode: the return of each role the model played (role key -> return); `seats`
    /// as given to [`Rollout::play`].
    pub fn model_returns<E>(&self, seats: &[Seat<E>]) -> Vec<BTreeMap<String, f64>> {
        self.returns
            .iter()
            .zip(&self.roles)
            .map(|(r, roles)| {
                r.iter()
                    .zip(roles)
                    .enumerate()
                    .filter(|(p, _)| seats.get(*p).is_none_or(Seat::is_model))
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

/// A round limit high enough for any game with a turn limit (a task allows one round).
pub const DEFAULT_MAX_ROUNDS: u64 = 100_000;

/// Sequences sampled in one engine call.
const CHUNK: usize = 256;

/// How episodes are played: where the model's answers come from and how they are drawn.
#[derive(Clone, Copy)]
pub struct Rollout<'a> {
    /// The model's answers: the learner's detached view in this process
    /// ([`spar_lm::LocalEngine`]), or inference servers.
    pub engine: &'a dyn Engine,
    /// The model's tokenizer (prompts become token ids with it).
    pub tokenizer: &'a TextTokenizer,
    /// How an observation becomes a prompt.
    pub style: PromptStyle,
    /// Sampling temperature, budget and stops (`seed` is ignored: see [`Rollout::play`]).
    pub params: &'a SamplingParams,
    /// Free text or action-level answers.
    pub decode: Decode,
    /// Group sampling: environments `i * group_size .. (i + 1) * group_size` are one group
    /// ([`groups`] makes them), GRPO's G answers to one prompt; a sample's `group` is its
    /// environment's index divided by this. 1: every episode its own group.
    pub group_size: usize,
    /// Rounds of model answers after which an episode still running is an error (an
    /// environment that never ends).
    pub max_rounds: u64,
}

impl std::fmt::Debug for Rollout<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rollout")
            .field("style", &self.style)
            .field("decode", &self.decode)
            .field("group_size", &self.group_size)
            .field("max_rounds", &self.max_rounds)
            .finish_non_exhaustive()
    }
}

impl<'a> Rollout<'a> {
    /// Free-text answers from `engine`, every episode its own group,
    /// [`DEFAULT_MAX_ROUNDS`].
    pub fn new(
        engine: &'a dyn Engine,
        tokenizer: &'a TextTokenizer,
        style: PromptStyle,
        params: &'a SamplingParams,
    ) -> Rollout<'a> {
        Rollout {
            engine,
            tokenizer,
            style,
            params,
            decode: Decode::Sample,
            group_size: 1,
            max_rounds: DEFAULT_MAX_ROUNDS,
        }
    }

    /// Plays every environment of `envs` (already reset) to its end: the rollout of every
    /// loop, games and tasks alike. Player `p` is `seats[p]`; players past the end of `seats`
    /// are the model (so `&[]` seats the model everywhere).
    ///
    /// Play goes in rounds. In each, every environment first advances through its scripted
    /// seats until the model is to move or the episode ends; then every environment waiting
    /// for the model gets one answer, all of the round's prompts in engine calls of up to 256.
    /// Randomness is per episode: environment `e`'s free-text answer in round `k` draws from
    /// random stream `(seed ^ (k << 32), e)`, and its scripted seats and action-level draws
    /// from its own ChaCha8 stream ([`spar_core::seeds::rollout_episode`]), so an episode is
    /// a pure function of its environment, the weights and `seed`, whatever else is in the
    /// batch.
    ///
    /// Returns one [`Sample`] per model turn in the order played, its `episode` the
    /// environment's index, `group` as [`Rollout::group_size`] says and `reward` the acting
    /// player's return at the end. Bad model output is an invalid move, handled by each
    /// environment's rule; an answer the engine failed to give (a server's error after every
    /// retry) is played as an empty answer and marked `failed`.
    pub fn play<E: Env>(&self, envs: &mut [E], seats: &[Seat<E>], seed: u64) -> Result<Batch> {
        let seat = |p: usize| seats.get(p).copied().unwrap_or(Seat::Model);
        let mut rngs: Vec<ChaCha8Rng> = (0..envs.len() as u64)
            .map(|e| ChaCha8Rng::seed_from_u64(spar_core::seeds::rollout_episode(seed, e)))
            .collect();
        let mut batch = Batch::default();
        let mut players: Vec<Player> = Vec::new();
        for round in 0..=self.max_rounds {
            let mut asks: Vec<(Player, Sample)> = Vec::new();
            for (e, env) in envs.iter_mut().enumerate() {
                while let Some(player) = env.current_player() {
                    let answer = match seat(player) {
                        Seat::Model => {
                            let observation = env.observation(player);
                            let prompt = prompt_ids(self.tokenizer, &observation, self.style)?;
                            let mut ask = Sample::new(observation.role, prompt, Vec::new());
                            ask.episode = e;
                            ask.group = (e / self.group_size.max(1)) as u64;
                            ask.turn = env.transcript().turns.len();
                            asks.push((player, ask));
                            break;
                        }
                        Seat::Random => legal_answers(env)?
                            .choose(&mut rngs[e])
                            .cloned()
                            .ok_or_else(|| no_moves(env))?,
                        Seat::Scripted(rule) => {
                            rule.answer(env, player, &mut rngs[e]).unwrap_or_else(|| {
                                batch.opponent_failures += 1;
                                String::new()
                            })
                        }
                    };
                    env.step(player, &answer);
                }
            }
            if asks.is_empty() {
                break;
            }
            if round == self.max_rounds {
                return Err(Error::Invalid(format!(
                    "{} episodes of {} still running after {} rounds",
                    asks.len(),
                    envs[asks[0].1.episode].name(),
                    self.max_rounds
                )));
            }
            match self.decode {
                Decode::Sample => self.sample_round(envs, &mut asks, seed ^ (round << 32))?,
                Decode::Legal => self.legal_round(envs, &mut asks, &mut rngs)?,
            }
            for (player, ask) in asks {
                batch.failed_calls += usize::from(ask.failed);
                players.push(player);
                batch.turns.push(ask);
            }
        }
        for (sample, &player) in batch.turns.iter_mut().zip(&players) {
            sample.reward = envs[sample.episode].returns()[player];
        }
        for env in envs.iter() {
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

    /// One round of [`Decode::Sample`]: each waiting episode's free-text answer from its own
    /// random stream of `round_seed`, played.
    fn sample_round<E: Env>(
        &self,
        envs: &mut [E],
        asks: &mut [(Player, Sample)],
        round_seed: u64,
    ) -> Result<()> {
        for chunk in asks.chunks_mut(CHUNK) {
            let prompts: Vec<Vec<u32>> = chunk.iter().map(|(_, a)| a.prompt.clone()).collect();
            let streams: Vec<(u64, u64)> = chunk
                .iter()
                .map(|(_, a)| (round_seed, a.episode as u64))
                .collect();
            let completions = self
                .engine
                .generate_streams(&prompts, self.params, &streams)?;
            for ((player, ask), completion) in chunk.iter_mut().zip(completions) {
                let (completion, failed) = match completion {
                    Ok(c) => (c, false),
                    Err(_) => (
                        Completion {
                            token_ids: Vec::new(),
                            text: String::new(),
                            logprobs: Vec::new(),
                            finish_reason: FinishReason::Stop,
                        },
                        true,
                    ),
                };
                let step = envs[ask.episode].step(*player, &completion.text);
                ask.invalid = matches!(step.outcome, StepOutcome::Invalid { .. });
                ask.truncated = completion.finish_reason == FinishReason::Length;
                ask.failed = failed;
                ask.completion = completion.token_ids;
                ask.text = completion.text;
            }
        }
        Ok(())
    }

    /// One round of [`Decode::Legal`]: every waiting episode's legal answers scored in one
    /// batch, one drawn per episode (from its own stream) with the model's probabilities
    /// normalised over them, and played.
    fn legal_round<E: Env>(
        &self,
        envs: &mut [E],
        asks: &mut [(Player, Sample)],
        rngs: &mut [ChaCha8Rng],
    ) -> Result<()> {
        let mut pairs = Vec::new();
        let mut options: Vec<Vec<(String, Vec<u32>)>> = Vec::with_capacity(asks.len());
        for (_, ask) in asks.iter() {
            let mut opts = Vec::new();
            for text in legal_answers(&envs[ask.episode])? {
                let ids = completion_ids(self.tokenizer, &text)?;
                pairs.push((ask.prompt.clone(), ids.clone()));
                opts.push((text, ids));
            }
            options.push(opts);
        }
        let values = self.engine.score(&pairs, self.params.temperature)?;
        let mut offset = 0;
        for ((player, ask), opts) in asks.iter_mut().zip(options) {
            let scored: std::result::Result<Vec<f64>, _> = values[offset..offset + opts.len()]
                .iter()
                .map(|v| {
                    v.as_ref()
                        .map(|v| v.iter().map(|&x| f64::from(x)).sum::<f64>())
                })
                .collect();
            offset += opts.len();
            let env = &mut envs[ask.episode];
            let Ok(logps) = scored else {
                // The engine failed to score this turn: an empty, invalid answer.
                let step = env.step(*player, "");
                ask.invalid = matches!(step.outcome, StepOutcome::Invalid { .. });
                ask.failed = true;
                continue;
            };
            let (probs, _) = normalise(&logps);
            let dist: Vec<(spar_core::Action, f64)> = (0..opts.len()).zip(probs).collect();
            let chosen = sample_action(&dist, &mut rngs[ask.episode]);
            let step = env.step(*player, &opts[chosen].0);
            ask.invalid = matches!(step.outcome, StepOutcome::Invalid { .. });
            ask.completion = opts[chosen].1.clone();
            ask.text = opts[chosen].0.clone();
            ask.alternatives = opts.into_iter().map(|(_, ids)| ids).collect();
            ask.chosen = chosen;
        }
        Ok(())
    }
}

/// The legal answers of `env`'s player to move, or an error naming the environment.
fn legal_answers<E: Env>(env: &E) -> Result<Vec<String>> {
    env.legal_answers().ok_or_else(|| {
        Error::Invalid(format!(
            "{} has no finite set of moves: a random seat or rollout.policy = \"legal\" needs \
             a game",
            env.name()
        ))
    })
}

fn no_moves<E: Env>(env: &E) -> Error {
    Error::Invalid(format!("{}: no legal move to choose from", env.name()))
}

/// `n` environments from `make_env`, environment `g` reset with seed `seed + g`: a batch of
/// fresh episodes (games on distinct deals).
pub fn episodes<E: Env>(make_env: &dyn Fn() -> E, n: usize, seed: u64) -> Vec<E> {
    (0..n)
        .map(|g| {
            let mut env = make_env();
            env.reset(seed.wrapping_add(g as u64));
            env
        })
        .collect()
}

/// `size` copies of every environment, in order (environment `i`'s copies are `i * size ..
/// (i + 1) * size`): group sampling, GRPO's G answers to one prompt (play them with
/// [`Rollout::group_size`] = `size`). Reset the originals first; each copy then plays its own
/// episode from the same start.
pub fn groups<E: Env + Clone>(envs: &[E], size: usize) -> Vec<E> {
    envs.iter()
        .flat_map(|e| std::iter::repeat_n(e, size).cloned())
        .collect()
}
