//! A report on a training run: SVG plots and a Markdown summary of `metrics.jsonl`.
//!
//! [`write_report`] reads `<run>/metrics.jsonl` (one JSON object per step, as written by
//! `spar train`) and `<run>/config.toml` if present, and writes into `<run>/report/` one SVG
//! line plot per panel (a panel none of whose series occur is left out) and `summary.md`:
//! the run's length and time, exploitability (first, last, best), the evaluation steps of a
//! game run and the held-out evaluation of a task run, every metric's final value, the plots
//! and the config. Metrics are read generically (every numeric field is a series, maps and
//! arrays flattened as `field/key` and `field/seat<i>`, see [`crate::read::flatten_metrics`]),
//! so a field added later plots without changes here once a panel names it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::format::{fmt_duration, fmt_number};
use crate::read::{belongs_to, read_metrics, Record};
use crate::summary::{summary_markdown, Block, Summary, Table};
use crate::svg::{render_svg, RefLine, Series};
use spar_core::atomic::write_atomic;

/// What [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    /// The report directory (`<run>/report`).
    pub dir: PathBuf,
    /// The SVG plots written, in panel order.
    pub plots: Vec<PathBuf>,
    /// The Markdown summary (`<run>/report/summary.md`).
    pub summary: PathBuf,
}

/// One plot: the series it draws (field names, or prefixes of flattened maps and arrays).
struct PanelSpec {
    file: &'static str,
    title: &'static str,
    y_label: &'static str,
    fields: &'static [&'static str],
}

const PANELS: &[PanelSpec] = &[
    PanelSpec {
        file: "exploitability.svg",
        title: "Exploitability",
        y_label: "exploitability",
        fields: &["exploitability"],
    },
    PanelSpec {
        file: "returns.svg",
        title: "Returns",
        y_label: "mean return",
        fields: &["mean_return", "vs_random", "vs_cfr"],
    },
    PanelSpec {
        file: "invalid_rate.svg",
        title: "Invalid answers, truncation and outside mass",
        y_label: "fraction",
        fields: &[
            "invalid_rate",
            "invalid_vs_random",
            "initial_invalid_rate",
            "truncation_rate",
            "outside_mass",
        ],
    },
    PanelSpec {
        file: "response_length.svg",
        title: "Response length",
        y_label: "tokens",
        fields: &["response_tokens"],
    },
    PanelSpec {
        file: "loss.svg",
        title: "Loss",
        y_label: "loss",
        fields: &["loss"],
    },
    PanelSpec {
        file: "grad_norm.svg",
        title: "Gradient norm (before clipping)",
        y_label: "norm",
        fields: &["grad_norm"],
    },
    PanelSpec {
        file: "accuracy.svg",
        title: "Accuracy: training answers and held-out pass@k",
        y_label: "fraction",
        fields: &["train_accuracy", "pass_at", "majority_accuracy"],
    },
    PanelSpec {
        file: "accuracy_by_difficulty.svg",
        title: "Held-out pass@1 per difficulty",
        y_label: "pass@1",
        fields: &["accuracy_by_difficulty"],
    },
    PanelSpec {
        file: "diversity.svg",
        title: "Distinct correct answers per held-out problem",
        y_label: "answers",
        fields: &["distinct_correct"],
    },
    PanelSpec {
        file: "groups.svg",
        title: "Groups with all answers right or all wrong, unparsable answers",
        y_label: "fraction",
        fields: &["degenerate_groups", "unparsable_rate"],
    },
    PanelSpec {
        file: "kl.svg",
        title: "KL and entropy",
        y_label: "nats per token",
        fields: &["approx_kl", "kl_ref", "entropy", "divergence"],
    },
];

/// Fields whose presence marks an evaluation step.
const EVAL_FIELDS: &[&str] = &[
    "exploitability",
    "nash_conv",
    "outside_mass",
    "vs_random",
    "vs_cfr",
];

