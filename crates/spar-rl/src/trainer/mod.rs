//! The loop kernel: one training loop for every learning loop of spar.
//!
//! A loop (self-play on games, verifiable tasks) implements [`Loop`]: what is its own (environments, rewards,
//! advantages, the objective it optimises, its evaluation, the state it keeps between steps).
//! [`run`] owns everything else, once: the [`Learner`] (full weights or a LoRA adapter), the
//! supervised warm start, the optimiser ([`AdamW`] with saved moments, the learning-rate
//! schedule, gradient clipping and the non-finite guard of [`AdamW::apply`]), the checkpoint
//! writer and the one resume path, and the metrics sink (`metrics.jsonl` and TensorBoard: one
//! flat, namespaced shape for every loop, [`metrics`]).
//! A loop never touches the optimiser's state, the checkpoint format or the metrics files.
//!
//! Exact resume: every random draw of a loop is a function of `run.seed`, the step and the
//! loop's checkpointed [`Loop::State`] (no generator state is saved), so a run resumed from a
//! checkpoint continues exactly as if it had not stopped; each loop has a test that compares a
//! resumed run with an uninterrupted one weight for weight.

use std::path::Path;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::error::{Error, Result};

pub mod checkpoint;
mod config_check;
pub mod faults;
pub mod learner;
pub mod metrics;
pub mod optim;
pub mod supervised;

pub use checkpoint::{checkpoint_dir, checkpoint_tensors, complete_checkpoints, latest_checkpoint};
pub use learner::Learner;
pub use optim::{AdamW, LrSchedule};

use metrics::MetricsLog;
pub use metrics::{Line, Scope};

/// What the kernel reads of a loop's configuration (resolved once, when the loop is built).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `run.seed`: the model's initialisation and every draw of the loop derive from it.
    pub seed: u64,
    /// `run.steps`: policy-improvement steps of the run.
    pub steps: usize,
    /// `run.checkpoint_every`: a checkpoint every this many steps (and at the last); at least
    /// 1 ([`run`] refuses 0).
    pub checkpoint_every: usize,
    /// `run.tensorboard`: also write the metrics as TensorBoard scalars.
    pub tensorboard: bool,
    /// `run.max_consecutive_skips`: [`run`] stops with an error after this many optimiser
    /// steps in a row were skipped for a non-finite loss or gradient; at least 1.
    pub max_consecutive_skips: usize,
    /// `[model]`: the model to build or load, and the LoRA adapter to train.
    pub model: ModelConfig,
    /// The base learning rate of the policy updates.
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// The learning-rate schedule over the run's steps.
    pub schedule: LrSchedule,
    /// Steps of linear learning-rate warm-up before the schedule.
    pub warmup_steps: usize,
    /// The resolved configuration, written to `config.toml` before anything else. On a
    /// resume it must equal the run's `config.toml` in every key but `run.steps`.
    pub config_toml: String,
    /// The configuration type's defaults as TOML (`Config::default()`, resolved the same
    /// way). On a resume, a key the run's `config.toml` lacks (one added to spar after the
    /// run started) is no difference when its value is its default.
    pub defaults_toml: String,
    /// Whether lines carry `learner/learning_rate`. Every loop should; the task loop does
    /// not yet (its rate is constant), so that its metrics keep their values until its
    /// regression baselines are renewed.
    pub log_learning_rate: bool,
}

impl Settings {
    /// The settings of a loop whose learning rate is constant (every loop but self-play):
    /// `[run]` and `[model]` as they are, no warm-up, `learner/learning_rate` logged.
    pub fn constant_rate(
        run: &crate::config::RunConfig,
        model: &ModelConfig,
        learning_rate: f64,
        weight_decay: f64,
        config_toml: String,
        defaults_toml: String,
    ) -> Settings {
        Settings {
            seed: run.seed,
            steps: run.steps,
            checkpoint_every: run.checkpoint_every,
            tensorboard: run.tensorboard,
            max_consecutive_skips: run.max_consecutive_skips,
            model: model.clone(),
            learning_rate,
            weight_decay,
            schedule: LrSchedule::Constant,
            warmup_steps: 0,
            config_toml,
            defaults_toml,
            log_learning_rate: true,
        }
    }

