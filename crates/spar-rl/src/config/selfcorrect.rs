//! The typed configuration of `spar train` on a self-correction loop (a config with a
//! `[selfcorrect]` table; `docs/self-correction.md`): a verifiable task answered in several
//! attempts ([`spar_games::tasks::AttemptsEnv`]) and trained with SCoRe, naive multi-turn RL
//! or single-turn RL. Every field has a default; an unknown or ill-typed key is an error that
//! names it; `--set section.key=value` overrides a field.

use serde::{Deserialize, Serialize};
use spar_games::tasks::Feedback;

use crate::config::choice::{self, Choice};
use crate::config::tasks::{TaskRollout, TaskSection, TaskWarmStart};
use crate::config::{from_table, ModelConfig, RunConfig};
use crate::error::{Error, Result};
use crate::objectives::advantages::{check_fits, EstimatorKind, EstimatorSettings};
use crate::objectives::estimators::Estimator;
use crate::objectives::losses::KlEstimator;
use crate::objectives::rae::RaeUpdate;
use crate::rollout::prompt::PromptStyle;

/// A self-correction run: sample groups of multi-attempt episodes per problem, verify every
/// attempt, shape the rewards as the method says, estimate advantages per attempt, update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SelfCorrectConfig {
    /// Seeds and length.
    pub run: RunConfig,
    /// The task.
    pub task: TaskSection,
    /// The model: trained from scratch or loaded.
    pub model: ModelConfig,
    /// Supervised warm start on reference solutions (and, with
    /// `selfcorrect.warm_start_corrections`, on second attempts that correct a wrong first one).
    pub warm_start: TaskWarmStart,
    /// Sampling: `prompts` problems a step, `group_size` episodes each.
    pub rollout: TaskRollout,
    /// The self-correction method and its coefficients.
    pub selfcorrect: SelfCorrectSection,
    /// Estimator, loss and optimiser.
    pub algorithm: SelfCorrectAlgorithm,
    /// Held-out evaluation.
    pub eval: SelfCorrectEval,
    /// CoSC's stages and teacher (`method = "cosc"`; `config::cosc`).
    pub cosc: crate::config::cosc::CoscSection,
}