/// Reads `run_dir/metrics.jsonl` (and `run_dir/config.toml` if present) and writes the SVG
/// plots and `summary.md` into `run_dir/report/` (each file atomically; a second call
/// overwrites them). A last line without a final newline that does not parse is taken as
/// still being written, left out, and said so in the summary.
///
/// Errors: [`Error::MissingMetrics`], [`Error::EmptyMetrics`] or [`Error::BadMetricsLine`]
/// for a `metrics.jsonl` that is missing, has no record or has a line that is not a JSON
/// object (nothing is written then); [`Error::Io`] for a file that cannot be read or
/// written.
pub fn write_report(run_dir: &Path) -> Result<ReportFiles> {
    let (records, partial_last) = read_metrics(&run_dir.join("metrics.jsonl"))?;
    let config_path = run_dir.join("config.toml");
    let config = match std::fs::read_to_string(&config_path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(&config_path, e)),
    };

    let dir = run_dir.join("report");
    let mut plots = Vec::new();
    for spec in PANELS {
        let series = panel_series(&records, spec.fields);
        if series.is_empty() {
            continue;
        }
        let mut refs = Vec::new();
        if spec.file == "exploitability.svg" {
            refs.push(RefLine {
                label: "Nash (0)".into(),
                y: 0.0,
            });
            if let Some(u) = last_value(&records, "uniform_exploitability") {
                refs.push(RefLine {
                    label: format!("uniform policy ({})", fmt_number(u)),
                    y: u,
                });
            }
        }
        let svg = render_svg(spec.title, spec.y_label, &series, &refs, records.len());
        let path = dir.join(spec.file);
        crate::png::write_plot(&path, &svg)?;
        plots.push(path);
    }

    let summary = run_summary(run_dir, &records, partial_last, &plots, config.as_deref());
    let summary_path = dir.join("summary.md");
    write_atomic(&summary_path, summary_markdown(&summary).as_bytes())?;
    Ok(ReportFiles {
        dir,
        plots,
        summary: summary_path,
    })
}

/// The series of a panel, in the order of `fields` then first appearance; empty series
/// are left out.
fn panel_series(records: &[Record], fields: &[&str]) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    for field in fields {
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for record in records {
            for (name, value) in &record.flat {
                if !belongs_to(name, field) || !value.is_finite() {
                    continue;
                }
                let i = *index.entry(name.clone()).or_insert_with(|| {
                    series.push(Series {
                        name: name.clone(),
                        points: Vec::new(),
                        band: Vec::new(),
                    });
                    series.len() - 1
                });
                series[i].points.push((record.step, *value));
            }
        }
    }
    series
}

/// The last finite value of flattened field `name`.
fn last_value(records: &[Record], name: &str) -> Option<f64> {
    records.iter().rev().find_map(|r| {
        r.flat
            .iter()
            .find(|(n, v)| n == name && v.is_finite())
            .map(|(_, v)| *v)
    })
}

/// The value of flattened name `name` in `record`, if finite.
fn flat_value(record: &Record, name: &str) -> Option<f64> {
    record
        .flat
        .iter()
        .find(|(n, v)| n == name && v.is_finite())
        .map(|(_, v)| *v)
}

/// A table cell: the value of `name` as [`fmt_number`] writes it, `-` when it is absent.
fn cell(record: &Record, name: &str) -> String {
    flat_value(record, name).map_or_else(|| "-".into(), fmt_number)
}

