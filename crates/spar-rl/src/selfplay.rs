//! The SPIRAL self-play loop (Liu et al. 2025), readable top to bottom: [`run`].
//!
//! 1. Build or load the model; a fresh run first learns the answer protocol by supervised
//!    training on transcripts of random legal play (the warm start), then checkpoints step 0.
//! 2. Every step: play `rollout.episodes` games with the model in both seats (self-play, one
//!    set of weights), turn every model turn into a sample, estimate advantages (RAE or
//!    REINFORCE), recompute the sampling log-probabilities, and run `ppo.epochs` passes of
//!    PPO-clip minibatches (AdamW, gradient-norm clipping; a non-finite loss or gradient skips
//!    the step and is counted, never applied).
//! 3. Every `eval.every` steps: exact exploitability of the model's policy (games spar can
//!    enumerate) and the mean return against the uniform random player in each seat.
//! 4. Metrics go to `metrics.jsonl`; checkpoints (weights, optimiser moments, RAE baselines,
//!    step) to `checkpoints/step-NNNNNN/`, written to a temporary directory and renamed.
//!
//! With `[model.lora]` the base weights are frozen and only a LoRA adapter is trained (warm
//! start, PPO and PPO-ptx alike); checkpoints then hold the adapter in PEFT layout and
//! `base.json` naming the base (`model.init`, or `base/` of the run for a scratch model).
//!
//! Every random draw is a function of `run.seed` and the step (games, sampling, minibatch
//! order), so a run resumed from a checkpoint continues exactly as if it had not stopped.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng as _, SeedableRng};
use serde::{Deserialize, Serialize};
use spar_core::text::protocol_by_name;
use spar_core::{
    Env, Game, GameSpec, GameText, InvalidMoveRule, TabularPolicy, TextGame, TextOptions,
};
use spar_eval::{CfrSolver, CfrVariant};
use spar_games::heuristic::Heuristic;
use spar_games::text::TextView;
use spar_lm::checkpoint::{write_atomic, Checkpoint};
use spar_lm::config::Config;
use spar_lm::lora::Lora;
use spar_lm::model::init_weights;
use spar_lm::sample::SamplingParams;
use spar_lm::score::{score, score_values_at_temperature};
use spar_lm::train::BYTE_SPECIAL_TOKENS;
use spar_lm::{Llama, TextTokenizer};

use crate::advantage::{reinforce, RaeUpdate, RoleBaselines};
use crate::config::{LoraSettings, TrainConfig};
use crate::error::{Error, Result};
use crate::lm_player::{LmPlayer, LocalAnswerer};
use crate::lm_policy::{tabulate, LmPolicyOptions};
use crate::players::make_any_player;
use crate::ppo::{
    action_logprobs, ppo_loss, ppo_loss_actions, AdamW, Aggregation, LrSchedule, Regularisers,
    Sample,
};
use crate::prompt::{completion_ids, prompt_ids, PromptStyle, Prompting};
use crate::rollout::{play_batch, Batch, Decode, Seat};
use crate::run_files::MetricsLog;
use crate::server_rollouts::ServerRollouts;

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Policy-improvement steps done (0: after the warm start).
    pub step: usize,
    /// Mean return of each role over the step's self-play games.
    pub mean_return: BTreeMap<String, f64>,
    /// RAE baseline of each role after the step.
    pub baseline: BTreeMap<String, f64>,
    /// Fraction of model turns that named no legal action.
    pub invalid_rate: f64,
    /// Fraction of model turns cut by `rollout.max_tokens`.
    pub truncation_rate: f64,
    /// Mean answer length in tokens.
    pub response_tokens: f64,
    /// Samples trained on (after dropping zero advantages).
    pub samples: usize,
    /// Mean PPO loss over minibatches.
    pub loss: f64,
    /// Mean fraction of clipped token ratios.
    pub clip_fraction: f64,
    /// Mean k1 estimate of KL(old policy || new policy) per token.
    pub approx_kl: f64,
    /// Mean gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate of the step's updates.
    #[serde(default)]
    pub learning_rate: f64,
    /// Mean per-token KL estimate to the frozen reference (with a KL penalty).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kl_ref: Option<f64>,
    /// Mean per-token entropy of the next-token distribution (with an entropy bonus).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub entropy: Option<f64>,
    /// Mean supervised loss on the warm-start data (with `ppo.sft_coef`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sft_loss: Option<f64>,
    /// Optimiser steps skipped for a non-finite loss or gradient (cumulative).
    pub skipped_updates: usize,
    /// `rollout.servers`: model turns whose server call failed after every retry (each an
    /// invalid answer) in this step's rollouts.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub failed_calls: Option<usize>,
    /// `rollout.servers`: retried server calls in this step (timeouts, resets, 429, 5xx).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub server_retries: Option<u64>,
    /// `eval.opponents`: mean return per model seat against each opponent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vs_players: Option<BTreeMap<String, Vec<f64>>>,
    /// `eval.opponents`: win rate per model seat against each opponent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub win_rate_vs_players: Option<BTreeMap<String, Vec<f64>>>,
    /// `rollout.opponent = "pool"`: the step of the checkpoint the learner played.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pool_opponent: Option<usize>,
    /// `rollout.opponent = "pool"`: the learner's win rate against it in this step's games.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pool_win_rate: Option<f64>,
    /// A fixed opponent (`rollout.opponent`): its turns that named no action (a language-model
    /// opponent's invalid answer or failed call), each an invalid move under the game's rule.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub opponent_failures: Option<usize>,
    /// `rollout.servers`: the weight version the servers sampled this step's rollouts with.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub weight_version: Option<String>,
    /// Warm-start loss (step 0 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_start_loss: Option<f64>,
    /// Exact NashConv of the model's policy (eval steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nash_conv: Option<f64>,
    /// Exact exploitability (NashConv / 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exploitability: Option<f64>,
    /// Mean probability of answers outside the legal ones, over information sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outside_mass: Option<f64>,
    /// Mean return against the uniform random player, per model seat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_random: Option<Vec<f64>>,
    /// Fraction of the model's turns in the games against the random player that named no
    /// legal action (the evaluation's invalid-move rate: measured alike at every evaluation
    /// step, step 0 included, where no rollouts have been played).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub invalid_vs_random: Option<f64>,
    /// Step 0 of a run with a warm start: the same invalid-move rate for the model as it was
    /// before the warm start (a pretrained model that does not know the answer protocol).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub initial_invalid_rate: Option<f64>,
    /// Mean return against the CFR+ policy, per model seat (its game value is the model's
    /// target: Kuhn -1/18 as player 0, +1/18 as player 1).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vs_cfr: Option<Vec<f64>>,
    /// Exploitability of the average of the run's policies (last step, `eval.average`): the
    /// checkpoints after step 0 and the final model, averaged by own reach (playing it = one
    /// of them, drawn uniformly at the start of each game). Written to `average_policy.json`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub avg_exploitability: Option<f64>,
    /// Win rate (return > 0) against the CFR+ policy, per model seat.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub win_rate_vs_cfr: Option<Vec<f64>>,
    /// Multi-game runs (`game.names`): each game's rollouts and evaluation. The fields above
    /// then hold the rollouts of all games together and no evaluation.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub games: BTreeMap<String, GameMetrics>,
    /// Wall-clock seconds of the step.
    pub seconds: f64,
}

