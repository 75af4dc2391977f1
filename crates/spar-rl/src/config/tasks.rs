//! The typed configuration of `spar train` on a verifiable task (a config with a `[task]`
//! section; see `docs/tasks.md`). Every field has a default; an unknown or ill-typed key is an
//! error that names it; `--set section.key=value` overrides a field.

use serde::{Deserialize, Serialize};

use crate::config::bstar::BStarConfig;
use crate::config::choice::{self, Choice};
use crate::config::{from_table, ModelConfig, RunConfig};
use crate::error::{Error, Result};
use crate::objectives::advantages::{check_fits, EstimatorKind, EstimatorSettings};
use crate::objectives::estimators::Estimator;
use crate::objectives::losses::{Aggregation, KlEstimator};
use crate::objectives::rae::RaeUpdate;
use crate::rollout::prompt::PromptStyle;

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
    /// B-STaR's per-step choice of temperature, sample count and threshold (with
    /// `algorithm.loss = "sft"`; absent: the fixed `rollout.temperature` and `group_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bstar: Option<BStarConfig>,
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

impl TaskWarmStart {
    /// Checks that a warm start that runs has data and batches.
    pub fn validate(&self) -> Result<()> {
        if self.steps > 0 && (self.problems == 0 || self.batch_size == 0) {
            return Err(Error::Invalid(
                "config: warm_start.problems and warm_start.batch_size must be >= 1 when \
                 warm_start.steps > 0"
                    .into(),
            ));
        }
        Ok(())
    }
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
    #[serde(with = "choice")]
    pub estimator: EstimatorKind,
    /// EMA decay of the `rae` baseline (SPIRAL: 0.95).
    pub rae_decay: f64,
    /// The group an answer's baseline comes from: `prompt` (the G answers to one problem:
    /// GRPO), `difficulty` (every answer to a problem of the same difficulty in the batch:
    /// Dr. Zero's HRPO groups by hop class), `batch` (the whole batch).
    #[serde(with = "choice")]
    pub group_by: GroupBy,
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
    #[serde(with = "choice")]
    pub loss: TaskLoss,
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
    #[serde(with = "choice")]
    pub loss_aggregation: LossAggregation,
    /// The constant of `token_sum`.
    pub normaliser: f64,
    /// Gradient-norm clipping (0 disables).
    pub max_grad_norm: f64,
    /// Reverse-KL penalty to the reference (the model after the warm start) on the sampled
    /// answers: `none`, `k1`, `k2`, `k3` (GRPO uses k3).
    #[serde(with = "choice::or_none")]
    pub kl: Option<KlEstimator>,
    /// Its coefficient.
    pub kl_coef: f64,
    /// DPH-RL's divergence on the reference model's own correct answers to problems it
    /// masters: `none`, `forward` (forward KL) or `js` (Jensen-Shannon).
    #[serde(with = "choice::or_none")]
    pub divergence: Option<Divergence>,
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
    /// RLSP's weight of the verifier in the reward, `alpha * correct + (1 - alpha) *
    /// explore` (`loops/tasks/explore.rs`, `docs/tasks.md`); 1: the verifier alone.
    pub explore_alpha: f64,
}

