//! SPIRAL's self-play loop (Liu et al. 2025) on the kernel: [`SelfPlay`] is its
//! [`Loop`], [`run`] trains it.
//!
//! 1. A fresh run first learns the answer protocol by supervised training on transcripts of
//!    random legal play (the warm start), then checkpoints step 0.
//! 2. Every step ([`Loop::collect`]): `rollout.episodes` games of each game of the run with the
//!    model in every seat (self-play, one set of weights), against a pool of its past
//!    checkpoints, or against a fixed player; every model turn becomes a [`Sample`].
//! 3. [`Loop::advantages`]: the configured [`AdvantageEstimator`], each sample grouped by its
//!    role ([`Groups::by_role`]): RAE (one baseline per game and role), REINFORCE, or GRPO,
//!    Dr. GRPO, RLOO, TRLOO over a role's games of the step, optionally REINFORCE++'s batch
//!    normalisation on top; samples with a zero advantage may be dropped
//!    (`advantage.filter_zero`).
//! 4. [`Loop::update`]: the sampling log-probabilities recomputed by the learner, then
//!    `ppo.epochs` passes of PPO-clip minibatches, on tokens or on legal actions, with the
//!    KL, entropy and PPO-ptx terms. The KL's reference is the step-0 model, or with
//!    `ppo.magnet_rate` the moving magnet of magnetic mirror descent ([`Magnet`]), which
//!    trails the policy's weights after every update and is saved in every checkpoint.
//! 5. Every `eval.every` steps ([`Loop::evaluate`]): exact exploitability of the model's
//!    policy (games spar can enumerate) and returns against the evaluation opponents per
//!    seat.
//!
//! With `game.names` the run interleaves several games (SPIRAL's multi-game training): one
//! model and one optimiser, one PPO update on all their turns; RAE baselines are per game and
//! role, and each game is evaluated on its own (`games` in the metrics). The per-game part
//! of the loop is a [`track::Track`].

use std::collections::BTreeMap;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng as _, SeedableRng};
use serde::{Deserialize, Serialize};
use spar_core::{GameSpec, TextOptions};
use spar_lm::sample::SamplingParams;
use spar_lm::score::score_values_at_temperature;
use spar_lm::Llama;

use crate::config::choice::Choice;
use crate::config::{Opponent, TrainConfig};
use crate::error::{Error, Result};
use crate::objectives::advantages::{estimator, AdvantageEstimator, Groups};
use crate::objectives::ppo::{
    action_distributions, action_logprobs, ppo_loss, ppo_loss_actions, Regularisers,
};
use crate::objectives::rae::RoleBaselines;
use crate::players::lm_policy::LmPolicyOptions;
use crate::rollout::prompt::{PromptStyle, Prompting};
use crate::rollout::servers::ServerRollouts;
use crate::rollout::{Decode, Sample};
use crate::trainer::learner::Trained;
use crate::trainer::supervised::nll;
use crate::trainer::{
    checkpoint_dir, complete_checkpoints, AdamW, Batch, Learner, Line, Loop, Settings, StepInfo,
    UpdateStats, WarmStart,
};

mod evaluate;
mod magnet;
mod metrics;
mod pool;
mod track;

pub use magnet::{Magnet, MAGNET_FILE};
pub use metrics::{Evaluation, GameMetrics, GameRollouts, Metrics};
use pool::{pick_pool_member, PoolRecord};
use track::{evaluate_tracks, mixed_warm_start_data, GameTrack, StepContext, Track};

/// Runs (or resumes) the self-play run described by `config` in `out`. `on_metrics` sees
/// every line written to `metrics.jsonl`.
pub fn run(
    config: &TrainConfig,
    out: &Path,
    resume: bool,
    mut on_metrics: impl FnMut(&Line),
) -> Result<Vec<Line>> {
    let mut lp = SelfPlay::new(config)?;
    crate::trainer::run(&mut lp, out, resume, &mut on_metrics)
}

