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
//!    (reward 1 for a correct answer, 0 otherwise);
//! 3. turns rewards into advantages with the configured estimator, grouped by prompt,
//!    difficulty or the whole batch ([`crate::estimators`]);
//! 4. updates the model with the configured loss ([`crate::losses`]): policy gradient,
//!    PPO-clip with asymmetric ranges, NFT/RFT, SFT on the correct answers, or DPO/IPO on
//!    pairs of a correct and a wrong answer to one problem; optionally a reverse-KL penalty
//!    to the reference (the model after the warm start) and DPH-RL's forward-KL or
//!    Jensen-Shannon term on the reference's own answers to problems it masters.
//!
//! Held-out evaluation ([`evaluate_task`]): unbiased pass@k, majority vote and accuracy per
//! difficulty on the first `eval.problems` test problems, with common random numbers across
//! evaluations.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use spar_core::Env;
use spar_games::tasks::{task_from_spec, Problem, Split, Task, TaskEnv, Verdict};
use spar_lm::checkpoint::write_atomic;
use spar_lm::sample::{generate_streams, SamplingParams};
use spar_lm::score::{score, score_values_at_temperature};
use spar_lm::tokenizer::TextTokenizer;
use spar_lm::Llama;

use crate::error::{Error, Result};
use crate::estimators::{self, Estimator, EstimatorOptions};
use crate::losses::{self, PairLoss, TokenInputs, TokenLoss};
use crate::ppo::{AdamW, Aggregation};
use crate::prompt::{completion_ids, prompt_ids, PromptStyle};
use crate::run_files::MetricsLog;
use crate::selfplay::{
    checkpoint_dir, fresh_learner, io_err, latest_checkpoint, supervised_steps, Learner,
};
use crate::task_config::TaskTrainConfig;

/// Sequences sampled or scored in one batch.
const CHUNK: usize = 256;

/// Held-out evaluation of a model on a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskEvaluation {
    /// Test problems evaluated.
    pub problems: usize,
    /// Answers sampled per problem.
    pub samples: usize,
    /// Unbiased pass@k (Chen et al. 2021) by k.
    pub pass_at: BTreeMap<String, f64>,
    /// Accuracy of the most frequent answer per problem (self-consistency).
    pub majority_accuracy: f64,
    /// pass@1 per difficulty level.
    pub accuracy_by_difficulty: BTreeMap<String, f64>,
    /// Fraction of answers the verifier could not parse.
    pub unparsable_rate: f64,
    /// Mean number of distinct correct answers per problem (answer diversity; meaningful for
    /// tasks with many correct answers, like Countdown).
    pub distinct_correct: f64,
    /// Mean answer length in tokens.
    pub response_tokens: f64,
}

/// One line of a task run's `metrics.jsonl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskMetrics {
    /// Policy step (0: after the warm start, before any update).
    pub step: usize,
    /// Fraction of this step's sampled answers that were correct.
    pub train_accuracy: f64,
    /// Fraction of this step's problems whose answers were all right or all wrong.
    pub degenerate_groups: f64,
    /// Fraction of this step's answers the verifier could not parse.
    pub unparsable_rate: f64,
    /// Mean answer length in tokens.
    pub response_tokens: f64,
    /// Samples (or pairs, for DPO/IPO) the update used.
    pub samples: usize,
    /// Mean loss over the step's minibatches.
    pub loss: f64,
    /// Fraction of clipped ratios (PPO).
    pub clip_fraction: f64,
    /// Mean `old - new` log-probability per token.
    pub approx_kl: f64,
    /// Mean reverse-KL estimate to the reference per token (with `algorithm.kl`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kl_ref: Option<f64>,
    /// Mean DPH-RL divergence per token on the reference answers (with
    /// `algorithm.divergence`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub divergence: Option<f64>,
    /// Fraction of DPO/IPO pairs whose implicit reward ranks the correct answer first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pair_accuracy: Option<f64>,
    /// Mean gradient norm before clipping.
    pub grad_norm: f64,
    /// Updates skipped because the loss or gradient was not finite (run total).
    pub skipped_updates: usize,
    /// The warm start's last loss (step 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_start_loss: Option<f64>,
    /// Problems the reference masters, whose answers feed the divergence (step 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_mastered: Option<usize>,
    /// Held-out evaluation, at evaluation steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval: Option<TaskEvaluation>,
    /// Seconds the step took.
    pub seconds: f64,
}

/// A checkpoint's state besides weights and optimiser moments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TaskRunState {
    step: usize,
    optimizer_step: u64,
    skipped_updates: usize,
    /// Reference answers the divergence term has read so far (it reads them in a cycle).
    #[serde(default)]
    divergence_offset: usize,
    /// `estimator = "rae"`: the EMA baselines, as exact bit patterns of the f64 values.
    #[serde(default)]
    baselines: BTreeMap<String, u64>,
}

