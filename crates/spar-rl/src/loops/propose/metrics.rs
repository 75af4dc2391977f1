//! What the proposer/solver loop measures: `propose/<metric>` in `metrics.jsonl`, and the
//! held-out evaluation `eval/arithmetic/hops-<h>/accuracy` (`docs/metrics.md`).

use std::collections::{BTreeMap, BTreeSet};

use super::evolve::EvolveCounts;
use crate::loops::tasks::TaskEvaluation;
use crate::rollout::Sample;
use crate::trainer::{Scope, StepMetrics};

/// One step's measurements (`None` where a step had nothing to measure: no proposals with
/// `source = "fixed"`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProposeMetrics {
    /// Mean proposer reward (invalid proposals included, at 0).
    pub proposer_reward: Option<f64>,
    /// Fraction of proposals that were invalid moves.
    pub invalid_rate: Option<f64>,
    /// Fraction of valid proposals with the requested number of operations.
    pub hops_match: Option<f64>,
    /// Mean Dr. Zero difficulty `d` of the valid proposals.
    pub difficulty: Option<f64>,
    /// Distinct valid proposals over valid proposals.
    pub distinct: Option<f64>,
    /// Fraction of valid proposals already proposed in the last `recent_steps` steps.
    pub repeat_rate: Option<f64>,
    /// Mean operations of the step's problems (proposed or drawn).
    pub mean_hops: f64,
    /// Fraction of problems every answer got right (`k = n`).
    pub trivial_rate: f64,
    /// Fraction of problems no answer got right (`k = 0`).
    pub unsolved_rate: f64,
    /// Fraction of the solver's answers that were right.
    pub solver_accuracy: f64,
    /// The same per hop count of the problem.
    pub solver_accuracy_by_hops: BTreeMap<u32, f64>,
    /// Fraction of the solver's answers the verifier could not parse.
    pub solver_unparsable_rate: f64,
    /// `source = "evolve"`: the step's pool evolution.
    pub evolve: Option<EvolveCounts>,
    /// Held-out evaluation per hop count.
    pub eval: Option<BTreeMap<u32, TaskEvaluation>>,
    /// Whether the step collected episodes (step 0, after the warm start, did not).
    pub collected: bool,
}

/// Counts gathered while rewarding a step.
#[derive(Debug, Default)]
pub(super) struct StepCounts {
    pub proposals: usize,
    pub invalid: usize,
    pub repeats: usize,
    valid: usize,
    matched: usize,
    reward_sum: f64,
    distinct: BTreeSet<String>,
    problems: usize,
    difficulty_sum: f64,
    proposed_difficulty_sum: f64,
    hops_sum: u64,
    trivial: usize,
    unsolved: usize,
    by_hops: BTreeMap<u32, (usize, usize)>,
}

impl StepCounts {
    /// A problem of `hops` operations, `k` of whose `n` answers were right, difficulty `d`.
    pub fn problem(&mut self, hops: u32, k: usize, n: usize, d: f64) {
        self.problems += 1;
        self.hops_sum += u64::from(hops);
        self.difficulty_sum += d;
        self.trivial += usize::from(k == n);
        self.unsolved += usize::from(k == 0);
        let entry = self.by_hops.entry(hops).or_default();
        entry.0 += k;
        entry.1 += n;
    }

    /// A valid proposal: its question, whether it has the requested hops, its difficulty
    /// and reward.
    pub fn proposal(&mut self, question: &str, matched: bool, d: f64, reward: f64) {
        self.valid += 1;
        self.matched += usize::from(matched);
        self.reward_sum += reward;
        self.proposed_difficulty_sum += d;
        self.distinct.insert(question.to_string());
    }

    /// The step's line, with the solver's answers `solver`.
    pub fn write_into(&self, line: &mut ProposeMetrics, solver: &[Sample]) {
        let ratio = |a: f64, b: usize| if b == 0 { 0.0 } else { a / b as f64 };
        line.collected = true;
        if self.proposals > 0 {
            line.proposer_reward = Some(ratio(self.reward_sum, self.proposals));
            line.invalid_rate = Some(ratio(self.invalid as f64, self.proposals));
            line.hops_match = Some(ratio(self.matched as f64, self.valid));
            line.difficulty = Some(ratio(self.proposed_difficulty_sum, self.valid));
            line.distinct = Some(ratio(self.distinct.len() as f64, self.valid));
            line.repeat_rate = Some(ratio(self.repeats as f64, self.valid));
        }
        line.mean_hops = ratio(self.hops_sum as f64, self.problems);
        line.trivial_rate = ratio(self.trivial as f64, self.problems);
        line.unsolved_rate = ratio(self.unsolved as f64, self.problems);
        let right = solver.iter().filter(|s| s.reward > 0.0).count();
        line.solver_accuracy = ratio(right as f64, solver.len());
        line.solver_unparsable_rate = ratio(
            solver.iter().filter(|s| s.invalid).count() as f64,
            solver.len(),
        );
        line.solver_accuracy_by_hops = self
            .by_hops
            .iter()
            .map(|(h, (k, n))| (*h, ratio(*k as f64, *n)))
            .collect();
    }
}

impl StepMetrics for ProposeMetrics {
    fn write(&self, out: &mut Scope) {
        out.put_some("proposer/reward", self.proposer_reward);
        out.put_some("proposer/invalid_rate", self.invalid_rate);
        out.put_some("proposer/hops_match", self.hops_match);
        out.put_some("proposals/difficulty", self.difficulty);
        out.put_some("proposals/distinct", self.distinct);
        out.put_some("proposals/repeat_rate", self.repeat_rate);
        if self.collected {
            out.put("problems/mean_hops", self.mean_hops);
            out.put("problems/trivial_rate", self.trivial_rate);
            out.put("problems/unsolved_rate", self.unsolved_rate);
            out.put("solver/accuracy", self.solver_accuracy);
            out.put("solver/unparsable_rate", self.solver_unparsable_rate);
            for (h, accuracy) in &self.solver_accuracy_by_hops {
                out.put(&format!("solver/hops-{h}/accuracy"), *accuracy);
            }
        }
        if let Some(e) = &self.evolve {
            out.put("evolve/from_pool", e.from_pool as f64);
            out.put("evolve/pool", e.pool as f64);
            if let Some(eva) = &e.eva {
                out.put("eva/selected", eva.selected as f64);
                out.put("eva/info", eva.info);
                out.put("eva/selected_info", eva.selected_info);
            } else {
                out.put("evolve/in_band", e.in_band as f64);
                out.put("evolve/up", e.up as f64);
                out.put("evolve/down", e.down as f64);
            }
        }
        if let Some(by_hops) = &self.eval {
            let mut sum = 0.0;
            for (h, e) in by_hops {
                let accuracy = e.pass_at.get("1").copied().unwrap_or(0.0);
                sum += accuracy;
                out.eval(&format!("arithmetic/hops-{h}/accuracy"), accuracy);
                out.eval(&format!("arithmetic/hops-{h}/accuracy_ci95"), e.pass1_ci95);
                out.eval(
                    &format!("arithmetic/hops-{h}/unparsable_rate"),
                    e.unparsable_rate,
                );
            }
            out.eval("arithmetic/accuracy", sum / by_hops.len().max(1) as f64);
        }
    }
}