/// What self-play keeps in a checkpoint besides the kernel's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SelfPlayState {
    /// The estimator's state: RAE baselines (exact bit patterns; empty for the others).
    pub baselines: RoleBaselines,
    /// `rollout.opponent = "pool"`: the learner's record against each past checkpoint, by its
    /// step (what prioritised sampling reads).
    #[serde(default, with = "pool::by_step")]
    pool: BTreeMap<usize, PoolRecord>,
}

/// The self-play loop of one configuration: its games ([`Track`]s) and what every step reads.
pub struct SelfPlay {
    config: TrainConfig,
    settings: Settings,
    style: PromptStyle,
    decode: Decode,
    params: SamplingParams,
    tracks: Vec<Box<dyn Track>>,
    /// `[advantage]`'s estimator.
    estimator: Box<dyn AdvantageEstimator>,
    /// The frozen reference of the KL penalty: the model right after the warm start.
    reference: Option<Llama>,
    /// `ppo.magnet_rate > 0`: the moving magnet that replaces `reference` (MMD, app. H.5).
    magnet: Option<Magnet>,
    /// PPO-ptx's supervised term (Ouyang et al. 2022, eq. 2) on the warm-start data.
    sft_data: Vec<(Vec<u32>, Vec<u32>)>,
    /// Rollouts on servers (`rollout.servers`): weights are pushed before each step.
    servers: Option<ServerRollouts>,
    /// The current pool opponent (`rollout.opponent = "pool"`), kept while it is picked again.
    pool_model: Option<(usize, Llama)>,
    /// Server retries before the step's rollouts.
    retries_before: Option<u64>,
}

impl std::fmt::Debug for SelfPlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let games: Vec<&str> = self.tracks.iter().map(|t| t.name()).collect();
        f.debug_struct("SelfPlay").field("games", &games).finish()
    }
}

impl SelfPlay {
    /// The loop of `config`, checked whole (games, players, text options) before anything is
    /// written.
    pub fn new(config: &TrainConfig) -> Result<SelfPlay> {
        config.validate()?;
        let style = config.model.prompt_style;
        let names = config.game.games();
        let mut tracks: Vec<Box<dyn Track>> = Vec::with_capacity(names.len());
        for (index, name) in names.iter().enumerate() {
            let spec = GameSpec::parse(name)
                .map_err(|e| Error::Invalid(format!("config: {}: {e}", config.game.names_key())))?;
            let track: Result<Box<dyn Track>> = spar_games::with_game!(&spec, |game| {
                GameTrack::new(game, &spec.name, config, index, names.len() > 1)
                    .map(|t| Box::new(t) as Box<dyn Track>)
            });
            let track = track?;
            if let Some(other) = tracks.iter().find(|t| t.name() == track.name()) {
                return Err(Error::Invalid(format!(
                    "config: game.names: {name:?} and an earlier entry are both the game {:?}; \
                     list each game once",
                    other.name()
                )));
            }
            tracks.push(track);
        }
        let p = &config.ppo;
        Ok(SelfPlay {
            settings: Settings {
                seed: config.run.seed,
                steps: config.run.steps,
                checkpoint_every: config.run.checkpoint_every,
                tensorboard: config.run.tensorboard,
                max_consecutive_skips: config.run.max_consecutive_skips,
                model: config.model.clone(),
                learning_rate: p.learning_rate,
                weight_decay: p.weight_decay,
                schedule: p.lr_schedule,
                warmup_steps: p.warmup_steps,
                config_toml: config.to_toml(),
                defaults_toml: TrainConfig::default().to_toml(),
                log_learning_rate: true,
            },
            style,
            decode: config.rollout.policy,
            params: sampling(config),
            tracks,
            estimator: estimator(&config.advantage.estimator_settings()),
            reference: None,
            magnet: None,
            sft_data: Vec::new(),
            servers: None,
            pool_model: None,
            retries_before: None,
            config: config.clone(),
        })
    }

    /// The seed of step `step`'s draws (games, sampling, pool choice, minibatch order).
    fn step_seed(&self, step: usize) -> u64 {
        self.config
            .run
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(step as u64)
    }

