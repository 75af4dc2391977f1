//! The metrics sink of every loop: one [`Line`] of named values per step, written to
//! `metrics.jsonl` (one JSON object per line, synced after each) and its TensorBoard copy,
//! truncated to the checkpoint on resume.
//!
//! One shape for every loop (`docs/metrics.md` is the reference): a flat JSON object whose
//! keys are `/`-separated names,
//!
//! | key | written by | example |
//! |---|---|---|
//! | `step` | the kernel | `3` |
//! | `learner/<metric>` | the kernel: the update and the warm start | `learner/loss`, `learner/grad_norm` |
//! | `<loop>/<metric>` | the loop, loop-wide | `selfplay/invalid_rate`, `tasks/train_accuracy` |
//! | `<loop>/<game>/<metric>` | the loop, per game of a multi-game run | `selfplay/kuhn/invalid_rate` |
//! | `<loop>/<role key>/<metric>` | the loop, per role | `selfplay/kuhn/player0/mean_return` |
//! | `eval/<game or task>/<metric>` | the loop's evaluation | `eval/kuhn/exploitability`, `eval/arithmetic/pass_at/1` |
//! | `eval/<role key>/<metric>` | the loop's evaluation, per seat | `eval/kuhn/player0/exact_vs_cfr` |
//! | `time/seconds` | the kernel | wall-clock seconds of the step |
//!
//! Values are numbers (an integer stays an integer) or, rarely, strings
//! (`selfplay/weight_version`); a key is absent when its value was not measured at that step.
//! A loop never writes files: it hands the kernel its values through a [`Scope`] under its
//! namespace ([`crate::trainer::Loop::NAME`]) and under `eval/`; `learner/` and `time/` are
//! the kernel's alone. TensorBoard tags are the same names.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use spar_lm::checkpoint::write_atomic;

use crate::error::Result;
use crate::tensorboard::EventWriter;
use crate::trainer::UpdateStats;

/// The key of a step's wall-clock seconds.
pub const SECONDS: &str = "time/seconds";

/// One line of `metrics.jsonl`: the step and its named values (module docs), keys in sorted
/// order after `step`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Policy-improvement steps done (0: the model after the warm start).
    pub step: usize,
    /// Every other key of the line.
    #[serde(flatten)]
    values: BTreeMap<String, Value>,
}

impl Line {
    /// An empty line for `step`.
    pub fn new(step: usize) -> Line {
        Line {
            step,
            values: BTreeMap::new(),
        }
    }

    /// The value named `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// The value named `key` as a number (`None`: absent, a string, or not finite, which
    /// JSON writes as `null`).
    pub fn number(&self, key: &str) -> Option<f64> {
        self.values.get(key).and_then(Value::as_f64)
    }

    /// Every value but `step`, by name.
    pub fn values(&self) -> &BTreeMap<String, Value> {
        &self.values
    }

    /// The values whose names start with `prefix` and end with `/suffix`, with the part in
    /// between: `("selfplay/", "mean_return")` gives `("kuhn/player0", value)`, ...
    pub fn between<'a>(
        &'a self,
        prefix: &'a str,
        suffix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.values.iter().filter_map(move |(k, v)| {
            let middle = k
                .strip_prefix(prefix)?
                .strip_suffix(suffix)?
                .strip_suffix('/')?;
            (!middle.is_empty()).then_some((middle, v))
        })
    }

    /// Removes the value named `key` (a test compares two runs without their timings).
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.values.remove(key)
    }

    fn set(&mut self, key: String, value: impl Into<Value>) {
        self.values.insert(key, value.into());
    }

    /// The kernel's `learner/` values of a step's update (`skipped_total`: optimiser steps
    /// skipped so far in the run; `learning_rate`: the rate the step used, `None` for a loop
    /// that does not log it, [`crate::trainer::Settings::log_learning_rate`]). Step 0 has no
    /// update: its line carries the zeros of [`UpdateStats::default`].
    pub(crate) fn set_update(
        &mut self,
        stats: &UpdateStats,
        skipped_total: usize,
        learning_rate: Option<f64>,
    ) {
        let mut put = |key: &str, value: Value| self.set(format!("learner/{key}"), value);
        put("samples", stats.samples.into());
        put("loss", stats.loss.into());
        put("clip_fraction", stats.clip_fraction.into());
        put("approx_kl", stats.approx_kl.into());
        put("grad_norm", stats.grad_norm.into());
        put("skipped_updates", skipped_total.into());
        if let Some(rate) = learning_rate {
            put("learning_rate", rate.into());
        }
        let optional = [
            ("kl_ref", stats.kl_ref),
            ("entropy", stats.entropy),
            ("sft_loss", stats.sft_loss),
            ("divergence", stats.divergence),
            ("pair_accuracy", stats.pair_accuracy),
            ("pair_margin", stats.pair_margin),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                put(key, v.into());
            }
        }
    }

    /// Step 0: the warm start's last loss, `learner/warm_start_loss`.
    pub(crate) fn set_warm_start_loss(&mut self, loss: Option<f64>) {
        if let Some(loss) = loss {
            self.set("learner/warm_start_loss".into(), loss);
        }
    }

    /// The step's wall-clock seconds, [`SECONDS`].
    pub(crate) fn set_seconds(&mut self, seconds: f64) {
        self.set(SECONDS.into(), seconds);
    }
}

/// Where a loop writes its values of one line: `put` under the loop's namespace, `eval`
/// under `eval/`.
#[derive(Debug)]
pub struct Scope<'a> {
    line: &'a mut Line,
    namespace: &'a str,
}

