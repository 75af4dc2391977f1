//! `spar train` on the proposer/solver config: it trains from the shipped config (both
//! sources), prints the per-hop accuracy table, and refuses bad settings with exit code 2
//! before writing anything.

mod support;

use support::{assert_usage_error, metrics, spar, succeeded, temp_dir};

const CONFIG: &str = "configs/curriculum/propose.toml";

/// Overrides that make the shipped config train in seconds.
const SMALL: &[&str] = &[
    "run.steps=2",
    "warm_start.steps=20",
    "warm_start.problems=32",
    "propose.prompts=4",
    "propose.solver_samples=2",
    "eval.every=1",
    "eval.problems=4",
    "eval.samples=1",
];

fn train(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let out = out.to_str().unwrap();
    let mut args = vec!["train", CONFIG, "--out", out];
    for set in SMALL.iter().chain(extra) {
        args.extend(["--set", set]);
    }
    spar(&args)
}

#[test]
fn the_shipped_config_trains_with_either_source() {
    for source in ["model", "fixed"] {
        let out = temp_dir(&format!("propose-{source}"));
        let set = format!("propose.source={source}");
        let output = train(&out, &[&set]);
        succeeded(&output, source);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("5 ops [95% CI]"), "{stdout}");
        let lines = metrics(&out);
        assert_eq!(lines.len(), 3, "{source}");
        let last = &lines[2];
        assert!(
            last["eval/arithmetic/hops-5/accuracy"].is_number(),
            "{last}"
        );
        assert_eq!(
            last["propose/proposer/reward"].is_number(),
            source == "model",
            "{last}"
        );
        assert!(out.join("report/summary.md").exists());
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn bad_settings_exit_2_naming_the_key_and_write_nothing() {
    for (set, key) in [
        ("propose.hops=[0]", "propose.hops"),
        ("propose.source=teacher", "propose.source"),
        ("propose.solver_samples=1", "propose.solver_samples"),
    ] {
        let out = temp_dir("propose-bad");
        assert_usage_error(&train(&out, &[set]), &[key]);
        assert!(!out.exists(), "{set} wrote {}", out.display());
    }
}