impl Default for AlgorithmConfig {
    fn default() -> Self {
        AlgorithmConfig {
            estimator: EstimatorKind::Group(Estimator::Grpo),
            rae_decay: 0.95,
            group_by: GroupBy::Prompt,
            batch_norm: false,
            eps: 1e-6,
            filter_degenerate: false,
            loss: TaskLoss::Ppo,
            clip_low: 0.2,
            clip_high: 0.2,
            epochs: 1,
            minibatch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            loss_aggregation: LossAggregation::TokenMean,
            normaliser: 16.0,
            max_grad_norm: 1.0,
            kl: None,
            kl_coef: 0.0,
            divergence: None,
            divergence_coef: 0.0,
            reference_problems: 128,
            reference_samples: 8,
            nft_neg_weight: 1.0,
            nft_normalize: 1,
            dpo_beta: 0.1,
            ipo_tau: 0.1,
            explore_alpha: 1.0,
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
        let config: TaskTrainConfig = from_table(crate::config::apply_overrides(text, overrides)?)?;
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
        crate::config::check_at_least_one(&[
            ("rollout.prompts", self.rollout.prompts),
            ("rollout.group_size", self.rollout.group_size),
            ("rollout.max_tokens", self.rollout.max_tokens),
            ("algorithm.epochs", a.epochs),
            ("algorithm.minibatch_size", a.minibatch_size),
            ("eval.samples", self.eval.samples),
            ("eval.problems", self.eval.problems),
            ("run.checkpoint_every", self.run.checkpoint_every),
            ("run.max_consecutive_skips", self.run.max_consecutive_skips),
        ])?;
        if a.group_by == GroupBy::Prompt {
            let g = self.rollout.group_size;
            let why = format!("rollout.group_size = {g} with algorithm.group_by = \"prompt\"");
            check_fits(a.estimator, "algorithm.estimator", g, &why)?;
        }
        if !(0.0..1.0).contains(&a.rae_decay) {
            return bad(format!(
                "algorithm.rae_decay {} is not in [0, 1)",
                a.rae_decay
            ));
        }
        if ![1, 2].contains(&a.nft_normalize) {
            return bad(format!(
                "algorithm.nft_normalize must be 1 or 2, got {}",
                a.nft_normalize
            ));
        }
        crate::config::check_positive(&[
            ("algorithm.clip_low", a.clip_low),
            ("algorithm.clip_high", a.clip_high),
            ("algorithm.learning_rate", a.learning_rate),
            ("algorithm.normaliser", a.normaliser),
            ("algorithm.dpo_beta", a.dpo_beta),
            ("algorithm.ipo_tau", a.ipo_tau),
            ("rollout.temperature", self.rollout.temperature),
            ("eval.temperature", self.eval.temperature),
        ])?;
        crate::config::check_non_negative(&[
            ("algorithm.kl_coef", a.kl_coef),
            ("algorithm.divergence_coef", a.divergence_coef),
            ("algorithm.weight_decay", a.weight_decay),
            ("algorithm.max_grad_norm", a.max_grad_norm),
            ("algorithm.eps", a.eps),
            ("warm_start.learning_rate", self.warm_start.learning_rate),
        ])?;
        if !a.nft_neg_weight.is_finite() {
            return bad("algorithm.nft_neg_weight must be finite".into());
        }
        let (kl, divergence) = (
            choice::or_none::name(a.kl),
            choice::or_none::name(a.divergence),
        );
        if a.kl.is_none() != (a.kl_coef == 0.0) {
            return bad(format!(
                "algorithm.kl = {kl:?} with kl_coef = {}: set both (a KL estimator and a positive \
                 coefficient) or neither",
                a.kl_coef
            ));
        }
        if a.divergence.is_none() != (a.divergence_coef == 0.0) {
            return bad(format!(
                "algorithm.divergence = {divergence:?} with divergence_coef = {}: set both or \
                 neither",
                a.divergence_coef
            ));
        }
        if a.loss.is_pairwise() && a.kl.is_some() {
            return bad(format!(
                "algorithm.kl = {kl:?} with algorithm.loss = {:?}: DPO and IPO are already \
                 regularised towards the reference (dpo_beta, ipo_tau); set algorithm.kl = \
                 \"none\"",
                a.loss.name()
            ));
        }
        if a.divergence.is_some() && (a.reference_problems == 0 || a.reference_samples == 0) {
            return bad(
                "algorithm.reference_problems and reference_samples must be >= 1 with a \
                 divergence"
                    .into(),
            );
        }
        if !(0.0..=1.0).contains(&a.explore_alpha) {
            return bad(format!(
                "algorithm.explore_alpha {} is not in [0, 1] (1: the verifier's reward alone)",
                a.explore_alpha
            ));
        }
        if a.explore_alpha < 1.0 && !matches!(a.loss, TaskLoss::Pg | TaskLoss::Ppo) {
            return bad(format!(
                "algorithm.explore_alpha = {} with algorithm.loss = {:?}: the exploration \
                 reward needs a loss that learns from advantages, \"pg\" or \"ppo\" (the \
                 others learn from the verifier's verdict alone)",
                a.explore_alpha,
                a.loss.name()
            ));
        }
        self.warm_start.validate()?;
        if let Some(b) = &self.bstar {
            if a.loss != TaskLoss::Sft {
                return bad(format!(
                    "[bstar] chooses the samples of rejection-sampling fine-tuning and needs \
                     algorithm.loss = \"sft\", not {:?}",
                    a.loss.name()
                ));
            }
            b.validate(self.rollout.prompts)?;
            if a.group_by == GroupBy::Prompt {
                for &n in &b.counts {
                    let why =
                        format!("bstar.counts holding {n} with algorithm.group_by = \"prompt\"");
                    check_fits(a.estimator, "algorithm.estimator", n, &why)?;
                }
            }
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
        self.model.validate()?;
        Ok(())
    }

    /// The keys whose values come from a fixed list, with that list, for `spar train --help`
    /// (built from the types and the task registry, so it cannot drift).
    pub fn choices() -> Vec<(&'static str, String)> {
        use choice::names;
        vec![
            (
                "task.name",
                format!(
                    "{} (with parameters: spar tasks)",
                    spar_games::tasks::known_tasks()
                ),
            ),
            ("model.prompt_style", names::<PromptStyle>()),
            ("algorithm.estimator", names::<EstimatorKind>()),
            ("algorithm.group_by", names::<GroupBy>()),
            ("algorithm.loss", names::<TaskLoss>()),
            ("algorithm.loss_aggregation", names::<LossAggregation>()),
            ("algorithm.kl", choice::or_none::names::<KlEstimator>()),
            (
                "algorithm.divergence",
                choice::or_none::names::<Divergence>(),
            ),
        ]
    }
}

impl AlgorithmConfig {
    /// The estimator's settings ([`crate::objectives::advantages::estimator`]); `rae` updates
    /// once per answer, in order (there is no `update` key for tasks).
    pub fn estimator_settings(&self) -> EstimatorSettings {
        EstimatorSettings {
            kind: self.estimator,
            eps: self.eps,
            batch_norm: self.batch_norm,
            rae_decay: self.rae_decay,
            rae_update: RaeUpdate::PerGame,
        }
    }
}

/// The group an answer's baseline comes from (`algorithm.group_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// `prompt`: the G answers to one problem (GRPO).
    Prompt,
    /// `difficulty`: every answer of the batch to a problem of the same difficulty (HRPO).
    Difficulty,
    /// `batch`: the whole batch.
    Batch,
}

impl Choice for GroupBy {
    const ALL: &'static [Self] = &[GroupBy::Prompt, GroupBy::Difficulty, GroupBy::Batch];