/// SPIRAL's RAE on a task (crate::advantage, one update per answer in order): the baseline of
/// `solver` (or `solver/difficulty-D` with `group_by = "difficulty"`), read before it is
/// updated; `A = r - b`. With `batch_norm`, REINFORCE++ normalisation after.
fn rae_advantages(
    state: &mut TaskRunState,
    answers: &[Answer],
    config: &TaskTrainConfig,
) -> Result<Vec<f64>> {
    let a = &config.algorithm;
    let mut baselines = crate::advantage::RoleBaselines {
        values: state
            .baselines
            .iter()
            .map(|(k, b)| (k.clone(), f64::from_bits(*b)))
            .collect(),
    };
    let games: Vec<BTreeMap<String, f64>> = answers
        .iter()
        .map(|x| {
            let key = if a.group_by == "difficulty" {
                format!("solver/difficulty-{}", x.difficulty)
            } else {
                "solver".to_string()
            };
            BTreeMap::from([(key, x.reward)])
        })
        .collect();
    let advantages: Vec<f64> = baselines
        .advantages(&games, a.rae_decay, crate::advantage::RaeUpdate::PerGame)
        .into_iter()
        .map(|g| g.into_values().next().unwrap_or(0.0))
        .collect();
    state.baselines = baselines
        .values
        .iter()
        .map(|(k, v)| (k.clone(), v.to_bits()))
        .collect();
    Ok(if a.batch_norm {
        estimators::batch_normalise(&advantages, a.eps)
    } else {
        advantages
    })
}

/// How a task checkpoint is prompted (`task.json` in every checkpoint; `spar eval --task`
/// reads it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskPrompting {
    /// The task spec.
    pub task: String,
    /// The task's generator seed.
    pub task_seed: u64,
    /// auto, chat or raw.
    pub prompt_style: String,
    /// Most tokens per answer.
    pub max_tokens: usize,
}

impl TaskPrompting {
    /// Reads `dir/task.json`, if there is one.
    pub fn load(dir: &Path) -> Result<Option<TaskPrompting>> {
        let path = dir.join("task.json");
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Invalid(format!("{}: corrupt task.json: {e}", path.display())))
    }
}

/// One sampled answer.
#[derive(Debug, Clone)]
struct Answer {
    problem: usize,
    prompt: Vec<u32>,
    completion: Vec<u32>,
    text: String,
    verdict: Verdict,
    reward: f64,
    difficulty: u32,
}

/// The prompt a model reads for `problem` of `task` (through [`TaskEnv`]).
fn problem_prompt(
    tokenizer: &TextTokenizer,
    task: &Arc<dyn Task>,
    split: Split,
    index: u64,
    task_seed: u64,
    style: PromptStyle,
) -> Result<(Problem, Vec<u32>)> {
    let mut env = TaskEnv::new(task.clone(), split, task_seed);
    env.reset(index);
    let observation = env.observation(0);
    let problem = env
        .problem()
        .cloned()
        .ok_or_else(|| Error::Invalid(format!("task {} drew no problem", task.name())))?;
    Ok((problem, prompt_ids(tokenizer, &observation, style)?))
}

/// Samples `n` answers to each prompt (stream `(seed, p * n + j)` for answer `j` of prompt
/// `p`), in chunks.
fn sample_answers(
    model: &Llama,
    tokenizer: &TextTokenizer,
    prompts: &[Vec<u32>],
    n: usize,
    params: &SamplingParams,
    seed: u64,
) -> Result<Vec<spar_lm::sample::Completion>> {
    let flat: Vec<(Vec<u32>, (u64, u64))> = prompts
        .iter()
        .enumerate()
        .flat_map(|(p, ids)| (0..n).map(move |j| (ids.clone(), (seed, (p * n + j) as u64))))
        .collect();
    let mut out = Vec::with_capacity(flat.len());
    for chunk in flat.chunks(CHUNK) {
        let ids: Vec<Vec<u32>> = chunk.iter().map(|(p, _)| p.clone()).collect();
        let streams: Vec<(u64, u64)> = chunk.iter().map(|(_, s)| *s).collect();
        out.extend(generate_streams(
            model,
            tokenizer,
            &ids,
            params,
            &streams,
            &mut |_, _, _| {},
        )?);
    }
    Ok(out)
}

/// Held-out evaluation: `samples` answers at `temperature` to each of the first `problems`
/// test problems of `task`; unbiased pass@k for every k of `pass_at`, majority vote, pass@1
/// per difficulty, answer diversity. Answer `j` of problem `p` draws from stream
/// `(seed, p * samples + j)`, so evaluations of different models share their random numbers.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_task(
    model: &Llama,
    tokenizer: &TextTokenizer,
    task: &Arc<dyn Task>,
    task_seed: u64,
    style: PromptStyle,
    problems: usize,
    samples: usize,
    pass_at: &[usize],
    temperature: f64,
    max_tokens: usize,
    seed: u64,
) -> Result<TaskEvaluation> {
    let available = task.split_size(Split::Test).unwrap_or(usize::MAX);
    let problems = problems.min(available);
    let mut drawn = Vec::with_capacity(problems);
    for p in 0..problems {
        drawn.push(problem_prompt(
            tokenizer,
            task,
            Split::Test,
            p as u64,
            task_seed,
            style,
        )?);
    }
    let prompts: Vec<Vec<u32>> = drawn.iter().map(|(_, ids)| ids.clone()).collect();
    let params = SamplingParams {
        temperature,
        max_tokens,
        ..SamplingParams::default()
    };
    let completions = sample_answers(model, tokenizer, &prompts, samples, &params, seed)?;
    let mut counts = Vec::with_capacity(problems);
    let mut by_level = Vec::with_capacity(problems);
    let (mut majority, mut unparsable, mut tokens, mut distinct) = (0usize, 0usize, 0usize, 0usize);
    for (p, (problem, _)) in drawn.iter().enumerate() {
        let answers = &completions[p * samples..(p + 1) * samples];
        let mut correct = 0;
        let mut extracted = Vec::with_capacity(samples);
        let mut right_answers = std::collections::BTreeSet::new();
        for c in answers {
            let verdict = task.verify(problem, &c.text);
            tokens += c.token_ids.len();
            if matches!(verdict, Verdict::Unparsable { .. }) {
                unparsable += 1;
            }
            let answer = task.extract_answer(&c.text);
            if verdict.is_correct() {
                correct += 1;
                if let Some(a) = &answer {
                    right_answers.insert(a.clone());
                }
            }
            extracted.push(answer);
        }
        distinct += right_answers.len();
        if let Some(voted) = spar_eval::pass_at_k::majority_vote(&extracted) {
            // The voted answer is right if any answer with that text was verified right.
            if right_answers.contains(&voted) {
                majority += 1;
            }
        }
        counts.push((samples, correct));
        by_level.push((problem.difficulty, samples, correct));
    }
    let mut pass = BTreeMap::new();
    for &k in pass_at {
        let value = spar_eval::pass_at_k::mean_pass_at_k(&counts, k)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        pass.insert(k.to_string(), value);
    }
    let total = (problems * samples).max(1) as f64;
    Ok(TaskEvaluation {
        problems,
        samples,
        pass_at: pass,
        majority_accuracy: majority as f64 / problems.max(1) as f64,
        accuracy_by_difficulty: spar_eval::pass_at_k::per_difficulty(&by_level)
            .into_iter()
            .map(|l| (l.difficulty.to_string(), l.pass_at_1))
            .collect(),
        unparsable_rate: unparsable as f64 / total,
        distinct_correct: distinct as f64 / problems.max(1) as f64,
        response_tokens: tokens as f64 / total,
    })
}