/// The flattened names of `records` that belong to any of `fields`, in the order of
/// `fields`, then of first appearance.
fn names_of(records: &[&Record], fields: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for field in fields {
        for record in records {
            for (name, _) in &record.flat {
                if belongs_to(name, field) && !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
    }
    names
}

/// The run's `summary.md` (module docs).
fn run_summary(
    run_dir: &Path,
    records: &[Record],
    partial_last: bool,
    plots: &[PathBuf],
    config: Option<&str>,
) -> Summary {
    let mut blocks = Vec::new();
    let first = records.first().map_or(0.0, |r| r.step);
    let last = records.last().map_or(0.0, |r| r.step);
    let mut facts = vec![
        format!("Run directory: `{}`", run_dir.display()),
        format!(
            "Steps: {} (lines of `metrics.jsonl`; step {} to {})",
            records.len(),
            fmt_number(first),
            fmt_number(last)
        ),
    ];
    if partial_last {
        facts.push(
            "An unfinished last line of `metrics.jsonl` (still being written?) was left out."
                .into(),
        );
    }
    let seconds: f64 = records
        .iter()
        .filter_map(|r| {
            r.value
                .get("time/seconds")
                .or_else(|| r.value.get("seconds"))
                .and_then(Value::as_f64)
        })
        .filter(|s| s.is_finite())
        .sum();
    facts.push(format!(
        "Total seconds: {seconds:.1} ({})",
        fmt_duration(seconds)
    ));
    blocks.push(Block::Bullets(facts));

    exploitability_section(records, &mut blocks);
    evaluation_section(records, &mut blocks);
    held_out_section(records, &mut blocks);

    if let Some(last) = records.last() {
        blocks.push(Block::Heading(
            2,
            format!("Final values (step {})", fmt_number(last.step)),
        ));
        let mut table = Table::new(vec!["metric".into(), "value".into()], 1);
        for (name, value) in &last.flat {
            table.row(vec![name.clone(), fmt_number(*value)]);
        }
        blocks.push(Block::Table(table));
    }

    if !plots.is_empty() {
        blocks.push(Block::Heading(2, "Plots".into()));
        for plot in plots {
            let file = plot
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let alt = file.strip_suffix(".svg").unwrap_or(&file).to_string();
            blocks.push(Block::Image { alt, file });
        }
    }

    if let Some(config) = config {
        blocks.push(Block::Heading(2, "Config (`config.toml`)".into()));
        blocks.push(Block::Code {
            language: "toml".into(),
            text: config.trim_end().to_string(),
        });
    }
    Summary {
        title: "spar run report".into(),
        blocks,
    }
}

/// Exploitability at its first, last and best (lowest) evaluation, and the uniform policy's:
/// one table per name that holds it (`eval/kuhn/exploitability`, each game of a multi-game
/// run; `exploitability` in a run written before the names were namespaced).
fn exploitability_section(records: &[Record], blocks: &mut Vec<Block>) {
    let all: Vec<&Record> = records.iter().collect();
    let names = names_of(&all, &["exploitability"]);
    if names.is_empty() {
        return;
    }
    blocks.push(Block::Heading(2, "Exploitability".into()));
    for name in names {
        let expl: Vec<(f64, f64)> = records
            .iter()
            .filter_map(|r| flat_value(r, &name).map(|v| (r.step, v)))
            .collect();
        let (Some(&f), Some(&l)) = (expl.first(), expl.last()) else {
            continue;
        };
        let best = expl
            .iter()
            .copied()
            .fold(f, |b, p| if p.1 < b.1 { p } else { b });
        let mut table = Table::new(vec![String::new(), "step".into(), name.clone()], 1);
        for (what, (s, v)) in [("first", f), ("last", l), ("best", best)] {
            table.row(vec![what.into(), fmt_number(s), fmt_number(v)]);
        }
        if let Some(u) = last_value(records, "uniform_exploitability") {
            table.row(vec!["uniform policy".into(), String::new(), fmt_number(u)]);
        }
        blocks.push(Block::Table(table));
    }
}

/// The evaluation steps of a game run (those with any of [`EVAL_FIELDS`]): exploitability,
/// outside mass, returns against the random player and CFR per seat, invalid answers, one
/// column per name that occurs.
fn evaluation_section(records: &[Record], blocks: &mut Vec<Block>) {
    let evals: Vec<&Record> = records
        .iter()
        .filter(|r| {
            r.flat
                .iter()
                .any(|(n, _)| EVAL_FIELDS.iter().any(|f| belongs_to(n, f)))
        })
        .collect();
    if evals.is_empty() {
        return;
    }
    let columns = names_of(
        &evals,
        &[
            "exploitability",
            "outside_mass",
            "vs_random",
            "vs_cfr",
            "invalid_rate",
            "invalid_vs_random",
        ],
    );
    blocks.push(Block::Heading(2, "Evaluation steps".into()));
    let all: Vec<&Record> = records.iter().collect();
    if let Some(name) = names_of(&all, &["initial_invalid_rate"]).first() {
        if let Some(v) = records.iter().find_map(|r| flat_value(r, name)) {
            blocks.push(Block::Text(format!(
                "Invalid-move rate against the random player before the warm start: {}.",
                fmt_number(v)
            )));
        }
    }
    let mut header = vec!["step".to_string()];
    header.extend(columns.iter().cloned());
    let mut table = Table::new(header, 0);
    for r in evals {
        let mut row = vec![fmt_number(r.step)];
        row.extend(columns.iter().map(|name| cell(r, name)));
        table.row(row);
    }
    blocks.push(Block::Table(table));
}

/// The held-out evaluation of a task run (steps with a `pass_at/<k>` value:
/// `eval/<task>/pass_at/<k>`, or `eval/pass_at/<k>` in a run written before the names were
/// namespaced): pass@k for every k that occurs, majority-vote accuracy, unparsable answers,
/// distinct correct answers.
fn held_out_section(records: &[Record], blocks: &mut Vec<Block>) {
    let task_evals: Vec<&Record> = records
        .iter()
        .filter(|r| r.flat.iter().any(|(n, _)| belongs_to(n, "pass_at")))
        .collect();
    if task_evals.is_empty() {
        return;
    }
    let mut ks: Vec<(usize, String)> = names_of(&task_evals, &["pass_at"])
        .into_iter()
        .filter_map(|name| {
            let k = name.rsplit('/').next()?.parse().ok()?;
            Some((k, name))
        })
        .collect();
    ks.sort();
    ks.dedup();
    let eval_name = |field: &str| {
        names_of(&task_evals, &[field])
            .into_iter()
            .find(|n| n.starts_with("eval/"))
    };
    let others: Vec<Option<String>> = ["majority_accuracy", "unparsable_rate", "distinct_correct"]
        .iter()
        .map(|f| eval_name(f))
        .collect();
    blocks.push(Block::Heading(2, "Held-out evaluation".into()));
    let mut header = vec!["step".to_string()];
    header.extend(ks.iter().map(|(k, _)| format!("pass@{k}")));
    header.extend(
        ["majority", "unparsable", "distinct correct"]
            .iter()
            .map(|s| s.to_string()),
    );
    let mut table = Table::new(header, 0);
    for r in task_evals {
        let mut row = vec![fmt_number(r.step)];
        row.extend(ks.iter().map(|(_, name)| cell(r, name)));
        for name in &others {
            row.push(name.as_deref().map_or_else(|| "-".into(), |n| cell(r, n)));
        }
        table.row(row);
    }
    blocks.push(Block::Table(table));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_run(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "spar-report-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const METRICS: &str = r#"{"step":0,"mean_return":{"player0":0.1,"player1":-0.1},"baseline":{"player0":0.0,"player1":0.0},"invalid_rate":0.25,"truncation_rate":0.0,"response_tokens":12.5,"samples":0,"loss":0.0,"clip_fraction":0.0,"approx_kl":0.0,"grad_norm":0.0,"skipped_updates":0,"warm_start_loss":1.5,"nash_conv":0.9,"exploitability":0.45,"outside_mass":0.125,"vs_random":[0.3,-0.2],"uniform_exploitability":0.458,"seconds":10.5}
{"step":1,"mean_return":{"player0":0.2,"player1":-0.2},"baseline":{"player0":0.1,"player1":-0.1},"invalid_rate":0.1,"truncation_rate":0.05,"response_tokens":8.0,"samples":64,"loss":0.75,"clip_fraction":0.1,"approx_kl":0.002,"grad_norm":1.25,"skipped_updates":0,"seconds":20.0}
{"step":2,"mean_return":{"player0":0.05,"player1":-0.05},"baseline":{"player0":0.1,"player1":-0.1},"invalid_rate":0.0,"truncation_rate":0.0,"response_tokens":6.0,"samples":64,"loss":0.5,"clip_fraction":0.05,"approx_kl":0.001,"grad_norm":0.75,"skipped_updates":1,"nash_conv":0.5,"exploitability":0.25,"outside_mass":0.0625,"vs_random":[0.55,0.1],"kl_ref":0.03,"seconds":21.5}
"#;

    /// The number of points of the first polyline in `svg`.
    fn polyline_points(svg: &str) -> Vec<usize> {
        svg.split("<polyline")
            .skip(1)
            .map(|rest| {
                let start = rest.find("points=\"").unwrap() + 8;
                let end = start + rest[start..].find('"').unwrap();
                rest[start..end].split_whitespace().count()
            })
            .collect()
    }

    #[test]
    fn writes_plots_and_summary() {
        let run = temp_run("ok");
        std::fs::write(run.join("metrics.jsonl"), METRICS).unwrap();
        std::fs::write(run.join("config.toml"), "seed = 7\n[ppo]\nlr = 1e-5\n").unwrap();
        let files = write_report(&run).unwrap();
        assert_eq!(files.dir, run.join("report"));
        let names: Vec<String> = files
            .plots
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "exploitability.svg",
                "returns.svg",
                "invalid_rate.svg",
                "response_length.svg",
                "loss.svg",
                "grad_norm.svg",
                "kl.svg"
            ]
        );
        for plot in &files.plots {
            assert!(plot.exists(), "{}", plot.display());
            let svg = std::fs::read_to_string(plot).unwrap();
            assert!(svg.starts_with("<svg"), "{}", plot.display());
            assert!(svg.trim_end().ends_with("</svg>"), "{}", plot.display());
            assert!(svg.contains(">step</text>"));
        }
        let read = |name: &str| std::fs::read_to_string(files.dir.join(name)).unwrap();

        // Exploitability: 2 eval points, marked, and dashed lines at 0 and the uniform value.
        let svg = read("exploitability.svg");
        assert_eq!(polyline_points(&svg), vec![2]);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches("stroke-dasharray").count(), 2 + 2); // lines + legend
        assert!(svg.contains("uniform policy (0.458)"));
        // Returns: two roles over 3 steps, and two seats of vs_random on 2 steps.
        let svg = read("returns.svg");
        assert_eq!(polyline_points(&svg), vec![3, 3, 2, 2]);
        assert!(svg.contains("mean_return/player0") && svg.contains("vs_random/seat1"));
        // KL: approx_kl on every step, kl_ref once.
        assert_eq!(polyline_points(&read("kl.svg")), vec![3, 1]);
        assert_eq!(polyline_points(&read("loss.svg")), vec![3]);
        assert_eq!(polyline_points(&read("invalid_rate.svg")), vec![3, 3, 2]);

        let md = std::fs::read_to_string(&files.summary).unwrap();
        assert_eq!(files.summary, run.join("report/summary.md"));
        assert!(md.contains("- Steps: 3 "), "{md}");
        assert!(md.contains("- Total seconds: 52.0"), "{md}");
        assert!(md.contains(
            "| step | exploitability | outside_mass | vs_random/seat0 | vs_random/seat1 | invalid_rate |"
        ));
        assert!(
            md.contains("| 0 | 0.45 | 0.125 | 0.3 | -0.2 | 0.25 |"),
            "{md}"
        );
        // invalid_rate 0.0 reads 0.
        assert!(
            md.contains("| 2 | 0.25 | 0.0625 | 0.55 | 0.1 | 0 |"),
            "{md}"
        );
        assert!(!md.contains("| 1 | "), "step 1 is not an eval step:\n{md}");
        assert!(
            md.contains(
                "## Exploitability\n\n|  | step | exploitability |\n|---|---:|---:|\n\
                 | first | 0 | 0.45 |\n| last | 2 | 0.25 |\n| best | 2 | 0.25 |\n\
                 | uniform policy |  | 0.458 |\n\n"
            ),
            "{md}"
        );
        assert!(md.contains("## Final values (step 2)\n\n| metric | value |\n|---|---:|\n"));
        assert!(md.contains("| kl_ref | 0.03 |"));
        assert!(md.contains("| samples | 64 |"));
        assert!(md.contains("| response_tokens | 6 |"));
        assert!(md.contains("![exploitability](exploitability.svg)"));
        assert!(md.contains("![kl](kl.svg)"));
        assert!(
            md.contains("```toml\nseed = 7\n[ppo]\nlr = 1e-5\n```"),
            "{md}"
        );

        // Running it again overwrites in place.
        assert_eq!(write_report(&run).unwrap(), files);
        std::fs::remove_dir_all(&run).ok();
    }

    #[test]
    fn absent_panels_are_skipped_and_partial_last_line_ignored() {
        let run = temp_run("sparse");
        std::fs::write(
            run.join("metrics.jsonl"),
            "{\"step\":0,\"loss\":1.0,\"note\":\"x\"}\n\n{\"step\":1,\"loss\":0.5,\"exploitability\":null}\n{\"step\":2,\"lo",
        )
        .unwrap();
        let files = write_report(&run).unwrap();
        assert_eq!(files.plots, vec![run.join("report/loss.svg")]);
        let svg = std::fs::read_to_string(&files.plots[0]).unwrap();
        assert_eq!(polyline_points(&svg), vec![2]);
        let md = std::fs::read_to_string(&files.summary).unwrap();
        assert!(md.contains("- Steps: 2 "), "{md}");
        assert!(md.contains("unfinished last line"), "{md}");
        assert!(!md.contains("## Evaluation steps"), "{md}");
        assert!(!md.contains("## Config"), "{md}");
        std::fs::remove_dir_all(&run).ok();
    }

    #[test]
    fn bad_input_errors() {
        let run = temp_run("bad");
        let err = write_report(&run).unwrap_err().to_string();
        assert!(err.contains("metrics.jsonl"), "{err}");
        assert!(
            err.contains("is this a `spar train` run directory?"),
            "{err}"
        );

        std::fs::write(run.join("metrics.jsonl"), "\n  \n").unwrap();
        let err = write_report(&run).unwrap_err().to_string();
        assert!(err.contains("metrics.jsonl"), "{err}");
        assert!(
            err.contains("is this a `spar train` run directory?"),
            "{err}"
        );

        std::fs::write(
            run.join("metrics.jsonl"),
            "{\"step\":0,\"loss\":1.0}\n{\"step\":1,\"loss\":\n{\"step\":2,\"loss\":0.5}\n",
        )
        .unwrap();
        let err = write_report(&run).unwrap_err();
        assert!(
            matches!(err, Error::BadMetricsLine { line: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("metrics.jsonl line 2"), "{err}");

        std::fs::write(run.join("metrics.jsonl"), "[1, 2]\n").unwrap();
        let err = write_report(&run).unwrap_err().to_string();
        assert!(err.contains("metrics.jsonl line 1"), "{err}");
        assert!(!run.join("report").exists());
        std::fs::remove_dir_all(&run).ok();
    }

    #[test]
    fn per_game_fields_of_multi_game_runs_join_their_panels() {
        let run = temp_run("games");
        std::fs::write(
            run.join("metrics.jsonl"),
            concat!(
                r#"{"step":0,"loss":1.0,"games":{"kuhn":{"exploitability":0.4,"vs_random":[0.1,0.2]},"leduc":{"exploitability":2.0}}}"#,
                "\n",
                r#"{"step":1,"loss":0.5,"games":{"kuhn":{"exploitability":0.3,"vs_random":[0.2,0.3]},"leduc":{"exploitability":1.5}}}"#,
                "\n",
            ),
        )
        .unwrap();
        let files = write_report(&run).unwrap();
        let names: Vec<String> = files
            .plots
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["exploitability.svg", "returns.svg", "loss.svg"]);
        let svg = std::fs::read_to_string(run.join("report/exploitability.svg")).unwrap();
        assert_eq!(polyline_points(&svg), vec![2, 2]);
        assert!(svg.contains("games/kuhn/exploitability"), "{svg}");
        assert!(svg.contains("games/leduc/exploitability"), "{svg}");
        let svg = std::fs::read_to_string(run.join("report/returns.svg")).unwrap();
        assert_eq!(polyline_points(&svg), vec![2, 2]);
        assert!(svg.contains("games/kuhn/vs_random/seat1"), "{svg}");
        std::fs::remove_dir_all(&run).ok();
    }

    /// A run in the one flat shape of every loop (`docs/metrics.md`).
    const NAMESPACED: &str = r#"{"step":0,"eval/kuhn/exploitability":0.45,"eval/kuhn/initial_invalid_rate":1.0,"eval/kuhn/outside_mass":0.125,"eval/kuhn/player0/vs_random":0.3,"eval/kuhn/player1/vs_random":-0.2,"learner/loss":0.0,"learner/warm_start_loss":1.5,"selfplay/invalid_rate":0.25,"selfplay/response_tokens":12.5,"time/seconds":10.5}
{"step":1,"learner/approx_kl":0.002,"learner/grad_norm":1.25,"learner/loss":0.75,"selfplay/invalid_rate":0.1,"selfplay/kuhn/player0/mean_return":0.2,"selfplay/kuhn/player1/mean_return":-0.2,"time/seconds":20.0}
{"step":2,"eval/kuhn/avg_exploitability":0.2,"eval/kuhn/exploitability":0.25,"eval/kuhn/outside_mass":0.0625,"eval/kuhn/player0/vs_random":0.55,"eval/kuhn/player1/vs_random":0.1,"learner/grad_norm":0.75,"learner/kl_ref":0.03,"learner/loss":0.5,"selfplay/invalid_rate":0.0,"selfplay/kuhn/player0/mean_return":0.05,"selfplay/kuhn/player1/mean_return":-0.05,"time/seconds":21.5}
{"step":3,"eval/arithmetic/majority_accuracy":0.5,"eval/arithmetic/pass_at/1":0.25,"eval/arithmetic/pass_at/16":0.75,"eval/arithmetic/pass_at/4":0.5,"eval/arithmetic/unparsable_rate":0.125,"tasks/unparsable_rate":0.5,"time/seconds":1.0}
"#;

    #[test]
    fn namespaced_names_fill_the_same_panels_and_tables() {
        let run = temp_run("namespaced");
        std::fs::write(run.join("metrics.jsonl"), NAMESPACED).unwrap();
        let files = write_report(&run).unwrap();
        let read = |name: &str| std::fs::read_to_string(files.dir.join(name)).unwrap();
        // Each game's exploitability, never the average policy's.
        let svg = read("exploitability.svg");
        assert_eq!(polyline_points(&svg), vec![2]);
        assert!(svg.contains("eval/kuhn/exploitability"), "{svg}");
        assert!(!svg.contains("avg_exploitability"), "{svg}");
        // Roles' returns, then each seat's return against random.
        let svg = read("returns.svg");
        assert_eq!(polyline_points(&svg), vec![2, 2, 2, 2]);
        assert!(svg.contains("selfplay/kuhn/player1/mean_return"), "{svg}");
        assert!(svg.contains("eval/kuhn/player0/vs_random"), "{svg}");
        assert_eq!(polyline_points(&read("invalid_rate.svg")), vec![3, 1, 2]);
        assert_eq!(polyline_points(&read("loss.svg")), vec![3]);
        // The task's pass@k (k in any order) and its held-out majority.
        assert_eq!(polyline_points(&read("accuracy.svg")), vec![1, 1, 1, 1]);
        let md = std::fs::read_to_string(&files.summary).unwrap();
        assert!(md.contains("- Total seconds: 53.0"), "{md}");
        assert!(
            md.contains(
                "|  | step | eval/kuhn/exploitability |\n|---|---:|---:|\n\
                 | first | 0 | 0.45 |\n| last | 2 | 0.25 |\n| best | 2 | 0.25 |\n"
            ),
            "{md}"
        );
        assert!(md.contains("before the warm start: 1.\n"), "{md}");
        assert!(
            md.contains(
                "| step | eval/kuhn/exploitability | eval/kuhn/outside_mass | \
                 eval/kuhn/player0/vs_random | eval/kuhn/player1/vs_random | \
                 selfplay/invalid_rate |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| 0 | 0.45 | 0.125 | 0.3 | -0.2 | 0.25 |"),
            "{md}"
        );
        assert!(
            md.contains("| 2 | 0.25 | 0.0625 | 0.55 | 0.1 | 0 |"),
            "{md}"
        );
        // pass@k by increasing k; the held-out unparsable rate, not the training one.
        assert!(
            md.contains(
                "| step | pass@1 | pass@4 | pass@16 | majority | unparsable | distinct correct |\n\
                 |---:|---:|---:|---:|---:|---:|---:|\n| 3 | 0.25 | 0.5 | 0.75 | 0.5 | 0.125 | - |\n"
            ),
            "{md}"
        );
        std::fs::remove_dir_all(&run).ok();
    }

    #[test]
    fn tables_read_at_four_significant_digits() {
        let run = temp_run("digits");
        std::fs::write(
            run.join("metrics.jsonl"),
            concat!(
                r#"{"step":0,"exploitability":0.42274013317385933,"outside_mass":1.5e-7,"vs_random":[0.123456,-0.0000123],"invalid_rate":0.0,"initial_invalid_rate":0.123456789,"seconds":3723.4}"#,
                "\n",
                r#"{"step":1,"train_accuracy":0.66666666666666663,"samples":1234567,"eval":{"pass_at":{"1":0.3333333333333333,"8":0.875},"majority_accuracy":0.5,"unparsable_rate":0.0,"distinct_correct":1.6666666666666667}}"#,
                "\n",
            ),
        )
        .unwrap();
        let files = write_report(&run).unwrap();
        let md = std::fs::read_to_string(&files.summary).unwrap();
        assert!(md.contains("- Total seconds: 3723.4 (1h 02m 03s)"), "{md}");
        assert!(md.contains("before the warm start: 0.1235.\n"), "{md}");
        // 0.123456 -> 0.1235; -0.0000123 is below 1e-4: exponent form.
        assert!(
            md.contains("| 0 | 0.4227 | 1.5e-7 | 0.1235 | -1.23e-5 | 0 |"),
            "{md}"
        );
        assert!(md.contains("| first | 0 | 0.4227 |"), "{md}");
        assert!(
            md.contains(
                "| step | pass@1 | pass@8 | majority | unparsable | distinct correct |\n\
                 |---:|---:|---:|---:|---:|---:|\n| 1 | 0.3333 | 0.875 | 0.5 | 0 | 1.667 |\n"
            ),
            "{md}"
        );
        assert!(md.contains("| train_accuracy | 0.6667 |"), "{md}");
        assert!(md.contains("| eval/pass_at/1 | 0.3333 |"), "{md}");
        assert!(md.contains("| samples | 1234567 |"), "{md}");
        assert!(!md.contains("0.4227401") && !md.contains("33333"), "{md}");
        let svg = std::fs::read_to_string(run.join("report/exploitability.svg")).unwrap();
        assert!(svg.contains("<title>step 0: 0.4227</title>"), "{svg}");
        std::fs::remove_dir_all(&run).ok();
    }
}