    /// `rollout.opponent = "pool"`: picks this step's member (a past checkpoint) and loads it.
    fn pick_pool(&mut self, step: &StepInfo, state: &SelfPlayState) -> Result<Option<usize>> {
        if self.config.rollout.opponent != Opponent::Pool {
            return Ok(None);
        }
        let members: Vec<usize> = complete_checkpoints(step.out)
            .into_iter()
            .map(|(s, _)| s)
            .filter(|&s| s < step.index)
            .collect();
        let members = match self.config.rollout.pool_size {
            0 => members,
            k => members[members.len().saturating_sub(k)..].to_vec(),
        };
        if members.is_empty() {
            return Err(Error::Invalid(
                "rollout.opponent = \"pool\": the run has no checkpoint to play against".into(),
            ));
        }
        let mut rng =
            rand_chacha::ChaCha8Rng::seed_from_u64(self.step_seed(step.index) ^ 0x9001_0000);
        let member = pick_pool_member(
            &members,
            &state.pool,
            self.config.rollout.pool_sampling,
            &mut rng,
        );
        if self.pool_model.as_ref().is_none_or(|(s, _)| *s != member) {
            let model = step
                .learner
                .load_frozen(&checkpoint_dir(step.out, member))?;
            self.pool_model = Some((member, model));
        }
        Ok(Some(member))
    }
}

impl Loop for SelfPlay {
    type State = SelfPlayState;
    type Metrics = Metrics;
    const NAME: &'static str = "selfplay";

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn before_warm_start(&mut self, learner: &Learner, line: &mut Metrics) -> Result<()> {
        let e = &self.config.eval;
        if self.config.warm_start.steps > 0 && e.every > 0 && e.games_vs_random > 0 {
            for track in &self.tracks {
                let rate = track.invalid_vs_random(learner, &self.config, self.style)?;
                line.games
                    .entry(track.name().to_string())
                    .or_default()
                    .eval
                    .initial_invalid_rate = Some(rate);
            }
        }
        Ok(())
    }

    fn warm_start(&mut self, learner: &Learner) -> Result<Option<WarmStart>> {
        let w = &self.config.warm_start;
        if w.steps == 0 {
            return Ok(None);
        }
        Ok(Some(WarmStart {
            data: mixed_warm_start_data(&self.tracks, learner, &self.config, self.style)?,
            steps: w.steps,
            batch_size: w.batch_size,
            learning_rate: w.learning_rate,
        }))
    }

    fn prepare(
        &mut self,
        learner: &Learner,
        out: &Path,
        fresh_line: Option<&mut Metrics>,
    ) -> Result<()> {
        if self.config.ppo.magnet_rate > 0.0 {
            // A fresh run's magnet starts at the warm-started model; a resumed run's is the
            // one saved in the checkpoint it resumes from (the latest complete one: damaged
            // later ones were moved aside before this call).
            let (step, dir) = match fresh_line {
                Some(_) => (0, checkpoint_dir(out, 0)),
                None => complete_checkpoints(out).pop().ok_or_else(|| {
                    Error::Invalid(format!("{} has no checkpoint", out.display()))
                })?,
            };
            self.magnet = Some(Magnet::load(&dir, step, learner.model.device())?);
        } else if self.config.ppo.kl_coef > 0.0 {
            self.reference = Some(learner.load_frozen(&checkpoint_dir(out, 0))?);
        }
        if self.config.ppo.sft_coef > 0.0 {
            self.sft_data = mixed_warm_start_data(&self.tracks, learner, &self.config, self.style)?;
        }
        if !self.config.rollout.servers.is_empty() {
            self.servers = Some(ServerRollouts::connect(&self.config.rollout, out)?);
        }
        Ok(())
    }