    /// Checks what the kernel itself cannot run with, whatever the loop's config checked:
    /// `run.checkpoint_every = 0` (a checkpoint every 0 steps has no meaning; step 0 and the
    /// last step are checkpointed anyway), `run.max_consecutive_skips = 0`, and a
    /// `model.init` that does not exist ([`ModelConfig::check_init`]). [`run`] calls it before
    /// it writes anything.
    pub fn validate(&self) -> Result<()> {
        self.model.check_init()?;
        if self.checkpoint_every == 0 {
            return Err(Error::Invalid(
                "config: run.checkpoint_every must be >= 1 (a checkpoint every this many steps; \
                 step 0 and the last step always get one)"
                    .into(),
            ));
        }
        if self.max_consecutive_skips == 0 {
            return Err(Error::Invalid(
                "config: run.max_consecutive_skips must be >= 1 (the run stops after this many \
                 optimiser steps in a row were skipped for a non-finite loss or gradient; the \
                 default is 10)"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The supervised warm start a loop asks for: `steps` AdamW steps of maximum likelihood on
/// `data` (prompt ids, completion ids), `batch_size` pairs a step, at `learning_rate`.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmStart {
    /// The pairs, cycled in order.
    pub data: Vec<(Vec<u32>, Vec<u32>)>,
    /// Optimiser steps.
    pub steps: usize,
    /// Pairs per step.
    pub batch_size: usize,
    /// Its learning rate (its own AdamW, not the policy's).
    pub learning_rate: f64,
}

/// What one step gives a loop.
#[derive(Debug)]
pub struct StepInfo<'a> {
    /// The step (1-based; 0 is the state after the warm start).
    pub index: usize,
    /// Whether it is the run's last step.
    pub last: bool,
    /// The model being trained.
    pub learner: &'a Learner,
    /// The run directory (checkpoints of earlier steps, e.g. for an opponent pool).
    pub out: &'a Path,
}

/// Statistics of one step's update, in the shape every metrics line reports them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateStats {
    /// Samples (or pairs) the update used.
    pub samples: usize,
    /// Optimiser steps applied.
    pub minibatches: usize,
    /// Optimiser steps skipped for a non-finite loss or gradient.
    pub skipped: usize,
    /// Mean loss over the applied minibatches.
    pub loss: f64,
    /// Mean fraction of clipped ratios.
    pub clip_fraction: f64,
    /// Mean `old - new` log-probability per token (k1 estimate of KL(old || new)).
    pub approx_kl: f64,
    /// Mean gradient norm before clipping.
    pub grad_norm: f64,
    /// Mean KL estimate to the reference per token (with a KL penalty).
    pub kl_ref: Option<f64>,
    /// Mean entropy per token (with an entropy bonus).
    pub entropy: Option<f64>,
    /// Mean supervised loss of the PPO-ptx term.
    pub sft_loss: Option<f64>,
    /// Mean DPH-RL divergence per token on the reference answers.
    pub divergence: Option<f64>,
    /// Fraction of preference pairs ranked right by the implicit reward (DPO/IPO).
    pub pair_accuracy: Option<f64>,
    /// Mean implicit reward margin of the preference pairs (DPO: `beta h`; IPO: `h`).
    pub pair_margin: Option<f64>,
}

/// What a loop measured in one step (its rollouts, advantages and evaluation), filled by
/// the [`Loop`] methods that take it and handed to the kernel's sink as named values
/// ([`metrics`] describes the one shape of every line).
pub trait StepMetrics: Default {
    /// The step's values: `out.put` under the loop's namespace ([`Loop::NAME`]), `out.eval`
    /// under `eval/`. The kernel adds `step`, `learner/...` and `time/seconds`.
    fn write(&self, out: &mut Scope);
}

/// A learning loop: what it supplies to [`run`], method by method in the order `run` calls
/// them. Every method may return an error; an episode's bad model output is never one (it is
/// an invalid move, counted in the loop's metrics).
pub trait Loop {
    /// What the loop keeps between steps and must checkpoint (role baselines, pool records,
    /// buffers, positions in a data stream). Saved in `state.json` beside the kernel's own
    /// fields; `Default` is its value at step 0.
    type State: Serialize + DeserializeOwned + Default;
    /// What the loop measures in a step.
    type Metrics: StepMetrics;
    /// The loop's namespace in `metrics.jsonl` (`selfplay`, `tasks`): its values are
    /// `NAME/<key>`.
    const NAME: &'static str;

    /// The kernel's settings (read once, at the start of [`run`]).
    fn settings(&self) -> &Settings;

    /// A fresh run, before the warm start: measure what the warm start is for (self-play: the
    /// fresh model's invalid-move rate) into step 0's line.
    fn before_warm_start(&mut self, learner: &Learner, line: &mut Self::Metrics) -> Result<()> {
        let _ = (learner, line);
        Ok(())
    }

    /// A fresh run: the supervised warm start's data (`None`: no warm start). Must be a
    /// function of the configuration and `run.seed` only.
    fn warm_start(&mut self, learner: &Learner) -> Result<Option<WarmStart>>;

    /// Called once per process after step 0's checkpoint exists (`fresh_line` is step 0's
    /// line on a fresh run, `None` on a resumed one): build what the steps read (a frozen
    /// reference from `checkpoint_dir(out, 0)`, data files of the run directory, servers).
    /// What a fresh run computes here must be written to the run directory and read back on a
    /// resume. By default nothing: a loop whose steps read only its config and the learner
    /// leaves it out.
    fn prepare(
        &mut self,
        learner: &Learner,
        out: &Path,
        fresh_line: Option<&mut Self::Metrics>,
    ) -> Result<()> {
        let _ = (learner, out, fresh_line);
        Ok(())
    }

    /// The step's episodes: samples with their rewards, and the step's rollout metrics into
    /// `line`. Sampling goes through the learner's detached view (`Llama::detached`).
    fn collect(
        &mut self,
        step: &StepInfo,
        state: &mut Self::State,
        line: &mut Self::Metrics,
    ) -> Result<Batch>;

    /// Advantages of the batch's samples (the loop's estimator; baselines in `state`).
    fn advantages(
        &mut self,
        step: &StepInfo,
        batch: &mut Batch,
        state: &mut Self::State,
        line: &mut Self::Metrics,
    ) -> Result<()>;

    /// The policy update on the batch: the samples' sampling log-probabilities recomputed by
    /// the learner, then minibatches of the loop's objective, each applied with
    /// [`AdamW::apply`] (the learning rate is already set for the step).
    fn update(
        &mut self,
        step: &StepInfo,
        batch: &mut Batch,
        state: &mut Self::State,
        opt: &mut AdamW,
    ) -> Result<UpdateStats>;

    /// Whether step `step` (0: after the warm start; `last`: the run's last step) is
    /// evaluated.
    fn evaluates(&self, step: usize, last: bool) -> bool;

    /// The evaluation of step `step.index` into `line`.
    fn evaluate(&mut self, step: &StepInfo, line: &mut Self::Metrics) -> Result<()>;

    /// Files of the loop in each checkpoint besides the model, the optimiser and
    /// `state.json` (how the checkpoint is prompted: `prompting.json`, `task.json`), written
    /// into the temporary directory `dir` before the moments and `state.json`. By default
    /// none.
    fn write_checkpoint_files(&self, dir: &Path) -> Result<()> {
        let _ = dir;
        Ok(())
    }
}

/// A step's episodes: the learnable samples and, per episode, the return of each role the
/// model played (what role baselines read).
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Every learnable turn.
    pub samples: Vec<crate::rollout::Sample>,
    /// Per episode: role key (`kuhn/player0`) to return.
    pub returns: Vec<std::collections::BTreeMap<String, f64>>,
}

/// `state.json`: the kernel's fields and the loop's [`Loop::State`] beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState<S> {
    /// Steps done.
    pub step: usize,
    /// AdamW steps taken (bias correction).
    pub optimizer_step: u64,
    /// Optimiser steps skipped for a non-finite loss or gradient, run total.
    pub skipped_updates: usize,
    /// Optimiser steps skipped in a row up to now (`run.max_consecutive_skips`; absent in
    /// checkpoints written before it existed).
    #[serde(default)]
    pub consecutive_skips: usize,
    /// The loop's own state.
    #[serde(flatten)]
    pub custom: S,
}

