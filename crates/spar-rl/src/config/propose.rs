//! The typed configuration of `spar train` on proposer/solver self-play (a config with a
//! `[propose]` table; `docs/curriculum.md`): one model writes arithmetic problems of a
//! requested number of operations and answers them, rewarded as Dr. Zero rewards its
//! proposer and solver. Every field has a default; an unknown or ill-typed key is an error
//! that names it; `--set section.key=value` overrides a field.

use serde::{Deserialize, Serialize};

use crate::config::choice::{self, Choice};
use crate::config::selfcorrect::SelfCorrectLoss;
use crate::config::tasks::TaskWarmStart;
use crate::config::{from_table, ModelConfig, RunConfig};
use crate::error::{Error, Result};
use crate::objectives::advantages::{EstimatorKind, EstimatorSettings};
use crate::objectives::estimators::Estimator;
use crate::objectives::rae::RaeUpdate;
use crate::rollout::prompt::PromptStyle;

/// A proposer/solver run: per step, `propose.prompts` requests for problems of a drawn hop
/// count, `proposals_per_prompt` proposals each, `solver_samples` answers to each accepted
/// proposal; proposals rewarded by their difficulty to the solver, answers by the verifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ProposeConfig {
    /// Seeds and length.
    pub run: RunConfig,
    /// The model: trained from scratch or loaded.
    pub model: ModelConfig,
    /// Supervised warm start: the arithmetic task's own problems, as proposals (for the
    /// requests) and as answers (for the solver).
    pub warm_start: TaskWarmStart,
    /// Who writes the problems, of what kind, and the proposer's reward.
    pub propose: ProposeSection,
    /// Estimator, loss and optimiser.
    pub algorithm: ProposeAlgorithm,
    /// Held-out evaluation per hop count.
    pub eval: ProposeEval,
}

/// `[propose]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProposeSection {
    /// `model` (the model proposes; proposer/solver self-play), `fixed` (problems drawn
    /// from the arithmetic task at the same hop counts: the fixed-distribution baseline, with
    /// the same solver compute) or `evolve` (C2-Evo: a pool of problems kept near the
    /// solver's frontier, evolved up or down by their solve rate; fresh task problems fill
    /// the rest) or `eva` (eva's creator: the step's most informative problems, drawn by the
    /// variance of their rewards, each evolved into `evolutions` variants for the next step).
    #[serde(with = "choice")]
    pub source: Source,
    /// Digits of an operand (a number or range, `1..2`); proposals may use up to the top of
    /// the range.
    pub digits: String,
    /// The operators, from `+-*`.
    pub ops: String,
    /// The hop counts (operations per problem, 1 to 5) requests ask for.
    pub hops: Vec<u32>,
    /// Their weights (Dr. Zero's 4:3:2:1 for hops 1 to 4).
    pub hop_weights: Vec<f64>,
    /// Requests per step.
    pub prompts: usize,
    /// Proposals per request (Dr. Zero's HRPO: 1; GRPO over proposals: G > 1).
    pub proposals_per_prompt: usize,
    /// The solver's answers per accepted proposal (Dr. Zero: n = 5); also the difficulty's n.
    pub solver_samples: usize,
    /// How proposals are grouped for their advantages: `hop` (HRPO: every proposal of one
    /// requested hop count in the step) or `prompt` (GRPO: the proposals of one request).
    #[serde(with = "choice")]
    pub group_by: ProposerGroups,
    /// The weight of the format score in the proposer's reward `w f + d` (Dr. Zero: 0.5).
    pub format_weight: f64,
    /// Steps of proposals kept to measure repeats (`propose/proposals/repeat_rate`).
    pub recent_steps: usize,
    /// Sampling temperature of proposals and answers.
    pub temperature: f64,
    /// Most tokens of a proposal or an answer.
    pub max_tokens: usize,
    /// Seed of the arithmetic problems (warm start, `fixed` source, evaluation).
    pub seed: u64,
    /// `evolve`: the solve-rate band a problem must fall in to stay in the pool (C2-Evo's
    /// small-scale 0.2 to 0.8); above it the problem is evolved up, below it down.
    pub band_low: f64,
    /// `evolve`: the band's top.
    pub band_high: f64,
    /// `evolve`: the most steps one problem is answered in.
    pub max_uses: usize,
    /// `evolve`: the most problems the pool keeps (0: one step's problems,
    /// `propose.prompts * proposals_per_prompt`).
    pub pool_size: usize,
    /// `eva`: the fraction of a step's problems drawn to evolve (eva's `sample_frac`, 0.25).
    pub sample_frac: f64,
    /// `eva`: variants evolved from each drawn problem (eva's `num_evolutions`, 4).
    pub evolutions: usize,
    /// `eva`: how problems are drawn: `weighted` by informativeness (eva) or `uniform` (the
    /// paper's baseline that evolves without it).
    #[serde(with = "choice")]
    pub eva_sampling: EvaSampling,
}