/// `[selfcorrect]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelfCorrectSection {
    /// `score` (SCoRe: stage I then stage II with the bonus `alpha`), `naive` (multi-turn RL
    /// on every attempt's own reward, KL `beta1`: SCoRe's "naive multi-turn RL" baseline) or
    /// `single` (only the first attempt is learnt from: single-turn RL; later attempts are
    /// still played and measured) or `rltf_sd` (RLTF's self-distillation: the first attempt
    /// on its own reward, and every later attempt's answer learnt as an answer to the
    /// first attempt's prompt, advantage `r_k - mean of the group's first-attempt rewards`)
    /// or `spoc` (SPOC: the model verifies each of its attempts, yes or no, and tries again
    /// after a "no"; every attempt and every verification on its own oracle reward) or `scl`
    /// (SCL: DPO on the first attempt's prompt between a flipped correction's right and wrong
    /// answer) or `revise` (ReVISE: DPO + NLL between ending an answer and refining it after
    /// the `[refine]` marker, stage 1 then stage 2) or `rerest` (Re-ReST: NLL on the correct
    /// first attempts and on the later attempts that correct a wrong one, both as answers to
    /// the first prompt and, with `rerest_reflector`, to their own) or `star` (the correct
    /// first attempts only) or `refuel` (REFUEL: each episode re-rolled from a random attempt,
    /// `[(log-ratio gap of the two answers there) - refuel_eta (future reward gap)]^2`) or
    /// `role_reversal` (D-HUMOR: a critique from the asker's side between attempts, every
    /// message on its own reward, a critique on the next attempt's).
    #[serde(with = "choice")]
    pub method: Method,
    /// Attempts per episode (at least 2 for `score` and `naive`).
    pub attempts: usize,
    /// What the model reads after an attempt: `none` (SCoRe's intrinsic setting), `verdict`,
    /// `text` (the verifier's reason without the answer).
    #[serde(with = "choice")]
    pub feedback: Feedback,
    /// The self-correction instruction read before every attempt after the first.
    pub instruction: String,
    /// `score`: steps of stage I (attempt 1 pinned to the reference by `beta2`, only later
    /// attempts rewarded); stage II after them. `revise`: steps of stage 1 (verification
    /// pairs); stage 2 (correction pairs) after them.
    pub stage1_steps: usize,
    /// `score` stage II: the bonus on attempt `k > 1`, `r_k + alpha (r_k - r_{k-1})` (SCoRe
    /// eq. 5; the paper: 10).
    pub alpha: f64,
    /// KL coefficient on every trained attempt in stage II and in `naive`/`single` (SCoRe's
    /// beta_1 = 0.01).
    pub beta1: f64,
    /// `score` stage I: KL coefficient on attempt 1 (SCoRe's beta_2 = 0.1).
    pub beta2: f64,
    /// The KL estimator to the reference (the model after the warm start): `k1`, `k2`, `k3`
    /// (the SCoRe reimplementation's k3).
    #[serde(with = "choice")]
    pub kl: KlEstimator,
    /// Fraction of the warm start's pairs that are second attempts: the prompt shows another
    /// problem's solution as attempt 1 (its verdict decides whether it is a correction or a
    /// confirmation) and the completion is the reference solution (Pair-SFT's data, made
    /// from the task's own solutions). 0: first attempts only.
    pub warm_start_corrections: f64,
    /// RLTF's feedback modelling (FM): the coefficient of the likelihood of each first
    /// attempt's feedback line given its prompt and answer, added to any method's loss (0:
    /// none; needs `feedback = "verdict"` or `"text"`).
    pub fm_coef: f64,
    /// `scl`: which flips make pairs: `both` (right then wrong, and wrong then right: the
    /// paper's SelfCorSet) or `i_to_c` (wrong then right only, the paper's ablation).
    #[serde(with = "choice")]
    pub scl_pairs: SclPairs,
    /// `scl`, `revise`: DPO's `beta` (Rafailov et al. 2023, eq. 7; 0.1 in both papers).
    pub dpo_beta: f64,
    /// `revise`: RPO's `alpha`, the coefficient of the chosen answer's NLL (masked to the
    /// tokens after the refine marker when it has one; ReVISE's 0.1).
    pub rpo_alpha: f64,
    /// `revise`: the refine marker, the text an answer writes after an attempt to start a new
    /// one (ReVISE's `[refine]` token). A byte-level model writes `[refine]` as 8 bytes; the
    /// paper adds it as one token, and a one-character marker such as `"?"` is the closest
    /// match for such a model (docs/self-correction.md).
    pub refine_marker: String,
    /// `rerest`: also train the reflector (the later attempts) on its own accepted
    /// corrections, as the paper trains its reflector.
    pub rerest_reflector: bool,
    /// `refuel`: `eta`, the scale of the future-reward gap the log-ratio gap regresses onto
    /// (REFUEL's loss; 1 in the paper's code).
    pub refuel_eta: f64,
}

impl Default for SelfCorrectSection {
    fn default() -> Self {
        SelfCorrectSection {
            method: Method::Score,
            attempts: 2,
            feedback: Feedback::None,
            instruction: spar_games::tasks::DEFAULT_INSTRUCTION.to_string(),
            stage1_steps: 10,
            alpha: 10.0,
            beta1: 0.01,
            beta2: 0.1,
            kl: KlEstimator::K3,
            warm_start_corrections: 0.0,
            fm_coef: 0.0,
            scl_pairs: SclPairs::Both,
            dpo_beta: 0.1,
            rpo_alpha: 0.1,
            refine_marker: crate::loops::selfcorrect::REFINE_MARKER.to_string(),
            rerest_reflector: true,
            refuel_eta: 1.0,
        }
    }
}