    fn collect(
        &mut self,
        step: &StepInfo,
        state: &mut SelfPlayState,
        line: &mut Metrics,
    ) -> Result<Batch> {
        let learner = step.learner;
        if let Some(s) = self.servers.as_mut() {
            if s.pushed() != Some(step.index - 1) {
                push_weights(s, learner, step.index - 1)?;
            }
        }
        self.retries_before = self
            .servers
            .as_ref()
            .map(|s| s.engine().stats().client.retries);
        let pool_member = self.pick_pool(step, state)?;
        // Sampling needs no gradient: a detached view of the weights (see Llama::detached).
        let inference = learner.model.detached();
        let local = spar_lm::LocalEngine {
            model: &inference,
            tokenizer: &learner.tokenizer,
        };
        let engine: &dyn spar_lm::Engine = match &self.servers {
            Some(s) => s.engine(),
            None => &local,
        };
        // Every game's episodes; one batch for the update.
        let step_seed = self.step_seed(step.index);
        let mut batch = crate::rollout::Batch::default();
        let mut returns = Vec::new();
        let mut against_opponent = false;
        let multi = self.tracks.len() > 1;
        for (index, track) in self.tracks.iter_mut().enumerate() {
            let context = StepContext {
                engine,
                learner,
                config: &self.config,
                style: self.style,
                params: &self.params,
                decode: self.decode,
                seed: step_seed ^ ((index as u64) << 56),
                pool: pool_member.and(self.pool_model.as_ref().map(|(s, m)| (*s, m))),
            };
            let part = track.rollout(&context)?;
            against_opponent |= part.against_opponent;
            if multi {
                line.games.insert(
                    track.name().to_string(),
                    GameMetrics {
                        rollouts: Some(GameRollouts {
                            episodes: part.batch.returns.len(),
                            invalid_rate: part.batch.invalid_rate(),
                            truncation_rate: part.batch.truncation_rate(),
                            response_tokens: part.batch.mean_response_tokens(),
                        }),
                        ..GameMetrics::default()
                    },
                );
            }
            returns.extend(part.returns);
            batch.append(part.batch);
        }
        if let Some(member) = pool_member {
            let wins = returns
                .iter()
                .filter(|r| r.values().any(|&v| v > 0.0))
                .count() as u64;
            let record = state.pool.entry(member).or_default();
            record.games += returns.len() as u64;
            record.wins += wins;
            line.pool_opponent = Some(member);
            line.pool_win_rate = Some(wins as f64 / returns.len().max(1) as f64);
        }
        line.invalid_rate = batch.invalid_rate();
        line.truncation_rate = batch.truncation_rate();
        line.response_tokens = batch.mean_response_tokens();
        if against_opponent {
            line.opponent_failures = Some(batch.opponent_failures);
        }
        if let (Some(s), Some(before)) = (&self.servers, self.retries_before) {
            line.failed_calls = Some(batch.failed_calls);
            line.server_retries = Some(s.engine().stats().client.retries - before);
            line.weight_version = Some(format!("step-{}", step.index - 1));
        }
        Ok(Batch {
            samples: batch.turns,
            returns,
        })
    }

    fn advantages(
        &mut self,
        _step: &StepInfo,
        batch: &mut Batch,
        state: &mut SelfPlayState,
        line: &mut Metrics,
    ) -> Result<()> {
        let a = &self.config.advantage;
        for s in &mut batch.samples {
            s.reward = batch.returns[s.episode][&s.role.key()];
        }
        // A sample's group is its role: every game the role played in the step.
        let groups = Groups::by_role(&batch.samples, &batch.returns);
        self.estimator
            .estimate(&mut batch.samples, &groups, &mut state.baselines)?;
        batch
            .samples
            .retain(|s| !(s.completion.is_empty() || a.filter_zero && s.advantage == 0.0));
        // Per role, over the episodes it was played in (all of them in self-play; against a
        // fixed opponent, the model's seats split the episodes).
        let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
        for r in &batch.returns {
            for role in r.keys() {
                *counts.entry(role).or_insert(0) += 1;
            }
        }
        for r in &batch.returns {
            for (role, v) in r {
                *line.mean_return.entry(role.clone()).or_insert(0.0) += v / counts[role] as f64;
            }
        }
        line.baseline = state.baselines.values.clone();
        Ok(())
    }