/// A stored answer of the reference model to a problem it masters (DPH-RL's pre-sampling).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ReferenceAnswer {
    prompt: Vec<u32>,
    completion: Vec<u32>,
    /// The reference's per-token log-probabilities of `completion` (at the rollout
    /// temperature).
    logprobs: Vec<f32>,
}

/// DPH-RL's pre-sampling (Sec. 3 of "The Choice of Divergence"): `reference_samples` answers
/// to each of the first `reference_problems` training problems from the reference model; a
/// problem all of whose answers are right is mastered, and its first answer is kept with the
/// reference's log-probabilities.
fn presample_reference(
    learner: &Learner,
    task: &Arc<dyn Task>,
    config: &TaskTrainConfig,
    style: PromptStyle,
) -> Result<Vec<ReferenceAnswer>> {
    let a = &config.algorithm;
    let mut drawn = Vec::new();
    for p in 0..a.reference_problems {
        drawn.push(problem_prompt(
            &learner.tokenizer,
            task,
            Split::Train,
            p as u64,
            config.task.seed,
            style,
        )?);
    }
    let prompts: Vec<Vec<u32>> = drawn.iter().map(|(_, ids)| ids.clone()).collect();
    let params = SamplingParams {
        temperature: config.rollout.temperature,
        max_tokens: config.rollout.max_tokens,
        ..SamplingParams::default()
    };
    let n = a.reference_samples;
    let completions = sample_answers(
        &learner.model,
        &learner.tokenizer,
        &prompts,
        n,
        &params,
        config.run.seed ^ 0xd9a5_0000,
    )?;
    let mut kept = Vec::new();
    for (p, (problem, prompt)) in drawn.iter().enumerate() {
        let answers = &completions[p * n..(p + 1) * n];
        if answers
            .iter()
            .all(|c| task.verify(problem, &c.text).is_correct())
        {
            kept.push((prompt.clone(), answers[0].token_ids.clone()));
        }
    }
    let mut out = Vec::with_capacity(kept.len());
    for chunk in kept.chunks(CHUNK) {
        let values =
            score_values_at_temperature(&learner.model, chunk, config.rollout.temperature)?;
        for ((prompt, completion), logprobs) in chunk.iter().zip(values) {
            out.push(ReferenceAnswer {
                prompt: prompt.clone(),
                completion: completion.clone(),
                logprobs,
            });
        }
    }
    Ok(out)
}

/// Supervised warm start on the reference solutions of the first `warm_start.problems`
/// training problems. Returns the last loss.
fn warm_start(
    learner: &Learner,
    task: &Arc<dyn Task>,
    config: &TaskTrainConfig,
    style: PromptStyle,
) -> Result<Option<f64>> {
    let w = &config.warm_start;
    if w.steps == 0 {
        return Ok(None);
    }
    let mut data = Vec::with_capacity(w.problems);
    for p in 0..w.problems {
        let (problem, prompt) = problem_prompt(
            &learner.tokenizer,
            task,
            Split::Train,
            p as u64,
            config.task.seed,
            style,
        )?;
        data.push((
            prompt,
            completion_ids(&learner.tokenizer, &problem.solution)?,
        ));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.run.seed ^ 0x5f7);
    data.shuffle(&mut rng);
    supervised_steps(learner, &data, w.steps, w.batch_size, w.learning_rate)
}

fn aggregation(config: &TaskTrainConfig) -> Aggregation {
    match config.algorithm.loss_aggregation.as_str() {
        "token_sum" => Aggregation::TokenSum(config.algorithm.normaliser),
        "batch_token_mean" => Aggregation::BatchTokenMean,
        _ => Aggregation::TokenMean,
    }
}

