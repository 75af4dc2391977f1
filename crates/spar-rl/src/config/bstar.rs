//! `[bstar]`: B-STaR's per-step choice of sampling temperature, sample count and selection
//! threshold for rejection-sampling fine-tuning on a task (Zeng et al., ICLR 2025, "B-STaR:
//! Monitoring and Balancing Exploration and Exploitation in Self-Taught Reasoners", sec. 4;
//! code `hkust-nlp/B-STaR`, `train_code/determine_hyper.py`). `docs/curriculum.md` describes
//! the method and every key.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `[bstar]` of a task config (with `algorithm.loss = "sft"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BStarConfig {
    /// The temperatures of the grid (the paper's `--temps`).
    pub temperatures: Vec<f64>,
    /// The sample counts per prompt of the grid (the paper's `--sample_nums`).
    pub counts: Vec<usize>,
    /// The step's first this many prompts are the probe the grid is scored on (the paper's
    /// "small query subset").
    pub probe_prompts: usize,
    /// `n*` of the balance score: the correct selected answers per query that count fully
    /// (the paper hard-codes 8).
    pub target_correct: usize,
    /// Weight of the model's confidence in an answer's score, `s = 1[correct] + w * c`
    /// (the paper's `min_step PRM / 5`: `w = 0.2` over a score in `[0, 1]`); `c` is the
    /// smallest probability the model gives any token of the answer, at temperature 1.
    pub confidence_weight: f64,
    /// Keep one copy of each distinct answer text per query (the paper deduplicates).
    pub dedup: bool,
    /// The threshold sweep: from `tau_min` to `tau_max` in steps of `tau_step` (the paper:
    /// -1 to 1 by 0.01).
    pub tau_min: f64,
    /// See `tau_min`.
    pub tau_max: f64,
    /// See `tau_min`.
    pub tau_step: f64,
}

impl Default for BStarConfig {
    fn default() -> Self {
        BStarConfig {
            temperatures: vec![0.5, 0.7, 0.9, 1.1, 1.3],
            counts: vec![4, 8],
            probe_prompts: 8,
            target_correct: 8,
            confidence_weight: 0.2,
            dedup: true,
            tau_min: -1.0,
            tau_max: 1.0,
            tau_step: 0.01,
        }
    }
}

impl BStarConfig {
    /// Checks the grid and the sweep against the run's `rollout.prompts`; errors name the key.
    pub fn validate(&self, prompts: usize) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("config: bstar.{m}")));
        if self.temperatures.is_empty() || self.counts.is_empty() {
            return bad("temperatures and bstar.counts must each list at least one value".into());
        }
        if let Some(t) = self
            .temperatures
            .iter()
            .find(|t| !(t.is_finite() && **t > 0.0))
        {
            return bad(format!("temperatures: {t} is not a positive temperature"));
        }
        if self.counts.contains(&0) {
            return bad("counts: a sample count must be >= 1".into());
        }
        if self.probe_prompts == 0 || self.probe_prompts > prompts {
            return bad(format!(
                "probe_prompts = {} must be between 1 and rollout.prompts ({prompts})",
                self.probe_prompts
            ));
        }
        if self.target_correct == 0 {
            return bad("target_correct must be >= 1".into());
        }
        if !(self.confidence_weight.is_finite() && self.confidence_weight >= 0.0) {
            return bad(format!(
                "confidence_weight = {} must be finite and >= 0",
                self.confidence_weight
            ));
        }
        let sweep = [self.tau_min, self.tau_max, self.tau_step];
        if sweep.iter().any(|v| !v.is_finite()) || self.tau_step <= 0.0 {
            return bad("tau_min, tau_max and tau_step must be finite, tau_step > 0".into());
        }
        if self.tau_min > self.tau_max || self.taus().len() > 100_000 {
            return bad(format!(
                "tau_min = {} .. tau_max = {} by tau_step = {}: an empty or over-long sweep \
                 (at most 100000 thresholds)",
                self.tau_min, self.tau_max, self.tau_step
            ));
        }
        Ok(())
    }

    /// The thresholds swept, `tau_min + j * tau_step` up to `tau_max` (with a little slack
    /// for rounding), computed from the index so that they do not drift.
    pub fn taus(&self) -> Vec<f64> {
        let span = (self.tau_max - self.tau_min) / self.tau_step;
        if !(span.is_finite() && span >= 0.0) || span > 1e6 {
            return Vec::new();
        }
        let last = (span + 1e-9).floor() as usize;
        (0..=last)
            .map(|j| self.tau_min + j as f64 * self.tau_step)
            .collect()
    }

    /// The largest sample count of the grid (the probe samples this many per prompt and
    /// temperature; smaller counts read its first answers).
    pub fn max_count(&self) -> usize {
        self.counts.iter().copied().max().unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_sweep_has_201_thresholds_from_minus_one_to_one() {
        let taus = BStarConfig::default().taus();
        assert_eq!(taus.len(), 201);
        assert_eq!(taus[0], -1.0);
        assert_eq!(taus[100], 0.0);
        assert!((taus[200] - 1.0).abs() < 1e-12, "{}", taus[200]);
    }

    #[test]
    fn bad_grids_and_sweeps_name_their_key() {
        for (edit, key) in [
            (
                (|c: &mut BStarConfig| c.temperatures.clear()) as fn(&mut BStarConfig),
                "bstar.temperatures",
            ),
            (|c| c.temperatures = vec![0.7, 0.0], "bstar.temperatures"),
            (|c| c.counts = vec![0], "bstar.counts"),
            (|c| c.probe_prompts = 33, "bstar.probe_prompts"),
            (|c| c.target_correct = 0, "bstar.target_correct"),
            (|c| c.confidence_weight = -1.0, "bstar.confidence_weight"),
            (|c| c.tau_step = 0.0, "bstar.tau_min"),
            (|c| c.tau_min = 2.0, "bstar.tau_min"),
        ] {
            let mut c = BStarConfig::default();
            edit(&mut c);
            let e = c.validate(32).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
        BStarConfig::default().validate(32).unwrap();
    }
}
