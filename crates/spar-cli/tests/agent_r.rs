//! `spar train` on the Agent-R config: it trains, resumes bit for bit, and refuses bad
//! settings with exit code 2 before writing anything.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_usage_error, spar, temp_path};
use serde_json::Value;

fn config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/selfcorrect/agent_r.toml")
}

/// Overrides that make the shipped config train in seconds on one-step problems (`Numbers: 1
/// 3. Target: 4.`), where a barely warm-started model already finds good and bad paths, so
/// that every step has revision trajectories to learn from.
const SMALL: &[&str] = &[
    "env.name=\"countdown_steps(numbers=2,max=4,target_max=8,turns=4)\"",
    "warm_start.steps=40",
    "warm_start.problems=64",
    "warm_start.batch_size=16",
    "agent_r.prompts=4",
    "search.max_tokens=72",
    "algorithm.minibatch_size=4",
    "algorithm.epochs=2",
    "eval.every=1",
    "eval.problems=3",
    "eval.samples=2",
];

/// `spar train CONFIG --out OUT` with [`SMALL`], `extra` and `run.steps=steps`.
fn train(out: &Path, steps: usize, extra: &[&str]) -> std::process::Output {
    let steps = format!("run.steps={steps}");
    let config = config();
    let mut args = vec![
        "train",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    for set in SMALL.iter().chain(extra).chain([&steps.as_str()]) {
        args.extend(["--set", set]);
    }
    spar(&args)
}

fn succeeded(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// metrics.jsonl without `time/seconds`.
fn lines(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("time/seconds");
            v
        })
        .collect()
}

#[test]
fn agent_r_trains_and_a_resumed_run_matches_an_uninterrupted_one() {
    let straight = temp_path("agent-r-straight");
    succeeded(&train(&straight, 3, &[]), "3 steps");
    let full = lines(&straight);
    assert_eq!(full.len(), 4);
    // The steps built revision trajectories and learnt from them.
    let trained: f64 = full[1..]
        .iter()
        .map(|l| l["agent_r/trained_turns"].as_f64().unwrap())
        .sum();
    let revisions: f64 = full[1..]
        .iter()
        .map(|l| l["agent_r/revision_pairs"].as_f64().unwrap())
        .sum();
    assert!(trained > 0.0 && revisions > 0.0, "{full:?}");
    assert!(full[1..]
        .iter()
        .any(|l| l["learner/grad_norm"].as_f64().unwrap() > 0.0));
    for key in [
        "eval/countdown_steps/success_rate",
        "eval/countdown_steps/success_ci95_low",
        "eval/countdown_steps/recovery/success_rate",
        "eval/countdown_steps/loop_rate",
        "agent_r/solved_rate",
        "agent_r/splice_position",
    ] {
        assert!(
            full[3][key].is_number() || full[2][key].is_number(),
            "{key}: {full:?}"
        );
    }
    assert!(straight
        .join("checkpoints/step-000003/agent_r.json")
        .exists());

    // Stopped after step 1, resumed to step 3 (`--set run.steps=3`).
    let stopped = temp_path("agent-r-stopped");
    succeeded(&train(&stopped, 1, &[]), "1 step");
    let resumed = spar(&[
        "train",
        "--resume",
        stopped.to_str().unwrap(),
        "--set",
        "run.steps=3",
    ]);
    succeeded(&resumed, "--resume");
    assert_eq!(lines(&stopped), full);
    for file in ["model.safetensors", "optimizer.safetensors", "state.json"] {
        let read = |out: &Path| std::fs::read(out.join("checkpoints/step-000003").join(file));
        assert!(
            read(&straight).unwrap() == read(&stopped).unwrap(),
            "{file} differs after resume"
        );
    }
    let _ = std::fs::remove_dir_all(&straight);
    let _ = std::fs::remove_dir_all(&stopped);
}

#[test]
fn bad_agent_r_settings_exit_2_and_write_nothing() {
    // `spar train --help` lists the config's fixed-set keys with their values.
    let help = spar(&["train", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    let help: Vec<&str> = help.split_whitespace().collect();
    assert!(
        help.join(" ")
            .contains("agent_r.splice first_error, end, none"),
        "{help:?}"
    );
    for (set, mentions) in [
        (
            "agent_r.splice=middle",
            &["agent_r.splice", "first_error, end, none"][..],
        ),
        ("search.iterations=0", &["search.iterations"]),
        ("agent_r.alpha=2", &["agent_r.alpha"]),
        (
            "env.name=\"countdown(numbers=3)\"",
            &["env.name", "countdown_steps"],
        ),
        ("task.name=\"arithmetic\"", &["[task]"]),
    ] {
        let nowhere = temp_path("agent-r-bad");
        let out = train(&nowhere, 1, &[set]);
        assert_usage_error(&out, mentions);
        assert!(!nowhere.exists(), "{set}: wrote {}", nowhere.display());
    }
}