/// A `(rows, width)` grid of per-token values, zero-padded.
fn grid(rows: &[&[f32]], width: usize, device: &Device) -> Result<Tensor> {
    let mut v = vec![0f32; rows.len() * width];
    for (i, r) in rows.iter().enumerate() {
        v[i * width..i * width + r.len().min(width)].copy_from_slice(&r[..r.len().min(width)]);
    }
    Ok(Tensor::from_vec(v, (rows.len(), width), device)?)
}

/// A learnable answer with what the losses need.
#[derive(Debug, Clone)]
struct Sample {
    prompt: Vec<u32>,
    completion: Vec<u32>,
    advantage: f64,
    correct: bool,
    group_rate: f64,
    old: Vec<f32>,
    reference: Vec<f32>,
}

/// Accumulated statistics of one step's update.
#[derive(Debug, Default)]
struct UpdateStats {
    loss: f64,
    clip_fraction: f64,
    approx_kl: f64,
    kl_ref: f64,
    divergence: f64,
    pair_accuracy: f64,
    grad_norm: f64,
    minibatches: usize,
    skipped: usize,
}

/// Applies one optimiser step from `loss` (gradient-norm clipping; a non-finite loss or
/// gradient skips the step). Returns the norm.
fn apply(
    loss: &Tensor,
    opt: &mut AdamW,
    max_grad_norm: f64,
    stats: &mut UpdateStats,
) -> Result<()> {
    let value = f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?);
    let grads = loss.backward()?;
    let norm = opt.grad_norm(&grads)?;
    if !(value.is_finite() && norm.is_finite()) {
        stats.skipped += 1;
        return Ok(());
    }
    let scale = if max_grad_norm > 0.0 && norm > max_grad_norm {
        max_grad_norm / norm
    } else {
        1.0
    };
    opt.step(&grads, scale)?;
    stats.loss += value;
    stats.grad_norm += norm;
    stats.minibatches += 1;
    Ok(())
}

/// The divergence term on a rotating minibatch of reference answers (coefficient applied).
fn divergence_term(
    model: &Llama,
    divergence: &dyn TokenLoss,
    reference: &[ReferenceAnswer],
    offset: usize,
    size: usize,
    config: &TaskTrainConfig,
) -> Result<(Tensor, f64)> {
    let picked: Vec<&ReferenceAnswer> = (0..size.min(reference.len()))
        .map(|i| &reference[(offset + i) % reference.len()])
        .collect();
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = picked
        .iter()
        .map(|r| (r.prompt.clone(), r.completion.clone()))
        .collect();
    let scores = spar_lm::score::score_at_temperature(model, &pairs, config.rollout.temperature)?;
    let width = scores.token_logprobs.dim(1)?;
    let rows: Vec<&[f32]> = picked.iter().map(|r| r.logprobs.as_slice()).collect();
    let ref_logp = grid(&rows, width, scores.mask.device())?;
    let inputs = TokenInputs {
        logp: &scores.token_logprobs,
        mask: &scores.mask,
        old_logp: None,
        ref_logp: Some(&ref_logp),
        advantages: None,
        correct: None,
        group_rate: None,
    };
    let (per_token, _) = divergence.per_token(&inputs)?;
    let term = losses::aggregate(&per_token, &scores.mask, aggregation(config))?;
    let value = f64::from(term.to_dtype(DType::F32)?.to_scalar::<f32>()?);
    Ok(((term * config.algorithm.divergence_coef)?, value))
}