/// One game's share of a step of a multi-game run: its rollouts and, on evaluation steps,
/// the same evaluation a one-game run writes (see [`Metrics`] for each field).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GameMetrics {
    /// Episodes of this game played in the step's rollouts.
    #[serde(default)]
    pub episodes: usize,
    /// Fraction of the model's turns in this game that named no legal action.
    #[serde(default)]
    pub invalid_rate: f64,
    /// Fraction of the model's turns in this game cut by `rollout.max_tokens`.
    #[serde(default)]
    pub truncation_rate: f64,
    /// Mean answer length in tokens in this game.
    #[serde(default)]
    pub response_tokens: f64,
    /// Exact NashConv (games spar can enumerate).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nash_conv: Option<f64>,
    /// Exact exploitability.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exploitability: Option<f64>,
    /// Mean probability of answers outside the legal ones.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub outside_mass: Option<f64>,
    /// Mean return against the uniform random player, per model seat.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vs_random: Option<Vec<f64>>,
    /// Fraction of the model's turns against the random player that were invalid.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub invalid_vs_random: Option<f64>,
    /// Step 0: the invalid fraction of the model before its warm start (see [`Metrics`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub initial_invalid_rate: Option<f64>,
    /// Mean return against the CFR+ policy, per model seat.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vs_cfr: Option<Vec<f64>>,
    /// Win rate against the CFR+ policy, per model seat.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub win_rate_vs_cfr: Option<Vec<f64>>,
    /// Mean return per model seat against each `eval.opponents` entry.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vs_players: Option<BTreeMap<String, Vec<f64>>>,
    /// Win rate per model seat against each `eval.opponents` entry.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub win_rate_vs_players: Option<BTreeMap<String, Vec<f64>>>,
    /// Exploitability of the average of the run's policies (last step, `eval.average`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub avg_exploitability: Option<f64>,
}

impl Metrics {
    /// A one-game run's evaluation, in the line's own fields.
    fn set_evaluation(&mut self, e: &GameMetrics) {
        self.nash_conv = e.nash_conv;
        self.exploitability = e.exploitability;
        self.outside_mass = e.outside_mass;
        self.vs_random = e.vs_random.clone();
        self.invalid_vs_random = e.invalid_vs_random;
        if e.initial_invalid_rate.is_some() {
            self.initial_invalid_rate = e.initial_invalid_rate;
        }
        self.vs_cfr = e.vs_cfr.clone();
        self.win_rate_vs_cfr = e.win_rate_vs_cfr.clone();
        self.vs_players = e.vs_players.clone();
        self.win_rate_vs_players = e.win_rate_vs_players.clone();
    }
}

/// Everything besides weights and optimiser moments that a checkpoint holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RunState {
    step: usize,
    optimizer_step: u64,
    skipped_updates: usize,
    /// RAE baselines as exact bit patterns of the f64 values.
    baselines: BTreeMap<String, u64>,
    /// `rollout.opponent = "pool"`: the learner's record against each past checkpoint, by its
    /// step (what prioritised sampling reads).
    #[serde(default)]
    pool: BTreeMap<usize, PoolRecord>,
}

/// The learner's games and wins against one member of the opponent pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct PoolRecord {
    games: u64,
    wins: u64,
}

/// Picks the pool member (a checkpoint step) the learner plays this step.
///
/// * `latest`: the newest checkpoint (self-play against the last snapshot);
/// * `uniform`: every member alike (fictitious self-play over snapshots);
/// * `prioritised`: prioritised fictitious self-play (Vinyals et al. 2019, "Grandmaster level
///   in StarCraft II", PFSP with f(x) = (1 - x)^2): weight `(1 - p)^2` where `p` is the
///   learner's win rate against the member, `(wins + 1) / (games + 2)` so unseen members
///   count as even.
fn pick_pool_member(
    members: &[usize],
    records: &BTreeMap<usize, PoolRecord>,
    rule: &str,
    rng: &mut impl rand::Rng,
) -> usize {
    match rule {
        "latest" => *members.last().expect("a non-empty pool"),
        "prioritised" => {
            let weights: Vec<f64> = members
                .iter()
                .map(|m| {
                    let r = records.get(m).copied().unwrap_or_default();
                    let p = (r.wins as f64 + 1.0) / (r.games as f64 + 2.0);
                    (1.0 - p).powi(2) + 1e-6
                })
                .collect();
            let total: f64 = weights.iter().sum();
            let mut u = rng.gen::<f64>() * total;
            for (m, w) in members.iter().zip(&weights) {
                if u < *w {
                    return *m;
                }
                u -= w;
            }
            *members.last().expect("a non-empty pool")
        }
        _ => members[rng.gen_range(0..members.len())],
    }
}

/// What the optimisers (warm start, PPO, PPO-ptx) train.
pub(crate) enum Trained {
    /// Every weight of the model (full fine-tuning), by Hugging Face name.
    Full(candle_nn::VarMap),
    /// Only a LoRA adapter over the frozen base (`[model.lora]`); `base` is the base model's
    /// path, written to each checkpoint's `base.json`.
    Lora { lora: Box<Lora>, base: PathBuf },
}

/// The model, what of it is trained, and its tokenizer.
pub(crate) struct Learner {
    /// The weights the model was built from (with LoRA: the frozen base, never updated).
    pub(crate) checkpoint: Checkpoint,
    pub(crate) model: Llama,
    pub(crate) trained: Trained,
    pub(crate) tokenizer: TextTokenizer,
}

pub(crate) fn tokenizer_of(checkpoint: &Checkpoint) -> Result<TextTokenizer> {
    checkpoint
        .tokenizer
        .clone()
        .ok_or_else(|| Error::Invalid("the model has no tokenizer (tokenizer.json)".into()))
}

impl Learner {
    /// Full fine-tuning: every weight of `checkpoint` a variable.
    fn from_checkpoint(checkpoint: Checkpoint) -> Result<Learner> {
        let tokenizer = tokenizer_of(&checkpoint)?;
        let (model, varmap) = checkpoint.trainable()?;
        Ok(Learner {
            checkpoint,
            model,
            trained: Trained::Full(varmap),
            tokenizer,
        })
    }

    /// LoRA: a fresh adapter (`B = 0`, `A` drawn from `seed`) over the frozen `checkpoint`,
    /// whose files are at `base`.
    fn with_new_adapter(
        checkpoint: Checkpoint,
        settings: &LoraSettings,
        seed: u64,
        base: PathBuf,
    ) -> Result<Learner> {
        let tokenizer = tokenizer_of(&checkpoint)?;
        let mut model = checkpoint.frozen()?;
        let mut lora_config = settings.lora_config();
        lora_config.base_model_name_or_path = Some(base.display().to_string());
        let lora = Lora::init(&mut model, lora_config, seed)?;
        Ok(Learner {
            checkpoint,
            model,
            trained: Trained::Lora {
                lora: Box::new(lora),
                base,
            },
            tokenizer,
        })
    }

    /// The learner saved in a checkpoint directory of a run: full weights, or a LoRA
    /// checkpoint (the base named by `base.json`, frozen, and the adapter's variables).
    pub(crate) fn load(dir: &Path, device: &Device) -> Result<Learner> {
        if !spar_lm::cli::is_lora_checkpoint(dir) {
            return Learner::from_checkpoint(Checkpoint::load(dir, device)?);
        }
        let base = spar_lm::cli::lora_base(dir)?;
        let checkpoint = spar_lm::cli::load_checkpoint(&base, device)?;
        let tokenizer = tokenizer_of(&checkpoint)?;
        let mut model = checkpoint.frozen()?;
        let lora = Lora::load(dir, device)?;
        lora.attach(&mut model)?;
        Ok(Learner {
            checkpoint,
            model,
            trained: Trained::Lora {
                lora: Box::new(lora),
                base,
            },
            tokenizer,
        })
    }