/// Runs (or, with `resume`, continues) `lp` in run directory `out`; `on_line` sees every line
/// written to `metrics.jsonl`. Returns every line of the run.
///
/// A resume starts from the latest checkpoint that verifies against its manifest (later ones
/// that do not are named on stderr and moved aside, [`checkpoint`]); with no such checkpoint,
/// or when it is step 0 and `metrics.jsonl` lacks step 0's line (the run was killed before
/// finishing step 0), the run starts again from its `config.toml`.
///
/// Refused ([`Error::Invalid`], before anything is written): settings that fail
/// [`Settings::validate`]; with `resume`, a run directory without a `config.toml`, or whose
/// `config.toml` differs from [`Settings::config_toml`] in any key but `run.steps` and
/// `run.max_consecutive_skips` (a resume continues the run it names; only its length may
/// change).
///
/// Stops with [`Error::Invalid`] after `run.max_consecutive_skips` optimiser steps in a row
/// were skipped for a non-finite loss or gradient: the step's metrics line is written, its
/// checkpoint is not.
pub fn run<L: Loop>(
    lp: &mut L,
    out: &Path,
    resume: bool,
    on_line: &mut dyn FnMut(&Line),
) -> Result<Vec<Line>> {
    let settings = lp.settings().clone();
    settings.validate()?;
    let inject = faults::NanInjection::from_env()?;
    // 1. Resume from the latest checkpoint that verifies, or start: warm start, checkpoint
    //    and log step 0.
    let (mut log, learner, mut opt, mut state, mut history) =
        open(lp, out, resume, &settings, on_line)?;
    opt.inject = inject;
    // 2. Policy-improvement steps.
    while state.step < settings.steps {
        let started = Instant::now();
        let index = state.step + 1;
        let step = StepInfo {
            index,
            last: index == settings.steps,
            learner: &learner,
            out,
        };
        let mut measured = L::Metrics::default();
        let mut batch = lp.collect(&step, &mut state.custom, &mut measured)?;
        lp.advantages(&step, &mut batch, &mut state.custom, &mut measured)?;
        opt.lr = settings.schedule.rate(
            settings.learning_rate,
            index,
            settings.steps,
            settings.warmup_steps,
        );
        let stats = lp.update(&step, &mut batch, &mut state.custom, &mut opt)?;
        state.step = index;
        state.optimizer_step = opt.step;
        state.skipped_updates += stats.skipped;
        state.consecutive_skips = opt.consecutive_skips;
        if lp.evaluates(index, step.last) {
            lp.evaluate(&step, &mut measured)?;
        }
        let mut line = Line::new(index);
        measured.write(&mut Scope::new(&mut line, L::NAME));
        let rate = settings.log_learning_rate.then_some(opt.lr);
        line.set_update(&stats, state.skipped_updates, rate);
        line.set_seconds(started.elapsed().as_secs_f64());
        log.append(&line)?;
        on_line(&line);
        history.push(line);
        if state.consecutive_skips >= settings.max_consecutive_skips {
            return Err(Error::Invalid(format!(
                "step {index}: the last {} optimiser steps were all skipped for a non-finite \
                 loss or gradient (run.max_consecutive_skips = {}), so the run stops here; its \
                 last checkpoint is intact. Lower the learning rate or max_grad_norm in a new \
                 run, or raise run.max_consecutive_skips and continue with --resume",
                state.consecutive_skips, settings.max_consecutive_skips
            )));
        }
        if index % settings.checkpoint_every == 0 || step.last {
            checkpoint::save(lp, out, &learner, &opt, &state)?;
        }
    }
    Ok(history)
}