impl Default for ProposeSection {
    fn default() -> Self {
        ProposeSection {
            source: Source::Model,
            digits: "1".into(),
            ops: "+-*".into(),
            hops: vec![1, 2, 3, 4],
            hop_weights: vec![4.0, 3.0, 2.0, 1.0],
            prompts: 16,
            proposals_per_prompt: 1,
            solver_samples: 5,
            group_by: ProposerGroups::Hop,
            format_weight: 0.5,
            recent_steps: 4,
            temperature: 1.0,
            max_tokens: 16,
            seed: 0,
            band_low: 0.2,
            band_high: 0.8,
            max_uses: 2,
            pool_size: 0,
            sample_frac: 0.25,
            evolutions: 4,
            eva_sampling: EvaSampling::Weighted,
        }
    }
}

/// `propose.source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The model proposes (proposer/solver self-play).
    Model,
    /// The arithmetic task's own problems (the fixed-distribution baseline).
    Fixed,
    /// C2-Evo's difficulty-matched pool of evolved problems.
    Evolve,
    /// eva's informativeness-weighted evolution.
    Eva,
}

/// `propose.eva_sampling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvaSampling {
    /// Weighted by informativeness (eva's `importance_weighted`).
    Weighted,
    /// Uniform (evolution without informativeness).
    Uniform,
}

impl Choice for EvaSampling {
    const ALL: &'static [Self] = &[EvaSampling::Weighted, EvaSampling::Uniform];

    fn name(self) -> &'static str {
        match self {
            EvaSampling::Weighted => "weighted",
            EvaSampling::Uniform => "uniform",
        }
    }
}

impl Choice for Source {
    const ALL: &'static [Self] = &[Source::Model, Source::Fixed, Source::Evolve, Source::Eva];

    fn name(self) -> &'static str {
        match self {
            Source::Model => "model",
            Source::Fixed => "fixed",
            Source::Evolve => "evolve",
            Source::Eva => "eva",
        }
    }
}

/// `propose.group_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposerGroups {
    /// HRPO: by requested hop count across the step.
    Hop,
    /// GRPO: by request.
    Prompt,
}

impl Choice for ProposerGroups {
    const ALL: &'static [Self] = &[ProposerGroups::Hop, ProposerGroups::Prompt];

    fn name(self) -> &'static str {
        match self {
            ProposerGroups::Hop => "hop",
            ProposerGroups::Prompt => "prompt",
        }
    }
}

/// `[algorithm]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProposeAlgorithm {
    /// Advantage estimator within each group (proposals: by hop or request; answers: by
    /// proposal): `grpo` (Dr. Zero), `dr_grpo`, `rloo`, `reinforce`.
    #[serde(with = "choice")]
    pub estimator: EstimatorKind,
    /// Epsilon of GRPO's `std + eps`.
    pub eps: f64,
    /// `pg` (policy gradient) or `ppo` (clipped at `clip`).
    #[serde(with = "choice")]
    pub loss: SelfCorrectLoss,
    /// PPO's clip range.
    pub clip: f64,
    /// Passes over each step's samples.
    pub epochs: usize,
    /// Samples per minibatch (one optimiser step each).
    pub minibatch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Gradient-norm clipping (Dr. Zero: 0.1; 0 disables).
    pub max_grad_norm: f64,
}

impl Default for ProposeAlgorithm {
    fn default() -> Self {
        ProposeAlgorithm {
            estimator: EstimatorKind::Group(Estimator::Grpo),
            eps: 1e-6,
            loss: SelfCorrectLoss::Pg,
            clip: 0.2,
            epochs: 1,
            minibatch_size: 64,
            learning_rate: 5e-4,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
        }
    }
}

impl ProposeAlgorithm {
    /// The estimator's settings (no RAE, no batch normalisation).
    pub fn estimator_settings(&self) -> EstimatorSettings {
        EstimatorSettings {
            kind: self.estimator,
            eps: self.eps,
            batch_norm: false,
            rae_decay: 0.95,
            rae_update: RaeUpdate::PerGame,
        }
    }
}