    /// The trained variables by name (with LoRA: the adapter's `A` and `B` only).
    pub(crate) fn named_vars(&self) -> Vec<(String, candle_core::Var)> {
        let varmap = match &self.trained {
            Trained::Full(varmap) => varmap,
            Trained::Lora { lora, .. } => &lora.varmap,
        };
        let data = varmap.data().lock().expect("VarMap lock");
        data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// A frozen copy of the model saved in checkpoint `dir` of this run: its own tensors,
    /// never the learner's variables (with LoRA: the base and a copy of that adapter).
    pub(crate) fn load_frozen(&self, dir: &Path) -> Result<Llama> {
        let device = self.model.device();
        match &self.trained {
            Trained::Full(_) => Ok(Checkpoint::load(dir, device)?.frozen()?),
            Trained::Lora { .. } => {
                let mut model = self.checkpoint.frozen()?;
                Lora::load(dir, device)?.attach(&mut model)?;
                // The loaded adapter's tensors are variables: detach them.
                Ok(model.detached())
            }
        }
    }

    /// Writes the model into `dir`: a checkpoint (full), or the adapter in PEFT layout with
    /// `base.json` and the base's `config.json` and tokenizer files (LoRA).
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        match &self.trained {
            Trained::Full(varmap) => Checkpoint {
                tensors: spar_lm::checkpoint::varmap_tensors(varmap),
                ..self.checkpoint.clone()
            }
            .save(dir)?,
            Trained::Lora { lora, base } => {
                lora.save(dir)?;
                spar_lm::cli::write_lora_base(dir, base)?;
                write_atomic(
                    &dir.join("config.json"),
                    self.checkpoint.config.to_json().as_bytes(),
                )?;
                self.tokenizer.save(dir)?;
            }
        }
        Ok(())
    }
}

/// Writes the learner's weights for `step` and pushes them to the rollout servers.
fn push_weights(servers: &mut ServerRollouts, learner: &Learner, step: usize) -> Result<()> {
    let dir = servers.dir_for(step);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    learner.save(&dir)?;
    match &learner.trained {
        Trained::Full(_) => servers.push_full(step),
        Trained::Lora { base, .. } => servers.push_adapter(base, step),
    }
}

fn fresh_model(m: &crate::config::ModelConfig, seed: u64, device: &Device) -> Result<Checkpoint> {
    if m.init == "scratch" {
        let tokenizer = TextTokenizer::byte_level(&BYTE_SPECIAL_TOKENS)?;
        let mut cfg = Config::tiny(tokenizer.vocab_size(), m.hidden, m.layers, m.heads);
        cfg.eos_token_id = Some(256);
        cfg.validate()?;
        Ok(Checkpoint {
            tensors: init_weights(&cfg, 0.02, seed, device)?,
            config: cfg,
            tokenizer: Some(tokenizer),
        })
    } else {
        Ok(spar_lm::cli::load_checkpoint(Path::new(&m.init), device)?)
    }
}

/// The learner of a fresh run: full fine-tuning, or (`[model.lora]`) a fresh adapter seeded by
/// `run.seed` over the frozen base. A scratch base is saved once as `out/base/` (LoRA
/// checkpoints name it in `base.json`); a loaded base is named by its absolute path.
pub(crate) fn fresh_learner(
    model: &crate::config::ModelConfig,
    seed: u64,
    out: &Path,
    device: &Device,
) -> Result<Learner> {
    let checkpoint = fresh_model(model, seed, device)?;
    let Some(settings) = &model.lora else {
        return Learner::from_checkpoint(checkpoint);
    };
    let base = if model.init == "scratch" {
        let base = std::path::absolute(out.join("base")).map_err(|e| io_err(out, e))?;
        write_dir_atomically(&base, &out.join(".tmp-base"), |tmp| {
            Ok(checkpoint.save(tmp)?)
        })?;
        base
    } else {
        let init = Path::new(&model.init);
        std::path::absolute(init).map_err(|e| io_err(init, e))?
    };
    Learner::with_new_adapter(checkpoint, settings, seed, base)
}

fn text_options(config: &TrainConfig) -> Result<TextOptions> {
    game_text_options(&config.game)
}

fn game_text_options(g: &crate::config::GameConfig) -> Result<TextOptions> {
    let protocol = protocol_by_name(&g.protocol).ok_or_else(|| {
        Error::Invalid(format!(
            "config: game.protocol {:?} is not boxed, bracketed or bare",
            g.protocol
        ))
    })?;
    let rule: InvalidMoveRule = g
        .invalid_move_rule
        .parse()
        .map_err(|e| Error::Invalid(format!("config: game.invalid_move_rule: {e}")))?;
    Ok(TextOptions {
        protocol,
        invalid_move_rule: rule,
        max_turns: Some(g.max_turns),
        view: g
            .view
            .parse()
            .map_err(|e: String| Error::Invalid(format!("config: game.view: {e}")))?,
    })
}

/// Where a run keeps its checkpoints.
pub fn checkpoint_dir(out: &Path, step: usize) -> PathBuf {
    out.join("checkpoints").join(format!("step-{step:06}"))
}

/// The latest complete checkpoint of a run directory (one with `state.json`).
pub fn latest_checkpoint(out: &Path) -> Option<(usize, PathBuf)> {
    complete_checkpoints(out).pop()
}

/// The complete checkpoints of a run directory (those with `state.json`), by step.
pub fn complete_checkpoints(out: &Path) -> Vec<(usize, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(out.join("checkpoints")) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step-")?.parse::<usize>().ok()?;
            entry
                .path()
                .join("state.json")
                .exists()
                .then(|| (step, entry.path()))
        })
        .collect();
    found.sort();
    found
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

fn save_checkpoint(
    out: &Path,
    learner: &Learner,
    opt: &AdamW,
    state: &RunState,
    config: &TrainConfig,
) -> Result<()> {
    crate::run_files::save_checkpoint(out, state.step, opt, state, |tmp| {
        learner.save(tmp)?;
        Prompting {
            game: config.game.name.clone(),
            protocol: config.game.protocol.clone(),
            prompt_style: config.model.prompt_style.clone(),
            view: config.game.view.clone(),
            temperature: config.rollout.temperature,
            max_tokens: config.rollout.max_tokens,
            policy: config.rollout.policy.clone(),
        }
        .save(tmp)
    })
}

/// Fills `tmp` with `write`, then renames it to `final_dir` (replacing it), so that a reader
/// (or a resume after SIGKILL) sees the whole directory or none of it.
pub(crate) fn write_dir_atomically(
    final_dir: &Path,
    tmp: &Path,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    if tmp.exists() {
        std::fs::remove_dir_all(tmp).map_err(|e| io_err(tmp, e))?;
    }
    std::fs::create_dir_all(tmp).map_err(|e| io_err(tmp, e))?;
    write(tmp)?;
    if final_dir.exists() {
        std::fs::remove_dir_all(final_dir).map_err(|e| io_err(final_dir, e))?;
    }
    std::fs::rename(tmp, final_dir).map_err(|e| io_err(final_dir, e))
}

pub(crate) fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Lm(spar_lm::LmError::io(path, e))
}

/// Runs (or resumes) the self-play run described by `config` in `out`. `on_metrics` sees
/// every line written to `metrics.jsonl`.
///
/// With `game.names` the run interleaves several games (SPIRAL's multi-game training): one
/// model and one optimiser, every step `rollout.episodes` games of each, one PPO update on
/// all their turns; RAE baselines are per game and role, and each game is evaluated on its
/// own (`games` in the metrics).
pub fn run(
    config: &TrainConfig,
    out: &Path,
    resume: bool,
    mut on_metrics: impl FnMut(&Metrics),
) -> Result<Vec<Metrics>> {
    config.validate()?;
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
    run_tracks(&mut tracks, config, out, resume, &mut on_metrics)
}

/// What the loop asks of one game of a run, whatever its type: the game-specific parts of
/// SPIRAL's loop (text environment, opponents, CFR+ policy, evaluation) behind one object, so
/// that a run can interleave several games.
trait Track {
    /// The game's name (the prefix of its roles: `kuhn/player0`).
    fn name(&self) -> &str;
    /// The warm start's supervised data for this game.
    fn warm_start_data(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
    ) -> Result<Vec<(Vec<u32>, Vec<u32>)>>;
    /// This step's games: the batch and, per episode, the return of each role the model
    /// played.
    fn rollout(&mut self, step: &StepContext) -> Result<TrackRollout>;
    /// Exploitability and returns against the evaluation opponents, into `e`.
    fn evaluate(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
        e: &mut GameMetrics,
    ) -> Result<()>;
    /// The invalid-move rate of the model in games against the random player (before the
    /// warm start: `initial_invalid_rate`).
    fn invalid_vs_random(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
    ) -> Result<f64>;
    /// The exploitability of the average of the run's policies (`eval.average`).
    fn average_exploitability(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
        out: &Path,
    ) -> Result<Option<f64>>;
}

