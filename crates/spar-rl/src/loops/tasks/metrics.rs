//! What the task loop measures in a step ([`TaskMetrics`]), its held-out evaluation
//! ([`TaskEvaluation`]) and how a task checkpoint is prompted ([`TaskPrompting`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::trainer::{Scope, StepMetrics};

/// Held-out evaluation of a model on a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskEvaluation {
    /// Test problems evaluated.
    pub problems: usize,
    /// Answers sampled per problem.
    pub samples: usize,
    /// Unbiased pass@k (Chen et al. 2021) by k.
    pub pass_at: BTreeMap<String, f64>,
    /// Half-width of the 95% interval of pass@1 over problems (each problem's fraction of
    /// right answers is one observation).
    #[serde(default)]
    pub pass1_ci95: f64,
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

/// What the task loop measured in one step: `tasks/<metric>` in `metrics.jsonl`, its
/// held-out evaluation `eval/<task>/<metric>` (`docs/metrics.md`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskMetrics {
    /// Fraction of this step's sampled answers that were correct.
    pub train_accuracy: f64,
    /// Fraction of this step's problems whose answers were all right or all wrong.
    pub degenerate_groups: f64,
    /// Fraction of this step's answers the verifier could not parse.
    pub unparsable_rate: f64,
    /// Mean answer length in tokens.
    pub response_tokens: f64,
    /// `algorithm.explore_alpha` < 1 (RLSP): the step's mean exploration term and mixed
    /// reward.
    pub explore: Option<super::explore::ExploreMeans>,
    /// Problems the reference masters, whose answers feed the divergence (step 0).
    pub reference_mastered: Option<usize>,
    /// Held-out evaluation, at evaluation steps: the task's name in metric keys (its role's
    /// environment, `arithmetic`) and the evaluation.
    pub eval: Option<(String, TaskEvaluation)>,
    /// `[bstar]`: the step's choice and the monitors of its batch.
    pub bstar: Option<(super::bstar::BStarChoice, super::bstar::Monitors)>,
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
    /// A self-correction checkpoint: how its episodes of several attempts are set up
    /// (`spar eval --task --attempts` reads it); absent for single-answer task runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<AttemptsPrompting>,
}

/// How a self-correction checkpoint's attempts are set up (in its `task.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptsPrompting {
    /// Attempts per episode.
    pub attempts: usize,
    /// What follows each attempt.
    pub feedback: spar_games::tasks::Feedback,
    /// The instruction before every attempt after the first.
    pub instruction: String,
    /// Self-verification (SPOC): the model verifies each attempt (absent in older files:
    /// false).
    #[serde(default)]
    pub verify: bool,
    /// Role reversal (D-HUMOR): a critique from the asker's side between attempts (absent in
    /// older files: false).
    #[serde(default)]
    pub critique: bool,
}

impl TaskPrompting {
    /// Writes `dir/task.json` (whole, or not at all).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("prompting serialises");
        spar_core::atomic::write_atomic(&dir.join("task.json"), json.as_bytes())?;
        Ok(())
    }

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

impl StepMetrics for TaskMetrics {
    fn write(&self, out: &mut Scope) {
        out.put("train_accuracy", self.train_accuracy);
        out.put("degenerate_groups", self.degenerate_groups);
        out.put("unparsable_rate", self.unparsable_rate);
        out.put("response_tokens", self.response_tokens);
        out.put_some("reference_mastered", self.reference_mastered);
        if let Some(e) = &self.explore {
            out.put("explore_reward", e.explore);
            out.put("mixed_reward", e.mixed);
        }
        if let Some((choice, m)) = &self.bstar {
            out.put("bstar/temperature", choice.temperature);
            out.put("bstar/samples", choice.count);
            out.put("bstar/tau", choice.tau);
            out.put("bstar/balance_score", choice.balance);
            out.put("bstar/batch_balance_score", m.balance);
            out.put("bstar/pass_at_n", m.pass_at_n);
            out.put("bstar/distinct_correct", m.distinct_correct);
            out.put("bstar/selected", m.selected);
            out.put("bstar/precision", m.precision);
            out.put("bstar/best_of_n", m.best_of_n);
        }
        if let Some((task, e)) = &self.eval {
            e.write(task, out);
        }
    }
}

impl TaskEvaluation {
    /// The evaluation of `task` as `eval/<task>/<metric>`: `pass_at/<k>`,
    /// `accuracy_by_difficulty/<level>` and the scalars by their field names.
    pub fn write(&self, task: &str, out: &mut Scope) {
        out.eval(&format!("{task}/problems"), self.problems);
        out.eval(&format!("{task}/samples"), self.samples);
        for (k, v) in &self.pass_at {
            out.eval(&format!("{task}/pass_at/{k}"), *v);
        }
        out.eval(&format!("{task}/pass1_ci95"), self.pass1_ci95);
        out.eval(&format!("{task}/majority_accuracy"), self.majority_accuracy);
        for (level, v) in &self.accuracy_by_difficulty {
            out.eval(&format!("{task}/accuracy_by_difficulty/{level}"), *v);
        }
        out.eval(&format!("{task}/unparsable_rate"), self.unparsable_rate);
        out.eval(&format!("{task}/distinct_correct"), self.distinct_correct);
        out.eval(&format!("{task}/response_tokens"), self.response_tokens);
    }
}
