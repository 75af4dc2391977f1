//! The numbers of a comparison: a run's values of a metric by step, and an arm's mean, band
//! and final-value statistics over its runs.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;

use super::{ArmMetric, LAST_POINTS};
use crate::read::Record;
use crate::svg::Series;

/// Mean, spread and range of one number over an arm's runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// How many values (runs) there are.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation (denominator `n - 1`); `None` for a single value.
    pub std: Option<f64>,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Stats {
    /// The statistics of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| {
            let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (squares / (n - 1) as f64).sqrt()
        });
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Stats {
            n,
            mean,
            std,
            min,
            max,
        })
    }
}

/// A step, ordered totally (steps are finite: [`read_metrics`] keeps no other).
#[derive(Debug, Clone, Copy)]
pub(super) struct Step(pub(super) f64);

impl PartialEq for Step {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Step {}

impl PartialOrd for Step {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Step {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A run's values of one metric by step (a step written twice, as after a resume, keeps its
/// later line).
pub(super) fn run_values(records: &[Record], metric: &str) -> BTreeMap<Step, f64> {
    let metric = resolve(records, metric);
    let mut values = BTreeMap::new();
    for record in records {
        if let Some((_, v)) = record.flat.iter().find(|(n, _)| n == metric) {
            values.insert(Step(record.step), *v);
        }
    }
    values
}

/// The field a run holds metric `metric` under: `games/GAME/FIELD` (a multi-game run's
/// per-game field) is `FIELD` in a one-game run of GAME (one with no `games/` fields whose
/// roles are `GAME/...`), so single-game and multi-game arms compare on one name.
fn resolve<'a>(records: &[Record], metric: &'a str) -> &'a str {
    let Some((game, field)) = metric
        .strip_prefix("games/")
        .and_then(|rest| rest.split_once('/'))
    else {
        return metric;
    };
    let names = || records.iter().flat_map(|r| r.flat.iter().map(|(n, _)| n));
    let multi = names().any(|n| n.starts_with("games/"));
    let role_prefix = format!("mean_return/{game}/");
    if !multi && names().any(|n| n.starts_with(&role_prefix)) {
        field
    } else {
        metric
    }
}

/// The series `name`: the mean over the runs, with the band `(step, min, max)` when there
/// is more than one run, at the steps every run has.
pub(super) fn mean_and_band(name: String, values: &[BTreeMap<Step, f64>]) -> Series {
    let mut curve = Vec::new();
    let mut band = Vec::new();
    let Some((first, rest)) = values.split_first() else {
        return Series {
            name,
            points: curve,
            band,
        };
    };
    for (step, &v0) in first {
        let mut at_step = vec![v0];
        for run in rest {
            match run.get(step) {
                Some(&v) => at_step.push(v),
                None => break,
            }
        }
        if at_step.len() < values.len() {
            continue;
        }
        let Some(stats) = Stats::of(&at_step) else {
            continue;
        };
        curve.push((step.0, stats.mean));
        if values.len() > 1 {
            band.push((step.0, stats.min, stats.max));
        }
    }
    Series {
        name,
        points: curve,
        band,
    }
}

/// One arm's numbers for a metric from its runs' values.
pub(super) fn arm_metric(
    name: &str,
    values: &[BTreeMap<Step, f64>],
    common_steps: usize,
) -> ArmMetric {
    let last = |run: &BTreeMap<Step, f64>| run.last_key_value().map(|(s, v)| (s.0, *v));
    let final_steps: Vec<Option<f64>> = values.iter().map(|r| last(r).map(|(s, _)| s)).collect();
    let final_values: Vec<Option<f64>> = values.iter().map(|r| last(r).map(|(_, v)| v)).collect();
    let last_points_values: Vec<Option<f64>> = values
        .iter()
        .map(|run| {
            let tail: Vec<f64> = run.values().rev().take(LAST_POINTS).copied().collect();
            Stats::of(&tail).map(|s| s.mean)
        })
        .collect();
    let present = |xs: &[Option<f64>]| xs.iter().flatten().copied().collect::<Vec<f64>>();
    ArmMetric {
        arm: name.to_string(),
        runs: values.len(),
        runs_with_metric: values.iter().filter(|r| !r.is_empty()).count(),
        final_value: Stats::of(&present(&final_values)),
        last_points: Stats::of(&present(&last_points_values)),
        final_values,
        final_steps,
        last_points_values,
        common_steps,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn by_step(points: &[(f64, f64)]) -> BTreeMap<Step, f64> {
        points.iter().map(|&(s, v)| (Step(s), v)).collect()
    }

    #[test]
    fn stats_by_hand() {
        let s = Stats::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!((s.n, s.mean, s.min, s.max), (8, 5.0, 2.0, 9.0));
        // Sum of squares 32, n - 1 = 7.
        assert!(close(s.std.unwrap(), (32.0f64 / 7.0).sqrt()));
        let one = Stats::of(&[-1.5]).unwrap();
        assert_eq!((one.n, one.mean, one.std), (1, -1.5, None));
        assert_eq!(Stats::of(&[]), None);
    }

    #[test]
    fn the_curve_and_band_use_only_the_steps_every_run_has() {
        let runs = [
            by_step(&[(0.0, 1.0), (2.0, 3.0), (4.0, 5.0)]),
            by_step(&[(0.0, 3.0), (2.0, 1.0)]),
            by_step(&[(0.0, 2.0), (1.0, 9.0), (2.0, 2.0), (4.0, 0.0)]),
        ];
        let series = mean_and_band("arm".into(), &runs);
        // Step 4 is missing in run 1 and step 1 in runs 0 and 1.
        assert_eq!(series.points, vec![(0.0, 2.0), (2.0, 2.0)]);
        assert_eq!(series.band, vec![(0.0, 1.0, 3.0), (2.0, 1.0, 3.0)]);
        // One run: its values, no band.
        let alone = mean_and_band("one".into(), &runs[..1]);
        assert_eq!(alone.points, vec![(0.0, 1.0), (2.0, 3.0), (4.0, 5.0)]);
        assert!(alone.band.is_empty());
        assert!(mean_and_band("none".into(), &[]).points.is_empty());
    }

    #[test]
    fn final_and_last_points_by_hand() {
        let runs = [
            by_step(&[(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 7.0)]),
            BTreeMap::new(),
            by_step(&[(5.0, 4.0)]),
        ];
        let arm = arm_metric("a", &runs, 0);
        assert_eq!((arm.runs, arm.runs_with_metric), (3, 2));
        assert_eq!(arm.final_values, vec![Some(7.0), None, Some(4.0)]);
        assert_eq!(arm.final_steps, vec![Some(3.0), None, Some(5.0)]);
        // Last 3 points of run 0: 2, 3, 7 -> 4; run 2 has one point.
        assert_eq!(arm.last_points_values, vec![Some(4.0), None, Some(4.0)]);
        let f = arm.final_value.unwrap();
        // 7 and 4: mean 5.5, sample std sqrt(((1.5)^2 * 2) / 1) = 2.1213...
        assert!(close(f.mean, 5.5) && close(f.std.unwrap(), 4.5f64.sqrt()));
        let l = arm.last_points.unwrap();
        assert_eq!((l.mean, l.std), (4.0, Some(0.0)));
    }
}