/// What every game's rollouts of one step share.
struct StepContext<'a> {
    engine: &'a dyn spar_lm::Engine,
    learner: &'a Learner,
    config: &'a TrainConfig,
    style: PromptStyle,
    params: &'a SamplingParams,
    decode: Decode,
    /// The step's seed (already distinct per game).
    seed: u64,
    /// `rollout.opponent = "pool"`: the member's step and its frozen model.
    pool: Option<(usize, &'a Llama)>,
}

/// One game's rollouts of a step.
struct TrackRollout {
    batch: Batch,
    returns: Vec<BTreeMap<String, f64>>,
    /// The model played a fixed or pool opponent (not itself).
    against_opponent: bool,
}

/// A game of the run and its fixed players.
struct GameTrack<G: TextView> {
    game: G,
    name: String,
    /// `[game]`: the text protocol, rule, turn limit and view (checked when the track is
    /// built).
    text: crate::config::GameConfig,
    /// `rollout.opponent` when it names a player (not self or pool).
    opponent: Option<BoxedPlayer<G::State>>,
    /// `eval.opponents` that apply to this game.
    eval_opponents: Vec<NamedPlayer<G::State>>,
    /// The CFR+ opponent of the evaluation (games spar can enumerate).
    cfr: Option<TabularPolicy>,
    /// The current pool opponent, kept while it is picked again.
    pool_player: Option<(usize, BoxedPlayer<G::State>)>,
    /// Seeds of game `index > 0` are xored with this (0 for the first game, so a one-game
    /// run draws exactly what it drew before multi-game runs existed).
    salt: u64,
    /// One of several games of the run.
    multi: bool,
    /// Exact evaluations (exploitability, CFR+) of this game (`eval.exact_games`).
    exact: bool,
}

impl<G: TextView + Heuristic + Clone + 'static> GameTrack<G> {
    fn new(
        game: G,
        registry_name: &str,
        config: &TrainConfig,
        index: usize,
        multi: bool,
    ) -> Result<GameTrack<G>> {
        let name = game.info().name.clone();
        let salt = (index as u64) << 56;
        let mut counters = Vec::new();
        let opponent = match config.rollout.opponent.as_str() {
            "self" | "pool" => None,
            spec => Some(
                make_any_player(
                    &game,
                    spec,
                    &config.opponent_options(spec),
                    config.run.seed ^ 0x0990_0000 ^ salt,
                    &mut counters,
                )
                .map_err(|e| in_game(e, &name, multi))?,
            ),
        };
        let run_games: Vec<String> = config
            .game
            .games()
            .iter()
            .filter_map(|g| GameSpec::parse(g).ok().map(|s| s.name))
            .collect();
        let mut eval_opponents = Vec::new();
        for (i, entry) in config.eval.opponents.iter().enumerate() {
            // `SPEC@GAME`: this opponent only in that game of a multi-game run.
            let spec = match entry.rsplit_once('@') {
                Some((spec, only)) if run_games.iter().any(|g| g == only) => {
                    if only != registry_name {
                        continue;
                    }
                    spec
                }
                _ => entry.as_str(),
            };
            let player = make_any_player(
                &game,
                spec,
                &config.opponent_options(spec),
                config.run.seed ^ 0x0e7a_0000 ^ i as u64 ^ salt,
                &mut counters,
            )
            .map_err(|e| in_game(e, &name, multi))?;
            eval_opponents.push((spec.to_string(), player));
        }
        let exact = config.eval.exact_games.is_empty()
            || config.eval.exact_games.iter().any(|g| g == registry_name);
        Ok(GameTrack {
            cfr: if exact {
                cfr_opponent(&game, config)
            } else {
                None
            },
            exact,
            text: {
                text_options(config)?;
                config.game.clone()
            },
            game,
            name,
            opponent,
            eval_opponents,
            pool_player: None,
            salt,
            multi,
        })
    }

    fn env(&self) -> TextGame<G, G::Text> {
        let options = game_text_options(&self.text).expect("checked when the track was built");
        TextGame::new(self.game.clone(), self.game.text_view(), options)
    }
}

/// An error building a player, naming the game in a multi-game run.
fn in_game(e: Error, game: &str, multi: bool) -> Error {
    match e {
        Error::Invalid(m) if multi => Error::Invalid(format!(
            "{m} (in game {game:?}; to name an evaluation opponent for one game only, write \
             SPEC@GAME)"
        )),
        e => e,
    }
}

impl<G: TextView + Heuristic + Clone + 'static> Track for GameTrack<G> {
    fn name(&self) -> &str {
        &self.name
    }

    fn warm_start_data(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
    ) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
        warm_start_data(&|| self.env(), learner, config, style, self.salt)
    }

    fn rollout(&mut self, step: &StepContext) -> Result<TrackRollout> {
        if let Some((member, model)) = step.pool {
            if self.pool_player.as_ref().is_none_or(|(s, _)| *s != member) {
                let answerer = LocalAnswerer {
                    model: model.clone(),
                    tokenizer: step.learner.tokenizer.clone(),
                    style: step.style,
                    params: step.params.clone(),
                };
                let player: BoxedPlayer<G::State> = Box::new(LmPlayer::new(
                    &format!("step-{member}"),
                    self.env(),
                    Box::new(answerer),
                    step.decode,
                    step.seed ^ 0x9002_0000,
                ));
                self.pool_player = Some((member, player));
            }
        }
        let make_env = || self.env();
        let opponent: Option<&dyn spar_core::Policy<G::State>> =
            match (&self.pool_player, step.pool) {
                (Some((_, p)), Some(_)) => Some(p.as_ref()),
                _ => self.opponent.as_deref(),
            };
        // Self-play: the model in every seat. Against a fixed opponent: the model in each seat
        // in turn, the episodes split between the seats.
        let episodes = step.config.rollout.episodes;
        let num_players = self.game.info().num_players;
        let seatings: Vec<(Vec<Seat<G::State>>, usize)> = match opponent {
            None => vec![(vec![Seat::Model; num_players], episodes)],
            Some(op) => (0..num_players)
                .map(|seat| {
                    let seats = (0..num_players)
                        .map(|p| {
                            if p == seat {
                                Seat::Model
                            } else {
                                Seat::Policy(op)
                            }
                        })
                        .collect();
                    let share = episodes / num_players + usize::from(seat < episodes % num_players);
                    (seats, share)
                })
                .collect(),
        };
        let mut batch = Batch::default();
        let mut returns = Vec::new();
        for (i, (seats, n)) in seatings.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let part = play_batch(
                &make_env,
                step.engine,
                &step.learner.tokenizer,
                step.style,
                seats,
                *n,
                step.params,
                step.decode,
                step.seed ^ ((i as u64) << 48),
            )?;
            returns.extend(part.model_returns(&self.name, seats));
            batch.append(part);
        }
        Ok(TrackRollout {
            batch,
            returns,
            against_opponent: opponent.is_some(),
        })
    }

    fn evaluate(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
        e: &mut GameMetrics,
    ) -> Result<()> {
        evaluate(
            &|| self.env(),
            learner,
            config,
            style,
            self.cfr.as_ref(),
            &self.eval_opponents,
            self.salt,
            self.exact,
            e,
        )
    }

    fn invalid_vs_random(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
    ) -> Result<f64> {
        let (_, _, invalid) = vs_opponent(
            &|| self.env(),
            learner,
            style,
            Seat::Random,
            config.eval.games_vs_random,
            &sampling(config),
            config.rollout.policy.parse()?,
            config.run.seed ^ 0xe7a1_0000 ^ self.salt,
        )?;
        Ok(invalid)
    }

    fn average_exploitability(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
        out: &Path,
    ) -> Result<Option<f64>> {
        let file = if self.multi {
            format!("average_policy-{}.json", self.name)
        } else {
            "average_policy.json".to_string()
        };
        average_exploitability(&|| self.env(), learner, config, style, out, &file)
    }
}

