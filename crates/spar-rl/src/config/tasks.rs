//! The typed configuration of `spar train` on a verifiable task (a config with a `[task]`
//! section; see `docs/tasks.md`). Every field has a default; an unknown or ill-typed key is an
//! error that names it; `--set section.key=value` overrides a field.

use serde::{Deserialize, Serialize};

use crate::config::{ModelConfig, RunConfig};
use crate::error::{Error, Result};

/// A run on a verifiable task: sample a group of answers per problem, verify them, estimate
/// advantages, update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TaskTrainConfig {
    /// Seeds and length.
    pub run: RunConfig,
    /// The task.
    pub task: TaskSection,
    /// The model: trained from scratch or loaded.
    pub model: ModelConfig,
    /// Supervised warm start on the task's reference solutions.
    pub warm_start: TaskWarmStart,
    /// Sampling of the answers.
    pub rollout: TaskRollout,
    /// Estimator, loss and optimiser.
    pub algorithm: AlgorithmConfig,
    /// Held-out evaluation.
    pub eval: TaskEval,
}

/// `[task]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskSection {
    /// The task spec: `arithmetic(digits=1..2)`, `countdown(numbers=3)`,
    /// `wordproblem(steps=1..3)`, `jsonl:PATH` (`spar tasks` lists them).
    pub name: String,
    /// Seed of the problem generator (the train/test split does not depend on it: a problem
    /// belongs to one split for every seed).
    pub seed: u64,
}

impl Default for TaskSection {
    fn default() -> Self {
        TaskSection {
            name: "arithmetic".into(),
            seed: 0,
        }
    }
}

/// `[warm_start]`: maximum likelihood on reference solutions of training problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskWarmStart {
    /// Supervised steps (0: none).
    pub steps: usize,
    /// Training problems whose reference solutions form the data.
    pub problems: usize,
    /// Solutions per supervised batch.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
}

impl Default for TaskWarmStart {
    fn default() -> Self {
        TaskWarmStart {
            steps: 100,
            problems: 2000,
            batch_size: 32,
            learning_rate: 3e-3,
        }
    }
}

/// `[rollout]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskRollout {
    /// Training problems per step.
    pub prompts: usize,
    /// Answers sampled per problem (GRPO's G).
    pub group_size: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// Most tokens per answer.
    pub max_tokens: usize,
}

impl Default for TaskRollout {
    fn default() -> Self {
        TaskRollout {
            prompts: 16,
            group_size: 8,
            temperature: 1.0,
            max_tokens: 16,
        }
    }
}

