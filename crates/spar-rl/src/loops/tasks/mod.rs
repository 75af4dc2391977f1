//! Learning from verifiable tasks: the GRPO family, NFT, DPO/IPO and rejection-sampling
//! fine-tuning on problems whose answers a verifier checks (`spar train` with a `[task]`
//! config; `docs/tasks.md`).
//!
//! Every step:
//! 1. draws `rollout.prompts` training problems (problem `i` of step `s` is training problem
//!    `warm_start.problems + (s - 1) * prompts + i`: never one the warm start saw, and a
//!    resumed run draws the same ones);
//! 2. samples `rollout.group_size` answers to each from the model, through the task's
//!    single-player [`TaskEnv`] (the same prompts as `spar eval --task`), and verifies them
//!    (reward 1 for a correct answer, 0 otherwise; with `algorithm.explore_alpha` < 1, RLSP's
//!    mix with a length reward, [`explore`]);
//! 3. turns rewards into advantages with the configured estimator, grouped by prompt,
//!    difficulty or the whole batch ([`crate::objectives::estimators`]);
//! 4. updates the model with the configured loss ([`crate::objectives::losses`]): policy gradient,
//!    PPO-clip with asymmetric ranges, NFT/RFT, SFT on the correct answers, or DPO/IPO on
//!    pairs of a correct and a wrong answer to one problem; optionally a reverse-KL penalty
//!    to the reference (the model after the warm start) and DPH-RL's forward-KL or
//!    Jensen-Shannon term on the reference's own answers to problems it masters.
//!
//! With `[bstar]` (B-STaR, [`bstar`]), step 2 samples at the temperature and answer count
//! chosen that step by the balance score on a probe of the step's prompts, and the update
//! learns from the answers scoring above the chosen threshold.
//!
//! Held-out evaluation ([`evaluate_task`]): unbiased pass@k, majority vote and accuracy per
//! difficulty on the first `eval.problems` test problems, with common random numbers across
//! evaluations.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use spar_core::atomic::write_atomic;
use spar_core::Env;
use spar_games::tasks::{task_from_spec, Problem, Split, Task, TaskEnv, Verdict};
use spar_lm::sample::SamplingParams;
use spar_lm::Llama;

use crate::config::choice::Choice;
use crate::config::tasks::{GroupBy, TaskTrainConfig};
use crate::error::{Error, Result};
use crate::objectives::advantages::{estimator, AdvantageEstimator, EstimatorKind, Groups};
use crate::objectives::estimators;
use crate::objectives::rae::RoleBaselines;
use crate::rollout::prompt::{completion_ids, prompt_ids, PromptStyle};
use crate::rollout::{groups, Rollout, Sample};
use crate::trainer::{
    checkpoint_dir, AdamW, Batch, Learner, Line, Loop, Settings, StepInfo, UpdateStats, WarmStart,
};

pub mod bstar;
mod evaluate;
mod explore;
mod metrics;
mod reference;
mod update;

use bstar::BStarChoice;
use evaluate::problem_prompt;
pub use evaluate::{default_pass_at, evaluate_task};
pub use explore::ExploreMeans;
pub use metrics::{AttemptsPrompting, TaskEvaluation, TaskMetrics, TaskPrompting};
use reference::{presample_reference, ReferenceAnswer};
use update::{update_pairs, update_tokens, Objective, UpdateContext};

/// Sequences sampled or scored in one batch.
const CHUNK: usize = 256;

/// Runs (or resumes) the task run described by `config` in `out`; `on_metrics` sees every
/// line written to `metrics.jsonl`.
pub fn run(
    config: &TaskTrainConfig,
    out: &Path,
    resume: bool,
    mut on_metrics: impl FnMut(&Line),
) -> Result<Vec<Line>> {
    let mut lp = TaskLoop::new(config)?;
    crate::trainer::run(&mut lp, out, resume, &mut on_metrics)
}

/// What a task run keeps in a checkpoint besides the kernel's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    /// Reference answers the divergence term has read so far (it reads them in a cycle).
    #[serde(default)]
    divergence_offset: usize,
    /// `estimator = "rae"`: the EMA baselines (exact bit patterns).
    #[serde(default)]
    baselines: RoleBaselines,
    /// `[bstar]`: the choice of every step so far (absent in older checkpoints: empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bstar: Vec<BStarChoice>,
}

