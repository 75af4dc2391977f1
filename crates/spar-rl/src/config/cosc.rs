//! `[cosc]`: the settings of CoSC (`selfcorrect.method = "cosc"`; `docs/self-correction.md`),
//! the Chain of Self-Correction of Gao et al. 2024 (arXiv 2410.10735, sec. 3): how many
//! program/verify/conclude stages an episode may take and how often the teacher of the
//! first phase's seed data slips. Phase 1 is the warm start (`[warm_start]`); phase 2 is the
//! run's steps (`run.steps = 0`: phase 1 only).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `[cosc]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoscSection {
    /// The stage limit of an episode (1 to 8): programs the model may execute before it must
    /// answer. 1 is single-stage program of thought (the comparison arm).
    pub stages: usize,
    /// The teacher's slip probability per stage (a wrong program, its output, a verification
    /// that finds the mismatch, `continue`, then the next program) while a stage is left for
    /// the correction; 0: every seed trajectory is one stage.
    pub slip_rate: f64,
}

impl Default for CoscSection {
    fn default() -> Self {
        CoscSection {
            stages: 3,
            slip_rate: 0.5,
        }
    }
}

impl CoscSection {
    /// Checks ranges; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if !(1..=8).contains(&self.stages) {
            return Err(Error::Invalid(format!(
                "config: cosc.stages must be between 1 and 8, got {}",
                self.stages
            )));
        }
        if !(0.0..=1.0).contains(&self.slip_rate) {
            return Err(Error::Invalid(format!(
                "config: cosc.slip_rate must be a probability in [0, 1], got {}",
                self.slip_rate
            )));
        }
        Ok(())
    }
}
