//! Comparing experiment arms across seeds: one SVG per metric and a summary of final values.
//!
//! An experiment runs `spar train` several times per arm (one run directory per seed).
//! [`write_comparison`] reads every run's `metrics.jsonl` (as [`crate::report`] does, with
//! the same flattened field names: `exploitability`, `vs_random/seat0`,
//! `mean_return/kuhn/player0`, `games/kuhn/exploitability`) and writes into the output
//! directory:
//!
//! * `<metric>.svg` per metric (`/` and other characters unsafe in file names become `_`):
//!   per arm, the mean over the arm's runs as a line and the range across runs (min to max)
//!   as a translucent band in the same colour. Both are drawn at the steps where *every* run
//!   of the arm has the metric, so a run that is shorter (or still running) shortens its
//!   arm's curve rather than bending it;
//! * `summary.md`: per metric, a table with, per arm, the final value (each run's last value
//!   of the metric; mean ± sample standard deviation across runs, min, max) and the mean of
//!   each run's last [`LAST_POINTS`] points of the metric (less noisy than one final value;
//!   mean ± sample standard deviation across runs), then the plots and the run directories;
//! * `summary.json`: the same numbers ([`MetricComparison`]), and the arms' run directories.
//!
//! A metric is named exactly by its flattened name; one that occurs in no run is an
//! [`Error::UnknownMetric`] listing field names that do occur. A multi-game run's per-game name
//! `games/GAME/FIELD` also reads `FIELD` of a one-game run of GAME, so that single-game and
//! multi-game arms compare on one name.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::fmt_number;
use crate::read::{belongs_to, read_metrics, Record};
use crate::summary::{summary_markdown, Block, Summary, Table};
use crate::svg::render_svg;
use spar_core::atomic::write_atomic;

mod stats;

pub use stats::Stats;
use stats::{arm_metric, mean_and_band, run_values, Step};

/// How many of a run's last points of a metric the "last points" average takes.
pub const LAST_POINTS: usize = 3;

/// One arm's numbers for one metric. The per-run vectors follow the arm's runs in the order
/// given, `None` for a run in which the metric never occurs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmMetric {
    /// The arm's name.
    pub arm: String,
    /// How many runs the arm has.
    pub runs: usize,
    /// How many of them have the metric at least once.
    pub runs_with_metric: usize,
    /// Each run's last value of the metric.
    pub final_values: Vec<Option<f64>>,
    /// The step of each run's last value.
    pub final_steps: Vec<Option<f64>>,
    /// The statistics of the final values over the runs that have one.
    #[serde(rename = "final")]
    pub final_value: Option<Stats>,
    /// Each run's mean over its last [`LAST_POINTS`] points of the metric (fewer if it has
    /// fewer).
    pub last_points_values: Vec<Option<f64>>,
    /// The statistics of those means over the runs that have one.
    pub last_points: Option<Stats>,
    /// How many steps every run of the arm has the metric at (the points of the plotted
    /// mean and band).
    pub common_steps: usize,
}

/// The comparison of all arms on one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricComparison {
    /// The flattened field name.
    pub metric: String,
    /// The plot's file name, in the output directory.
    pub plot: String,
    /// One entry per arm, in the order given.
    pub arms: Vec<ArmMetric>,
}

/// What [`write_comparison`] wrote, and the numbers it wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonFiles {
    /// The output directory.
    pub dir: PathBuf,
    /// One SVG per metric, in the order given.
    pub plots: Vec<PathBuf>,
    /// `summary.md`.
    pub summary: PathBuf,
    /// `summary.json`.
    pub summary_json: PathBuf,
    /// The numbers of the summaries, one entry per metric in the order given.
    pub metrics: Vec<MetricComparison>,
}

/// The run directories of an arm given as `dirs`: as given, except that a single directory
/// without `metrics.jsonl` whose subdirectories hold runs (have `metrics.jsonl`) stands for
/// those subdirectories, sorted by name.
pub fn expand_arm_dirs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let [dir] = dirs else {
        return dirs.to_vec();
    };
    if dir.join("metrics.jsonl").exists() {
        return dirs.to_vec();
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return dirs.to_vec();
    };
    let mut runs: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir() && path.join("metrics.jsonl").is_file())
        .collect();
    if runs.is_empty() {
        return dirs.to_vec();
    }
    runs.sort();
    runs
}