/// The task loop of one configuration.
pub struct TaskLoop {
    config: TaskTrainConfig,
    settings: Settings,
    task: Arc<dyn Task>,
    /// The task's name in metric keys: its role's environment (`arithmetic`).
    role_env: String,
    style: PromptStyle,
    /// `algorithm.estimator` (RAE keeps its baselines in the run state).
    estimator: Box<dyn AdvantageEstimator>,
    objective: Objective,
    /// The frozen model after the warm start (KL penalty, DPO/IPO).
    reference_model: Option<Llama>,
    /// DPH-RL's reference answers (`reference_answers.json`).
    reference: Vec<ReferenceAnswer>,
    /// The step's problems and, per answer, its verdict and difficulty (for the episodes file
    /// and the metrics).
    problems: Vec<(Problem, Vec<u32>)>,
    verdicts: Vec<(Verdict, u32)>,
    /// The step's sampling temperature (`rollout.temperature`, or B-STaR's choice).
    temperature: f64,
    /// `[bstar]`: per answer of the step, whether it is learnt from.
    selected: Option<Vec<bool>>,
}

impl std::fmt::Debug for TaskLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskLoop")
            .field("task", &self.task.name())
            .finish()
    }
}

impl TaskLoop {
    /// The loop of `config`, checked whole (task, estimator, losses) before anything is
    /// written.
    pub fn new(config: &TaskTrainConfig) -> Result<TaskLoop> {
        config.validate()?;
        let task: Arc<dyn Task> = Arc::from(
            task_from_spec(&config.task.name)
                .map_err(|e| Error::Invalid(format!("config: task.name: {e}")))?,
        );
        let a = &config.algorithm;
        Ok(TaskLoop {
            settings: Settings {
                // The task loop's metrics keep their values until its regression baselines are
                // renewed (`Settings::log_learning_rate`).
                log_learning_rate: false,
                ..Settings::constant_rate(
                    &config.run,
                    &config.model,
                    a.learning_rate,
                    a.weight_decay,
                    config.to_toml(),
                    TaskTrainConfig::default().to_toml(),
                )
            },
            style: config.model.prompt_style,
            estimator: estimator(&a.estimator_settings()),
            objective: Objective::from_config(a)?,
            reference_model: None,
            reference: Vec::new(),
            problems: Vec::new(),
            verdicts: Vec::new(),
            temperature: config.rollout.temperature,
            selected: None,
            role_env: TaskEnv::new(task.clone(), Split::Train, config.task.seed)
                .role(0)
                .env,
            task,
            config: config.clone(),
        })
    }

    fn reference_path(out: &Path) -> std::path::PathBuf {
        out.join("reference_answers.json")
    }

    /// `g` answers at `temperature` to each problem of `envs` (answer `j` of problem `i` is
    /// episode `i * g + j`), played through the task's environment from `seed`; the samples
    /// and the played episodes (their verdicts).
    fn sample_groups(
        &self,
        learner: &Learner,
        envs: &[TaskEnv],
        g: usize,
        temperature: f64,
        seed: u64,
    ) -> Result<(Vec<Sample>, Vec<TaskEnv>)> {
        let mut episodes = groups(envs, g);
        let params = SamplingParams {
            temperature,
            max_tokens: self.config.rollout.max_tokens,
            ..SamplingParams::default()
        };
        let inference = learner.model.detached();
        let engine = spar_lm::LocalEngine {
            model: &inference,
            tokenizer: &learner.tokenizer,
        };
        let rollout = Rollout {
            group_size: g,
            max_rounds: 1,
            ..Rollout::new(&engine, &learner.tokenizer, self.style, &params)
        };
        let samples = rollout.play(&mut episodes, &[], seed)?.turns;
        Ok((samples, episodes))
    }
}

impl Loop for TaskLoop {
    type State = TaskState;
    type Metrics = TaskMetrics;
    const NAME: &'static str = "tasks";

    fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Supervised warm start on the reference solutions of the first `warm_start.problems`
    /// training problems, in an order drawn from `run.seed`.
    fn warm_start(&mut self, learner: &Learner) -> Result<Option<WarmStart>> {
        let w = &self.config.warm_start;
        if w.steps == 0 {
            return Ok(None);
        }
        let mut data = Vec::with_capacity(w.problems);
        for p in 0..w.problems {
            let (problem, prompt) = problem_prompt(
                &learner.tokenizer,
                &self.task,
                Split::Train,
                p as u64,
                self.config.task.seed,
                self.style,
            )?;
            data.push((
                prompt,
                completion_ids(&learner.tokenizer, &problem.solution)?,
            ));
        }
        Ok(Some(shuffled_warm_start(data, w, self.config.run.seed)))
    }

    fn prepare(
        &mut self,
        learner: &Learner,
        out: &Path,
        fresh_line: Option<&mut TaskMetrics>,
    ) -> Result<()> {
        let path = TaskLoop::reference_path(out);
        if self.objective.divergence.is_some() {
            self.reference = match fresh_line {
                // DPH-RL's pre-sampling, once, from the model after the warm start.
                Some(line) => {
                    let r = presample_reference(learner, &self.task, &self.config, self.style)?;
                    let json = serde_json::to_string(&r).expect("reference answers serialise");
                    write_atomic(&path, json.as_bytes())?;
                    line.reference_mastered = Some(r.len());
                    r
                }
                None => {
                    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                    serde_json::from_str(&text).map_err(|e| {
                        Error::Invalid(format!(
                            "{}: corrupt reference answers: {e}",
                            path.display()
                        ))
                    })?
                }
            };
            if self.reference.is_empty() {
                let a = &self.config.algorithm;
                eprintln!(
                    "warning: the reference model masters none of the first {} training \
                     problems ({} of {} answers right needed): the divergence term is empty",
                    a.reference_problems, a.reference_samples, a.reference_samples
                );
            }
        }
        if self.objective.kl.is_some() || self.objective.pair.is_some() {
            self.reference_model = Some(learner.load_frozen(&checkpoint_dir(out, 0))?);
        }
        let episodes = out.join("episodes");
        std::fs::create_dir_all(&episodes).map_err(|e| Error::io(&episodes, e))
    }

    /// `rollout.prompts` training problems (problem `i` of step `s` is training problem
    /// `warm_start.problems + (s - 1) * prompts + i`), `rollout.group_size` answers to each
    /// at `rollout.temperature` (with `[bstar]`, the count and temperature B-STaR chooses on a
    /// probe of them, and the answers it selects marked), each played through the task's
    /// [`TaskEnv`] (its verifier gives the reward).
    fn collect(
        &mut self,
        step: &StepInfo,
        state: &mut TaskState,
        line: &mut TaskMetrics,
    ) -> Result<Batch> {
        let (config, learner) = (&self.config, step.learner);
        let mut envs = Vec::with_capacity(config.rollout.prompts);
        self.problems.clear();
        for i in 0..config.rollout.prompts {
            // After the warm start's problems, so that training accuracy is on unseen ones.
            let index =
                (config.warm_start.problems + (step.index - 1) * config.rollout.prompts + i) as u64;
            let mut env = TaskEnv::new(self.task.clone(), Split::Train, config.task.seed);
            env.reset(index);
            let problem = env.problem().cloned().ok_or_else(|| {
                Error::Invalid(format!("task {} drew no problem", self.task.name()))
            })?;
            let prompt = prompt_ids(&learner.tokenizer, &env.observation(0), self.style)?;
            self.problems.push((problem, prompt));
            envs.push(env);
        }
        let seed = spar_core::seeds::task_step(config.run.seed, step.index as u64);
        let (mut g, mut temperature) = (config.rollout.group_size, config.rollout.temperature);
        let choice = match &config.bstar {
            Some(b) => {
                let choice = self.choose_bstar(b, learner, &envs, step.index, seed)?;
                (g, temperature) = (choice.count, choice.temperature);
                state.bstar.push(choice);
                Some(choice)
            }
            None => None,
        };
        self.temperature = temperature;
        let (mut samples, episodes) = self.sample_groups(learner, &envs, g, temperature, seed)?;
        self.verdicts = samples
            .iter()
            .map(|s| {
                let verdict =
                    episodes[s.episode]
                        .verdict()
                        .cloned()
                        .unwrap_or(Verdict::Unparsable {
                            reason: "the environment gave no verdict".into(),
                        });
                (verdict, self.problems[s.group as usize].0.difficulty)
            })
            .collect();
        self.selected = match (&config.bstar, choice) {
            (Some(b), Some(choice)) => {
                let (selected, monitors) = self.select_bstar(b, learner, &samples, &choice)?;
                line.bstar = Some((choice, monitors));
                Some(selected)
            }
            _ => None,
        };
        let total = samples.len().max(1) as f64;
        line.train_accuracy = samples.iter().map(|s| s.reward).sum::<f64>() / total;
        line.unparsable_rate = samples.iter().filter(|s| s.invalid).count() as f64 / total;
        line.response_tokens =
            samples.iter().map(|s| s.completion.len()).sum::<usize>() as f64 / total;
        let alpha = config.algorithm.explore_alpha;
        if alpha < 1.0 {
            // RLSP: the verifier's 0/1 becomes alpha * correct + (1 - alpha) * explore.
            let max_tokens = config.rollout.max_tokens;
            line.explore = Some(explore::mix_rewards(&mut samples, alpha, max_tokens));
        }
        let batch = Batch {
            returns: samples
                .iter()
                .map(|s| BTreeMap::from([(s.role.key(), s.reward)]))
                .collect(),
            samples,
        };
        Ok(batch)
    }