    fn name(self) -> &'static str {
        match self {
            GroupBy::Prompt => "prompt",
            GroupBy::Difficulty => "difficulty",
            GroupBy::Batch => "batch",
        }
    }
}

/// The policy loss of a task run (`algorithm.loss`; built by
/// [`crate::objectives::losses::policy_loss_from_name`] and
/// [`crate::objectives::losses::pair_loss_from_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskLoss {
    /// `pg`: policy gradient.
    Pg,
    /// `ppo`: PPO-clip with `clip_low` / `clip_high`.
    Ppo,
    /// `nft`: negative-aware fine-tuning.
    Nft,
    /// `rft`: NFT without the negatives.
    Rft,
    /// `sft`: maximum likelihood on the correct answers.
    Sft,
    /// `dpo`: DPO on pairs of a correct and a wrong answer.
    Dpo,
    /// `ipo`: IPO on such pairs.
    Ipo,
}

impl TaskLoss {
    /// A preference loss on pairs of answers (DPO, IPO) rather than a token loss.
    pub fn is_pairwise(self) -> bool {
        matches!(self, TaskLoss::Dpo | TaskLoss::Ipo)
    }
}

impl Choice for TaskLoss {
    const ALL: &'static [Self] = &[
        TaskLoss::Pg,
        TaskLoss::Ppo,
        TaskLoss::Nft,
        TaskLoss::Rft,
        TaskLoss::Sft,
        TaskLoss::Dpo,
        TaskLoss::Ipo,
    ];

    fn name(self) -> &'static str {
        match self {
            TaskLoss::Pg => "pg",
            TaskLoss::Ppo => "ppo",
            TaskLoss::Nft => "nft",
            TaskLoss::Rft => "rft",
            TaskLoss::Sft => "sft",
            TaskLoss::Dpo => "dpo",
            TaskLoss::Ipo => "ipo",
        }
    }
}

/// How a task run reduces per-token terms to a minibatch loss (`algorithm.loss_aggregation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossAggregation {
    /// `token_mean`: per answer, then over answers.
    TokenMean,
    /// `token_sum`: sum over tokens divided by `normaliser` (Dr. GRPO).
    TokenSum,
    /// `batch_token_mean`: over every token of the minibatch (DAPO).
    BatchTokenMean,
}