/// `[algorithm]`: how answers and verdicts become an update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlgorithmConfig {
    /// Advantage estimator: `reinforce` (A = r), `grpo`, `dr_grpo`, `rloo`, `trloo`, or
    /// `rae` (SPIRAL's EMA baseline, here one per group class: the solver role, or the
    /// difficulty level with `group_by = "difficulty"`; `rae_decay`).
    pub estimator: String,
    /// EMA decay of the `rae` baseline (SPIRAL: 0.95).
    pub rae_decay: f64,
    /// The group an answer's baseline comes from: `prompt` (the G answers to one problem:
    /// GRPO), `difficulty` (every answer to a problem of the same difficulty in the batch:
    /// Dr. Zero's HRPO groups by hop class), `batch` (the whole batch).
    pub group_by: String,
    /// REINFORCE++ normalisation of the advantages over the whole batch.
    pub batch_norm: bool,
    /// Epsilon of GRPO's `std + eps`.
    pub eps: f64,
    /// Drop groups (by prompt) whose answers are all right or all wrong: their advantage is 0
    /// under every grouped estimator (DAPO's dynamic-sampling filter; NFT filters them too).
    pub filter_degenerate: bool,
    /// The policy loss: `pg` (policy gradient), `ppo` (clipped, `clip_low`/`clip_high`),
    /// `nft` (negative-aware fine-tuning), `rft` (NFT without negatives), `sft` (maximum
    /// likelihood on the correct answers: rejection-sampling fine-tuning), `dpo`, `ipo`
    /// (pairs of a correct and a wrong answer to one problem, against the reference).
    pub loss: String,
    /// PPO's lower clip range (ratio >= 1 - clip_low).
    pub clip_low: f64,
    /// PPO's upper clip range (ratio <= 1 + clip_high; DAPO's clip-higher: 0.28).
    pub clip_high: f64,
    /// Passes over each step's samples.
    pub epochs: usize,
    /// Samples per minibatch (one optimiser step each).
    pub minibatch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// `token_mean` (per answer, then over answers), `token_sum` (sum over tokens divided by
    /// `normaliser`: Dr. GRPO's constant) or `batch_token_mean` (over every token of the
    /// minibatch: DAPO).
    pub loss_aggregation: String,
    /// The constant of `token_sum`.
    pub normaliser: f64,
    /// Gradient-norm clipping (0 disables).
    pub max_grad_norm: f64,
    /// Reverse-KL penalty to the reference (the model after the warm start) on the sampled
    /// answers: `none`, `k1`, `k2`, `k3` (GRPO uses k3).
    pub kl: String,
    /// Its coefficient.
    pub kl_coef: f64,
    /// DPH-RL's divergence on the reference model's own correct answers to problems it
    /// masters: `none`, `forward` (forward KL) or `js` (Jensen-Shannon).
    pub divergence: String,
    /// Its coefficient.
    pub divergence_coef: f64,
    /// Training problems the reference model is sampled on (DPH-RL's pre-sampling).
    pub reference_problems: usize,
    /// Answers sampled per such problem; a problem all of whose answers are right is
    /// "mastered" and one of its answers is kept (DPH-RL: 8 of 8).
    pub reference_samples: usize,
    /// NFT's weight of the negative answers (1: NFT, 0: RFT).
    pub nft_neg_weight: f64,
    /// NFT's per-problem weight: 1 (`1 - r_q`, Dr. GRPO's scale) or 2 (`sqrt((1-r_q)/r_q)`,
    /// GRPO's).
    pub nft_normalize: u8,
    /// DPO's beta.
    pub dpo_beta: f64,
    /// IPO's tau.
    pub ipo_tau: f64,
}

impl Default for AlgorithmConfig {
    fn default() -> Self {
        AlgorithmConfig {
            estimator: "grpo".into(),
            rae_decay: 0.95,
            group_by: "prompt".into(),
            batch_norm: false,
            eps: 1e-6,
            filter_degenerate: false,
            loss: "ppo".into(),
            clip_low: 0.2,
            clip_high: 0.2,
            epochs: 1,
            minibatch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            loss_aggregation: "token_mean".into(),
            normaliser: 16.0,
            max_grad_norm: 1.0,
            kl: "none".into(),
            kl_coef: 0.0,
            divergence: "none".into(),
            divergence_coef: 0.0,
            reference_problems: 128,
            reference_samples: 8,
            nft_neg_weight: 1.0,
            nft_normalize: 1,
            dpo_beta: 0.1,
            ipo_tau: 0.1,
        }
    }
}

/// `[eval]`: pass@k on held-out problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskEval {
    /// Evaluate every this many steps (and at step 0 and after the last); 0: only at the
    /// ends.
    pub every: usize,
    /// Test-split problems evaluated (the first ones of the split, the same every time).
    pub problems: usize,
    /// Answers sampled per problem (n of the unbiased pass@k estimator).
    pub samples: usize,
    /// The k of the pass@k reported (each <= samples).
    pub pass_at: Vec<usize>,
    /// Sampling temperature of the evaluation.
    pub temperature: f64,
}

impl Default for TaskEval {
    fn default() -> Self {
        TaskEval {
            every: 5,
            problems: 64,
            samples: 16,
            pass_at: vec![1, 4, 16],
            temperature: 1.0,
        }
    }
}