    fn update(
        &mut self,
        step: &StepInfo,
        batch: &mut Batch,
        _state: &mut SelfPlayState,
        opt: &mut AdamW,
    ) -> Result<UpdateStats> {
        let config = &self.config;
        let learner = step.learner;
        let samples = &mut batch.samples;
        let step_seed = self.step_seed(step.index);
        let reg = Regularisers {
            kl_coef: config.ppo.kl_coef,
            kl_estimator: config.ppo.kl_estimator,
            entropy_coef: config.ppo.entropy_coef,
            kl_exact: config.ppo.kl_exact,
        };
        // The KL's reference: the moving magnet, or the fixed warm-started model.
        let reference = self
            .magnet
            .as_ref()
            .map(Magnet::model)
            .or(self.reference.as_ref());
        // The sampling policy's log-probabilities, recomputed by the learner (as SPIRAL does).
        let temperature = config.rollout.temperature;
        for chunk in samples.chunks_mut(config.ppo.minibatch_size) {
            if self.decode == Decode::Legal {
                let refs: Vec<&Sample> = chunk.iter().collect();
                let old = action_logprobs(&learner.model.detached(), &refs, temperature)?;
                // With the exact KL, every legal action's value; else the chosen one's.
                let reference_values = match reference {
                    Some(r) if config.ppo.kl_exact => {
                        Some(action_distributions(r, &refs, temperature)?)
                    }
                    Some(r) => Some(
                        action_logprobs(r, &refs, temperature)?
                            .into_iter()
                            .map(|v| vec![v])
                            .collect(),
                    ),
                    None => None,
                };
                for (i, s) in chunk.iter_mut().enumerate() {
                    s.old_logprobs = vec![old[i]];
                    if let Some(r) = &reference_values {
                        s.ref_logprobs = r[i].clone();
                    }
                }
                continue;
            }
            let pairs: Vec<(Vec<u32>, Vec<u32>)> = chunk
                .iter()
                .map(|s| (s.prompt.clone(), s.completion.clone()))
                .collect();
            let values =
                score_values_at_temperature(&learner.model.detached(), &pairs, temperature)?;
            for (s, v) in chunk.iter_mut().zip(values) {
                s.old_logprobs = v;
            }
            if let Some(reference) = reference {
                let values = score_values_at_temperature(reference, &pairs, temperature)?;
                for (s, v) in chunk.iter_mut().zip(values) {
                    s.ref_logprobs = v;
                }
            }
        }
        let agg = config
            .ppo
            .loss_aggregation
            .aggregation(config.ppo.normaliser);
        let (mut losses, mut clips, mut kls, mut norms) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut ref_kls, mut entropies, mut sft_losses) = (Vec::new(), Vec::new(), Vec::new());
        let mut skipped = 0;
        for epoch in 0..config.ppo.epochs {
            let mut order: Vec<usize> = (0..samples.len()).collect();
            let mut rng =
                rand_chacha::ChaCha8Rng::seed_from_u64(step_seed ^ ((epoch as u64 + 1) << 40));
            order.shuffle(&mut rng);
            for idx in order.chunks(config.ppo.minibatch_size) {
                let mb: Vec<&Sample> = idx.iter().map(|&i| &samples[i]).collect();
                let (mut loss, stats) = if self.decode == Decode::Legal {
                    ppo_loss_actions(&learner.model, &mb, config.ppo.clip, temperature, &reg)?
                } else {
                    ppo_loss(&learner.model, &mb, config.ppo.clip, temperature, agg, &reg)?
                };
                let mut sft_value = None;
                if !self.sft_data.is_empty() {
                    let batch: Vec<(Vec<u32>, Vec<u32>)> = (0..config.warm_start.batch_size)
                        .map(|_| self.sft_data[rng.gen_range(0..self.sft_data.len())].clone())
                        .collect();
                    let sft = nll(&learner.model, &batch)?;
                    sft_value = Some(f64::from(sft.to_scalar::<f32>()?));
                    loss = (loss + (sft * config.ppo.sft_coef)?)?;
                }
                if !stats.loss.is_finite() {
                    skipped += 1;
                    continue;
                }
                let Some(applied) = opt.apply(&loss, config.ppo.max_grad_norm)? else {
                    skipped += 1;
                    continue;
                };
                losses.push(stats.loss);
                clips.push(stats.clip_fraction);
                kls.push(stats.approx_kl);
                ref_kls.push(stats.kl_ref);
                sft_losses.extend(sft_value);
                entropies.push(stats.entropy);
                norms.push(applied.grad_norm);
            }
        }
        let has_reference = reference.is_some();
        if let Some(magnet) = self.magnet.as_mut() {
            // MMD app. H.5: the magnet trails the updated policy (magnet.rs).
            magnet.trail(&learner.named_vars(), config.ppo.magnet_rate)?;
        }
        let mean = |v: &[f64]| {
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        Ok(UpdateStats {
            samples: samples.len(),
            minibatches: losses.len(),
            skipped,
            loss: mean(&losses),
            clip_fraction: mean(&clips),
            approx_kl: mean(&kls),
            grad_norm: mean(&norms),
            kl_ref: has_reference.then(|| mean(&ref_kls)),
            entropy: (config.ppo.entropy_coef != 0.0).then(|| mean(&entropies)),
            sft_loss: (!self.sft_data.is_empty()).then(|| mean(&sft_losses)),
            divergence: None,
            pair_accuracy: None,
            pair_margin: None,
        })
    }