/// The run's metrics log and where its steps start: with `resume`, the latest checkpoint
/// that verifies (damaged later ones moved aside, the run's config checked first), else a
/// fresh start ([`start`]); a resume with no usable checkpoint starts again from the run's
/// `config.toml`.
#[allow(clippy::type_complexity)]
fn open<L: Loop>(
    lp: &mut L,
    out: &Path,
    resume: bool,
    settings: &Settings,
    on_line: &mut dyn FnMut(&Line),
) -> Result<(MetricsLog, Learner, AdamW, RunState<L::State>, Vec<Line>)> {
    let resume_point = if resume {
        let point = checkpoint::find_resume(out, settings)?;
        if point.checkpoint.is_none() && !out.join("config.toml").exists() {
            return Err(Error::Invalid(format!(
                "--resume: {} has no complete checkpoint (checkpoints/step-*/state.json)",
                out.display()
            )));
        }
        config_check::check_resume_config(out, &settings.config_toml, &settings.defaults_toml)?;
        Some(point)
    } else {
        None
    };
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut log = MetricsLog::open(out, settings.tensorboard)?;
    if let Some(point) = &resume_point {
        checkpoint::move_damaged_aside(point)?;
    }
    let from = resume_point
        .and_then(|p| p.checkpoint)
        .filter(|(step, _)| *step > 0 || log.has_line(0));
    if resume && from.is_none() {
        eprintln!(
            "note: {} has no usable checkpoint (the run stopped before it finished step 0, or \
             none verified); starting the run again from its config.toml",
            out.display()
        );
    }
    let (learner, opt, state, history) = match from {
        Some((_, dir)) => checkpoint::resume(lp, out, &mut log, &dir)?,
        None => start(lp, out, &mut log, on_line)?,
    };
    Ok((log, learner, opt, state, history))
}