impl<'a> Scope<'a> {
    /// Values of `line` under `namespace` (the kernel makes one per line; a test of a loop's
    /// metrics may too).
    pub fn new(line: &'a mut Line, namespace: &'a str) -> Scope<'a> {
        Scope { line, namespace }
    }

    /// `<namespace>/<key>` = `value` (`key` may itself be a path: `kuhn/player0/mean_return`).
    pub fn put(&mut self, key: &str, value: impl Into<Value>) {
        self.line.set(format!("{}/{key}", self.namespace), value);
    }

    /// `<namespace>/<key>` = `value` when there is one.
    pub fn put_some<T: Into<Value>>(&mut self, key: &str, value: Option<T>) {
        if let Some(v) = value {
            self.put(key, v);
        }
    }

    /// `eval/<key>` = `value`: an evaluation's value (`key` starts with the game or task:
    /// `kuhn/exploitability`, `kuhn/player0/vs_cfr`).
    pub fn eval(&mut self, key: &str, value: impl Into<Value>) {
        self.line.set(format!("eval/{key}"), value);
    }

    /// `eval/<key>` = `value` when there is one.
    pub fn eval_some<T: Into<Value>>(&mut self, key: &str, value: Option<T>) {
        if let Some(v) = value {
            self.eval(key, v);
        }
    }
}

/// `metrics.jsonl` (one JSON object per line, synced) and, optionally, the same scalars as
/// TensorBoard events in `tensorboard/`.
pub(crate) struct MetricsLog {
    path: PathBuf,
    tensorboard: Option<EventWriter>,
}

impl MetricsLog {
    /// The log of run directory `out` (which must exist).
    pub(crate) fn open(out: &Path, tensorboard: bool) -> Result<MetricsLog> {
        Ok(MetricsLog {
            path: out.join("metrics.jsonl"),
            tensorboard: if tensorboard {
                Some(EventWriter::create(&out.join("tensorboard"))?)
            } else {
                None
            },
        })
    }

    /// Appends one line (and its scalars at its step).
    pub(crate) fn append(&mut self, line: &Line) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| crate::Error::io(&self.path, e))?;
        writeln!(
            file,
            "{}",
            serde_json::to_string(line).expect("metrics serialise")
        )
        .map_err(|e| crate::Error::io(&self.path, e))?;
        file.sync_data()
            .map_err(|e| crate::Error::io(&self.path, e))?;
        if let Some(tb) = self.tensorboard.as_mut() {
            let value = serde_json::to_value(line).expect("metrics serialise");
            let wall = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            tb.log_metrics(&value, line.step as i64, wall)?;
            tb.flush()?;
        }
        Ok(())
    }

    /// Replaces the file by `lines` (atomically).
    pub(crate) fn rewrite(&self, lines: &[Line]) -> Result<()> {
        let mut text = String::new();
        for m in lines {
            text.push_str(&serde_json::to_string(m).expect("metrics serialise"));
            text.push('\n');
        }
        write_atomic(&self.path, text.as_bytes())?;
        Ok(())
    }

    /// Whether `metrics.jsonl` holds a whole line for `step`.
    pub(crate) fn has_line(&self, step: usize) -> bool {
        std::fs::read_to_string(&self.path).is_ok_and(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str::<Line>(l).ok())
                .any(|m| m.step == step)
        })
    }

    /// On resume: the lines up to checkpoint `step`, which become the whole file; later
    /// lines are replayed by the resumed run.
    pub(crate) fn keep_until(&self, step: usize) -> Result<Vec<Line>> {
        let kept: Vec<Line> = std::fs::read_to_string(&self.path)
            .map(|text| {
                text.lines()
                    .filter_map(|l| serde_json::from_str::<Line>(l).ok())
                    .filter(|m| m.step <= step)
                    .collect()
            })
            .unwrap_or_default();
        self.rewrite(&kept)?;
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_flat_sorted_and_reads_back_exactly() {
        let mut line = Line::new(3);
        let mut scope = Scope::new(&mut line, "selfplay");
        scope.put("kuhn/player0/mean_return", 0.1 + 0.2);
        scope.put("invalid_rate", 0.0);
        scope.put_some("pool_opponent", Some(2usize));
        scope.put_some::<f64>("pool_win_rate", None);
        scope.eval("kuhn/exploitability", 1.0 / 3.0);
        scope.eval_some("kuhn/nash_conv", Some(f64::NAN));
        line.set_update(&UpdateStats::default(), 1, None);
        line.set_seconds(1.5);
        let text = serde_json::to_string(&line).unwrap();
        assert!(text.starts_with(r#"{"step":3,"eval/kuhn/exploitability":0.3333333333333333,"eval/kuhn/nash_conv":null,"learner/approx_kl":0.0,"#), "{text}");
        assert!(text.contains(r#""selfplay/kuhn/player0/mean_return":0.30000000000000004,"selfplay/pool_opponent":2,"time/seconds":1.5}"#), "{text}");
        assert!(!text.contains("pool_win_rate") && !text.contains("learning_rate"));
        let back: Line = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert_eq!(back.number("learner/skipped_updates"), Some(1.0));
        assert_eq!(back.number("eval/kuhn/nash_conv"), None);
        let roles: Vec<&str> = back
            .between("selfplay/", "mean_return")
            .map(|(r, _)| r)
            .collect();
        assert_eq!(roles, ["kuhn/player0"]);
    }
}