    /// The configured estimator over groups keyed by prompt, difficulty or the whole batch,
    /// or RAE; the episodes file `episodes/step-NNNNNN.jsonl` is written here.
    fn advantages(
        &mut self,
        step: &StepInfo,
        batch: &mut Batch,
        state: &mut TaskState,
        line: &mut TaskMetrics,
    ) -> Result<()> {
        let difficulties: Vec<u32> = self.verdicts.iter().map(|(_, d)| *d).collect();
        let keys = group_keys(&batch.samples, &difficulties, &self.config);
        let groups = Groups::per_sample(&batch.samples, keys)?;
        self.estimator
            .estimate(&mut batch.samples, &groups, &mut state.baselines)?;
        // The verifier's verdicts (not an exploration-mixed reward) make a group degenerate.
        let correct: Vec<f64> = (self.verdicts.iter())
            .map(|(v, _)| if v.is_correct() { 1.0 } else { 0.0 })
            .collect();
        let by_prompt: Vec<u64> = batch.samples.iter().map(|s| s.group).collect();
        line.degenerate_groups = estimators::degenerate_group_fraction(&correct, &by_prompt);
        write_episodes(
            &step.out.join("episodes"),
            step.index,
            &self.problems,
            &batch.samples,
            &self.verdicts,
        )
    }

    fn update(
        &mut self,
        step: &StepInfo,
        batch: &mut Batch,
        state: &mut TaskState,
        opt: &mut AdamW,
    ) -> Result<UpdateStats> {
        let config = &self.config;
        let rewards: Vec<f64> = batch.samples.iter().map(|s| s.reward).collect();
        let by_prompt: Vec<u64> = batch.samples.iter().map(|s| s.group).collect();
        let rates = estimators::group_means(&rewards, &by_prompt);
        let mut stats = update::UpdateStats::default();
        let step_seed = spar_core::seeds::task_step(config.run.seed, step.index as u64);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(step_seed ^ 0x3b);
        let cx = UpdateContext {
            config,
            objective: &self.objective,
            model: &step.learner.model,
            reference_model: self.reference_model.as_ref(),
            reference: &self.reference,
            temperature: self.temperature,
            selected: self.selected.as_deref(),
        };
        let offset = &mut state.divergence_offset;
        let used = if self.objective.pair.is_some() {
            let problems = self.problems.len();
            update_pairs(
                &cx,
                &batch.samples,
                problems,
                opt,
                &mut rng,
                offset,
                &mut stats,
            )?
        } else {
            update_tokens(
                &cx,
                &batch.samples,
                &rates,
                opt,
                &mut rng,
                offset,
                &mut stats,
            )?
        };
        let mb = stats.minibatches.max(1) as f64;
        Ok(UpdateStats {
            samples: used,
            minibatches: stats.minibatches,
            skipped: stats.skipped,
            loss: stats.loss / mb,
            clip_fraction: stats.clip_fraction / mb,
            approx_kl: stats.approx_kl / mb,
            grad_norm: stats.grad_norm / mb,
            kl_ref: self.objective.kl.is_some().then_some(stats.kl_ref / mb),
            entropy: None,
            sft_loss: None,
            divergence: self
                .objective
                .divergence
                .is_some()
                .then_some(stats.divergence / mb),
            pair_accuracy: self.objective.pair.is_some().then_some(stats.pair_accuracy),
            pair_margin: self.objective.pair.is_some().then_some(stats.pair_margin),
        })
    }