/// The warm-start data of every game, interleaved (one example of each in turn) so that
/// every warm-start batch mixes the games.
fn mixed_warm_start_data(
    tracks: &[Box<dyn Track>],
    learner: &Learner,
    config: &TrainConfig,
    style: PromptStyle,
) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
    let per_game = tracks
        .iter()
        .map(|t| t.warm_start_data(learner, config, style))
        .collect::<Result<Vec<_>>>()?;
    let longest = per_game.iter().map(Vec::len).max().unwrap_or(0);
    let mut data = Vec::with_capacity(per_game.iter().map(Vec::len).sum());
    for i in 0..longest {
        for game in &per_game {
            if let Some(pair) = game.get(i) {
                data.push(pair.clone());
            }
        }
    }
    Ok(data)
}

/// Evaluates every game: into the metrics' own fields for a one-game run, into `games` for a
/// multi-game run.
fn evaluate_tracks(
    tracks: &[Box<dyn Track>],
    learner: &Learner,
    config: &TrainConfig,
    style: PromptStyle,
    m: &mut Metrics,
) -> Result<()> {
    for track in tracks {
        let mut e = m.games.remove(track.name()).unwrap_or_default();
        track.evaluate(learner, config, style, &mut e)?;
        if tracks.len() == 1 {
            m.set_evaluation(&e);
        } else {
            m.games.insert(track.name().to_string(), e);
        }
    }
    Ok(())
}

