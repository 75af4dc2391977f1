//! Reading `metrics.jsonl` and naming its numbers.
//!
//! A training run appends one JSON object per step to `<run>/metrics.jsonl`. Everything in
//! this crate reads it generically: [`flatten_metrics`] turns an object into `(name, value)`
//! pairs (a line's names are flat already, `eval/kuhn/exploitability`; a run written before
//! they were had nested ones, `mean_return/kuhn/player0`, `vs_random/seat1`), so a field
//! added to the log later is plotted, compared and logged to TensorBoard without changes
//! here. [`read_metrics`] parses the file into [`Record`]s, tolerating an unfinished last
//! line of a run still being written; [`belongs_to`] says which flattened names a field
//! (a plot panel, a comparison metric) stands for.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// One parsed line of `metrics.jsonl`.
pub(crate) struct Record {
    /// The `step` field (or the record's index if it has no finite one).
    pub(crate) step: f64,
    /// The JSON object itself.
    pub(crate) value: Value,
    /// Its numeric fields, flattened by [`flatten_metrics`].
    pub(crate) flat: Vec<(String, f64)>,
}

/// Every numeric field of a metrics record, as `(name, value)` pairs in the record's order:
/// a number is its field name, an object of numbers is flattened as `field/key`, an array as
/// `field/seat0`, `field/seat1`, … (recursively). The top-level `step` field, non-numeric
/// values (strings, booleans, nulls) and non-finite numbers are left out; anything but an
/// object gives nothing.
pub fn flatten_metrics(metrics: &Value) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    if let Value::Object(map) = metrics {
        for (key, value) in map {
            if key != "step" {
                flatten_into(key, value, &mut out);
            }
        }
    }
    out
}

fn flatten_into(prefix: &str, value: &Value, out: &mut Vec<(String, f64)>) {
    match value {
        Value::Number(n) => {
            if let Some(x) = n.as_f64().filter(|x| x.is_finite()) {
                out.push((prefix.to_string(), x));
            }
        }
        Value::Object(map) => {
            for (key, value) in map {
                flatten_into(&format!("{prefix}/{key}"), value, out);
            }
        }
        Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                flatten_into(&format!("{prefix}/seat{i}"), value, out);
            }
        }
        _ => {}
    }
}

/// The records of the `metrics.jsonl` at `path`, and whether an unfinished last line was
/// left out: a last line without a final newline that does not parse is taken as still being
/// written by a running `spar train` (unless no record precedes it). Blank lines are
/// skipped.
///
/// [`Error::MissingMetrics`] if the file does not exist, [`Error::EmptyMetrics`] if it holds
/// no record, [`Error::BadMetricsLine`] for a line that is not a JSON object.
pub(crate) fn read_metrics(path: &Path) -> Result<(Vec<Record>, bool)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::MissingMetrics {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let bad_line = |line: usize, reason: String| Error::BadMetricsLine {
        path: path.to_path_buf(),
        line,
        reason,
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
            Ok(_) => return Err(bad_line(i + 1, "expected a JSON object of metrics".into())),
            Err(_) if i + 1 == lines.len() && !ends_with_newline && !records.is_empty() => {
                partial_last = true;
                continue;
            }
            Err(e) => return Err(bad_line(i + 1, format!("not valid JSON ({e})"))),
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
        return Err(Error::EmptyMetrics {
            path: path.to_path_buf(),
        });
    }
    Ok((records, partial_last))
}