/// Runs (or resumes) the task run described by `config` in `out`; `on_metrics` sees every
/// line written to `metrics.jsonl`.
pub fn run(
    config: &TaskTrainConfig,
    out: &Path,
    resume: bool,
    mut on_metrics: impl FnMut(&TaskMetrics),
) -> Result<Vec<TaskMetrics>> {
    config.validate()?;
    let task: Arc<dyn Task> = Arc::from(
        task_from_spec(&config.task.name)
            .map_err(|e| Error::Invalid(format!("config: task.name: {e}")))?,
    );
    let device = spar_lm::cli::default_device();
    let style: PromptStyle = config.model.prompt_style.parse()?;
    let a = &config.algorithm;
    // `rae` is SPIRAL's EMA baseline (crate::advantage), kept in the run state.
    let estimator: Option<Estimator> = if a.estimator == "rae" {
        None
    } else {
        Some(a.estimator.parse()?)
    };
    let est_options = EstimatorOptions {
        eps: a.eps,
        batch_norm: a.batch_norm,
        ..EstimatorOptions::default()
    };
    let objective = Objective::from_config(a)?;
    let needs_reference_model = objective.kl.is_some() || objective.pair.is_some();

    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let mut log = MetricsLog::open(out, config.run.tensorboard)?;
    let mut history: Vec<TaskMetrics> = Vec::new();
    let mut emit = |log: &mut MetricsLog, m: &TaskMetrics, history: &mut Vec<TaskMetrics>| {
        log.append(m, m.step)?;
        on_metrics(m);
        history.push(m.clone());
        Ok::<(), Error>(())
    };
    let evaluate = |learner: &Learner| {
        evaluate_task(
            &learner.model,
            &learner.tokenizer,
            &task,
            config.task.seed,
            style,
            config.eval.problems,
            config.eval.samples,
            &config.eval.pass_at,
            config.eval.temperature,
            config.rollout.max_tokens,
            config.run.seed ^ 0xe7a1,
        )
    };
    let reference_path = out.join("reference_answers.json");

    // 1. The model: resumed, or fresh and warm-started (step 0).
    let resumed = if resume { latest_checkpoint(out) } else { None };
    if resume && resumed.is_none() {
        return Err(Error::Invalid(format!(
            "--resume: {} has no complete checkpoint (checkpoints/step-*/state.json)",
            out.display()
        )));
    }
    let (learner, mut opt, mut state, reference) = match resumed {
        Some((_, dir)) => {
            if config.model.lora.is_some() != spar_lm::cli::is_lora_checkpoint(&dir) {
                return Err(Error::Invalid(format!(
                    "--resume: {} does not match the config's [model.lora]; resume with the \
                     run's own config.toml",
                    dir.display()
                )));
            }
            let learner = Learner::load(&dir, &device)?;
            let text =
                std::fs::read_to_string(dir.join("state.json")).map_err(|e| io_err(&dir, e))?;
            let state: TaskRunState = serde_json::from_str(&text).map_err(|e| {
                Error::Invalid(format!("{}: corrupt state.json: {e}", dir.display()))
            })?;
            let mut opt = AdamW::new(learner.named_vars(), a.learning_rate, a.weight_decay)?;
            let moments =
                candle_core::safetensors::load(dir.join("optimizer.safetensors"), &device)?;
            opt.load_state(&moments, state.optimizer_step)?;
            let reference = if objective.divergence.is_some() {
                let text = std::fs::read_to_string(&reference_path)
                    .map_err(|e| io_err(&reference_path, e))?;
                serde_json::from_str(&text).map_err(|e| {
                    Error::Invalid(format!(
                        "{}: corrupt reference answers: {e}",
                        reference_path.display()
                    ))
                })?
            } else {
                Vec::new()
            };
            // metrics.jsonl: keep the lines up to the checkpoint.
            history = log.keep_until(state.step, |m: &TaskMetrics| m.step)?;
            (learner, opt, state, reference)
        }
        None => {
            let started = std::time::Instant::now();
            write_atomic(&out.join("config.toml"), config.to_toml().as_bytes())?;
            log.rewrite::<TaskMetrics>(&[])?;
            let learner = fresh_learner(&config.model, config.run.seed, out, &device)?;
            let warm = warm_start(&learner, &task, config, style)?;
            let reference = if objective.divergence.is_some() {
                let r = presample_reference(&learner, &task, config, style)?;
                let json = serde_json::to_string(&r).expect("reference answers serialise");
                write_atomic(&reference_path, json.as_bytes())?;
                r
            } else {
                Vec::new()
            };
            let opt = AdamW::new(learner.named_vars(), a.learning_rate, a.weight_decay)?;
            let state = TaskRunState {
                step: 0,
                optimizer_step: 0,
                skipped_updates: 0,
                divergence_offset: 0,
                baselines: BTreeMap::new(),
            };
            let m = TaskMetrics {
                step: 0,
                warm_start_loss: warm,
                reference_mastered: objective.divergence.is_some().then_some(reference.len()),
                eval: Some(evaluate(&learner)?),
                seconds: started.elapsed().as_secs_f64(),
                ..TaskMetrics::default()
            };
            save(out, &learner, &opt, &state, config)?;
            emit(&mut log, &m, &mut history)?;
            (learner, opt, state, reference)
        }
    };
    let reference_model = if needs_reference_model {
        Some(learner.load_frozen(&checkpoint_dir(out, 0))?)
    } else {
        None
    };
    if objective.divergence.is_some() && reference.is_empty() {
        eprintln!(
            "warning: the reference model masters none of the first {} training problems \
             ({} of {} answers right needed): the divergence term is empty",
            a.reference_problems, a.reference_samples, a.reference_samples
        );
    }

    // 2. Policy steps.
    let episodes_dir = out.join("episodes");
    std::fs::create_dir_all(&episodes_dir).map_err(|e| io_err(&episodes_dir, e))?;
    for step in state.step + 1..=config.run.steps {
        let started = std::time::Instant::now();
        // 2a. Problems and answers.
        let mut problems = Vec::with_capacity(config.rollout.prompts);
        for i in 0..config.rollout.prompts {
            // After the warm start's problems, so that training accuracy is on unseen ones.
            let index =
                (config.warm_start.problems + (step - 1) * config.rollout.prompts + i) as u64;
            problems.push(problem_prompt(
                &learner.tokenizer,
                &task,
                Split::Train,
                index,
                config.task.seed,
                style,
            )?);
        }
        let prompts: Vec<Vec<u32>> = problems.iter().map(|(_, ids)| ids.clone()).collect();
        let params = SamplingParams {
            temperature: config.rollout.temperature,
            max_tokens: config.rollout.max_tokens,
            ..SamplingParams::default()
        };
        let g = config.rollout.group_size;
        let step_seed = step_seed_of(config.run.seed, step as u64);
        let completions = sample_answers(
            &learner.model,
            &learner.tokenizer,
            &prompts,
            g,
            &params,
            step_seed,
        )?;
        let answers: Vec<Answer> = completions
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let (problem, prompt) = &problems[i / g];
                let verdict = task.verify(problem, &c.text);
                Answer {
                    problem: i / g,
                    prompt: prompt.clone(),
                    completion: c.token_ids,
                    text: c.text,
                    reward: verdict.reward(),
                    verdict,
                    difficulty: problem.difficulty,
                }
            })
            .collect();
        // 2b. Advantages.
        let rewards: Vec<f64> = answers.iter().map(|x| x.reward).collect();
        let keys: Vec<u64> = answers
            .iter()
            .map(|x| match a.group_by.as_str() {
                "difficulty" => u64::from(x.difficulty),
                "batch" => 0,
                _ => x.problem as u64,
            })
            .collect();
        let by_prompt: Vec<u64> = answers.iter().map(|x| x.problem as u64).collect();
        let advantages = match estimator {
            Some(e) => estimators::advantages(e, &rewards, &keys, &est_options)?,
            None => rae_advantages(&mut state, &answers, config)?,
        };
        let rates = estimators::group_means(&rewards, &by_prompt);
        let degenerate = estimators::degenerate_group_fraction(&rewards, &by_prompt);
        write_episodes(&episodes_dir, step, &problems, &answers, &advantages)?;

        // 2c. The update.
        let mut stats = UpdateStats::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(step_seed ^ 0x3b);
        let cx = UpdateContext {
            config,
            objective: &objective,
            model: &learner.model,
            reference_model: reference_model.as_ref(),
            reference: &reference,
        };
        let used = if objective.pair.is_some() {
            update_pairs(
                &cx,
                &answers,
                problems.len(),
                &mut opt,
                &mut rng,
                &mut state.divergence_offset,
                &mut stats,
            )?
        } else {
            update_tokens(
                &cx,
                &answers,
                &advantages,
                &rates,
                &mut opt,
                &mut rng,
                &mut state.divergence_offset,
                &mut stats,
            )?
        };
        state.step = step;
        state.optimizer_step = opt.step;
        state.skipped_updates += stats.skipped;
        let mb = stats.minibatches.max(1) as f64;
        let total = answers.len().max(1) as f64;
        let evaluate_now =
            step == config.run.steps || (config.eval.every > 0 && step % config.eval.every == 0);
        let m = TaskMetrics {
            step,
            train_accuracy: rewards.iter().sum::<f64>() / total,
            degenerate_groups: degenerate,
            unparsable_rate: answers
                .iter()
                .filter(|x| matches!(x.verdict, Verdict::Unparsable { .. }))
                .count() as f64
                / total,
            response_tokens: answers.iter().map(|x| x.completion.len()).sum::<usize>() as f64
                / total,
            samples: used,
            loss: stats.loss / mb,
            clip_fraction: stats.clip_fraction / mb,
            approx_kl: stats.approx_kl / mb,
            kl_ref: objective.kl.is_some().then_some(stats.kl_ref / mb),
            divergence: objective
                .divergence
                .is_some()
                .then_some(stats.divergence / mb),
            pair_accuracy: objective.pair.is_some().then_some(stats.pair_accuracy),
            grad_norm: stats.grad_norm / mb,
            skipped_updates: state.skipped_updates,
            warm_start_loss: None,
            reference_mastered: None,
            eval: if evaluate_now {
                Some(evaluate(&learner)?)
            } else {
                None
            },
            seconds: started.elapsed().as_secs_f64(),
        };
        if step % config.run.checkpoint_every == 0 || step == config.run.steps {
            save(out, &learner, &opt, &state, config)?;
        }
        emit(&mut log, &m, &mut history)?;
    }
    Ok(history)
}