fn run_tracks(
    tracks: &mut [Box<dyn Track>],
    config: &TrainConfig,
    out: &Path,
    resume: bool,
    on_metrics: &mut dyn FnMut(&Metrics),
) -> Result<Vec<Metrics>> {
    let device = spar_lm::cli::default_device();
    let style: PromptStyle = config.model.prompt_style.parse()?;
    text_options(config)?;
    let multi = tracks.len() > 1;

    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let mut history: Vec<Metrics> = Vec::new();
    let mut log = MetricsLog::open(out, config.run.tensorboard)?;
    // metrics.jsonl, TensorBoard and the caller see every line.
    let mut emit = |log: &mut MetricsLog, m: &Metrics| -> Result<()> {
        log.append(m, m.step)?;
        on_metrics(m);
        Ok(())
    };

    // 1. The model: resumed, or fresh (then warm-started).
    let resumed = if resume { latest_checkpoint(out) } else { None };
    if resume && resumed.is_none() {
        return Err(Error::Invalid(format!(
            "--resume: {} has no complete checkpoint (checkpoints/step-*/state.json)",
            out.display()
        )));
    }
    let (learner, mut opt, mut baselines, mut state) = match resumed {
        Some((_, dir)) => {
            let lora_checkpoint = spar_lm::cli::is_lora_checkpoint(&dir);
            if config.model.lora.is_some() != lora_checkpoint {
                return Err(Error::Invalid(format!(
                    "--resume: the run's config {} [model.lora], but {} holds {}; resume with \
                     the run's own config.toml",
                    if config.model.lora.is_some() {
                        "has"
                    } else {
                        "has no"
                    },
                    dir.display(),
                    if lora_checkpoint {
                        "a LoRA adapter"
                    } else {
                        "full weights"
                    }
                )));
            }
            let learner = Learner::load(&dir, &device)?;
            let text =
                std::fs::read_to_string(dir.join("state.json")).map_err(|e| io_err(&dir, e))?;
            let state: RunState = serde_json::from_str(&text).map_err(|e| {
                Error::Invalid(format!("{}: corrupt state.json: {e}", dir.display()))
            })?;
            let mut opt = AdamW::new(
                learner.named_vars(),
                config.ppo.learning_rate,
                config.ppo.weight_decay,
            )?;
            let moments =
                candle_core::safetensors::load(dir.join("optimizer.safetensors"), &device)?;
            opt.load_state(&moments, state.optimizer_step)?;
            let baselines = RoleBaselines {
                values: state
                    .baselines
                    .iter()
                    .map(|(k, b)| (k.clone(), f64::from_bits(*b)))
                    .collect(),
            };
            // Keep the metrics up to the checkpoint; later lines are replayed.
            history = log.keep_until(state.step, |m: &Metrics| m.step)?;
            (learner, opt, baselines, state)
        }
        None => {
            std::fs::write(out.join("config.toml"), config.to_toml())
                .map_err(|e| io_err(out, e))?;
            let learner = fresh_learner(&config.model, config.run.seed, out, &device)?;
            let start = Instant::now();
            // The invalid-move rate before the warm start (what the warm start is for).
            let mut initial = BTreeMap::new();
            if config.warm_start.steps > 0
                && config.eval.every > 0
                && config.eval.games_vs_random > 0
            {
                for track in tracks.iter() {
                    initial.insert(
                        track.name().to_string(),
                        track.invalid_vs_random(&learner, config, style)?,
                    );
                }
            }
            let warm_loss = warm_start(tracks, &learner, config, style)?;
            let opt = AdamW::new(
                learner.named_vars(),
                config.ppo.learning_rate,
                config.ppo.weight_decay,
            )?;
            let state = RunState {
                step: 0,
                optimizer_step: 0,
                skipped_updates: 0,
                baselines: BTreeMap::new(),
                pool: BTreeMap::new(),
            };
            let mut m = empty_metrics(0);
            m.warm_start_loss = warm_loss;
            for (game, rate) in initial {
                m.games.entry(game).or_default().initial_invalid_rate = Some(rate);
            }
            evaluate_tracks(tracks, &learner, config, style, &mut m)?;
            m.seconds = start.elapsed().as_secs_f64();
            log.rewrite::<Metrics>(&[])?;
            emit(&mut log, &m)?;
            history.push(m);
            save_checkpoint(out, &learner, &opt, &state, config)?;
            (learner, opt, RoleBaselines::default(), state)
        }
    };

    // The frozen reference of the KL penalty: the model right after the warm start (a copy:
    // with LoRA, the base and the step-0 adapter's values in tensors of its own).
    let reference = if config.ppo.kl_coef > 0.0 {
        Some(learner.load_frozen(&checkpoint_dir(out, 0))?)
    } else {
        None
    };
    let reg = Regularisers {
        kl_coef: config.ppo.kl_coef,
        kl_estimator: config.ppo.kl_estimator.parse()?,
        entropy_coef: config.ppo.entropy_coef,
    };
    let schedule: LrSchedule = config.ppo.lr_schedule.parse()?;
    let decode: Decode = config.rollout.policy.parse()?;
    let params = sampling(config);
    // PPO-ptx's supervised term (Ouyang et al. 2022, eq. 2) on the warm-start data.
    let sft_data = if config.ppo.sft_coef > 0.0 {
        mixed_warm_start_data(tracks, &learner, config, style)?
    } else {
        Vec::new()
    };

    // Rollouts on servers (`rollout.servers`): weights are pushed before each step.
    let mut servers = if config.rollout.servers.is_empty() {
        None
    } else {
        Some(ServerRollouts::connect(&config.rollout, out)?)
    };

    // The current pool opponent (`rollout.opponent = "pool"`), kept while it is picked again.
    let mut pool_model: Option<(usize, Llama)> = None;

    // 2-4. Policy-improvement steps.
    while state.step < config.run.steps {
        let step = state.step + 1;
        let start = Instant::now();
        let step_seed = config
            .run
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(step as u64);
        if let Some(s) = servers.as_mut() {
            if s.pushed() != Some(state.step) {
                push_weights(s, &learner, state.step)?;
            }
        }
        let retries_before = servers.as_ref().map(|s| s.engine().stats().client.retries);
        // Sampling needs no gradient: a detached view of the weights (see Llama::detached).
        let inference = learner.model.detached();
        let local = spar_lm::LocalEngine {
            model: &inference,
            tokenizer: &learner.tokenizer,
        };
        let engine: &dyn spar_lm::Engine = match &servers {
            Some(s) => s.engine(),
            None => &local,
        };
        // The opponent pool: a past checkpoint, frozen, picked by `rollout.pool_sampling`.
        let mut pool_member = None;
        if config.rollout.opponent == "pool" {
            let members: Vec<usize> = complete_checkpoints(out)
                .into_iter()
                .map(|(s, _)| s)
                .filter(|&s| s < step)
                .collect();
            let members = match config.rollout.pool_size {
                0 => members,
                k => members[members.len().saturating_sub(k)..].to_vec(),
            };
            if members.is_empty() {
                return Err(Error::Invalid(
                    "rollout.opponent = \"pool\": the run has no checkpoint to play against".into(),
                ));
            }
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(step_seed ^ 0x9001_0000);
            let member = pick_pool_member(
                &members,
                &state.pool,
                &config.rollout.pool_sampling,
                &mut rng,
            );
            if pool_model.as_ref().is_none_or(|(s, _)| *s != member) {
                pool_model = Some((member, learner.load_frozen(&checkpoint_dir(out, member))?));
            }
            pool_member = Some(member);
        }
        // Every game's episodes; one batch for the update.
        let mut batch = Batch::default();
        let mut returns = Vec::new();
        let mut against_opponent = false;
        let mut per_game: BTreeMap<String, GameMetrics> = BTreeMap::new();
        for (index, track) in tracks.iter_mut().enumerate() {
            let context = StepContext {
                engine,
                learner: &learner,
                config,
                style,
                params: &params,
                decode,
                seed: step_seed ^ ((index as u64) << 56),
                pool: pool_member.and(pool_model.as_ref().map(|(s, m)| (*s, m))),
            };
            let part = track.rollout(&context)?;
            against_opponent |= part.against_opponent;
            per_game.insert(
                track.name().to_string(),
                GameMetrics {
                    episodes: part.batch.returns.len(),
                    invalid_rate: part.batch.invalid_rate(),
                    truncation_rate: part.batch.truncation_rate(),
                    response_tokens: part.batch.mean_response_tokens(),
                    ..GameMetrics::default()
                },
            );
            returns.extend(part.returns);
            batch.append(part.batch);
        }
        let mut pool_win_rate = None;
        if let Some(member) = pool_member {
            let wins = returns
                .iter()
                .filter(|r| r.values().any(|&v| v > 0.0))
                .count() as u64;
            let record = state.pool.entry(member).or_default();
            record.games += returns.len() as u64;
            record.wins += wins;
            pool_win_rate = Some(wins as f64 / returns.len().max(1) as f64);
        }
        let advantages = match config.advantage.estimator.as_str() {
            "rae" => {
                let rule = if config.advantage.update == "per_game" {
                    RaeUpdate::PerGame
                } else {
                    RaeUpdate::BatchMean
                };
                baselines.advantages(&returns, config.advantage.decay, rule)
            }
            _ => reinforce(&returns),
        };
        let mut samples: Vec<Sample> = batch
            .turns
            .iter()
            .map(|t| Sample {
                prompt: t.prompt.clone(),
                completion: t.completion.clone(),
                role: t.role.clone(),
                episode: t.episode,
                advantage: advantages[t.episode][&t.role],
                old_logprobs: Vec::new(),
                ref_logprobs: Vec::new(),
                alternatives: t.alternatives.clone(),
                chosen: t.chosen,
            })
            .filter(|s| {
                !(s.completion.is_empty() || config.advantage.filter_zero && s.advantage == 0.0)
            })
            .collect();
        // The sampling policy's log-probabilities, recomputed by the learner (as SPIRAL does).
        let temperature = config.rollout.temperature;
        for chunk in samples.chunks_mut(config.ppo.minibatch_size) {
            if decode == Decode::Legal {
                let refs: Vec<&Sample> = chunk.iter().collect();
                let old = action_logprobs(&learner.model.detached(), &refs, temperature)?;
                let reference_values = match &reference {
                    Some(r) => Some(action_logprobs(r, &refs, temperature)?),
                    None => None,
                };
                for (i, s) in chunk.iter_mut().enumerate() {
                    s.old_logprobs = vec![old[i]];
                    if let Some(r) = &reference_values {
                        s.ref_logprobs = vec![r[i]];
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
            if let Some(reference) = &reference {
                let values = score_values_at_temperature(reference, &pairs, temperature)?;
                for (s, v) in chunk.iter_mut().zip(values) {
                    s.ref_logprobs = v;
                }
            }
        }
        opt.lr = schedule.rate(
            config.ppo.learning_rate,
            step,
            config.run.steps,
            config.ppo.warmup_steps,
        );
        let agg = if config.ppo.loss_aggregation == "token_sum" {
            Aggregation::TokenSum(config.ppo.normaliser)
        } else {
            Aggregation::TokenMean
        };
        let (mut losses, mut clips, mut kls, mut norms) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut ref_kls, mut entropies, mut sft_losses) = (Vec::new(), Vec::new(), Vec::new());
        for epoch in 0..config.ppo.epochs {
            let mut order: Vec<usize> = (0..samples.len()).collect();
            let mut rng =
                rand_chacha::ChaCha8Rng::seed_from_u64(step_seed ^ ((epoch as u64 + 1) << 40));
            order.shuffle(&mut rng);
            for idx in order.chunks(config.ppo.minibatch_size) {
                let mb: Vec<&Sample> = idx.iter().map(|&i| &samples[i]).collect();
                let (mut loss, stats) = if decode == Decode::Legal {
                    ppo_loss_actions(&learner.model, &mb, config.ppo.clip, temperature, &reg)?
                } else {
                    ppo_loss(&learner.model, &mb, config.ppo.clip, temperature, agg, &reg)?
                };
                let mut sft_value = None;
                if !sft_data.is_empty() {
                    let batch: Vec<(Vec<u32>, Vec<u32>)> = (0..config.warm_start.batch_size)
                        .map(|_| sft_data[rng.gen_range(0..sft_data.len())].clone())
                        .collect();
                    let sft = nll(&learner.model, &batch)?;
                    sft_value = Some(f64::from(sft.to_scalar::<f32>()?));
                    loss = (loss + (sft * config.ppo.sft_coef)?)?;
                }
                let grads = loss.backward()?;
                let norm = opt.grad_norm(&grads)?;
                if !stats.loss.is_finite() || !norm.is_finite() {
                    state.skipped_updates += 1;
                    continue;
                }
                let scale = if config.ppo.max_grad_norm > 0.0 && norm > config.ppo.max_grad_norm {
                    config.ppo.max_grad_norm / norm
                } else {
                    1.0
                };
                opt.step(&grads, scale)?;
                losses.push(stats.loss);
                clips.push(stats.clip_fraction);
                kls.push(stats.approx_kl);
                ref_kls.push(stats.kl_ref);
                sft_losses.extend(sft_value);
                entropies.push(stats.entropy);
                norms.push(norm);
            }
        }
        state.step = step;
        state.optimizer_step = opt.step;
        state.baselines = baselines
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.to_bits()))
            .collect();
        let mean = |v: &[f64]| {
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let mut m = empty_metrics(step);
        // Per role, over the episodes it was played in (all of them in self-play; against a
        // fixed opponent, the model's seats split the episodes).
        let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
        for r in &returns {
            for role in r.keys() {
                *counts.entry(role).or_insert(0) += 1;
            }
        }
        for r in &returns {
            for (role, v) in r {
                *m.mean_return.entry(role.clone()).or_insert(0.0) += v / counts[role] as f64;
            }
        }
        m.baseline = baselines.values.clone();
        m.invalid_rate = batch.invalid_rate();
        m.truncation_rate = batch.truncation_rate();
        m.response_tokens = batch.mean_response_tokens();
        m.samples = samples.len();
        m.loss = mean(&losses);
        m.clip_fraction = mean(&clips);
        m.approx_kl = mean(&kls);
        m.grad_norm = mean(&norms);
        m.learning_rate = opt.lr;
        m.kl_ref = reference.is_some().then(|| mean(&ref_kls));
        m.entropy = (config.ppo.entropy_coef != 0.0).then(|| mean(&entropies));
        m.sft_loss = (!sft_data.is_empty()).then(|| mean(&sft_losses));
        m.skipped_updates = state.skipped_updates;
        if against_opponent {
            m.opponent_failures = Some(batch.opponent_failures);
        }
        if multi {
            m.games = per_game;
        }
        m.pool_opponent = pool_member;
        m.pool_win_rate = pool_win_rate;
        if let (Some(s), Some(before)) = (&servers, retries_before) {
            m.failed_calls = Some(batch.failed_calls);
            m.server_retries = Some(s.engine().stats().client.retries - before);
            m.weight_version = Some(format!("step-{}", step - 1));
        }
        let last = step == config.run.steps;
        if config.eval.every > 0 && (step % config.eval.every == 0 || last) {
            evaluate_tracks(tracks, &learner, config, style, &mut m)?;
        }
        if last && config.eval.average {
            for track in tracks.iter() {
                if !multi && m.exploitability.is_none() {
                    continue;
                }
                if multi
                    && m.games
                        .get(track.name())
                        .is_none_or(|g| g.exploitability.is_none())
                {
                    continue;
                }
                let avg = track.average_exploitability(&learner, config, style, out)?;
                match m.games.get_mut(track.name()) {
                    Some(g) if multi => g.avg_exploitability = avg,
                    _ => m.avg_exploitability = avg,
                }
            }
        }
        m.seconds = start.elapsed().as_secs_f64();
        emit(&mut log, &m)?;
        history.push(m);
        if step % config.run.checkpoint_every == 0 || last {
            save_checkpoint(out, &learner, &opt, &state, config)?;
        }
    }
    Ok(history)
}

fn empty_metrics(step: usize) -> Metrics {
    Metrics {
        step,
        mean_return: BTreeMap::new(),
        baseline: BTreeMap::new(),
        invalid_rate: 0.0,
        truncation_rate: 0.0,
        response_tokens: 0.0,
        samples: 0,
        loss: 0.0,
        clip_fraction: 0.0,
        approx_kl: 0.0,
        grad_norm: 0.0,
        learning_rate: 0.0,
        kl_ref: None,
        entropy: None,
        sft_loss: None,
        skipped_updates: 0,
        failed_calls: None,
        server_retries: None,
        vs_players: None,
        win_rate_vs_players: None,
        opponent_failures: None,
        pool_opponent: None,
        games: BTreeMap::new(),
        invalid_vs_random: None,
        initial_invalid_rate: None,
        pool_win_rate: None,
        weight_version: None,
        warm_start_loss: None,
        nash_conv: None,
        exploitability: None,
        outside_mass: None,
        vs_random: None,
        vs_cfr: None,
        avg_exploitability: None,
        win_rate_vs_cfr: None,
        seconds: 0.0,
    }
}

/// Supervised warm start: the canonical completion of a random legal action at every turn of
/// `warm_start.episodes` random games. Returns the last loss (None when skipped).
fn warm_start(
    tracks: &[Box<dyn Track>],
    learner: &Learner,
    config: &TrainConfig,
    style: PromptStyle,
) -> Result<Option<f64>> {
    let w = &config.warm_start;
    if w.steps == 0 {
        return Ok(None);
    }
    let data = mixed_warm_start_data(tracks, learner, config, style)?;
    supervised_steps(learner, &data, w.steps, w.batch_size, w.learning_rate)
}

/// `steps` AdamW steps of maximum likelihood on `data` (cycled in order, `batch_size` pairs a
/// step, gradient norm clipped to 1; a non-finite step is skipped). Returns the last loss.
pub(crate) fn supervised_steps(
    learner: &Learner,
    data: &[(Vec<u32>, Vec<u32>)],
    steps: usize,
    batch_size: usize,
    learning_rate: f64,
) -> Result<Option<f64>> {
    let mut opt = AdamW::new(learner.named_vars(), learning_rate, 0.0)?;
    let mut last = None;
    for step in 0..steps {
        let batch: Vec<(Vec<u32>, Vec<u32>)> = (0..batch_size)
            .map(|i| data[(step * batch_size + i) % data.len()].clone())
            .collect();
        let loss = nll(&learner.model, &batch)?;
        let grads = loss.backward()?;
        let norm = opt.grad_norm(&grads)?;
        let value = f64::from(loss.to_scalar::<f32>()?);
        if value.is_finite() && norm.is_finite() {
            opt.step(&grads, if norm > 1.0 { 1.0 / norm } else { 1.0 })?;
            last = Some(value);
        }
    }
    Ok(last)
}

/// Mean negative log-likelihood per completion token of `pairs` (differentiable).
pub(crate) fn nll(model: &Llama, pairs: &[(Vec<u32>, Vec<u32>)]) -> Result<Tensor> {
    let scores = score(model, pairs)?;
    let tokens = scores.mask.sum_all()?;
    Ok(scores.token_logprobs.sum_all()?.neg()?.div(&tokens)?)
}

/// The supervised data of the warm start (and of `ppo.sft_coef`): the prompt and canonical
/// completion of a uniformly random legal move at every turn of `warm_start.episodes` random
/// games. A function of `run.seed` (and `salt`, the game's in a multi-game run) only, so a
/// resumed run rebuilds the same data.
fn warm_start_data<G: Game, T: GameText<G::State>>(
    make_env: &dyn Fn() -> TextGame<G, T>,
    learner: &Learner,
    config: &TrainConfig,
    style: PromptStyle,
    salt: u64,
) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
    let w = &config.warm_start;
    let mut data: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.run.seed ^ 0xa11 ^ salt);
    for g in 0..w.episodes {
        let mut env = make_env();
        env.reset(config.run.seed.wrapping_add(1 << 48).wrapping_add(g as u64) ^ salt);
        while let Some(player) = env.current_player() {
            let observation = env.observation(player);
            let legal = env.legal_action_names();
            let (action, _) = legal.choose(&mut rng).expect("a legal action").clone();
            let completion = env.completion_for(action);
            data.push((
                prompt_ids(&learner.tokenizer, &observation, style)?,
                completion_ids(&learner.tokenizer, &completion)?,
            ));
            env.step(player, &completion);
        }
    }
    if data.is_empty() {
        return Err(Error::Invalid(
            "config: warm_start.episodes must be >= 1 when the warm start or ppo.sft_coef is on"
                .into(),
        ));
    }
    Ok(data)
}