    fn evaluates(&self, step: usize, last: bool) -> bool {
        let every = self.config.eval.every;
        step == 0 || last || every > 0 && step.is_multiple_of(every)
    }

    fn evaluate(&mut self, step: &StepInfo, line: &mut TaskMetrics) -> Result<()> {
        let (config, learner) = (&self.config, step.learner);
        let evaluation = evaluate_task(
            &learner.model.detached(),
            &learner.tokenizer,
            &self.task,
            config.task.seed,
            self.style,
            config.eval.problems,
            config.eval.samples,
            &config.eval.pass_at,
            config.eval.temperature,
            config.rollout.max_tokens,
            config.run.seed ^ 0xe7a1,
        )?;
        line.eval = Some((self.role_env.clone(), evaluation));
        Ok(())
    }

    fn write_checkpoint_files(&self, dir: &Path) -> Result<()> {
        let c = &self.config;
        let prompting = TaskPrompting {
            task: c.task.name.clone(),
            task_seed: c.task.seed,
            prompt_style: c.model.prompt_style.name().to_string(),
            max_tokens: c.rollout.max_tokens,
            attempts: None,
        };
        prompting.save(dir)
    }
}

/// The warm start of `[warm_start]` `w` on `data`, shuffled by `run_seed` (the order every task
/// and self-correction run has used).
pub(crate) fn shuffled_warm_start(
    mut data: Vec<(Vec<u32>, Vec<u32>)>,
    w: &crate::config::tasks::TaskWarmStart,
    run_seed: u64,
) -> WarmStart {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(run_seed ^ 0x5f7);
    data.shuffle(&mut rng);
    WarmStart {
        data,
        steps: w.steps,
        batch_size: w.batch_size,
        learning_rate: w.learning_rate,
    }
}

/// Each answer's group key: by prompt (GRPO), difficulty (HRPO) or the whole batch; for
/// `rae`, its baseline's key: `solver`, or `solver/difficulty-D` with `group_by =
/// "difficulty"` (the keys task checkpoints have always held).
fn group_keys(samples: &[Sample], difficulties: &[u32], config: &TaskTrainConfig) -> Vec<String> {
    let a = &config.algorithm;
    let rae = a.estimator == EstimatorKind::Rae;
    samples
        .iter()
        .zip(difficulties)
        .map(|(s, d)| match (a.group_by, rae) {
            (GroupBy::Difficulty, true) => format!("solver/difficulty-{d}"),
            (_, true) => "solver".to_string(),
            (GroupBy::Difficulty, false) => format!("difficulty-{d}"),
            (GroupBy::Batch, false) => "batch".to_string(),
            (GroupBy::Prompt, false) => format!("prompt-{}", s.group),
        })
        .collect()
}

