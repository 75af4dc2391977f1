//! `spar train` on CoSC's config and `spar eval --cosc`, end to end through the binary: a run
//! stopped and resumed ends where an uninterrupted one ends, the evaluation of a checkpoint
//! reproduces the loop's own, and bad values exit 2 naming what was wrong.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_usage_error, json, spar, temp_path};
use serde_json::Value;

fn config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/selfcorrect/cosc.toml")
}

fn succeeded(args: &[&str]) {
    let output = spar(args);
    assert!(
        output.status.success(),
        "spar {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn metrics(out: &Path) -> Vec<Value> {
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

/// The shipped config made small: a task of ten training questions, so that a briefly
/// warm-started tiny model answers some of them right and phase 2 has data to learn from.
const SMALL: &[&str] = &[
    "task.name=\"countdown(numbers=2,max=3)\"",
    "model.hidden=32",
    "model.layers=1",
    "model.heads=2",
    "warm_start.problems=64",
    "warm_start.learning_rate=1e-2",
    "rollout.prompts=4",
    "rollout.group_size=8",
    "eval.problems=3",
    "eval.samples=2",
    "eval.every=1",
    "run.checkpoint_every=1",
];

fn train(out: &Path, extra: &[&str]) {
    let mut args = vec![
        "train".to_string(),
        config().display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    for s in SMALL.iter().chain(extra) {
        args.extend(["--set".to_string(), s.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    succeeded(&args);
}

#[test]
fn cosc_trains_resumes_exactly_and_its_checkpoint_evaluates_its_stages() {
    // Phase 1 once; the phase-2 runs start from its model.
    let phase1 = temp_path("cosc-phase1");
    train(&phase1, &["run.steps=0", "warm_start.steps=150"]);
    let lines = metrics(&phase1);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["selfcorrect/seed/trajectories"], 64);
    let init = format!(
        "model.init=\"{}\"",
        phase1.join("checkpoints/step-000000").display()
    );
    let from_phase1 = [init.as_str(), "warm_start.steps=0"];
    let straight = temp_path("cosc-straight");
    train(&straight, &[&from_phase1[..], &["run.steps=3"]].concat());
    let stopped = temp_path("cosc-stopped");
    train(&stopped, &[&from_phase1[..], &["run.steps=2"]].concat());
    std::fs::remove_dir_all(stopped.join("checkpoints/step-000002")).unwrap();
    succeeded(&[
        "train",
        "--resume",
        stopped.to_str().unwrap(),
        "--set",
        "run.steps=3",
    ]);
    let a = metrics(&straight);
    assert_eq!(a.len(), 4);
    assert_eq!(a, metrics(&stopped));
    let kept: f64 = a[1..]
        .iter()
        .map(|l| l["selfcorrect/kept_episodes"].as_f64().unwrap())
        .sum();
    assert!(kept > 0.0, "no right trajectory: nothing tests the update");
    for file in ["model.safetensors", "optimizer.safetensors", "state.json"] {
        let read = |out: &Path| std::fs::read(out.join("checkpoints/step-000003").join(file));
        assert!(
            read(&straight).unwrap() == read(&stopped).unwrap(),
            "{file} differs"
        );
    }
    // `spar eval` on the checkpoint (a cosc.json: CoSC's episodes by default) with the loop's
    // evaluation settings gives the loop's numbers exactly. The loop's seed: run.seed ^ 0xe7a1.
    let checkpoint = straight.join("checkpoints/step-000003");
    let ckpt = checkpoint.to_str().unwrap();
    let seed = 0xe7a1u64.to_string();
    let eval_args = ["eval", "--model", ckpt, "--k", "2", "--problems", "3"];
    let report = json(&spar(
        &[&eval_args[..], &["--seed", &seed, "--json"]].concat(),
    ));
    let last = &a[3];
    for key in [
        "accuracy",
        "accuracy_ci95",
        "first_program_accuracy",
        "mean_stages",
        "fixed_rate",
        "invalid_rate",
        "invalid_turn_rate",
    ] {
        assert_eq!(
            report[key],
            last[format!("eval/countdown/{key}")],
            "{key}: {report} vs {last}"
        );
    }
    assert_eq!(report["stages"], 3);
    assert_eq!(
        report["levels"][0]["mean_stages"],
        last["eval/countdown/stages_by_difficulty/2"]
    );
    // --cosc --stages 1: single-stage episodes.
    let one = json(&spar(
        &[&eval_args[..], &["--cosc", "--stages", "1", "--json"]].concat(),
    ));
    assert!(one["mean_stages"].as_f64().unwrap() <= 1.0, "{one}");
    // Bad values exit 2 naming what was wrong, and a bad config creates nothing.
    assert_usage_error(
        &spar(&[&eval_args[..], &["--stages", "0"]].concat()),
        &["--stages 0", "between 1 and 8"],
    );
    assert_usage_error(
        &spar(&[&eval_args[..], &["--cosc", "--task", "wordproblem"]].concat()),
        &["--cosc", "arithmetic or countdown"],
    );
    assert_usage_error(
        &spar(&[&eval_args[..], &["--cosc", "--attempts", "2"]].concat()),
        &["--cosc", "--attempts"],
    );
    let nowhere = temp_path("cosc-bad");
    for (set, key) in [
        ("cosc.stages=9", "cosc.stages"),
        ("cosc.slip_rate=2", "cosc.slip_rate"),
        ("task.name=\"wordproblem\"", "arithmetic or countdown"),
    ] {
        let bad = spar(&[
            "train",
            config().to_str().unwrap(),
            "--out",
            nowhere.to_str().unwrap(),
            "--set",
            set,
        ]);
        assert_usage_error(&bad, &[key]);
        assert!(!nowhere.exists(), "{set}");
    }
    for dir in [phase1, straight, stopped] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