impl LossAggregation {
    /// The loss library's aggregation (`normaliser`: the constant of `token_sum`).
    pub fn aggregation(self, normaliser: f64) -> Aggregation {
        match self {
            LossAggregation::TokenMean => Aggregation::TokenMean,
            LossAggregation::TokenSum => Aggregation::TokenSum(normaliser),
            LossAggregation::BatchTokenMean => Aggregation::BatchTokenMean,
        }
    }
}

impl Choice for LossAggregation {
    const ALL: &'static [Self] = &[
        LossAggregation::TokenMean,
        LossAggregation::TokenSum,
        LossAggregation::BatchTokenMean,
    ];

    fn name(self) -> &'static str {
        match self {
            LossAggregation::TokenMean => "token_mean",
            LossAggregation::TokenSum => "token_sum",
            LossAggregation::BatchTokenMean => "batch_token_mean",
        }
    }
}

/// DPH-RL's divergence on the reference's own answers (`algorithm.divergence`, with `none`
/// for no term).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence {
    /// `forward`: forward KL ([`crate::objectives::losses::ForwardKl`]).
    Forward,
    /// `js`: Jensen-Shannon ([`crate::objectives::losses::JensenShannon`]).
    Js,
}

impl Choice for Divergence {
    const ALL: &'static [Self] = &[Divergence::Forward, Divergence::Js];

    fn name(self) -> &'static str {
        match self {
            Divergence::Forward => "forward",
            Divergence::Js => "js",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_list_every_fixed_set_key_with_the_values_it_accepts() {
        let text = "[task]\nname = \"arithmetic\"\n";
        crate::config::check_choices(
            &TaskTrainConfig::default().to_toml(),
            &[],
            &TaskTrainConfig::choices(),
            |sets| TaskTrainConfig::parse(text, sets).map(drop),
        );
    }

    #[test]
    fn typed_values_keep_their_toml_strings() {
        let text = "[task]\nname = \"arithmetic\"\n[algorithm]\nestimator = \"rae\"\n\
                    group_by = \"difficulty\"\nloss = \"nft\"\n\
                    loss_aggregation = \"batch_token_mean\"\nkl = \"k3\"\nkl_coef = 0.1\n\
                    divergence = \"js\"\ndivergence_coef = 0.1\n";
        let c = TaskTrainConfig::parse(text, &[]).unwrap();
        let a = &c.algorithm;
        assert_eq!(a.estimator, EstimatorKind::Rae);
        assert_eq!(a.group_by, GroupBy::Difficulty);
        assert_eq!(a.loss, TaskLoss::Nft);
        assert_eq!(a.loss_aggregation, LossAggregation::BatchTokenMean);
        assert_eq!(a.kl, Some(KlEstimator::K3));
        assert_eq!(a.divergence, Some(Divergence::Js));
        let resolved = c.to_toml();
        for line in [
            "estimator = \"rae\"",
            "group_by = \"difficulty\"",
            "loss = \"nft\"",
            "loss_aggregation = \"batch_token_mean\"",
            "kl = \"k3\"",
            "divergence = \"js\"",
        ] {
            assert!(resolved.contains(line), "{line}: {resolved}");
        }
        assert_eq!(TaskTrainConfig::parse(&resolved, &[]).unwrap(), c);
        let d = TaskTrainConfig::default().to_toml();
        for line in [
            "estimator = \"grpo\"",
            "group_by = \"prompt\"",
            "loss = \"ppo\"",
            "loss_aggregation = \"token_mean\"",
            "kl = \"none\"",
            "divergence = \"none\"",
            "prompt_style = \"auto\"",
        ] {
            assert!(d.contains(line), "{line}: {d}");
        }
        let names: Vec<&str> = EstimatorKind::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(
            names,
            ["reinforce", "grpo", "dr_grpo", "rloo", "trloo", "rae"]
        );
    }

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
        assert_eq!(c.algorithm.estimator, EstimatorKind::Group(Estimator::Rloo));
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
            ("algorithm.explore_alpha=1.5", "algorithm.explore_alpha"),
            ("algorithm.explore_alpha=-0.1", "algorithm.explore_alpha"),
            ("algorithm.explore_alpha=nan", "algorithm.explore_alpha"),
        ] {
            let e = TaskTrainConfig::parse(text, &[set.into()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{set}: {e}");
        }
    }
}