/// The losses of a run, built once from `[algorithm]`.
struct Objective {
    /// The token-level policy loss (every loss but DPO/IPO).
    policy: Option<Box<dyn TokenLoss>>,
    /// DPO or IPO.
    pair: Option<Box<dyn PairLoss>>,
    /// The reverse-KL penalty to the reference model.
    kl: Option<Box<dyn TokenLoss>>,
    /// DPH-RL's divergence on the reference answers.
    divergence: Option<Box<dyn TokenLoss>>,
}

impl Objective {
    fn from_config(a: &crate::task_config::AlgorithmConfig) -> Result<Objective> {
        let pairwise = matches!(a.loss.as_str(), "dpo" | "ipo");
        Ok(Objective {
            policy: if pairwise {
                None
            } else {
                Some(losses::policy_loss_from_name(
                    &a.loss,
                    a.clip_low,
                    a.clip_high,
                    a.nft_neg_weight,
                    a.nft_normalize,
                )?)
            },
            pair: if pairwise {
                let strength = if a.loss == "dpo" {
                    a.dpo_beta
                } else {
                    a.ipo_tau
                };
                Some(losses::pair_loss_from_name(&a.loss, strength)?)
            } else {
                None
            },
            kl: losses::divergence_from_name(&a.kl)?,
            divergence: losses::divergence_from_name(&a.divergence)?,
        })
    }
}

/// What one step's update reads besides its answers.
struct UpdateContext<'a> {
    config: &'a TaskTrainConfig,
    objective: &'a Objective,
    /// The learner's model.
    model: &'a Llama,
    /// The frozen model after the warm start (KL penalty, DPO/IPO).
    reference_model: Option<&'a Llama>,
    /// DPH-RL's reference answers.
    reference: &'a [ReferenceAnswer],
}