/// The plot file name of `metric`: `/` and anything but ASCII letters, digits, `-`, `_` and
/// `.` become `_`.
pub fn plot_file_name(metric: &str) -> String {
    let stem: String = metric
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}.svg")
}

/// Reads the runs of every arm and writes, into `out`, one SVG per metric (the mean of each
/// arm's runs with a min-to-max band), `summary.md` and `summary.json` (module docs). Every
/// file is written atomically; `title` heads the summary and the plots.
///
/// Errors, each checked before anything is written: [`Error::NoArms`],
/// [`Error::NoMetricsToCompare`], [`Error::EmptyArmName`], [`Error::DuplicateArm`],
/// [`Error::ArmWithoutRuns`], [`Error::PlotClash`] (two metrics whose plots would have the
/// same file name), [`Error::MissingRun`] (a run directory that does not exist),
/// [`Error::InArm`] (a run's `metrics.jsonl` is missing, empty or malformed; the inner error
/// names it) and [`Error::UnknownMetric`] (a metric in no run, with field names that do
/// occur). [`Error::Io`] for a file that cannot be written.
pub fn write_comparison(
    arms: &[(String, Vec<PathBuf>)],
    metrics: &[String],
    out: &Path,
    title: Option<&str>,
) -> Result<ComparisonFiles> {
    if arms.is_empty() {
        return Err(Error::NoArms);
    }
    let mut metric_names: Vec<&str> = Vec::new();
    for metric in metrics {
        if !metric_names.contains(&metric.as_str()) {
            metric_names.push(metric);
        }
    }
    if metric_names.is_empty() {
        return Err(Error::NoMetricsToCompare);
    }
    let mut names = BTreeSet::new();
    for (name, runs) in arms {
        if name.is_empty() {
            return Err(Error::EmptyArmName);
        }
        if !names.insert(name.as_str()) {
            return Err(Error::DuplicateArm { arm: name.clone() });
        }
        if runs.is_empty() {
            return Err(Error::ArmWithoutRuns { arm: name.clone() });
        }
    }
    let mut files: BTreeMap<String, &str> = BTreeMap::new();
    for metric in &metric_names {
        if let Some(other) = files.insert(plot_file_name(metric), metric) {
            return Err(Error::PlotClash {
                first: other.to_string(),
                second: metric.to_string(),
                file: plot_file_name(metric),
            });
        }
    }

    // Every run's records, per arm.
    let mut data: Vec<Vec<Vec<Record>>> = Vec::new();
    for (name, runs) in arms {
        let mut arm_records = Vec::new();
        for run in runs {
            if !run.is_dir() {
                return Err(Error::MissingRun {
                    arm: name.clone(),
                    run: run.clone(),
                });
            }
            let (records, _) =
                read_metrics(&run.join("metrics.jsonl")).map_err(|e| Error::InArm {
                    arm: name.clone(),
                    error: Box::new(e),
                })?;
            arm_records.push(records);
        }
        data.push(arm_records);
    }

    for metric in &metric_names {
        let occurs = data
            .iter()
            .flatten()
            .any(|records| !run_values(records, metric).is_empty());
        if !occurs {
            return Err(unknown_metric(metric, &data));
        }
    }

    let mut plots = Vec::new();
    let mut comparisons = Vec::new();
    for metric in &metric_names {
        let mut series = Vec::new();
        let mut arm_metrics = Vec::new();
        for ((name, _), runs) in arms.iter().zip(&data) {
            let values: Vec<BTreeMap<Step, f64>> =
                runs.iter().map(|r| run_values(r, metric)).collect();
            let arm_series = mean_and_band(format!("{name} (n={})", runs.len()), &values);
            arm_metrics.push(arm_metric(name, &values, arm_series.points.len()));
            // Colours follow the arms' order, so an arm has one colour in every plot.
            series.push(arm_series);
        }
        let plot_title = match title {
            Some(t) => format!("{t}: {metric} (mean of runs; band: min..max)"),
            None => format!("{metric} (mean of runs; band: min..max)"),
        };
        let n_points = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
        let svg = render_svg(&plot_title, metric, &series, &[], n_points);
        let file = plot_file_name(metric);
        let path = out.join(&file);
        crate::png::write_plot(&path, &svg)?;
        plots.push(path);
        comparisons.push(MetricComparison {
            metric: metric.to_string(),
            plot: file,
            arms: arm_metrics,
        });
    }

    let summary = out.join("summary.md");
    let markdown = summary_markdown(&comparison_summary(arms, &comparisons, title));
    write_atomic(&summary, markdown.as_bytes())?;
    let summary_json = out.join("summary.json");
    let json = serde_json::json!({
        "title": title,
        "last_points": LAST_POINTS,
        "arms": arms
            .iter()
            .map(|(name, runs)| serde_json::json!({
                "name": name,
                "runs": runs.iter().map(|r| r.display().to_string()).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>(),
        "metrics": comparisons,
    });
    // A `Value` always serialises: its keys are strings and its numbers finite.
    let text = serde_json::to_string_pretty(&json).expect("a JSON value serialises");
    write_atomic(&summary_json, format!("{text}\n").as_bytes())?;
    Ok(ComparisonFiles {
        dir: out.to_path_buf(),
        plots,
        summary,
        summary_json,
        metrics: comparisons,
    })
}

/// The error for a metric in no run: field names with it as a prefix, or else a few of all.
fn unknown_metric(metric: &str, data: &[Vec<Vec<Record>>]) -> Error {
    let all: BTreeSet<&str> = data
        .iter()
        .flatten()
        .flatten()
        .flat_map(|r| r.flat.iter().map(|(n, _)| n.as_str()))
        .collect();
    let near: Vec<&str> = all
        .iter()
        .copied()
        .filter(|n| belongs_to(n, metric))
        .collect();
    const SHOWN: usize = 12;
    let (what, names) = if near.is_empty() {
        ("fields of the runs include", all.iter().copied().collect())
    } else {
        ("did you mean one of", near)
    };
    let mut list = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        let _ = write!(list, ", ... ({} in all)", names.len());
    }
    Error::UnknownMetric {
        metric: metric.to_string(),
        hint: format!("{what}: {list}"),
    }
}

/// `mean ± std` at the spread's precision (just the mean for a single run), or `-`.
fn fmt_mean_std(stats: Option<&Stats>) -> String {
    match stats {
        Some(Stats {
            mean,
            std: Some(std),
            ..
        }) => crate::format::fmt_mean_std(*mean, *std),
        Some(s) => fmt_number(s.mean),
        None => "-".into(),
    }
}

/// The Markdown table of one metric: a row per arm with its runs (`k of n` when only `k`
/// have the metric), the final values' mean ± std, min and max, the last-points mean ± std,
/// and the final step (`a..b` when the runs end at different steps); `-` where an arm has no
/// value. Numbers as [`fmt_number`] writes them.
pub fn markdown_table(comparison: &MetricComparison) -> String {
    comparison_table(comparison).to_markdown()
}

fn comparison_table(comparison: &MetricComparison) -> Table {
    let header = [
        "arm".to_string(),
        "runs".into(),
        "final (mean ± std)".into(),
        "final min".into(),
        "final max".into(),
        format!("last {LAST_POINTS} (mean ± std)"),
        "final step".into(),
    ];
    let mut table = Table::new(header.to_vec(), 1);
    for arm in &comparison.arms {
        let runs = if arm.runs_with_metric == arm.runs {
            arm.runs.to_string()
        } else {
            format!("{} of {}", arm.runs_with_metric, arm.runs)
        };
        let range = |f: fn(&Stats) -> f64| {
            arm.final_value
                .as_ref()
                .map_or("-".into(), |s| fmt_number(f(s)))
        };
        let steps: Vec<f64> = arm.final_steps.iter().flatten().copied().collect();
        let first = steps.iter().copied().fold(f64::INFINITY, f64::min);
        let last = steps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let final_step = if steps.is_empty() {
            "-".to_string()
        } else if first == last {
            fmt_number(first)
        } else {
            format!("{}..{}", fmt_number(first), fmt_number(last))
        };
        table.row(vec![
            arm.arm.clone(),
            runs,
            fmt_mean_std(arm.final_value.as_ref()),
            range(|s| s.min),
            range(|s| s.max),
            fmt_mean_std(arm.last_points.as_ref()),
            final_step,
        ]);
    }
    table
}

/// The comparison's `summary.md` (module docs).
fn comparison_summary(
    arms: &[(String, Vec<PathBuf>)],
    comparisons: &[MetricComparison],
    title: Option<&str>,
) -> Summary {
    let mut blocks = vec![Block::Text(format!(
        "Per arm and metric: *final* is each run's last value of the metric (mean ± sample \
         standard deviation across the runs, min, max); *last {LAST_POINTS}* is each run's mean \
         over its last {LAST_POINTS} points of the metric (mean ± sample standard deviation \
         across the runs). The plots show the mean over an arm's runs at the steps every run \
         of the arm has, and the range across its runs (min to max) as a band."
    ))];
    for comparison in comparisons {
        blocks.push(Block::Heading(2, comparison.metric.clone()));
        blocks.push(Block::Table(comparison_table(comparison)));
        blocks.push(Block::Image {
            alt: comparison.metric.clone(),
            file: comparison.plot.clone(),
        });
    }
    blocks.push(Block::Heading(2, "Runs".into()));
    for (name, runs) in arms {
        blocks.push(Block::Heading(3, format!("{name} ({} runs)", runs.len())));
        blocks.push(Block::Bullets(
            runs.iter().map(|r| format!("`{}`", r.display())).collect(),
        ));
    }
    Summary {
        title: title.unwrap_or("spar comparison").to_string(),
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "spar-compare-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A run directory `parent/name` whose `metrics.jsonl` holds `lines`.
    fn run(parent: &Path, name: &str, lines: &[String]) -> PathBuf {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("metrics.jsonl"), lines.join("\n") + "\n").unwrap();
        dir
    }

    /// Steps 0..=4: exploitability at steps 0, 2 and 4 (`e0`, `e0 - 0.1`, `last`),
    /// response_tokens every step (`tokens + step`), vs_random at the eval steps.
    fn lines(e0: f64, last: f64, tokens: f64) -> Vec<String> {
        (0..=4)
            .map(|step| {
                let mut line = format!(
                    r#"{{"step":{step},"response_tokens":{},"mean_return":{{"kuhn/player0":0.1}}"#,
                    tokens + step as f64
                );
                if step % 2 == 0 {
                    let e = match step {
                        0 => e0,
                        2 => e0 - 0.1,
                        _ => last,
                    };
                    let _ = write!(line, r#","exploitability":{e},"vs_random":[0.5,-0.5]"#);
                }
                line + "}"
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn means_spreads_and_last_points_by_hand() {
        let dir = temp_dir("numbers");
        let a = vec![
            run(&dir, "a0", &lines(0.5, 0.1, 10.0)),
            run(&dir, "a1", &lines(0.5, 0.2, 20.0)),
            run(&dir, "a2", &lines(0.5, 0.3, 30.0)),
        ];
        let b = vec![run(&dir, "b0", &lines(0.4, 0.4, 12.0))];
        let arms = vec![("rae".to_string(), a.clone()), ("reinforce".to_string(), b)];
        let metrics = vec![
            "exploitability".to_string(),
            "response_tokens".to_string(),
            "vs_random/seat1".to_string(),
            "mean_return/kuhn/player0".to_string(),
        ];
        let out = dir.join("report");
        let files = write_comparison(&arms, &metrics, &out, Some("RAE vs REINFORCE")).unwrap();
        let names: Vec<String> = files
            .plots
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "exploitability.svg",
                "response_tokens.svg",
                "vs_random_seat1.svg",
                "mean_return_kuhn_player0.svg"
            ]
        );
        assert!(files.plots.iter().all(|p| p.exists()));

        // Exploitability, rae: final 0.1, 0.2, 0.3 -> mean 0.2, sample std 0.1.
        let rae = &files.metrics[0].arms[0];
        assert_eq!(rae.runs, 3);
        assert_eq!(rae.runs_with_metric, 3);
        assert_eq!(rae.final_steps, vec![Some(4.0); 3]);
        let f = rae.final_value.as_ref().unwrap();
        assert_eq!(f.n, 3);
        assert!(close(f.mean, 0.2) && close(f.std.unwrap(), 0.1), "{f:?}");
        assert!(close(f.min, 0.1) && close(f.max, 0.3));
        // Last 3 points (0.5, 0.4, last): 0.3333.., 0.3666.., 0.4 -> mean 0.36667, std 1/30.
        let means = [1.0 / 3.0, 1.1 / 3.0, 1.2 / 3.0];
        for (got, want) in rae.last_points_values.iter().zip(means) {
            assert!(close(got.unwrap(), want), "{got:?} vs {want}");
        }
        let l = rae.last_points.as_ref().unwrap();
        assert!(
            close(l.mean, 1.1 / 3.0) && close(l.std.unwrap(), 1.0 / 30.0),
            "{l:?}"
        );
        assert_eq!(rae.common_steps, 3);
        // reinforce: one run, no std.
        let reinforce = &files.metrics[0].arms[1];
        let f = reinforce.final_value.as_ref().unwrap();
        assert_eq!((f.n, f.mean, f.std), (1, 0.4, None));
        // Response tokens, every step: last 3 of run a0 are 12, 13, 14 -> 13.
        let tokens = &files.metrics[1].arms[0];
        assert_eq!(tokens.common_steps, 5);
        assert!(close(tokens.last_points_values[0].unwrap(), 13.0));
        let f = tokens.final_value.as_ref().unwrap();
        assert!(close(f.mean, 24.0) && close(f.std.unwrap(), 10.0), "{f:?}");

        // The plot: a band per arm with more than one run, under the lines.
        let svg = std::fs::read_to_string(&files.plots[0]).unwrap();
        assert_eq!(svg.matches("<polygon").count(), 1, "{svg}");
        assert!(svg.contains(r#"fill-opacity="0.18""#));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.find("<polygon").unwrap() < svg.find("<polyline").unwrap());
        assert!(svg.contains("rae (n=3)") && svg.contains("reinforce (n=1)"));
        assert!(svg.contains("RAE vs REINFORCE: exploitability"));
        // The band's 6 corners: 3 common steps, upper and lower.
        let start = svg.find("<polygon").unwrap();
        let rest = &svg[start..];
        let p = rest.find("points=\"").unwrap() + 8;
        let end = p + rest[p..].find('"').unwrap();
        assert_eq!(rest[p..end].split_whitespace().count(), 6);

        let md = std::fs::read_to_string(&files.summary).unwrap();
        assert!(md.starts_with("# RAE vs REINFORCE\n"), "{md}");
        assert!(
            md.contains("| rae | 3 | 0.20 ± 0.10 | 0.1 | 0.3 | 0.367 ± 0.033 | 4 |"),
            "{md}"
        );
        // reinforce's last 3: 0.4, 0.3, 0.4.
        assert!(
            md.contains("| reinforce | 1 | 0.4 | 0.4 | 0.4 | 0.3667 | 4 |"),
            "{md}"
        );
        assert!(md.contains("![exploitability](exploitability.svg)"), "{md}");
        assert!(
            md.contains("![vs_random/seat1](vs_random_seat1.svg)"),
            "{md}"
        );
        assert!(md.contains(&format!("- `{}`", a[2].display())), "{md}");

        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&files.summary_json).unwrap()).unwrap();
        assert_eq!(json["title"], "RAE vs REINFORCE");
        assert_eq!(json["arms"][0]["runs"][1], a[1].display().to_string());
        let e = &json["metrics"][0];
        assert_eq!(e["metric"], "exploitability");
        assert_eq!(e["plot"], "exploitability.svg");
        assert!(close(e["arms"][0]["final"]["mean"].as_f64().unwrap(), 0.2));
        assert!(close(e["arms"][0]["final"]["std"].as_f64().unwrap(), 0.1));
        assert!(e["arms"][1]["final"]["std"].is_null());
        assert_eq!(e["arms"][0]["final_values"][2], 0.3);

        // Again: the same numbers, files overwritten.
        assert_eq!(
            write_comparison(&arms, &metrics, &out, Some("RAE vs REINFORCE")).unwrap(),
            files
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn curves_use_the_steps_every_run_has() {
        let dir = temp_dir("lengths");
        let long = run(&dir, "long", &lines(0.5, 0.1, 10.0));
        // Steps 0 to 2 only: exploitability at 0 and 2.
        let short = run(&dir, "short", &lines(0.5, 0.3, 20.0)[..3]);
        // A run without the metric at all.
        let other = run(&dir, "other", &[r#"{"step":0,"loss":1.0}"#.to_string()]);
        let arms = vec![
            ("mixed".to_string(), vec![long.clone(), short]),
            ("none".to_string(), vec![other, long]),
        ];
        let files = write_comparison(
            &arms,
            &["exploitability".to_string()],
            &dir.join("out"),
            None,
        )
        .unwrap();
        let mixed = &files.metrics[0].arms[0];
        assert_eq!(mixed.common_steps, 2);
        assert_eq!(mixed.final_steps, vec![Some(4.0), Some(2.0)]);
        let f = mixed.final_value.as_ref().unwrap();
        assert!(close(f.mean, (0.1 + 0.4) / 2.0), "{f:?}");
        let none = &files.metrics[0].arms[1];
        assert_eq!(
            (none.runs, none.runs_with_metric, none.common_steps),
            (2, 1, 0)
        );
        assert_eq!(none.final_values, vec![None, Some(0.1)]);
        let md = std::fs::read_to_string(&files.summary).unwrap();
        assert!(
            md.contains("| mixed | 2 | 0.25 ± 0.21 | 0.1 | 0.4 |"),
            "{md}"
        );
        assert!(md.contains("| 2..4 |"), "{md}");
        assert!(md.contains("| none | 1 of 2 | 0.1 |"), "{md}");
        assert!(md.starts_with("# spar comparison\n"), "{md}");
        let svg = std::fs::read_to_string(&files.plots[0]).unwrap();
        // One line (the arm without common steps draws none), one band.
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert_eq!(svg.matches("<polygon").count(), 1, "{svg}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let dir = temp_dir("errors");
        let good = run(&dir, "good", &lines(0.5, 0.1, 10.0));
        let out = dir.join("out");
        let metric = vec!["exploitability".to_string()];
        let arm = |runs: Vec<PathBuf>| vec![("a".to_string(), runs)];
        let err = |arms: &[(String, Vec<PathBuf>)], metrics: &[String]| {
            write_comparison(arms, metrics, &out, None).unwrap_err()
        };

        let e = err(&arm(vec![good.clone()]), &["vs_random".to_string()]);
        assert!(
            matches!(&e, Error::UnknownMetric { metric, .. } if metric == "vs_random"),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(
            e.ends_with("did you mean one of: vs_random/seat0, vs_random/seat1"),
            "{e}"
        );
        let e = err(&arm(vec![good.clone()]), &["nope".to_string()]).to_string();
        assert!(
            e.starts_with("metric \"nope\" occurs in no run; fields of the runs include: "),
            "{e}"
        );
        assert!(
            e.contains("exploitability") && e.contains("response_tokens"),
            "{e}"
        );

        let missing = dir.join("missing");
        let e = err(&arm(vec![good.clone(), missing.clone()]), &metric);
        assert!(
            matches!(&e, Error::MissingRun { arm, run } if arm == "a" && run == &missing),
            "{e:?}"
        );
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );
        assert!(e.to_string().contains("does not exist"), "{e}");
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let e = err(&arm(vec![empty.clone()]), &metric);
        assert!(
            matches!(&e, Error::InArm { arm, error } if arm == "a"
                && matches!(**error, Error::MissingMetrics { .. })),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "arm \"a\": {} does not exist: is this a `spar train` run directory?",
                empty.join("metrics.jsonl").display()
            )
        );

        assert!(matches!(err(&[], &metric), Error::NoArms));
        assert!(matches!(
            err(&arm(vec![good.clone()]), &[]),
            Error::NoMetricsToCompare
        ));
        assert!(matches!(
            err(&[(String::new(), vec![good.clone()])], &metric),
            Error::EmptyArmName
        ));
        assert!(matches!(
            err(&arm(vec![]), &metric),
            Error::ArmWithoutRuns { arm } if arm == "a"
        ));
        let twice = vec![
            ("a".to_string(), vec![good.clone()]),
            ("a".to_string(), vec![good.clone()]),
        ];
        assert_eq!(err(&twice, &metric).to_string(), "two arms are named \"a\"");
        let clash = ["x/y".to_string(), "x_y".to_string()];
        assert_eq!(
            err(&arm(vec![good.clone()]), &clash).to_string(),
            "metrics \"x/y\" and \"x_y\" would both be plotted to x_y.svg"
        );
        assert!(!out.exists(), "nothing is written on an error");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_multi_game_name_reads_a_one_game_run_of_that_game() {
        let dir = temp_dir("games-names");
        // A Kuhn-only run: exploitability at the top level, roles `kuhn/...`.
        let single = run(&dir, "kuhn", &lines(0.5, 0.25, 10.0));
        // A multi-game run: Kuhn's exploitability under `games/kuhn`.
        let multi_lines: Vec<String> = [0.4, 0.3, 0.15]
            .iter()
            .enumerate()
            .map(|(i, e)| {
                format!(
                    r#"{{"step":{},"mean_return":{{"kuhn/player0":0.1,"tictactoe/player0":0.2}},"games":{{"kuhn":{{"exploitability":{e}}},"tictactoe":{{"invalid_rate":0.0}}}}}}"#,
                    2 * i
                )
            })
            .collect();
        let multi = run(&dir, "multi", &multi_lines);
        // A TicTacToe-only run has no Kuhn exploitability under either name.
        let other = run(
            &dir,
            "tictactoe",
            &[r#"{"step":0,"mean_return":{"tictactoe/player0":0.1},"exploitability":0.9}"#.into()],
        );
        let arms = vec![
            ("alone".to_string(), vec![single]),
            ("together".to_string(), vec![multi]),
            ("elsewhere".to_string(), vec![other]),
        ];
        let files = write_comparison(
            &arms,
            &["games/kuhn/exploitability".to_string()],
            &dir.join("out"),
            None,
        )
        .unwrap();
        let finals: Vec<Vec<Option<f64>>> = files.metrics[0]
            .arms
            .iter()
            .map(|a| a.final_values.clone())
            .collect();
        assert_eq!(finals, [vec![Some(0.25)], vec![Some(0.15)], vec![None]]);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_directory_of_runs_stands_for_its_runs() {
        let dir = temp_dir("expand");
        let parent = dir.join("sweep");
        let s1 = run(&parent, "s1", &lines(0.5, 0.1, 10.0));
        let s0 = run(&parent, "s0", &lines(0.5, 0.1, 10.0));
        std::fs::create_dir_all(parent.join("notes")).unwrap();
        std::fs::write(parent.join("README"), "x").unwrap();
        assert_eq!(
            expand_arm_dirs(std::slice::from_ref(&parent)),
            vec![s0.clone(), s1.clone()]
        );
        // A run directory, several directories and a directory without runs stay as given.
        assert_eq!(expand_arm_dirs(std::slice::from_ref(&s0)), vec![s0.clone()]);
        let both = vec![parent.clone(), s0.clone()];
        assert_eq!(expand_arm_dirs(&both), both);
        let notes = vec![parent.join("notes")];
        assert_eq!(expand_arm_dirs(&notes), notes);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn plot_file_names_are_safe() {
        assert_eq!(
            plot_file_name("games/kuhn/exploitability"),
            "games_kuhn_exploitability.svg"
        );
        assert_eq!(plot_file_name("a b:c"), "a_b_c.svg");
        assert_eq!(plot_file_name("pass@1.x-y"), "pass_1.x-y.svg");
    }
}