/// Whether flattened name `name` belongs to `field`: whether `field`'s `/`-separated segments
/// occur, in order and together, among `name`'s. So a full name stands for itself
/// (`eval/kuhn/exploitability`), a prefix for the names under it (`eval/kuhn`, and an old
/// run's `vs_random` for `vs_random/seat0`), and a metric's last segments for that metric
/// wherever it is (`exploitability`: `eval/kuhn/exploitability`, `eval/leduc/exploitability`,
/// an old run's `exploitability` and `games/kuhn/exploitability`; `pass_at`:
/// `eval/arithmetic/pass_at/1`), but never a part of a segment (`exploitability` is not
/// `avg_exploitability`).
pub(crate) fn belongs_to(name: &str, field: &str) -> bool {
    let field: Vec<&str> = field.split('/').collect();
    let name: Vec<&str> = name.split('/').collect();
    !field.iter().any(|s| s.is_empty()) && name.windows(field.len()).any(|w| w == field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "spar-report-read-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.jsonl");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn flattening_names_maps_and_seats() {
        // Keys in sorted order, so the record's order is the same whether or not serde_json's
        // `preserve_order` is on (another crate of the build may turn it on).
        let metrics = serde_json::json!({
            "exploitability": null,
            "flag": true,
            "games": {"kuhn": {"exploitability": 0.125}},
            "mean_return": {"player0": 0.25, "player1": -0.25},
            "note": "text",
            "step": 7,
            "vs_random": [0.5, [1, 2]]
        });
        let flat = flatten_metrics(&metrics);
        let want: Vec<(String, f64)> = [
            ("games/kuhn/exploitability", 0.125),
            ("mean_return/player0", 0.25),
            ("mean_return/player1", -0.25),
            ("vs_random/seat0", 0.5),
            ("vs_random/seat1/seat0", 1.0),
            ("vs_random/seat1/seat1", 2.0),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), *v))
        .collect();
        assert_eq!(flat, want);
        assert!(flatten_metrics(&serde_json::json!([1, 2])).is_empty());
        // A nested `step` is a metric; only the top-level one is the step.
        let nested = flatten_metrics(&serde_json::json!({"eval": {"step": 3}}));
        assert_eq!(nested, vec![("eval/step".to_string(), 3.0)]);
    }

    #[test]
    fn records_skip_blank_lines_and_an_unfinished_last_line() {
        let path = temp_file(
            "ok",
            "{\"step\":4,\"loss\":1.0,\"note\":\"x\"}\n\n{\"loss\":0.5}\n{\"step\":6,\"lo",
        );
        let (records, partial) = read_metrics(&path).unwrap();
        assert!(partial);
        // The second record has no step: its index (1) stands in.
        let steps: Vec<f64> = records.iter().map(|r| r.step).collect();
        assert_eq!(steps, [4.0, 1.0]);
        assert_eq!(records[0].flat, vec![("loss".to_string(), 1.0)]);
        assert_eq!(records[0].value["note"], "x");
        // With a final newline the same line is an error, not a line being written.
        std::fs::write(&path, "{\"step\":0}\n{\"step\":1,\"lo\n").unwrap();
        assert!(matches!(
            read_metrics(&path),
            Err(Error::BadMetricsLine { line: 2, .. })
        ));
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn bad_files_are_named() {
        let path = temp_file("bad", "\n  \n");
        let err = read_metrics(&path).err().unwrap();
        assert!(matches!(err, Error::EmptyMetrics { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "{} is empty: is this a `spar train` run directory?",
                path.display()
            )
        );
        // An unfinished first line is an error: no record shows the file is being written.
        std::fs::write(&path, "{\"step\":0,").unwrap();
        assert!(matches!(
            read_metrics(&path),
            Err(Error::BadMetricsLine { line: 1, .. })
        ));

        std::fs::write(
            &path,
            "{\"step\":0,\"loss\":1.0}\n{\"step\":1,\"loss\":\n{\"step\":2,\"loss\":0.5}\n",
        )
        .unwrap();
        let err = read_metrics(&path).err().unwrap().to_string();
        assert!(
            err.starts_with(&format!("{} line 2: not valid JSON", path.display())),
            "{err}"
        );
        std::fs::write(&path, "[1, 2]\n").unwrap();
        let err = read_metrics(&path).err().unwrap().to_string();
        assert_eq!(
            err,
            format!(
                "{} line 1: expected a JSON object of metrics",
                path.display()
            )
        );

        let missing = path.with_file_name("nope.jsonl");
        let err = read_metrics(&missing).err().unwrap();
        assert!(matches!(err, Error::MissingMetrics { .. }), "{err:?}");
        assert!(
            err.to_string().contains("nope.jsonl does not exist"),
            "{err}"
        );
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn a_field_stands_for_the_names_whose_segments_hold_it() {
        // Today's names: loop, game, role and metric segments.
        assert!(belongs_to("eval/kuhn/exploitability", "exploitability"));
        assert!(belongs_to(
            "eval/kuhn/exploitability",
            "eval/kuhn/exploitability"
        ));
        assert!(belongs_to(
            "eval/kuhn/exploitability",
            "kuhn/exploitability"
        ));
        assert!(belongs_to("eval/kuhn/player0/vs_random", "vs_random"));
        assert!(belongs_to("eval/kuhn/player0/vs_random", "eval/kuhn"));
        assert!(belongs_to("eval/arithmetic/pass_at/4", "pass_at"));
        assert!(belongs_to(
            "selfplay/kuhn/player0/mean_return",
            "mean_return"
        ));
        assert!(!belongs_to(
            "eval/kuhn/avg_exploitability",
            "exploitability"
        ));
        assert!(!belongs_to("eval/kuhn/player0/vs_random_ci95", "vs_random"));
        assert!(!belongs_to("learner/sft_loss", "loss"));
        assert!(!belongs_to(
            "eval/kuhn/exploitability",
            "eval/exploitability"
        ));
        assert!(!belongs_to("eval/kuhn/exploitability", "exploitability/"));
        assert!(!belongs_to("eval/kuhn/exploitability", ""));
        // Runs written before the names were namespaced: top-level fields, arrays by seat,
        // multi-game runs under `games/<game>/`.
        assert!(belongs_to("exploitability", "exploitability"));
        assert!(belongs_to("vs_random/seat1", "vs_random"));
        assert!(belongs_to("games/kuhn/exploitability", "exploitability"));
        assert!(belongs_to("games/kuhn/vs_random/seat0", "vs_random"));
        assert!(belongs_to("eval/pass_at/1", "eval/pass_at"));
        assert!(!belongs_to("exploitability_x", "exploitability"));
        assert!(!belongs_to("games/kuhn/exploitability_x", "exploitability"));
    }
}