    fn evaluates(&self, step: usize, last: bool) -> bool {
        let every = self.config.eval.every;
        step == 0 || every > 0 && (step.is_multiple_of(every) || last)
    }

    fn evaluate(&mut self, step: &StepInfo, line: &mut Metrics) -> Result<()> {
        let (config, style) = (&self.config, self.style);
        evaluate_tracks(&self.tracks, step.learner, config, style, step.index, line)?;
        if !(step.last && step.index > 0 && config.eval.average) {
            return Ok(());
        }
        for track in &self.tracks {
            let Some(g) = line
                .games
                .get_mut(track.name())
                .filter(|g| g.eval.exploitability.is_some())
            else {
                continue;
            };
            g.eval.avg_exploitability =
                track.average_exploitability(step.learner, config, style, step.out)?;
        }
        Ok(())
    }

    fn write_checkpoint_files(&self, dir: &Path) -> Result<()> {
        if let Some(magnet) = &self.magnet {
            magnet.save(dir)?;
        }
        let c = &self.config;
        Prompting {
            game: c.game.name.clone(),
            protocol: c.game.protocol.name().to_string(),
            prompt_style: c.model.prompt_style.name().to_string(),
            view: c.game.view.name().to_string(),
            temperature: c.rollout.temperature,
            max_tokens: c.rollout.max_tokens,
            policy: c.rollout.policy.name().to_string(),
        }
        .save(dir)
    }
}

/// Writes the learner's weights for `step` and pushes them to the rollout servers.
fn push_weights(servers: &mut ServerRollouts, learner: &Learner, step: usize) -> Result<()> {
    let dir = servers.dir_for(step);
    let io = |e| Error::io(&dir, e);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io)?;
    }
    std::fs::create_dir_all(&dir).map_err(io)?;
    learner.save(&dir)?;
    match &learner.trained {
        Trained::Full(_) => servers.push_full(step),
        Trained::Lora { base, .. } => servers.push_adapter(base, step),
    }
}

/// `[game]`'s protocol, invalid-move rule, turn limit and view.
fn game_text_options(g: &crate::config::GameConfig) -> TextOptions {
    TextOptions {
        protocol: g.protocol.protocol(),
        invalid_move_rule: g.invalid_move_rule,
        max_turns: Some(g.max_turns),
        view: g.view,
    }
}

/// How the model samples in rollouts and evaluation games.
fn sampling(config: &TrainConfig) -> SamplingParams {
    SamplingParams {
        temperature: config.rollout.temperature,
        max_tokens: config.rollout.max_tokens,
        ..SamplingParams::default()
    }
}