impl TaskTrainConfig {
    /// Whether a TOML text is a task config (it has a `[task]` table).
    pub fn is_task_config(text: &str) -> bool {
        toml::from_str::<toml::Table>(text)
            .map(|t| t.contains_key("task"))
            .unwrap_or(false)
    }

    /// Parses TOML text, applies `key=value` overrides, and checks the result.
    pub fn parse(text: &str, overrides: &[String]) -> Result<TaskTrainConfig> {
        let value = crate::config::apply_overrides(text, overrides)?;
        let config: TaskTrainConfig = toml::Value::Table(value)
            .try_into()
            .map_err(|e: toml::de::Error| Error::Invalid(format!("config: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// The resolved configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Checks ranges and names; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("config: {m}")));
        let a = &self.algorithm;
        if let Err(e) = spar_games::tasks::task_from_spec(&self.task.name) {
            return bad(format!("task.name: {e}"));
        }
        if a.estimator != "rae" {
            if let Err(e) = a
                .estimator
                .parse::<crate::objectives::estimators::Estimator>()
            {
                return bad(format!("algorithm.estimator: {e} (or rae)"));
            }
        }
        if !(0.0..1.0).contains(&a.rae_decay) {
            return bad(format!(
                "algorithm.rae_decay {} is not in [0, 1)",
                a.rae_decay
            ));
        }
        if !["prompt", "difficulty", "batch"].contains(&a.group_by.as_str()) {
            return bad(format!(
                "algorithm.group_by {:?} is not prompt, difficulty or batch",
                a.group_by
            ));
        }
        if !LOSSES.contains(&a.loss.as_str()) {
            return bad(format!(
                "algorithm.loss {:?} is not one of {}",
                a.loss,
                LOSSES.join(", ")
            ));
        }
        if !["token_mean", "token_sum", "batch_token_mean"].contains(&a.loss_aggregation.as_str()) {
            return bad(format!(
                "algorithm.loss_aggregation {:?} is not token_mean, token_sum or \
                 batch_token_mean",
                a.loss_aggregation
            ));
        }
        if !["none", "k1", "k2", "k3"].contains(&a.kl.as_str()) {
            return bad(format!("algorithm.kl {:?} is not none, k1, k2 or k3", a.kl));
        }
        if !["none", "forward", "js"].contains(&a.divergence.as_str()) {
            return bad(format!(
                "algorithm.divergence {:?} is not none, forward or js",
                a.divergence
            ));
        }
        if ![1, 2].contains(&a.nft_normalize) {
            return bad(format!(
                "algorithm.nft_normalize must be 1 or 2, got {}",
                a.nft_normalize
            ));
        }
        for (name, v) in [
            ("algorithm.clip_low", a.clip_low),
            ("algorithm.clip_high", a.clip_high),
            ("algorithm.learning_rate", a.learning_rate),
            ("algorithm.normaliser", a.normaliser),
            ("algorithm.dpo_beta", a.dpo_beta),
            ("algorithm.ipo_tau", a.ipo_tau),
            ("rollout.temperature", self.rollout.temperature),
            ("eval.temperature", self.eval.temperature),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{name} must be a positive number, got {v}"));
            }
        }
        for (name, v) in [
            ("algorithm.kl_coef", a.kl_coef),
            ("algorithm.divergence_coef", a.divergence_coef),
            ("algorithm.weight_decay", a.weight_decay),
            ("algorithm.max_grad_norm", a.max_grad_norm),
            ("algorithm.eps", a.eps),
            ("warm_start.learning_rate", self.warm_start.learning_rate),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        if !a.nft_neg_weight.is_finite() {
            return bad("algorithm.nft_neg_weight must be finite".into());
        }
        if (a.kl == "none") != (a.kl_coef == 0.0) {
            return bad(format!(
                "algorithm.kl = {:?} with kl_coef = {}: set both (a KL estimator and a positive \
                 coefficient) or neither",
                a.kl, a.kl_coef
            ));
        }
        if (a.divergence == "none") != (a.divergence_coef == 0.0) {
            return bad(format!(
                "algorithm.divergence = {:?} with divergence_coef = {}: set both or neither",
                a.divergence, a.divergence_coef
            ));
        }
        if matches!(a.loss.as_str(), "dpo" | "ipo") && a.kl != "none" {
            return bad(format!(
                "algorithm.kl = {:?} with algorithm.loss = {:?}: DPO and IPO are already \
                 regularised towards the reference (dpo_beta, ipo_tau); set algorithm.kl = \
                 \"none\"",
                a.kl, a.loss
            ));
        }
        if a.divergence != "none" && (a.reference_problems == 0 || a.reference_samples == 0) {
            return bad(
                "algorithm.reference_problems and reference_samples must be >= 1 with a \
                 divergence"
                    .into(),
            );
        }
        for (name, v) in [
            ("rollout.prompts", self.rollout.prompts),
            ("rollout.group_size", self.rollout.group_size),
            ("rollout.max_tokens", self.rollout.max_tokens),
            ("algorithm.epochs", a.epochs),
            ("algorithm.minibatch_size", a.minibatch_size),
            ("eval.samples", self.eval.samples),
            ("eval.problems", self.eval.problems),
            ("run.checkpoint_every", self.run.checkpoint_every),
        ] {
            if v == 0 {
                return bad(format!("{name} must be >= 1"));
            }
        }
        if self.warm_start.steps > 0
            && (self.warm_start.problems == 0 || self.warm_start.batch_size == 0)
        {
            return bad(
                "warm_start.problems and warm_start.batch_size must be >= 1 when \
                 warm_start.steps > 0"
                    .into(),
            );
        }
        if let Some(&k) = self
            .eval
            .pass_at
            .iter()
            .find(|&&k| k == 0 || k > self.eval.samples)
        {
            return bad(format!(
                "eval.pass_at: k = {k} must be between 1 and eval.samples ({})",
                self.eval.samples
            ));
        }
        if let Some(lora) = &self.model.lora {
            lora.validate()?;
        }
        if let Err(e) = self.model.prompt_style.parse::<crate::PromptStyle>() {
            return bad(format!("model.prompt_style: {e}"));
        }
        Ok(())
    }
}

/// The values of `algorithm.loss`.
pub const LOSSES: &[&str] = &["pg", "ppo", "nft", "rft", "sft", "dpo", "ipo"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_configs_parse_override_round_trip_and_name_bad_keys() {
        let text = "[task]\nname = \"arithmetic(digits=1..2)\"\n[run]\nsteps = 3\n";
        assert!(TaskTrainConfig::is_task_config(text));
        assert!(!TaskTrainConfig::is_task_config(
            "[game]\nname = \"kuhn\"\n"
        ));
        let c = TaskTrainConfig::parse(
            text,
            &[
                "algorithm.estimator=rloo".into(),
                "algorithm.clip_high=0.28".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.run.steps, 3);
        assert_eq!(c.algorithm.estimator, "rloo");
        assert_eq!(c.algorithm.clip_high, 0.28);
        assert_eq!(TaskTrainConfig::parse(&c.to_toml(), &[]).unwrap(), c);
        for (set, key) in [
            ("algorithm.estimator=ppo", "algorithm.estimator"),
            ("algorithm.loss=gspo", "algorithm.loss"),
            ("algorithm.group_by=hop", "algorithm.group_by"),
            ("algorithm.kl=k3", "algorithm.kl"),
            ("algorithm.divergence=reverse", "algorithm.divergence"),
            ("eval.pass_at=[32]", "eval.pass_at"),
            ("rollout.group_size=0", "rollout.group_size"),
            ("task.name=\"chess\"", "task.name"),
            ("algorithm.clipp=0.1", "clipp"),
            ("algorithm.nft_normalize=3", "algorithm.nft_normalize"),
            ("eval.problems=0", "eval.problems"),
        ] {
            let e = TaskTrainConfig::parse(text, &[set.into()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{set}: {e}");
        }
    }
}