/// The exploitability of the reach-weighted average of the policies of the run's checkpoints
/// after step 0 and of the current model; the average is saved as `file` in the run directory
/// (`average_policy.json`; `average_policy-GAME.json` in a multi-game run).
fn average_exploitability<G: Game, T: GameText<G::State>>(
    make_env: &dyn Fn() -> TextGame<G, T>,
    learner: &Learner,
    config: &TrainConfig,
    style: PromptStyle,
    out: &Path,
    file: &str,
) -> Result<Option<f64>> {
    let env = make_env();
    let Ok(tree) = spar_eval::GameTree::build(env.game()) else {
        return Ok(None);
    };
    let options = policy_options(config, style);
    let mut policies = Vec::new();
    for (_, dir) in complete_checkpoints(out)
        .iter()
        .filter(|(step, _)| *step > 0)
    {
        let model = learner.load_frozen(dir)?;
        let table = tabulate(&env, &model, &learner.tokenizer, &options, |_, _| {})?;
        policies.push(tree.tabulate(&table.policy)?);
    }
    let table = tabulate(
        &env,
        &learner.model.detached(),
        &learner.tokenizer,
        &options,
        |_, _| {},
    )?;
    policies.push(tree.tabulate(&table.policy)?);
    let average = tree.average(&policies);
    let nc = spar_eval::best_response::nash_conv_on_tree(&tree, &average);
    spar_eval::policy_file::save(
        &out.join(file),
        &tree.to_tabular(&average),
        env.game().info(),
    )?;
    Ok(Some(nc.exploitability))
}