/// `[algorithm]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelfCorrectAlgorithm {
    /// Advantage estimator over each (problem, attempt) group of the shaped rewards:
    /// `reinforce` (A = r, the paper's REINFORCE), `grpo`, `dr_grpo`, `rloo`, `trloo`, `rae`
    /// (an EMA baseline per attempt role).
    #[serde(with = "choice")]
    pub estimator: EstimatorKind,
    /// EMA decay of `rae`.
    pub rae_decay: f64,
    /// REINFORCE++ normalisation over the batch.
    pub batch_norm: bool,
    /// Epsilon of GRPO's `std + eps`.
    pub eps: f64,
    /// `pg` (policy gradient) or `ppo` (clipped, `clip_low`/`clip_high`).
    #[serde(with = "choice")]
    pub loss: SelfCorrectLoss,
    /// PPO's lower clip range.
    pub clip_low: f64,
    /// PPO's upper clip range.
    pub clip_high: f64,
    /// Passes over each step's samples.
    pub epochs: usize,
    /// Samples per minibatch (one optimiser step each).
    pub minibatch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Gradient-norm clipping (0 disables).
    pub max_grad_norm: f64,
}

impl Default for SelfCorrectAlgorithm {
    fn default() -> Self {
        SelfCorrectAlgorithm {
            estimator: EstimatorKind::Group(Estimator::Rloo),
            rae_decay: 0.95,
            batch_norm: false,
            eps: 1e-6,
            loss: SelfCorrectLoss::Pg,
            clip_low: 0.2,
            clip_high: 0.2,
            epochs: 1,
            minibatch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
        }
    }
}

/// `[eval]`: multi-attempt episodes on held-out problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelfCorrectEval {
    /// Evaluate every this many steps (and at step 0 and after the last); 0: only at the
    /// ends.
    pub every: usize,
    /// Test-split problems evaluated (the first ones, the same every time).
    pub problems: usize,
    /// Episodes per problem.
    pub samples: usize,
    /// Sampling temperature of the evaluation.
    pub temperature: f64,
}

impl Default for SelfCorrectEval {
    fn default() -> Self {
        SelfCorrectEval {
            every: 5,
            problems: 64,
            samples: 4,
            temperature: 1.0,
        }
    }
}

/// `selfcorrect.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// SCoRe (Kumar et al. 2025): stage I, then stage II with reward shaping.
    Score,
    /// Naive multi-turn RL: every attempt on its own reward.
    Naive,
    /// Single-turn RL: only the first attempt is trained.
    Single,
    /// RLTF-SD (Song et al. 2026): single-turn RL plus the later attempts distilled onto the
    /// first attempt's prompt.
    RltfSd,
    /// SPOC (Zhao et al. 2025): proposer and verifier messages of one model, interleaved,
    /// each rewarded by the oracle.
    Spoc,
    /// SCL (He et al. 2024, "Self-Correction is More than Refinement"): DPO pairs from
    /// two-attempt episodes whose answers flipped.
    Scl,
    /// ReVISE (Lee et al. 2025, "ReVISE: Learning to Refine at Test-Time via Intrinsic
    /// Self-Verification"): DPO + NLL pairs between ending and refining an answer.
    Revise,
    /// Re-ReST (Dou et al. 2024, "Re-ReST: Reflection-Reinforced Self-Training for Language
    /// Agents"): self-training on the correct first attempts and on the reflector's accepted
    /// corrections of the wrong ones.
    Rerest,
    /// STaR-style rejection-sampling self-training (Zelikman et al. 2022): the correct first
    /// attempts only (Re-ReST's baseline).
    Star,
    /// REFUEL (Gao et al. 2024, "Regressing the Relative Future"): episodes branched at a
    /// random attempt, the log-ratio gap of the branching answers regressed onto the gap of
    /// their future rewards.
    Refuel,
    /// D-HUMOR's Role-Reversal Self-Loop ("D-HUMOR: Dark Humor Understanding via Multimodal
    /// Open-ended Reasoning"), text only: after each attempt the model critiques it from the
    /// asker's side, and the next attempt reads the critique.
    RoleReversal,
    /// CoSC (Gao et al. 2024, arXiv 2410.10735): program, tool output, verification and
    /// conclusion stages in one response; SFT on the teacher's trajectories, then on the
    /// model's own right ones (`loops::selfcorrect::cosc`).
    Cosc,
}