/// `episodes/step-NNNNNN.jsonl`: every answer of the step with its verdict and advantage.
fn write_episodes(
    dir: &Path,
    step: usize,
    problems: &[(Problem, Vec<u32>)],
    samples: &[Sample],
    verdicts: &[(Verdict, u32)],
) -> Result<()> {
    let mut body = String::new();
    for (s, (verdict, _)) in samples.iter().zip(verdicts) {
        let problem = &problems[s.group as usize].0;
        let line = serde_json::json!({
            "step": step,
            "problem": problem.id,
            "question": problem.question,
            "difficulty": problem.difficulty,
            "completion": s.text,
            "verdict": verdict,
            "reward": s.reward,
            "advantage": s.advantage,
        });
        body.push_str(&line.to_string());
        body.push('\n');
    }
    write_atomic(&dir.join(format!("step-{step:06}.jsonl")), body.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use spar_core::Role;

    use super::*;

    /// The task loop's advantages of one answer per episode: its keys, its estimator.
    fn task_advantages(
        config: &TaskTrainConfig,
        baselines: &mut RoleBaselines,
        rewards: &[f64],
        difficulties: &[u32],
        prompts: &[u64],
    ) -> Vec<f64> {
        let mut samples: Vec<Sample> = rewards
            .iter()
            .zip(prompts)
            .enumerate()
            .map(|(i, (&r, &p))| {
                let mut s = Sample::new(Role::new("arithmetic", 0, "solver"), vec![], vec![1]);
                (s.episode, s.group, s.reward) = (i, p, r);
                s
            })
            .collect();
        let keys = group_keys(&samples, difficulties, config);
        let groups = Groups::per_sample(&samples, keys).unwrap();
        estimator(&config.algorithm.estimator_settings())
            .estimate(&mut samples, &groups, baselines)
            .unwrap();
        samples.iter().map(|s| s.advantage).collect()
    }

    #[test]
    fn rae_on_a_task_reads_each_baseline_before_updating_it() {
        let mut config = TaskTrainConfig::default();
        config.algorithm.estimator = EstimatorKind::Rae;
        config.algorithm.rae_decay = 0.5;
        let mut baselines = RoleBaselines::default();
        // One baseline: A = 1 - 0, 0 - 0.5, 1 - 0.25; then b = 0.5 * 0.25 + 0.5 * 1.
        let (rewards, difficulties, prompts) = ([1.0, 0.0, 1.0], [1, 2, 1], [0, 0, 1]);
        let adv = task_advantages(&config, &mut baselines, &rewards, &difficulties, &prompts);
        assert_eq!(adv, vec![1.0, -0.5, 0.75]);
        assert_eq!(baselines.values["solver"], 0.625);
        // One baseline per difficulty: level 1 sees 1 then 1 - 0.5; level 2 sees 0.
        config.algorithm.group_by = GroupBy::Difficulty;
        let mut baselines = RoleBaselines::default();
        let adv = task_advantages(&config, &mut baselines, &rewards, &difficulties, &prompts);
        assert_eq!(adv, vec![1.0, 0.0, 0.5]);
        assert_eq!(baselines.values["solver/difficulty-1"], 0.75);
        assert_eq!(baselines.values["solver/difficulty-2"], 0.0);
        // REINFORCE++ on top: [1, 0, 0.5] has mean 0.5 and population std sqrt(1/6).
        config.algorithm.batch_norm = true;
        config.algorithm.eps = 0.0;
        let mut baselines = RoleBaselines::default();
        let adv = task_advantages(&config, &mut baselines, &rewards, &difficulties, &prompts);
        let sd = (1.0f64 / 6.0).sqrt();
        assert_eq!(adv, vec![0.5 / sd, -0.5 / sd, 0.0]);
    }

    #[test]
    fn grouped_estimators_on_a_task_group_by_prompt_difficulty_or_batch() {
        let mut config = TaskTrainConfig::default();
        config.algorithm.estimator = EstimatorKind::Group(estimators::Estimator::DrGrpo);
        let (rewards, difficulties, prompts) = ([1.0, 0.0, 0.0, 1.0], [1, 1, 2, 2], [0, 0, 1, 1]);
        let mut none = RoleBaselines::default();
        // By prompt: [1, 0] and [0, 1], means 1/2.
        let adv = task_advantages(&config, &mut none, &rewards, &difficulties, &prompts);
        assert_eq!(adv, vec![0.5, -0.5, -0.5, 0.5]);
        // By batch: one group, mean 1/2; by difficulty, here the same groups as by prompt.
        config.algorithm.group_by = GroupBy::Batch;
        let adv = task_advantages(&config, &mut none, &rewards, &[1, 2, 3, 4], &prompts);
        assert_eq!(adv, vec![0.5, -0.5, -0.5, 0.5]);
        config.algorithm.estimator = EstimatorKind::Group(estimators::Estimator::Rloo);
        config.algorithm.group_by = GroupBy::Difficulty;
        // RLOO by difficulty {1: [1, 0, 0], 2: [1]}: 1 - 0, 0 - 1/2, 0 - 1/2; a singleton keeps r.
        let adv = task_advantages(&config, &mut none, &rewards, &[1, 1, 1, 2], &[0, 1, 2, 3]);
        assert_eq!(adv, vec![1.0, -0.5, -0.5, 1.0]);
        assert!(none.values.is_empty(), "only RAE has state");
    }
}
