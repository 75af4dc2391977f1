//! Test-only fault injection into the policy optimiser: `SPAR_TEST_INJECT_NAN` makes chosen
//! [`super::AdamW::apply`] calls see a NaN loss or a NaN gradient, so that the end-to-end tests
//! can check the non-finite guard (the step is skipped and counted in
//! `learner/skipped_updates`) and `run.max_consecutive_skips` on the real binary.
//!
//! Only builds with debug assertions (the test and dev profiles) read the variable; a release
//! build ignores it, so it is no switch a user can trip over. Its value is a comma-separated
//! list of `loss@N` or `grad@N` (the N-th optimiser step of the process, from 1) or `loss@N-`
//! / `grad@N-` (the N-th and every later one): `loss@2,grad@3` poisons the second step's loss
//! and the third step's gradient.

use crate::error::{Error, Result};

/// The environment variable read by [`NanInjection::from_env`].
pub const VARIABLE: &str = "SPAR_TEST_INJECT_NAN";

/// What is poisoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The loss is multiplied by NaN before back-propagation (loss and gradient non-finite).
    Loss,
    /// One gradient tensor is replaced by NaNs after back-propagation (the loss is finite).
    Gradient,
}

/// Which optimiser steps are poisoned: `(target, first step, and every later one)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct NanInjection {
    entries: Vec<(Target, usize, bool)>,
}

impl NanInjection {
    /// The injection `SPAR_TEST_INJECT_NAN` asks for; none in a release build, or when unset.
    pub(crate) fn from_env() -> Result<NanInjection> {
        if !cfg!(debug_assertions) {
            return Ok(NanInjection::default());
        }
        match std::env::var(VARIABLE) {
            Ok(text) => NanInjection::parse(&text),
            Err(_) => Ok(NanInjection::default()),
        }
    }

    fn parse(text: &str) -> Result<NanInjection> {
        let bad = |part: &str| {
            Error::Invalid(format!(
                "{VARIABLE}: {part:?} is not loss@N, grad@N, loss@N- or grad@N- (N >= 1)"
            ))
        };
        let mut entries = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (target, at) = part.split_once('@').ok_or_else(|| bad(part))?;
            let target = match target {
                "loss" => Target::Loss,
                "grad" => Target::Gradient,
                _ => return Err(bad(part)),
            };
            let (at, onwards) = match at.strip_suffix('-') {
                Some(at) => (at, true),
                None => (at, false),
            };
            let at: usize = at.parse().map_err(|_| bad(part))?;
            if at == 0 {
                return Err(bad(part));
            }
            entries.push((target, at, onwards));
        }
        Ok(NanInjection { entries })
    }

    /// What optimiser step `call` (from 1) gets poisoned with, if anything.
    pub(crate) fn at(&self, call: usize) -> Option<Target> {
        self.entries
            .iter()
            .find(|(_, at, onwards)| call == *at || (*onwards && call > *at))
            .map(|(target, _, _)| *target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_steps_and_open_ranges() {
        let plan = NanInjection::parse("loss@2, grad@4-").unwrap();
        let got: Vec<_> = (1..=6).map(|i| plan.at(i)).collect();
        use Target::*;
        assert_eq!(
            got,
            [
                None,
                Some(Loss),
                None,
                Some(Gradient),
                Some(Gradient),
                Some(Gradient)
            ]
        );
        assert_eq!(NanInjection::parse("").unwrap(), NanInjection::default());
        for bad in ["loss", "nan@1", "loss@0", "grad@x"] {
            let e = NanInjection::parse(bad).unwrap_err().to_string();
            assert!(e.contains(VARIABLE) && e.contains(bad), "{e}");
        }
    }
}