/// DPO/IPO: pairs of the i-th correct with the i-th wrong answer of each problem, scored by
/// the policy and the reference; `epochs` passes of minibatches. Returns the pairs used.
#[allow(clippy::too_many_arguments)]
fn update_pairs(
    cx: &UpdateContext<'_>,
    answers: &[Answer],
    problems: usize,
    opt: &mut AdamW,
    rng: &mut rand_chacha::ChaCha8Rng,
    offset: &mut usize,
    stats: &mut UpdateStats,
) -> Result<usize> {
    let a = &cx.config.algorithm;
    let pair_loss = cx.objective.pair.as_ref().expect("a pair loss");
    let reference_model = cx.reference_model.expect("a reference for DPO/IPO");
    let mut pairs: Vec<(&Answer, &Answer)> = Vec::new();
    for p in 0..problems {
        let group: Vec<&Answer> = answers.iter().filter(|x| x.problem == p).collect();
        let right = group.iter().filter(|x| x.reward > 0.5);
        let wrong = group.iter().filter(|x| x.reward <= 0.5);
        pairs.extend(right.zip(wrong).map(|(r, w)| (*r, *w)));
    }
    let mut pair_acc = 0.0;
    for _ in 0..a.epochs {
        pairs.shuffle(rng);
        for mb in pairs.chunks(a.minibatch_size) {
            let seqs: Vec<(Vec<u32>, Vec<u32>)> = mb
                .iter()
                .map(|(r, _)| (r.prompt.clone(), r.completion.clone()))
                .chain(
                    mb.iter()
                        .map(|(_, w)| (w.prompt.clone(), w.completion.clone())),
                )
                .collect();
            let n = mb.len();
            let scores = score(cx.model, &seqs)?;
            let sums = losses::sequence_logp(&scores.token_logprobs, &scores.mask)?;
            let ref_scores = score(reference_model, &seqs)?;
            let ref_sums =
                losses::sequence_logp(&ref_scores.token_logprobs, &ref_scores.mask)?.detach();
            let (loss, pstats) = pair_loss.loss(
                &sums.narrow(0, 0, n)?,
                &sums.narrow(0, n, n)?,
                &ref_sums.narrow(0, 0, n)?,
                &ref_sums.narrow(0, n, n)?,
            )?;
            let loss = add_divergence(cx, loss, offset, stats)?;
            pair_acc += pstats.accuracy;
            apply(&loss, opt, a.max_grad_norm, stats)?;
        }
    }
    if stats.minibatches > 0 {
        stats.pair_accuracy = pair_acc / stats.minibatches as f64;
    }
    Ok(pairs.len())
}

/// Token-level losses (PG, PPO, NFT, RFT, SFT) with the optional KL penalty: the answers kept
/// (degenerate groups dropped with `filter_degenerate`; only correct ones for `sft`), their
/// behaviour and reference log-probabilities computed before the update, then `epochs`
/// passes of minibatches. Returns the samples used.
#[allow(clippy::too_many_arguments)]
fn update_tokens(
    cx: &UpdateContext<'_>,
    answers: &[Answer],
    advantages: &[f64],
    rates: &[f64],
    opt: &mut AdamW,
    rng: &mut rand_chacha::ChaCha8Rng,
    offset: &mut usize,
    stats: &mut UpdateStats,
) -> Result<usize> {
    let (config, a) = (cx.config, &cx.config.algorithm);
    let policy_loss = cx.objective.policy.as_ref().expect("a policy loss");
    let kl_loss = cx.objective.kl.as_ref();
    let temperature = config.rollout.temperature;
    let mut samples: Vec<Sample> = answers
        .iter()
        .zip(advantages)
        .zip(rates)
        .filter(|(_, &rate)| !a.filter_degenerate || (rate > 0.0 && rate < 1.0))
        .filter(|((x, _), _)| a.loss != "sft" || x.reward > 0.5)
        .map(|((x, &adv), &rate)| Sample {
            prompt: x.prompt.clone(),
            completion: x.completion.clone(),
            advantage: adv,
            correct: x.reward > 0.5,
            group_rate: rate,
            old: Vec::new(),
            reference: Vec::new(),
        })
        .collect();
    // Old (behaviour) and reference log-probabilities, before the update.
    for chunk in samples.chunks_mut(CHUNK) {
        let pairs: Vec<(Vec<u32>, Vec<u32>)> = chunk
            .iter()
            .map(|s| (s.prompt.clone(), s.completion.clone()))
            .collect();
        let old = score_values_at_temperature(cx.model, &pairs, temperature)?;
        let reference = match cx.reference_model {
            Some(r) if kl_loss.is_some() => score_values_at_temperature(r, &pairs, temperature)?,
            _ => vec![Vec::new(); pairs.len()],
        };
        for ((s, o), r) in chunk.iter_mut().zip(old).zip(reference) {
            s.old = o;
            s.reference = r;
        }
    }
    for _ in 0..a.epochs {
        samples.shuffle(rng);
        for mb in samples.chunks(a.minibatch_size) {
            let pairs: Vec<(Vec<u32>, Vec<u32>)> = mb
                .iter()
                .map(|s| (s.prompt.clone(), s.completion.clone()))
                .collect();
            let scores = spar_lm::score::score_at_temperature(cx.model, &pairs, temperature)?;
            let device = scores.mask.device().clone();
            let width = scores.token_logprobs.dim(1)?;
            let olds: Vec<&[f32]> = mb.iter().map(|s| s.old.as_slice()).collect();
            let old = grid(&olds, width, &device)?;
            let refs: Vec<&[f32]> = mb.iter().map(|s| s.reference.as_slice()).collect();
            let ref_grid = grid(&refs, width, &device)?;
            let column = |f: &dyn Fn(&Sample) -> f32| {
                Tensor::from_vec(mb.iter().map(f).collect::<Vec<f32>>(), mb.len(), &device)
            };
            let adv = column(&|s| s.advantage as f32)?;
            let correct = column(&|s| if s.correct { 1.0 } else { 0.0 })?;
            let rate = column(&|s| s.group_rate as f32)?;
            let inputs = TokenInputs {
                logp: &scores.token_logprobs,
                mask: &scores.mask,
                old_logp: Some(&old),
                ref_logp: kl_loss.is_some().then_some(&ref_grid),
                advantages: Some(&adv),
                correct: Some(&correct),
                group_rate: Some(&rate),
            };
            let mut terms: Vec<(&dyn TokenLoss, f64)> = vec![(policy_loss.as_ref(), 1.0)];
            if let Some(kl) = kl_loss {
                terms.push((kl.as_ref(), a.kl_coef));
            }
            let (loss, term_stats) = losses::total_loss(&terms, &inputs, aggregation(config))?;
            stats.clip_fraction += term_stats[0].clip_fraction;
            stats.approx_kl += term_stats[0].approx_kl;
            if let Some(k) = term_stats.get(1) {
                stats.kl_ref += k.kl;
            }
            let loss = add_divergence(cx, loss, offset, stats)?;
            apply(&loss, opt, a.max_grad_norm, stats)?;
        }
    }
    Ok(samples.len())
}