/// `[eval]`: the solver on held-out arithmetic problems of each hop count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProposeEval {
    /// Evaluate every this many steps (and at step 0 and after the last); 0: only at the
    /// ends.
    pub every: usize,
    /// The hop counts evaluated (empty: `propose.hops` and one more, the hardest included).
    pub hops: Vec<u32>,
    /// Test problems per hop count (the first ones, the same every time).
    pub problems: usize,
    /// Answers per problem.
    pub samples: usize,
    /// Sampling temperature.
    pub temperature: f64,
}

impl Default for ProposeEval {
    fn default() -> Self {
        ProposeEval {
            every: 5,
            hops: Vec::new(),
            problems: 64,
            samples: 4,
            temperature: 1.0,
        }
    }
}

impl ProposeConfig {
    /// `evolve`: the pool's capacity (`propose.pool_size`, or one step's problems).
    pub fn pool_size(&self) -> usize {
        let p = &self.propose;
        if p.pool_size == 0 {
            p.prompts * p.proposals_per_prompt
        } else {
            p.pool_size
        }
    }

    /// Whether a TOML text is a proposer/solver config (it has a `[propose]` table).
    pub fn is_propose_config(text: &str) -> bool {
        toml::from_str::<toml::Table>(text)
            .map(|t| t.contains_key("propose"))
            .unwrap_or(false)
    }

    /// Parses TOML text, applies `key=value` overrides, and checks the result.
    pub fn parse(text: &str, overrides: &[String]) -> Result<ProposeConfig> {
        let table = crate::config::apply_overrides(text, overrides)?;
        for other in ["task", "selfcorrect", "game", "agent_r"] {
            if table.contains_key(other) {
                return Err(Error::Invalid(format!(
                    "config: a [propose] config has no [{other}] table (its problems are \
                     [propose] digits, ops and hops); remove one of the two"
                )));
            }
        }
        let config: ProposeConfig = from_table(table)?;
        config.validate()?;
        Ok(config)
    }

    /// The resolved configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// The arithmetic task of `hops` operations (`arithmetic(digits=1,terms=3,ops=+-*)`).
    pub fn task_spec(&self, hops: u32) -> String {
        let p = &self.propose;
        format!(
            "arithmetic(digits={},terms={},ops={})",
            p.digits,
            hops + 1,
            p.ops
        )
    }

    /// The hop counts evaluated: `eval.hops`, or `propose.hops` and the next one (at most 5).
    pub fn eval_hops(&self) -> Vec<u32> {
        if !self.eval.hops.is_empty() {
            return self.eval.hops.clone();
        }
        let mut hops = self.propose.hops.clone();
        let top = hops.iter().max().copied().unwrap_or(0);
        if top < 5 {
            hops.push(top + 1);
        }
        hops.sort_unstable();
        hops.dedup();
        hops
    }

