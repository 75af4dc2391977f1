//! The task loop's metrics line ([`TaskMetrics`]), its held-out evaluation
//! ([`TaskEvaluation`]) and how a task checkpoint is prompted ([`TaskPrompting`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::trainer::{Line, UpdateStats};

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
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Invalid(format!("{}: corrupt task.json: {e}", path.display())))
    }
}

impl Line for TaskMetrics {
    fn new(step: usize) -> TaskMetrics {
        TaskMetrics {
            step,
            ..TaskMetrics::default()
        }
    }

    fn step(&self) -> usize {
        self.step
    }

    fn set_warm_start_loss(&mut self, loss: Option<f64>) {
        self.warm_start_loss = loss;
    }

    fn set_update(&mut self, stats: &UpdateStats, skipped_total: usize, _learning_rate: f64) {
        self.samples = stats.samples;
        self.loss = stats.loss;
        self.clip_fraction = stats.clip_fraction;
        self.approx_kl = stats.approx_kl;
        self.kl_ref = stats.kl_ref;
        self.divergence = stats.divergence;
        self.pair_accuracy = stats.pair_accuracy;
        self.grad_norm = stats.grad_norm;
        self.skipped_updates = skipped_total;
    }

    fn set_seconds(&mut self, seconds: f64) {
        self.seconds = seconds;
    }
}