/// `loss` plus the divergence term on the next minibatch of reference answers (when there is
/// a divergence and reference answers).
fn add_divergence(
    cx: &UpdateContext<'_>,
    loss: Tensor,
    offset: &mut usize,
    stats: &mut UpdateStats,
) -> Result<Tensor> {
    let Some(divergence) = cx.objective.divergence.as_deref() else {
        return Ok(loss);
    };
    if cx.reference.is_empty() {
        return Ok(loss);
    }
    let size = cx.config.algorithm.minibatch_size;
    let (term, value) =
        divergence_term(cx.model, divergence, cx.reference, *offset, size, cx.config)?;
    *offset += size;
    stats.divergence += value;
    Ok((loss + term)?)
}

/// SplitMix64 of `(seed, step)`: the sampling seed of a step.
fn step_seed_of(seed: u64, step: u64) -> u64 {
    let mut z = seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `episodes/step-NNNNNN.jsonl`: every answer of the step with its verdict and advantage.
fn write_episodes(
    dir: &Path,
    step: usize,
    problems: &[(Problem, Vec<u32>)],
    answers: &[Answer],
    advantages: &[f64],
) -> Result<()> {
    let mut body = String::new();
    for (x, adv) in answers.iter().zip(advantages) {
        let problem = &problems[x.problem].0;
        let line = serde_json::json!({
            "step": step,
            "problem": problem.id,
            "question": problem.question,
            "difficulty": problem.difficulty,
            "completion": x.text,
            "verdict": x.verdict,
            "reward": x.reward,
            "advantage": adv,
        });
        body.push_str(&line.to_string());
        body.push('\n');
    }
    write_atomic(&dir.join(format!("step-{step:06}.jsonl")), body.as_bytes())?;
    Ok(())
}

fn save(
    out: &Path,
    learner: &Learner,
    opt: &AdamW,
    state: &TaskRunState,
    config: &TaskTrainConfig,
) -> Result<()> {
    crate::run_files::save_checkpoint(out, state.step, opt, state, |tmp| {
        learner.save(tmp)?;
        let prompting = TaskPrompting {
            task: config.task.name.clone(),
            task_seed: config.task.seed,
            prompt_style: config.model.prompt_style.clone(),
            max_tokens: config.rollout.max_tokens,
        };
        write_atomic(
            &tmp.join("task.json"),
            serde_json::to_string_pretty(&prompting)
                .expect("prompting serialises")
                .as_bytes(),
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(reward: f64, difficulty: u32) -> Answer {
        Answer {
            problem: 0,
            prompt: vec![1],
            completion: vec![2],
            text: String::new(),
            verdict: if reward > 0.5 {
                Verdict::Correct
            } else {
                Verdict::Unparsable {
                    reason: String::new(),
                }
            },
            reward,
            difficulty,
        }
    }

    #[test]
    fn rae_on_a_task_reads_each_baseline_before_updating_it() {
        let mut config = TaskTrainConfig::default();
        config.algorithm.rae_decay = 0.5;
        let mut state = TaskRunState {
            step: 0,
            optimizer_step: 0,
            skipped_updates: 0,
            divergence_offset: 0,
            baselines: BTreeMap::new(),
        };
        // One baseline: A = 1 - 0, 0 - 0.5, 1 - 0.25; then b = 0.5 * 0.25 + 0.5 * 1.
        let answers = [answer(1.0, 1), answer(0.0, 2), answer(1.0, 1)];
        let adv = rae_advantages(&mut state, &answers, &config).unwrap();
        assert_eq!(adv, vec![1.0, -0.5, 0.75]);
        assert_eq!(f64::from_bits(state.baselines["solver"]), 0.625);
        // One baseline per difficulty: level 1 sees 1 then 1 - 0.5; level 2 sees 0.
        config.algorithm.group_by = "difficulty".into();
        state.baselines.clear();
        let adv = rae_advantages(&mut state, &answers, &config).unwrap();
        assert_eq!(adv, vec![1.0, 0.0, 0.5]);
        assert_eq!(f64::from_bits(state.baselines["solver/difficulty-1"]), 0.75);
        assert_eq!(f64::from_bits(state.baselines["solver/difficulty-2"]), 0.0);
    }
}