/// A fresh run: `config.toml`, the model, the warm start, checkpoint 0 and step 0's line.
#[allow(clippy::type_complexity)]
fn start<L: Loop>(
    lp: &mut L,
    out: &Path,
    log: &mut MetricsLog,
    on_line: &mut dyn FnMut(&Line),
) -> Result<(Learner, AdamW, RunState<L::State>, Vec<Line>)> {
    let started = Instant::now();
    let settings = lp.settings().clone();
    spar_core::atomic::write_atomic(&out.join("config.toml"), settings.config_toml.as_bytes())?;
    log.rewrite(&[])?;
    let device = spar_lm::device::default_device();
    let learner = learner::fresh_learner(&settings.model, settings.seed, out, &device)?;
    let mut measured = L::Metrics::default();
    lp.before_warm_start(&learner, &mut measured)?;
    let warm = match lp.warm_start(&learner)? {
        Some(w) if w.steps > 0 => {
            if w.data.is_empty() {
                return Err(Error::Invalid(
                    "config: the warm start has no data (raise warm_start.episodes or \
                     warm_start.problems, or set warm_start.steps = 0)"
                        .into(),
                ));
            }
            supervised::supervised_steps(&learner, &w.data, w.steps, w.batch_size, w.learning_rate)?
        }
        _ => None,
    };
    let opt = AdamW::new(
        learner.named_vars(),
        settings.learning_rate,
        settings.weight_decay,
    )?;
    let state = RunState {
        step: 0,
        optimizer_step: 0,
        skipped_updates: 0,
        consecutive_skips: 0,
        custom: L::State::default(),
    };
    checkpoint::save(lp, out, &learner, &opt, &state)?;
    lp.prepare(&learner, out, Some(&mut measured))?;
    if lp.evaluates(0, settings.steps == 0) {
        let step = StepInfo {
            index: 0,
            last: settings.steps == 0,
            learner: &learner,
            out,
        };
        lp.evaluate(&step, &mut measured)?;
    }
    let mut line = Line::new(0);
    measured.write(&mut Scope::new(&mut line, L::NAME));
    line.set_warm_start_loss(warm);
    // No update yet: the learner's values are those of an empty one.
    let rate = settings.log_learning_rate.then_some(0.0);
    line.set_update(&UpdateStats::default(), 0, rate);
    line.set_seconds(started.elapsed().as_secs_f64());
    log.append(&line)?;
    on_line(&line);
    Ok((learner, opt, state, vec![line]))
}