    /// Checks ranges and names; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("config: {m}")));
        let p = &self.propose;
        if p.hops.is_empty() || p.hops.iter().any(|h| !(1..=5).contains(h)) {
            return bad(format!(
                "propose.hops must list hop counts from 1 to 5 (operations per problem), got {:?}",
                p.hops
            ));
        }
        if p.hop_weights.len() != p.hops.len()
            || p.hop_weights.iter().any(|w| !w.is_finite() || *w < 0.0)
            || p.hop_weights.iter().sum::<f64>() <= 0.0
        {
            return bad(format!(
                "propose.hop_weights must give one non-negative weight per hop count ({} of \
                 them), not all 0, got {:?}",
                p.hops.len(),
                p.hop_weights
            ));
        }
        if self.eval.hops.iter().any(|h| !(1..=5).contains(h)) {
            return bad(format!(
                "eval.hops must be hop counts from 1 to 5, got {:?}",
                self.eval.hops
            ));
        }
        for hops in p.hops.iter().chain(&self.eval.hops) {
            if let Err(e) = spar_games::tasks::task_from_spec(&self.task_spec(*hops)) {
                return bad(format!("propose.digits or propose.ops: {e}"));
            }
        }
        if p.solver_samples < 2 {
            return bad(format!(
                "propose.solver_samples must be >= 2 (the difficulty (n - k) / (n - 1) needs \
                 n >= 2), got {}",
                p.solver_samples
            ));
        }
        if self.algorithm.estimator == EstimatorKind::Rae {
            return bad(
                "algorithm.estimator: rae keeps no baselines in this loop; use grpo, \
                        dr_grpo, rloo or reinforce"
                    .into(),
            );
        }
        crate::config::check_positive(&[
            ("propose.temperature", p.temperature),
            ("eval.temperature", self.eval.temperature),
            ("algorithm.learning_rate", self.algorithm.learning_rate),
        ])?;
        crate::config::check_non_negative(&[
            ("propose.format_weight", p.format_weight),
            ("algorithm.eps", self.algorithm.eps),
            ("algorithm.clip", self.algorithm.clip),
            ("algorithm.weight_decay", self.algorithm.weight_decay),
            ("algorithm.max_grad_norm", self.algorithm.max_grad_norm),
            ("warm_start.learning_rate", self.warm_start.learning_rate),
        ])?;
        crate::config::check_at_least_one(&[
            ("propose.prompts", p.prompts),
            ("propose.proposals_per_prompt", p.proposals_per_prompt),
            ("propose.max_tokens", p.max_tokens),
            ("algorithm.epochs", self.algorithm.epochs),
            ("algorithm.minibatch_size", self.algorithm.minibatch_size),
            ("eval.problems", self.eval.problems),
            ("eval.samples", self.eval.samples),
            ("run.checkpoint_every", self.run.checkpoint_every),
            ("run.max_consecutive_skips", self.run.max_consecutive_skips),
        ])?;
        if !(0.0..=1.0).contains(&p.band_low)
            || !(0.0..=1.0).contains(&p.band_high)
            || p.band_low > p.band_high
        {
            return bad(format!(
                "propose.band_low and propose.band_high must be solve rates with 0 <= band_low \
                 <= band_high <= 1, got {} and {}",
                p.band_low, p.band_high
            ));
        }
        if !(p.sample_frac > 0.0 && p.sample_frac <= 1.0) {
            return bad(format!(
                "propose.sample_frac must be in (0, 1] (the fraction of a step's problems eva \
                 evolves), got {}",
                p.sample_frac
            ));
        }
        if p.evolutions == 0 {
            return bad(
                "propose.evolutions must be at least 1 (variants per drawn problem)".into(),
            );
        }
        if p.max_uses == 0 {
            return bad(
                "propose.max_uses must be at least 1 (steps a pool problem is answered in)".into(),
            );
        }
        if p.group_by == ProposerGroups::Prompt && p.proposals_per_prompt < 2 {
            return bad(
                "propose.group_by = \"prompt\" needs propose.proposals_per_prompt >= 2 (a \
                 group of one proposal has no baseline); use group_by = \"hop\" (HRPO)"
                    .into(),
            );
        }
        self.warm_start.validate()?;
        self.model.validate()?;
        Ok(())
    }

    /// The keys whose values come from a fixed list, with that list, for `spar train --help`.
    pub fn choices() -> Vec<(&'static str, String)> {
        use choice::names;
        vec![
            ("model.prompt_style", names::<PromptStyle>()),
            ("propose.source", names::<Source>()),
            ("propose.group_by", names::<ProposerGroups>()),
            ("propose.eva_sampling", names::<EvaSampling>()),
            ("algorithm.estimator", names::<EstimatorKind>()),
            ("algorithm.loss", names::<SelfCorrectLoss>()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[propose]\nsource = \"model\"\n";

    #[test]
    fn configs_parse_round_trip_and_name_bad_keys() {
        assert!(ProposeConfig::is_propose_config(TEXT));
        let c = ProposeConfig::parse(TEXT, &["propose.source=fixed".into()]).unwrap();
        assert_eq!(c.propose.source, Source::Fixed);
        assert_eq!(ProposeConfig::parse(&c.to_toml(), &[]).unwrap(), c);
        assert_eq!(c.task_spec(2), "arithmetic(digits=1,terms=3,ops=+-*)");
        assert_eq!(c.eval_hops(), vec![1, 2, 3, 4, 5]);
        for (set, key) in [
            ("propose.source=teacher", "propose.source"),
            ("propose.hops=[0]", "propose.hops"),
            ("propose.hops=[6]", "propose.hops"),
            ("propose.hop_weights=[1.0]", "propose.hop_weights"),
            ("propose.digits=\"9\"", "propose.digits"),
            ("propose.ops=\"/\"", "propose.ops"),
            ("propose.solver_samples=1", "propose.solver_samples"),
            ("propose.group_by=prompt", "proposals_per_prompt"),
            ("algorithm.loss=dpo", "algorithm.loss"),
            ("algorithm.estimator=rae", "algorithm.estimator"),
            ("eval.hops=[7]", "eval.hops"),
            ("propose.prompts=0", "propose.prompts"),
            ("propose.typo=1", "typo"),
        ] {
            let e = ProposeConfig::parse(TEXT, &[set.to_string()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{set}: {e}");
        }
        let e = ProposeConfig::parse(&format!("{TEXT}[task]\nname = \"arithmetic\"\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("[task]"), "{e}");
    }
}