/// The average policy of `eval.cfr_iterations` of CFR+ (None when not asked for, or when
/// the game's tree is too large to enumerate).
fn cfr_opponent<G: Game>(game: &G, config: &TrainConfig) -> Option<TabularPolicy> {
    if config.eval.games_vs_cfr == 0 || config.eval.every == 0 || game.info().num_players != 2 {
        return None;
    }
    let mut solver = CfrSolver::new(game, CfrVariant::CfrPlus).ok()?;
    solver.run(config.eval.cfr_iterations);
    Some(solver.average_policy())
}

/// Exploitability (when the game tree can be enumerated) and mean returns against the random
/// player and the CFR+ policy, per seat.
/// A boxed player.
type BoxedPlayer<S> = Box<dyn spar_core::Policy<S>>;

/// A player and the name it was given.
type NamedPlayer<S> = (String, BoxedPlayer<S>);

#[allow(clippy::too_many_arguments)]
fn evaluate<G: Game, T: GameText<G::State>>(
    make_env: &dyn Fn() -> TextGame<G, T>,
    learner: &Learner,
    config: &TrainConfig,
    style: PromptStyle,
    cfr: Option<&TabularPolicy>,
    opponents: &[NamedPlayer<G::State>],
    salt: u64,
    exact: bool,
    m: &mut GameMetrics,
) -> Result<()> {
    let env = make_env();
    if exact && config.eval.exploitability && env.game().info().num_players == 2 {
        let options = policy_options(config, style);
        match tabulate(
            &env,
            &learner.model.detached(),
            &learner.tokenizer,
            &options,
            |_, _| {},
        ) {
            Ok(table) => {
                if let Ok(nc) = spar_eval::nash_conv(env.game(), &table.policy) {
                    m.nash_conv = Some(nc.nash_conv);
                    m.exploitability = Some(nc.exploitability);
                }
                m.outside_mass = Some(table.mean_outside_mass());
            }
            Err(Error::Eval(_)) => {} // tree too large to enumerate: no exact value
            Err(e) => return Err(e),
        }
    }
    let params = sampling(config);
    let decode: Decode = config.rollout.policy.parse()?;
    if config.eval.games_vs_random > 0 {
        let (means, _, invalid) = vs_opponent(
            make_env,
            learner,
            style,
            Seat::Random,
            config.eval.games_vs_random,
            &params,
            decode,
            config.run.seed ^ 0xe7a1_0000 ^ salt,
        )?;
        m.vs_random = Some(means);
        m.invalid_vs_random = Some(invalid);
    }
    if let (Some(policy), true) = (cfr, config.eval.games_vs_cfr > 0) {
        let (means, wins, _) = vs_opponent(
            make_env,
            learner,
            style,
            Seat::Policy(policy),
            config.eval.games_vs_cfr,
            &params,
            decode,
            config.run.seed ^ 0xcf2_0000 ^ salt,
        )?;
        m.vs_cfr = Some(means);
        m.win_rate_vs_cfr = Some(wins);
    }
    if config.eval.games_vs_opponents > 0 && !opponents.is_empty() {
        let (mut returns, mut win_rates) = (BTreeMap::new(), BTreeMap::new());
        for (i, (name, policy)) in opponents.iter().enumerate() {
            let (means, wins, _) = vs_opponent(
                make_env,
                learner,
                style,
                Seat::Policy(policy.as_ref()),
                config.eval.games_vs_opponents,
                &params,
                decode,
                config.run.seed ^ 0x0990_0000 ^ ((i as u64) << 40) ^ salt,
            )?;
            returns.insert(name.clone(), means);
            win_rates.insert(name.clone(), wins);
        }
        m.vs_players = Some(returns);
        m.win_rate_vs_players = Some(win_rates);
    }
    Ok(())
}

/// The model in each seat in turn against `opponent` in the others: mean return and win rate
/// (return > 0) per model seat, and the fraction of the model's turns that were invalid.
#[allow(clippy::too_many_arguments)]
fn vs_opponent<G: Game, T: GameText<G::State>>(
    make_env: &dyn Fn() -> TextGame<G, T>,
    learner: &Learner,
    style: PromptStyle,
    opponent: Seat<G::State>,
    games: usize,
    params: &SamplingParams,
    decode: Decode,
    seed: u64,
) -> Result<(Vec<f64>, Vec<f64>, f64)> {
    let n = make_env().game().info().num_players;
    let (mut means, mut wins) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut turns, mut invalid) = (0usize, 0usize);
    for seat in 0..n {
        let seats: Vec<Seat<G::State>> = (0..n)
            .map(|p| if p == seat { Seat::Model } else { opponent })
            .collect();
        let batch = play_batch(
            make_env,
            &spar_lm::LocalEngine {
                model: &learner.model.detached(),
                tokenizer: &learner.tokenizer,
            },
            &learner.tokenizer,
            style,
            &seats,
            games,
            params,
            decode,
            seed ^ seat as u64,
        )?;
        let count = batch.returns.len().max(1) as f64;
        means.push(batch.returns.iter().map(|r| r[seat]).sum::<f64>() / count);
        wins.push(batch.returns.iter().filter(|r| r[seat] > 0.0).count() as f64 / count);
        turns += batch.turns.len();
        invalid += batch.turns.iter().filter(|t| t.invalid).count();
    }
    Ok((means, wins, invalid as f64 / turns.max(1) as f64))
}

/// The trained tensors of a checkpoint directory of a run, for comparing runs (tests, tools):
/// every weight, or for a LoRA run the adapter's (PEFT names).
pub fn checkpoint_tensors(dir: &Path) -> Result<HashMap<String, Tensor>> {
    if spar_lm::cli::is_lora_checkpoint(dir) {
        let lora = Lora::load(dir, &Device::Cpu)?;
        return Ok(spar_lm::checkpoint::varmap_tensors(&lora.varmap));
    }
    Ok(Checkpoint::load(dir, &Device::Cpu)?.tensors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_games::kuhn::KuhnPoker;

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
        let logits = |model: &Llama| spar_lm::cli::next_token_logits(model, &ids).unwrap();
        let base_logits = logits(&learner.checkpoint.frozen().unwrap());
        assert_eq!(
            logits(&learner.model),
            base_logits,
            "a fresh adapter (B = 0) is a no-op"
        );

        let tracks: Vec<Box<dyn Track>> = vec![Box::new(
            GameTrack::new(KuhnPoker::new(), "kuhn", &config, 0, false).unwrap(),
        )];
        let loss = warm_start(&tracks, &learner, &config, PromptStyle::Raw).unwrap();
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
            baselines: BTreeMap::new(),
            pool: BTreeMap::new(),
        };
        save_checkpoint(&out, &learner, &opt, &state, &config).unwrap();
        let dir = checkpoint_dir(&out, 0);
        assert_eq!(
            spar_lm::cli::lora_base(&dir).unwrap(),
            std::path::absolute(out.join("base")).unwrap()
        );
        let loaded =
            spar_lm::cli::load_model(&dir, spar_lm::cli::GgufMode::Quantized, &Device::Cpu)
                .unwrap();
        assert_eq!(logits(&loaded.model), trained_logits);
        // load_checkpoint merges the adapter: the same model up to rounding.
        let merged = spar_lm::cli::load_checkpoint(&dir, &Device::Cpu)
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