impl Method {
    /// Whether the method learns from preference pairs (the shared pair update) rather than
    /// from rewarded samples.
    pub fn is_pairwise(self) -> bool {
        matches!(self, Method::Scl | Method::Revise)
    }

    /// Whether the method learns by self-training (NLL on accepted answers, advantage 1)
    /// instead of estimated advantages.
    pub fn is_self_training(self) -> bool {
        matches!(self, Method::Rerest | Method::Star)
    }
}

/// `selfcorrect.scl_pairs`: the flips SCL makes pairs of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SclPairs {
    /// Right then wrong (chosen: the first answer) and wrong then right (chosen: the second).
    Both,
    /// Wrong then right only.
    IToC,
}

impl Choice for SclPairs {
    const ALL: &'static [Self] = &[SclPairs::Both, SclPairs::IToC];

    fn name(self) -> &'static str {
        match self {
            SclPairs::Both => "both",
            SclPairs::IToC => "i_to_c",
        }
    }
}

impl Choice for Method {
    const ALL: &'static [Self] = &[
        Method::Score,
        Method::Naive,
        Method::Single,
        Method::RltfSd,
        Method::Spoc,
        Method::Scl,
        Method::Revise,
        Method::Rerest,
        Method::Star,
        Method::Refuel,
        Method::RoleReversal,
        Method::Cosc,
    ];

    fn name(self) -> &'static str {
        match self {
            Method::Score => "score",
            Method::Naive => "naive",
            Method::Single => "single",
            Method::RltfSd => "rltf_sd",
            Method::Spoc => "spoc",
            Method::Scl => "scl",
            Method::Revise => "revise",
            Method::Rerest => "rerest",
            Method::Star => "star",
            Method::Refuel => "refuel",
            Method::RoleReversal => "role_reversal",
            Method::Cosc => "cosc",
        }
    }
}

impl Choice for Feedback {
    const ALL: &'static [Self] = &Feedback::ALL;

    fn name(self) -> &'static str {
        Feedback::name(self)
    }
}

/// `algorithm.loss` of a self-correction run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfCorrectLoss {
    /// Policy gradient (SCoRe's REINFORCE).
    Pg,
    /// PPO-clip.
    Ppo,
}

impl Choice for SelfCorrectLoss {
    const ALL: &'static [Self] = &[SelfCorrectLoss::Pg, SelfCorrectLoss::Ppo];

    fn name(self) -> &'static str {
        match self {
            SelfCorrectLoss::Pg => "pg",
            SelfCorrectLoss::Ppo => "ppo",
        }
    }
}

impl SelfCorrectConfig {
    /// Whether a TOML text is a self-correction config (it has a `[selfcorrect]` table).
    pub fn is_selfcorrect_config(text: &str) -> bool {
        toml::from_str::<toml::Table>(text)
            .map(|t| t.contains_key("selfcorrect"))
            .unwrap_or(false)
    }

    /// Parses TOML text, applies `key=value` overrides, and checks the result.
    pub fn parse(text: &str, overrides: &[String]) -> Result<SelfCorrectConfig> {
        let config: SelfCorrectConfig =
            from_table(crate::config::apply_overrides(text, overrides)?)?;
        config.validate()?;
        Ok(config)
    }

    /// The resolved configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Whether step `step` (1-based) is in SCoRe's stage I.
    pub fn in_stage1(&self, step: usize) -> bool {
        self.selfcorrect.method == Method::Score && step <= self.selfcorrect.stage1_steps
    }

