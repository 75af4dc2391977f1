//! A report on a training run: SVG plots and a Markdown summary of `metrics.jsonl`.
//!
//! [`write_report`] reads `<run>/metrics.jsonl` (one JSON object per step, as written by
//! [`crate::loops::selfplay`]) and `<run>/config.toml` if present, and writes into `<run>/report/`
//! one hand-written SVG line plot per panel (a panel none of whose series occur is left
//! out) and `summary.md`. Metrics are read generically: every numeric field is a series,
//! objects and arrays of numbers are flattened as `field/key` and `field/seat<i>` (see
//! [`crate::tensorboard::flatten_metrics`]), so fields added later plot without changes
//! here when a panel names them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::tensorboard::flatten_metrics;

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
        fields: &["train_accuracy", "eval/pass_at", "eval/majority_accuracy"],
    },
    PanelSpec {
        file: "accuracy_by_difficulty.svg",
        title: "Held-out pass@1 per difficulty",
        y_label: "pass@1",
        fields: &["eval/accuracy_by_difficulty"],
    },
    PanelSpec {
        file: "diversity.svg",
        title: "Distinct correct answers per held-out problem",
        y_label: "answers",
        fields: &["eval/distinct_correct"],
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

/// One parsed line of `metrics.jsonl`.
pub(crate) struct Record {
    /// The `step` field (or the line's index if it has none).
    pub(crate) step: f64,
    /// The JSON object itself.
    value: Value,
    /// Its numeric fields, flattened.
    pub(crate) flat: Vec<(String, f64)>,
}

/// A named sequence of `(step, value)` points, with an optional shaded band.
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) points: Vec<(f64, f64)>,
    /// `(step, low, high)`: a translucent area in the series' colour, drawn under every
    /// line (e.g. the spread across seeds); empty for none.
    pub(crate) band: Vec<(f64, f64, f64)>,
}

/// A horizontal dashed line.
pub(crate) struct RefLine {
    label: String,
    y: f64,
}

/// Reads `run_dir/metrics.jsonl` (and `run_dir/config.toml` if present) and writes the SVG
/// plots and `summary.md` into `run_dir/report/` (each file atomically).
///
/// A missing or empty `metrics.jsonl` or a line that is not a JSON object is an
/// [`Error::Invalid`] naming the file (and the line). A last line without a final newline
/// that does not parse is taken as still being written, and left out.
pub fn write_report(run_dir: &Path) -> Result<ReportFiles> {
    let metrics_path = run_dir.join("metrics.jsonl");
    let (records, partial_last) = read_metrics(&metrics_path)?;
    let config_path = run_dir.join("config.toml");
    let config = match std::fs::read_to_string(&config_path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::Lm(spar_lm::LmError::io(&config_path, e))),
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
                    label: format!("uniform policy ({})", fmt_value(u)),
                    y: u,
                });
            }
        }
        let svg = render_svg(spec.title, spec.y_label, &series, &refs, records.len());
        let path = dir.join(spec.file);
        spar_lm::checkpoint::write_atomic(&path, svg.as_bytes())?;
        plots.push(path);
    }

    let summary_text = summary_markdown(run_dir, &records, partial_last, &plots, config.as_deref());
    let summary = dir.join("summary.md");
    spar_lm::checkpoint::write_atomic(&summary, summary_text.as_bytes())?;
    Ok(ReportFiles {
        dir,
        plots,
        summary,
    })
}

/// The records of `metrics.jsonl`, and whether an unfinished last line was left out.
pub(crate) fn read_metrics(path: &Path) -> Result<(Vec<Record>, bool)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Invalid(format!(
                "{} does not exist: is this a `spar train` run directory?",
                path.display()
            )))
        }
        Err(e) => return Err(Error::Lm(spar_lm::LmError::io(path, e))),
    };
    let ends_with_newline = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::new();
    let mut partial_last = false;
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(Error::Invalid(format!(
                    "{} line {}: expected a JSON object of metrics",
                    path.display(),
                    i + 1
                )))
            }
            Err(_) if i + 1 == lines.len() && !ends_with_newline && !records.is_empty() => {
                // Probably a line still being written by a running `spar train`.
                partial_last = true;
                continue;
            }
            Err(e) => {
                return Err(Error::Invalid(format!(
                    "{} line {}: not valid JSON ({e})",
                    path.display(),
                    i + 1
                )))
            }
        };
        let step = value
            .get("step")
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite())
            .unwrap_or(records.len() as f64);
        let value = Value::Object(value);
        let flat = flatten_metrics(&value);
        records.push(Record { step, value, flat });
    }
    if records.is_empty() {
        return Err(Error::Invalid(format!(
            "{} is empty: is this a `spar train` run directory?",
            path.display()
        )));
    }
    Ok((records, partial_last))
}