/// How the model's exact policy is tabulated (the rollouts' temperature and prompts).
fn policy_options(config: &TrainConfig, style: PromptStyle) -> LmPolicyOptions {
    LmPolicyOptions {
        temperature: config.rollout.temperature,
        style,
        ..LmPolicyOptions::default()
    }
}
#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{Device, Tensor};
    use spar_lm::lora::Lora;

    use super::*;
    use crate::trainer::learner::fresh_learner;
    use crate::trainer::RunState;

    fn bits(tensors: &HashMap<String, Tensor>) -> Vec<(String, Vec<u32>)> {
        let mut out: Vec<(String, Vec<u32>)> = tensors
            .iter()
            .map(|(name, t)| {
                let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
                (name.clone(), v.iter().map(|x| x.to_bits()).collect())
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn lora_training_changes_only_the_adapter_and_the_checkpoint_reloads_the_same_model() {
        let config = TrainConfig::parse(
            "[run]\nseed = 3\n[model]\nhidden = 16\nlayers = 1\nheads = 2\n\
             prompt_style = \"raw\"\n[model.lora]\nr = 2\nalpha = 4.0\n\
             targets = [\"q_proj\", \"v_proj\", \"down_proj\"]\n[warm_start]\nsteps = 4\n\
             episodes = 4\nbatch_size = 4\n[game]\nview = \"compact\"\n",
            &[],
        )
        .unwrap();
        let out = std::env::temp_dir().join(format!("spar-rl-lora-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let learner = fresh_learner(&config.model, config.run.seed, &out, &Device::Cpu).unwrap();
        let trained: Vec<String> = learner.named_vars().into_iter().map(|(n, _)| n).collect();
        assert_eq!(trained.len(), 2 * 3, "A and B of three projections");
        assert!(trained.iter().all(|n| n.contains(".lora_")), "{trained:?}");
        let base_before = bits(&learner.checkpoint.tensors);
        let ids = learner.tokenizer.encode("Player 0\n0").unwrap();
        let logits = |model: &Llama| spar_lm::score::next_token_logits(model, &ids).unwrap();
        let base_logits = logits(&learner.checkpoint.frozen().unwrap());
        assert_eq!(
            logits(&learner.model),
            base_logits,
            "a fresh adapter (B = 0) is a no-op"
        );

        let mut lp = SelfPlay::new(&config).unwrap();
        let w = lp.warm_start(&learner).unwrap().expect("a warm start");
        let loss = crate::trainer::supervised::supervised_steps(
            &learner,
            &w.data,
            w.steps,
            w.batch_size,
            w.learning_rate,
        )
        .unwrap();
        assert!(loss.is_some_and(f64::is_finite));
        let trained_logits = logits(&learner.model);
        assert_ne!(trained_logits, base_logits, "the adapter learned");
        // The base tensors are bit for bit what they were, and the model without its adapter
        // is the base again.
        assert_eq!(bits(&learner.checkpoint.tensors), base_before);
        let mut bare = learner.model.clone();
        Lora::detach(&mut bare);
        assert_eq!(logits(&bare), base_logits);

        // The checkpoint loads through load_model as the same model, and base.json names the
        // scratch base saved in the run directory.
        let opt = AdamW::new(learner.named_vars(), 1e-3, 0.0).unwrap();
        let state = RunState {
            step: 0,
            optimizer_step: 0,
            skipped_updates: 0,
            consecutive_skips: 0,
            custom: SelfPlayState::default(),
        };
        crate::trainer::checkpoint::save(&lp, &out, &learner, &opt, &state).unwrap();
        let dir = checkpoint_dir(&out, 0);
        assert_eq!(
            spar_lm::load::lora_base(&dir).unwrap(),
            std::path::absolute(out.join("base")).unwrap()
        );
        let loaded =
            spar_lm::load::load_model(&dir, spar_lm::load::GgufMode::Quantized, &Device::Cpu)
                .unwrap();
        assert_eq!(logits(&loaded.model), trained_logits);
        // load_checkpoint merges the adapter: the same model up to rounding.
        let merged = spar_lm::load::load_checkpoint(&dir, &Device::Cpu)
            .unwrap()
            .frozen()
            .unwrap();
        let gap = logits(&merged)
            .iter()
            .zip(&trained_logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(gap < 1e-4, "merged logits differ by {gap}");
        // The learner restored from the checkpoint trains the same variables.
        let back = Learner::load(&dir, &Device::Cpu).unwrap();
        assert_eq!(logits(&back.model), trained_logits);
        let mut names: Vec<String> = back.named_vars().into_iter().map(|(n, _)| n).collect();
        let mut expected = trained.clone();
        names.sort();
        expected.sort();
        assert_eq!(names, expected);
        std::fs::remove_dir_all(&out).unwrap();
    }
}