    /// The stage of step `step` (1-based): SCoRe's I or II and ReVISE's 1 or 2 as 1 or 2, 0
    /// for the methods without stages.
    pub fn stage(&self, step: usize) -> usize {
        match self.selfcorrect.method {
            Method::Score | Method::Revise if step <= self.selfcorrect.stage1_steps => 1,
            Method::Score | Method::Revise => 2,
            _ => 0,
        }
    }

    /// Checks ranges and names; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("config: {m}")));
        let (a, s) = (&self.algorithm, &self.selfcorrect);
        if let Err(e) = spar_games::tasks::task_from_spec(&self.task.name) {
            return bad(format!("task.name: {e}"));
        }
        let g = self.rollout.group_size;
        check_fits(
            a.estimator,
            "algorithm.estimator",
            g,
            &format!("rollout.group_size = {g} (groups are one problem's attempts of one rank)"),
        )?;
        if s.attempts == 0 || s.attempts > 8 {
            return bad(format!(
                "selfcorrect.attempts must be between 1 and 8, got {}",
                s.attempts
            ));
        }
        if s.refine_marker.trim().is_empty() {
            return bad(format!(
                "selfcorrect.refine_marker = {:?}: the marker must have a visible character \
                 (ReVISE's default is \"[refine]\")",
                s.refine_marker
            ));
        }
        if s.method == Method::Revise && s.attempts != 1 {
            return bad(format!(
                "selfcorrect.attempts = {} with selfcorrect.method = \"revise\": ReVISE refines \
                 within one answer (after the [refine] marker); set attempts = 1",
                s.attempts
            ));
        }
        if s.method == Method::Scl && s.attempts != 2 {
            return bad(format!(
                "selfcorrect.attempts = {} with selfcorrect.method = \"scl\": SCL's pairs come \
                 from an initial and a refined answer; set attempts = 2",
                s.attempts
            ));
        }
        if s.method.is_pairwise() && (s.feedback != Feedback::None || s.fm_coef > 0.0) {
            return bad(format!(
                "selfcorrect.feedback = {:?} / fm_coef = {} with selfcorrect.method = {:?}: \
                 SCL and ReVISE read no external feedback (set feedback = \"none\", fm_coef = 0)",
                s.feedback.name(),
                s.fm_coef,
                s.method.name()
            ));
        }
        if s.method == Method::Cosc {
            self.cosc.validate()?;
            if s.feedback != Feedback::None || s.fm_coef > 0.0 {
                return bad(format!(
                    "selfcorrect.feedback = {:?} / fm_coef = {} with selfcorrect.method = \
                     \"cosc\": CoSC reads its programs' outputs, not feedback (set feedback = \
                     \"none\", fm_coef = 0)",
                    s.feedback.name(),
                    s.fm_coef
                ));
            }
            if let Ok(task) = spar_games::tasks::task_from_spec(&self.task.name) {
                spar_games::tasks::ProgramKind::of(task.as_ref())
                    .map_err(|e| Error::Invalid(format!("config: task.name: {e}")))?;
            }
        }
        if !matches!(s.method, Method::Single | Method::Revise | Method::Cosc) && s.attempts < 2 {
            return bad(format!(
                "selfcorrect.attempts = {} with selfcorrect.method = {:?}: a correction needs at \
                 least 2 attempts (or use method = \"single\")",
                s.attempts,
                s.method.name()
            ));
        }
        if matches!(s.method, Method::Refuel | Method::RoleReversal) && s.fm_coef > 0.0 {
            return bad(format!(
                "selfcorrect.fm_coef = {} with selfcorrect.method = {:?}: feedback modelling is \
                 an auxiliary of the rewarded-sample methods (set fm_coef = 0)",
                s.fm_coef,
                s.method.name()
            ));
        }
        if s.method == Method::RoleReversal && s.feedback != Feedback::None {
            return bad(format!(
                "selfcorrect.feedback = {:?} with selfcorrect.method = \"role_reversal\": the \
                 feedback is the model's own critique from the asker's side (set feedback = \
                 \"none\")",
                s.feedback.name()
            ));
        }
        if s.method == Method::Spoc && s.feedback != Feedback::None {
            return bad(format!(
                "selfcorrect.feedback = {:?} with selfcorrect.method = \"spoc\": SPOC's feedback \
                 is the model's own verification (set feedback = \"none\")",
                s.feedback.name()
            ));
        }
        if s.fm_coef > 0.0 && s.feedback == Feedback::None {
            return bad(format!(
                "selfcorrect.fm_coef = {} with selfcorrect.feedback = \"none\": feedback \
                 modelling needs feedback to model (set feedback = \"text\" or \"verdict\")",
                s.fm_coef
            ));
        }
        if !(0.0..=1.0).contains(&s.warm_start_corrections) {
            return bad(format!(
                "selfcorrect.warm_start_corrections must be a fraction in [0, 1], got {}",
                s.warm_start_corrections
            ));
        }
        if !(0.0..1.0).contains(&a.rae_decay) {
            return bad(format!(
                "algorithm.rae_decay {} is not in [0, 1)",
                a.rae_decay
            ));
        }
        crate::config::check_positive(&[
            ("algorithm.clip_low", a.clip_low),
            ("algorithm.clip_high", a.clip_high),
            ("algorithm.learning_rate", a.learning_rate),
            ("selfcorrect.dpo_beta", s.dpo_beta),
            ("selfcorrect.refuel_eta", s.refuel_eta),
            ("rollout.temperature", self.rollout.temperature),
            ("eval.temperature", self.eval.temperature),
        ])?;
        crate::config::check_non_negative(&[
            ("selfcorrect.alpha", s.alpha),
            ("selfcorrect.beta1", s.beta1),
            ("selfcorrect.beta2", s.beta2),
            ("selfcorrect.fm_coef", s.fm_coef),
            ("selfcorrect.rpo_alpha", s.rpo_alpha),
            ("algorithm.weight_decay", a.weight_decay),
            ("algorithm.max_grad_norm", a.max_grad_norm),
            ("algorithm.eps", a.eps),
            ("warm_start.learning_rate", self.warm_start.learning_rate),
        ])?;
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
        self.warm_start.validate()?;
        self.model.validate()?;
        Ok(())
    }

    /// The keys whose values come from a fixed list, with that list, for `spar train --help`.
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
            ("selfcorrect.method", names::<Method>()),
            ("selfcorrect.feedback", names::<Feedback>()),
            ("selfcorrect.scl_pairs", names::<SclPairs>()),
            ("selfcorrect.kl", names::<KlEstimator>()),
            ("algorithm.estimator", names::<EstimatorKind>()),
            ("algorithm.loss", names::<SelfCorrectLoss>()),
        ]
    }
}

