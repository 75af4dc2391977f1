//! End-to-end tests of `spar compare` on hand-written runs (no training).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn spar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spar"))
        .args(args)
        .output()
        .expect("the spar binary runs")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-cli-compare-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A fake run `dir` with exploitability at steps 0, 2 and 4 (the last `last`) and the
/// response length at every step.
fn fake_run(dir: &Path, last: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let lines: Vec<String> = (0..=4)
        .map(|step| {
            let e = [0.45, 0.0, 0.3, 0.0, last][step];
            if step % 2 == 0 {
                format!(
                    r#"{{"step":{step},"response_tokens":{},"exploitability":{e},"vs_random":[0.1,0.2]}}"#,
                    10 + step
                )
            } else {
                format!(r#"{{"step":{step},"response_tokens":{}}}"#, 10 + step)
            }
        })
        .collect();
    std::fs::write(dir.join("metrics.jsonl"), lines.join("\n") + "\n").unwrap();
}

fn assert_usage_error(output: &Output, mentions: &[&str]) {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in mentions {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
}

#[test]
fn compare_writes_plots_and_summaries_of_arms_over_seeds() {
    let dir = temp_dir("ok");
    for (seed, last) in [0.1, 0.2, 0.3].into_iter().enumerate() {
        fake_run(&dir.join(format!("rae-s{seed}")), last);
    }
    // The second arm as a directory of runs.
    for (seed, last) in [0.25, 0.35, 0.45].into_iter().enumerate() {
        fake_run(&dir.join("reinforce").join(format!("s{seed}")), last);
    }
    let p = |name: &str| dir.join(name).display().to_string();
    let rae = format!("rae={},{},{}", p("rae-s0"), p("rae-s1"), p("rae-s2"));
    let reinforce = format!("reinforce={}", p("reinforce"));
    let out = dir.join("report");
    let output = spar(&[
        "compare",
        "--arm",
        &rae,
        "--arm",
        &reinforce,
        "--metric",
        "exploitability",
        "--metric",
        "vs_random/seat1",
        "--out",
        out.to_str().unwrap(),
        "--title",
        "RAE vs REINFORCE",
    ]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("| rae | 3 | 0.20 ± 0.10 | 0.1 | 0.3 |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| reinforce | 3 | 0.35 ± 0.10 | 0.25 | 0.45 |"),
        "{stdout}"
    );
    for file in [
        "exploitability.svg",
        "vs_random_seat1.svg",
        "summary.md",
        "summary.json",
    ] {
        assert!(out.join(file).exists(), "{file}");
        assert!(
            stdout.contains(&out.join(file).display().to_string()),
            "{stdout}"
        );
    }
    let svg = std::fs::read_to_string(out.join("exploitability.svg")).unwrap();
    assert_eq!(svg.matches("<polygon").count(), 2, "a band per arm");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.starts_with("# RAE vs REINFORCE"), "{md}");
    assert!(md.contains("![exploitability](exploitability.svg)"), "{md}");
    assert!(md.contains(&p("reinforce/s2")), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let mean = json["metrics"][0]["arms"][1]["final"]["mean"]
        .as_f64()
        .unwrap();
    assert!((mean - 0.35).abs() < 1e-12, "{json}");
    assert_eq!(json["arms"][1]["runs"].as_array().unwrap().len(), 3);

    // Bad input: exit 2, naming what is wrong.
    let out_arg = out.to_str().unwrap();
    assert_usage_error(
        &spar(&[
            "compare",
            "--arm",
            "rae",
            "--metric",
            "exploitability",
            "--out",
            out_arg,
        ]),
        &["--arm", "NAME=DIR"],
    );
    assert_usage_error(
        &spar(&[
            "compare",
            "--arm",
            "=x",
            "--metric",
            "exploitability",
            "--out",
            out_arg,
        ]),
        &["--arm", "empty arm name"],
    );
    assert_usage_error(
        &spar(&[
            "compare",
            "--arm",
            &rae,
            "--metric",
            "exploitabilty",
            "--out",
            out_arg,
        ]),
        &["\"exploitabilty\"", "exploitability", "response_tokens"],
    );
    let missing = format!("x={}", p("nope"));
    assert_usage_error(
        &spar(&[
            "compare",
            "--arm",
            &missing,
            "--metric",
            "exploitability",
            "--out",
            out_arg,
        ]),
        &[&p("nope"), "does not exist"],
    );
    std::fs::remove_dir_all(&dir).ok();
}