/// Whether flattened name `name` belongs to `field`: is it or `field/...`, or the same
/// under a game of a multi-game run (`games/<game>/field`, `games/<game>/field/...`).
pub(crate) fn belongs_to(name: &str, field: &str) -> bool {
    let direct = |name: &str| {
        name == field
            || name
                .strip_prefix(field)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    direct(name)
        || name
            .strip_prefix("games/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(game, rest)| !game.is_empty() && direct(rest))
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

/// Plot colours (Tableau 10).
const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// Axis ticks: the rounded range `[lo, hi]`, the tick values, and how many decimals to
/// print them with (`None`: use scientific notation).
struct Ticks {
    lo: f64,
    hi: f64,
    values: Vec<f64>,
    decimals: Option<usize>,
}

/// "Nice" ticks (steps of 1, 2 or 5 times a power of ten) covering `[lo, hi]`.
fn nice_ticks(mut lo: f64, mut hi: f64, target: usize, integer: bool) -> Ticks {
    if !(lo.is_finite() && hi.is_finite()) {
        lo = 0.0;
        hi = 1.0;
    }
    if hi < lo {
        std::mem::swap(&mut lo, &mut hi);
    }
    if hi - lo <= f64::EPSILON * lo.abs().max(hi.abs()).max(1e-300) {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo -= pad;
        hi += pad;
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mut exp = raw.log10().floor();
    let base = 10f64.powf(exp);
    let frac = raw / base;
    let mult = if frac <= 1.0 {
        1.0
    } else if frac <= 2.0 {
        2.0
    } else if frac <= 5.0 {
        5.0
    } else {
        exp += 1.0;
        1.0
    };
    let mut step = mult * 10f64.powf(exp);
    if integer && step < 1.0 {
        step = 1.0;
        exp = 0.0;
    }
    let first = (lo / step).floor();
    let last = (hi / step).ceil();
    let count = ((last - first) as usize).min(1000);
    let values: Vec<f64> = (0..=count).map(|k| (first + k as f64) * step).collect();
    let lo = first * step;
    let hi = lo + count as f64 * step;
    let magnitude = lo.abs().max(hi.abs());
    let decimals = if magnitude >= 1e6 || (exp < -4.0) {
        None
    } else {
        Some((-exp).max(0.0) as usize)
    };
    Ticks {
        lo,
        hi,
        values,
        decimals,
    }
}

fn fmt_tick(v: f64, decimals: Option<usize>) -> String {
    let s = match decimals {
        Some(d) => format!("{v:.d$}"),
        None => {
            if v == 0.0 {
                "0".into()
            } else {
                format!("{v:.2e}")
            }
        }
    };
    // No "-0" or "-0.00".
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// A value for text (legend, summary): the shortest exact form.
fn fmt_value(v: f64) -> String {
    format!("{v}")
}

fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// An SVG line plot of `series` over steps, with dashed horizontal `refs`. Points are
/// marked on a series that is missing on some of the `n_records` steps (or is short). A
/// series' band is a translucent polygon in its colour, drawn before every line.
pub(crate) fn render_svg(
    title: &str,
    y_label: &str,
    series: &[Series],
    refs: &[RefLine],
    n_records: usize,
) -> String {
    const W: f64 = 760.0;
    const H: f64 = 440.0;
    const LEFT: f64 = 80.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 56.0;
    let legend_entries: Vec<(&str, &str, bool)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), COLORS[i % COLORS.len()], false))
        .chain(refs.iter().map(|r| (r.label.as_str(), "#555555", true)))
        .collect();
    let legend = legend_entries.len() > 1;
    let legend_width = if legend {
        let chars = legend_entries
            .iter()
            .map(|(l, _, _)| l.chars().count())
            .max()
            .unwrap_or(0);
        (chars as f64 * 7.0 + 44.0).min(280.0)
    } else {
        0.0
    };
    let right = 24.0 + legend_width;
    let (x0, x1, y0, y1) = (LEFT, W - right, TOP, H - BOTTOM);

    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    let band_points = series
        .iter()
        .flat_map(|s| s.band.iter())
        .flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]);
    let mut integer_steps = true;
    for (x, y) in points.copied().chain(band_points) {
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
        integer_steps &= x.fract() == 0.0;
    }
    for r in refs {
        if r.y.is_finite() {
            ymin = ymin.min(r.y);
            ymax = ymax.max(r.y);
        }
    }
    let xt = nice_ticks(xmin, xmax, 8, integer_steps);
    let yt = nice_ticks(ymin, ymax, 6, false);
    let px = |x: f64| x0 + (x - xt.lo) / (xt.hi - xt.lo) * (x1 - x0);
    let py = |y: f64| y1 - (y - yt.lo) / (yt.hi - yt.lo) * (y1 - y0);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="24" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        (x0 + x1) / 2.0,
        escape_xml(title)
    );
    // Grid and tick labels.
    for &v in &yt.values {
        let y = py(v);
        let _ = writeln!(
            svg,
            "<line x1=\"{x0:.1}\" y1=\"{y:.1}\" x2=\"{x1:.1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/>"
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            x0 - 6.0,
            y + 4.0,
            fmt_tick(v, yt.decimals)
        );
    }
    for &v in &xt.values {
        let x = px(v);
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{y0:.1}\" x2=\"{x:.1}\" y2=\"{y1:.1}\" stroke=\"#e5e5e5\"/>"
        );
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            y1 + 18.0,
            fmt_tick(v, xt.decimals)
        );
    }
    // Axes and their labels.
    let _ = writeln!(
        svg,
        r#"<line x1="{x0:.1}" y1="{y1:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="black"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<line x1="{x0:.1}" y1="{y0:.1}" x2="{x0:.1}" y2="{y1:.1}" stroke="black"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">step</text>"#,
        (x0 + x1) / 2.0,
        H - 14.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{ym:.1}" text-anchor="middle" transform="rotate(-90 18 {ym:.1})">{}</text>"#,
        escape_xml(y_label),
        ym = (y0 + y1) / 2.0
    );
    // Reference lines.
    for r in refs.iter().filter(|r| r.y.is_finite()) {
        let y = py(r.y);
        let _ = writeln!(
            svg,
            "<line x1=\"{x0:.1}\" y1=\"{y:.1}\" x2=\"{x1:.1}\" y2=\"{y:.1}\" stroke=\"#555555\" stroke-width=\"1.2\" stroke-dasharray=\"6 4\"><title>{}</title></line>",
            escape_xml(&r.label)
        );
    }
    // Bands, under every line: the upper edge left to right, the lower edge back.
    for (i, s) in series
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.band.is_empty())
    {
        let color = COLORS[i % COLORS.len()];
        let upper = s.band.iter().map(|&(x, _, hi)| (x, hi));
        let lower = s.band.iter().rev().map(|&(x, lo, _)| (x, lo));
        let coords: Vec<String> = upper
            .chain(lower)
            .map(|(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polygon fill="{color}" fill-opacity="0.18" stroke="none" points="{}"><title>{} (range)</title></polygon>"#,
            coords.join(" "),
            escape_xml(&s.name)
        );
    }
    // Series.
    for (i, s) in series
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.points.is_empty())
    {
        let color = COLORS[i % COLORS.len()];
        let coords: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.8" stroke-linejoin="round" points="{}"><title>{}</title></polyline>"#,
            coords.join(" "),
            escape_xml(&s.name)
        );
        if s.points.len() < n_records || s.points.len() <= 25 {
            for &(x, y) in &s.points {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>step {}: {}</title></circle>"#,
                    px(x),
                    py(y),
                    fmt_value(x),
                    fmt_value(y)
                );
            }
        }
    }
    // Legend.
    if legend {
        let lx = x1 + 16.0;
        for (k, (label, color, dashed)) in legend_entries.iter().enumerate() {
            let ly = y0 + 10.0 + k as f64 * 18.0;
            let dash = if *dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = writeln!(
                svg,
                r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"{dash}/>"#,
                lx + 22.0
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                lx + 28.0,
                ly + 4.0,
                escape_xml(label)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// A JSON value for a Markdown table cell: numbers exactly as written in the file.
fn cell(value: Option<&Value>) -> String {
    match value {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.replace('|', "\\|"),
        Some(Value::Bool(b)) => b.to_string(),
        _ => "-".into(),
    }
}

fn fmt_duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The contents of `summary.md`.
fn summary_markdown(
    run_dir: &Path,
    records: &[Record],
    partial_last: bool,
    plots: &[PathBuf],
    config: Option<&str>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# spar run report\n");
    let _ = writeln!(md, "- Run directory: `{}`", run_dir.display());
    let first = records.first().map_or(0.0, |r| r.step);
    let last = records.last().map_or(0.0, |r| r.step);
    let _ = writeln!(
        md,
        "- Steps: {} (lines of `metrics.jsonl`; step {} to {})",
        records.len(),
        fmt_value(first),
        fmt_value(last)
    );
    if partial_last {
        let _ = writeln!(
            md,
            "- An unfinished last line of `metrics.jsonl` (still being written?) was left out."
        );
    }
    let seconds: f64 = records
        .iter()
        .filter_map(|r| r.value.get("seconds").and_then(Value::as_f64))
        .filter(|s| s.is_finite())
        .sum();
    let _ = writeln!(
        md,
        "- Total seconds: {seconds:.1} ({})",
        fmt_duration(seconds)
    );

    // Exploitability: first, last, best.
    let expl: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| {
            r.flat
                .iter()
                .find(|(n, v)| n == "exploitability" && v.is_finite())
                .map(|(_, v)| (r.step, *v))
        })
        .collect();
    if let (Some(f), Some(l)) = (expl.first(), expl.last()) {
        let best = expl
            .iter()
            .copied()
            .fold(*f, |b, p| if p.1 < b.1 { p } else { b });
        let _ = writeln!(md, "\n## Exploitability\n");
        let _ = writeln!(md, "| | step | exploitability |");
        let _ = writeln!(md, "|---|---:|---:|");
        for (what, (s, v)) in [("first", f), ("last", l), ("best", &best)] {
            let _ = writeln!(md, "| {what} | {} | {} |", fmt_value(*s), fmt_value(*v));
        }
        if let Some(u) = last_value(records, "uniform_exploitability") {
            let _ = writeln!(md, "| uniform policy | | {} |", fmt_value(u));
        }
    }

    // Evaluation steps.
    let evals: Vec<&Record> = records
        .iter()
        .filter(|r| {
            EVAL_FIELDS
                .iter()
                .any(|f| r.value.get(*f).is_some_and(|v| !v.is_null()))
        })
        .collect();
    if !evals.is_empty() {
        let seats = |field: &str| {
            evals
                .iter()
                .filter_map(|r| r.value.get(field).and_then(Value::as_array).map(Vec::len))
                .max()
                .unwrap_or(0)
        };
        let (random_seats, cfr_seats) = (seats("vs_random"), seats("vs_cfr"));
        let mut header = vec![
            "step".to_string(),
            "exploitability".into(),
            "outside_mass".into(),
        ];
        header.extend((0..random_seats).map(|i| format!("vs_random seat{i}")));
        header.extend((0..cfr_seats).map(|i| format!("vs_cfr seat{i}")));
        header.push("invalid_rate".into());
        let eval_invalid = evals
            .iter()
            .any(|r| r.value.get("invalid_vs_random").is_some());
        if eval_invalid {
            header.push("invalid_vs_random".into());
        }
        let _ = writeln!(md, "\n## Evaluation steps\n");
        if let Some(v) = records
            .iter()
            .find_map(|r| r.value.get("initial_invalid_rate"))
        {
            let _ = writeln!(
                md,
                "Invalid-move rate against the random player before the warm start: {}.\n",
                cell(Some(v))
            );
        }
        let _ = writeln!(md, "| {} |", header.join(" | "));
        let _ = writeln!(md, "|{}", "---:|".repeat(header.len()));
        for r in evals {
            let seat = |field: &str, i: usize| {
                cell(
                    r.value
                        .get(field)
                        .and_then(Value::as_array)
                        .and_then(|a| a.get(i)),
                )
            };
            let mut row = vec![
                cell(r.value.get("step")),
                cell(r.value.get("exploitability")),
                cell(r.value.get("outside_mass")),
            ];
            row.extend((0..random_seats).map(|i| seat("vs_random", i)));
            row.extend((0..cfr_seats).map(|i| seat("vs_cfr", i)));
            row.push(cell(r.value.get("invalid_rate")));
            if eval_invalid {
                row.push(cell(r.value.get("invalid_vs_random")));
            }
            if r.value.get("step").is_none() {
                row[0] = fmt_value(r.step);
            }
            let _ = writeln!(md, "| {} |", row.join(" | "));
        }
    }

    // Held-out evaluation of task runs.
    let task_evals: Vec<&Record> = records
        .iter()
        .filter(|r| {
            r.value
                .get("eval")
                .and_then(|e| e.get("pass_at"))
                .is_some_and(Value::is_object)
        })
        .collect();
    if !task_evals.is_empty() {
        let mut ks: Vec<(usize, String)> = task_evals
            .iter()
            .filter_map(|r| r.value.get("eval")?.get("pass_at")?.as_object())
            .flat_map(|o| o.keys().cloned())
            .filter_map(|k| k.parse().ok().map(|n| (n, k)))
            .collect();
        ks.sort();
        ks.dedup();
        let _ = writeln!(md, "\n## Held-out evaluation\n");
        let mut header = vec!["step".to_string()];
        header.extend(ks.iter().map(|(_, k)| format!("pass@{k}")));
        header.extend(
            ["majority", "unparsable", "distinct correct"]
                .iter()
                .map(|s| s.to_string()),
        );
        let _ = writeln!(md, "| {} |", header.join(" | "));
        let _ = writeln!(md, "|{}", "---:|".repeat(header.len()));
        for r in task_evals {
            let e = &r.value["eval"];
            let mut row = vec![fmt_value(r.step)];
            row.extend(ks.iter().map(|(_, k)| cell(e["pass_at"].get(k))));
            for f in ["majority_accuracy", "unparsable_rate", "distinct_correct"] {
                row.push(cell(e.get(f)));
            }
            let _ = writeln!(md, "| {} |", row.join(" | "));
        }
    }

    // Final values.
    if let Some(last) = records.last() {
        let _ = writeln!(md, "\n## Final values (step {})\n", fmt_value(last.step));
        let _ = writeln!(md, "| metric | value |");
        let _ = writeln!(md, "|---|---:|");
        for (name, value) in &last.flat {
            let _ = writeln!(
                md,
                "| {} | {} |",
                name.replace('|', "\\|"),
                fmt_value(*value)
            );
        }
    }

    if !plots.is_empty() {
        let _ = writeln!(md, "\n## Plots\n");
        for plot in plots {
            let file = plot
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = file.strip_suffix(".svg").unwrap_or(&file);
            let _ = writeln!(md, "![{name}]({file})\n");
        }
    }

    if let Some(config) = config {
        let mut longest = 0;
        let mut run = 0;
        for c in config.chars() {
            run = if c == '`' { run + 1 } else { 0 };
            longest = longest.max(run);
        }
        let fence = "`".repeat((longest + 1).max(3));
        let _ = writeln!(md, "\n## Config (`config.toml`)\n");
        let _ = writeln!(md, "{fence}toml\n{}", config.trim_end());
        let _ = writeln!(md, "{fence}");
    }
    md
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
            "| step | exploitability | outside_mass | vs_random seat0 | vs_random seat1 | invalid_rate |"
        ));
        assert!(
            md.contains("| 0 | 0.45 | 0.125 | 0.3 | -0.2 | 0.25 |"),
            "{md}"
        );
        assert!(
            md.contains("| 2 | 0.25 | 0.0625 | 0.55 | 0.1 | 0.0 |"),
            "{md}"
        );
        assert!(!md.contains("| 1 | "), "step 1 is not an eval step:\n{md}");
        assert!(md.contains("| first | 0 | 0.45 |"));
        assert!(md.contains("| last | 2 | 0.25 |"));
        assert!(md.contains("| best | 2 | 0.25 |"));
        assert!(md.contains("| kl_ref | 0.03 |"));
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
        let err = write_report(&run).unwrap_err().to_string();
        assert!(err.contains("metrics.jsonl line 2"), "{err}");
        assert!(matches!(write_report(&run), Err(Error::Invalid(_))));

        std::fs::write(run.join("metrics.jsonl"), "[1, 2]\n").unwrap();
        let err = write_report(&run).unwrap_err().to_string();
        assert!(err.contains("metrics.jsonl line 1"), "{err}");
        assert!(!run.join("report").exists());
        std::fs::remove_dir_all(&run).ok();
    }

    #[test]
    fn per_game_fields_of_multi_game_runs_join_their_panels() {
        assert!(belongs_to("exploitability", "exploitability"));
        assert!(belongs_to("vs_random/seat1", "vs_random"));
        assert!(belongs_to("games/kuhn/exploitability", "exploitability"));
        assert!(belongs_to("games/kuhn/vs_random/seat0", "vs_random"));
        assert!(!belongs_to("games/kuhn/exploitability_x", "exploitability"));
        assert!(!belongs_to("games/exploitability", "exploitability"));
        assert!(!belongs_to("games//exploitability", "exploitability"));
        assert!(!belongs_to("other/kuhn/exploitability", "exploitability"));
        assert!(!belongs_to("games/kuhn/x/exploitability", "exploitability"));

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

    #[test]
    fn bands_are_polygons_under_the_lines_inside_the_y_range() {
        let series = [Series {
            name: "arm".into(),
            points: vec![(0.0, 0.5), (1.0, 0.5)],
            band: vec![(0.0, 0.25, 0.75), (1.0, -3.0, 9.0)],
        }];
        let svg = render_svg("t", "y", &series, &[], 2);
        assert_eq!(svg.matches("<polygon").count(), 1);
        assert!(svg.contains(r#"fill-opacity="0.18""#));
        assert!(svg.find("<polygon").unwrap() < svg.find("<polyline").unwrap());
        // The y axis reaches the band's extremes, not only the line's 0.5.
        assert!(svg.contains(">-4<") || svg.contains(">-3<"), "{svg}");
        assert!(svg.contains(">9<") || svg.contains(">10<"), "{svg}");
        // 4 corners: two upper then two lower.
        let start = svg.find("<polygon").unwrap();
        let rest = &svg[start..];
        let p = rest.find("points=\"").unwrap() + 8;
        let end = p + rest[p..].find('"').unwrap();
        assert_eq!(rest[p..end].split_whitespace().count(), 4);
        // A series without a band draws none.
        let plain = [Series {
            name: "x".into(),
            points: vec![(0.0, 1.0)],
            band: Vec::new(),
        }];
        assert!(!render_svg("t", "y", &plain, &[], 1).contains("<polygon"));
    }

    #[test]
    fn ticks_are_round() {
        let t = nice_ticks(0.0, 0.45, 6, false);
        assert_eq!(t.decimals, Some(1));
        assert!(t.lo <= 0.0 && t.hi >= 0.45);
        let labels: Vec<String> = t.values.iter().map(|&v| fmt_tick(v, t.decimals)).collect();
        assert_eq!(labels, ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5"]);
        let t = nice_ticks(0.0, 2.0, 8, true);
        assert!(t.values.iter().all(|v| v.fract() == 0.0));
        let t = nice_ticks(-0.3, 0.55, 6, false);
        assert!(t.values.iter().any(|&v| fmt_tick(v, t.decimals) == "0.0"));
        let t = nice_ticks(5.0, 5.0, 6, false);
        assert!(t.lo < 5.0 && t.hi > 5.0);
        let t = nice_ticks(1e-7, 3e-7, 6, false);
        assert_eq!(t.decimals, None);
        assert_eq!(fmt_tick(-0.0001, Some(2)), "0.00");
    }
}