impl SelfCorrectAlgorithm {
    /// The estimator's settings; `rae` updates once per answer, in order.
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

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[task]\nname = \"arithmetic\"\n[selfcorrect]\nmethod = \"score\"\n";

    #[test]
    fn choices_list_every_fixed_set_key_with_the_values_it_accepts() {
        crate::config::check_choices(
            &SelfCorrectConfig::default().to_toml(),
            &[],
            &SelfCorrectConfig::choices(),
            |sets| SelfCorrectConfig::parse(TEXT, sets).map(drop),
        );
    }

    #[test]
    fn configs_parse_round_trip_and_name_bad_keys() {
        assert!(SelfCorrectConfig::is_selfcorrect_config(TEXT));
        assert!(!SelfCorrectConfig::is_selfcorrect_config(
            "[task]\nname = \"arithmetic\"\n"
        ));
        let c = SelfCorrectConfig::parse(
            TEXT,
            &[
                "selfcorrect.feedback=text".into(),
                "selfcorrect.stage1_steps=3".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.selfcorrect.feedback, Feedback::Text);
        assert!(c.in_stage1(3) && !c.in_stage1(4));
        assert_eq!(SelfCorrectConfig::parse(&c.to_toml(), &[]).unwrap(), c);
        for (set, key) in [
            ("selfcorrect.method=magic", "selfcorrect.method"),
            ("selfcorrect.feedback=loud", "selfcorrect.feedback"),
            ("selfcorrect.attempts=1", "selfcorrect.attempts"),
            ("selfcorrect.attempts=9", "selfcorrect.attempts"),
            ("selfcorrect.alpha=-1", "selfcorrect.alpha"),
            ("selfcorrect.fm_coef=0.5", "selfcorrect.feedback"),
            (
                "selfcorrect.warm_start_corrections=1.5",
                "warm_start_corrections",
            ),
            ("algorithm.loss=dpo", "algorithm.loss"),
            ("algorithm.estimator=grpo", "algorithm.estimator"),
            ("rollout.group_size=0", "rollout.group_size"),
            ("task.name=\"chess\"", "task.name"),
            ("selfcorrect.betaa=1", "betaa"),
        ] {
            let mut sets = vec![set.to_string()];
            if set.starts_with("algorithm.estimator") {
                sets.push("rollout.group_size=1".into());
            }
            let e = SelfCorrectConfig::parse(TEXT, &sets)
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{set}: {e}");
        }
        // SPOC reads its own verifications, not external feedback.
        let spoc = ["selfcorrect.method=spoc".to_string()];
        assert!(SelfCorrectConfig::parse(TEXT, &spoc).is_ok());
        let e =
            SelfCorrectConfig::parse(TEXT, &[spoc[0].clone(), "selfcorrect.feedback=text".into()])
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("selfcorrect.feedback") && e.contains("own verification"),
            "{e}"
        );
        // SCL pairs an initial and a refined answer; ReVISE refines within one answer; role
        // reversal's feedback is its own critique; REFUEL has no feedback-modelling term.
        for (sets, key) in [
            (
                vec![
                    "selfcorrect.method=role_reversal",
                    "selfcorrect.feedback=text",
                ],
                "own critique",
            ),
            (
                vec![
                    "selfcorrect.method=refuel",
                    "selfcorrect.feedback=text",
                    "selfcorrect.fm_coef=0.5",
                ],
                "fm_coef = 0",
            ),
            (
                vec!["selfcorrect.method=refuel", "selfcorrect.refuel_eta=0"],
                "selfcorrect.refuel_eta",
            ),
            (
                vec!["selfcorrect.method=scl", "selfcorrect.attempts=3"],
                "attempts = 2",
            ),
            (vec!["selfcorrect.method=revise"], "attempts = 1"),
            (
                vec!["selfcorrect.method=scl", "selfcorrect.feedback=verdict"],
                "no external feedback",
            ),
            (
                vec!["selfcorrect.method=scl", "selfcorrect.scl_pairs=all"],
                "selfcorrect.scl_pairs",
            ),
            (vec!["selfcorrect.dpo_beta=0"], "selfcorrect.dpo_beta"),
        ] {
            let sets: Vec<String> = sets.into_iter().map(String::from).collect();
            let e = SelfCorrectConfig::parse(TEXT, &sets)
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{sets:?}: {e}");
        }
        let revise = [
            "selfcorrect.method=revise".to_string(),
            "selfcorrect.attempts=1".to_string(),
        ];
        let c = SelfCorrectConfig::parse(TEXT, &revise).unwrap();
        assert_eq!((c.stage(10), c.stage(11)), (1, 2));
        // One attempt is fine for single-turn RL.
        let single = [
            "selfcorrect.method=single".into(),
            "selfcorrect.attempts=1".into(),
        ];
        assert!(SelfCorrectConfig::parse(TEXT, &single).is_ok());
    }
}
