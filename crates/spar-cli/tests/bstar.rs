//! `spar train` on the B-STaR config (`configs/curriculum/bstar.toml`): it trains from the
//! shipped config and logs its choice and monitors every step, keeps the history of choices
//! in its checkpoints, resumes bit for bit, and refuses bad settings with exit code 2 before
//! writing anything.

use std::path::Path;

use serde_json::Value;

mod support;

use support::{assert_usage_error, metrics, root, spar, succeeded, temp_dir};

const CONFIG: &str = "configs/curriculum/bstar.toml";

/// Overrides that make the shipped config train in seconds.
const SMALL: &[&str] = &[
    "warm_start.steps=20",
    "warm_start.problems=32",
    "warm_start.batch_size=8",
    "rollout.prompts=4",
    "bstar.probe_prompts=2",
    "bstar.temperatures=[0.5,1.3]",
    "bstar.counts=[2,4]",
    "bstar.target_correct=2",
    "eval.every=1",
    "eval.problems=4",
    "eval.samples=2",
    "eval.pass_at=[1,2]",
];

fn train(out: &Path, extra: &[&str]) -> std::process::Output {
    let out = out.to_str().unwrap();
    let config = root().join(CONFIG);
    let mut args = vec!["train", config.to_str().unwrap(), "--out", out];
    for set in SMALL.iter().chain(extra) {
        args.extend(["--set", set]);
    }
    spar(&args)
}

fn without_seconds(out: &Path) -> Vec<Value> {
    metrics(out)
        .into_iter()
        .map(|mut m| {
            m.as_object_mut().unwrap().remove("time/seconds");
            m
        })
        .collect()
}

/// Three steps straight, and one step resumed to three: the same metrics (but seconds), the
/// same weights, optimiser moments and state (the history of choices) at step 3; every
/// step's choice is a point of the grid and is the one in the state.
#[test]
fn the_shipped_config_trains_logs_its_choices_and_resumes_exactly() {
    let straight = temp_dir("bstar-straight");
    succeeded(&train(&straight, &["run.steps=3"]), "3 steps");
    let stopped = temp_dir("bstar-stopped");
    succeeded(&train(&stopped, &["run.steps=1"]), "1 step");
    let s = stopped.to_str().unwrap();
    succeeded(
        &spar(&["train", "--resume", s, "--set", "run.steps=3"]),
        "--resume --set run.steps=3",
    );
    let a = without_seconds(&straight);
    assert_eq!(a.len(), 4);
    assert_eq!(a, without_seconds(&stopped));
    for file in ["model.safetensors", "optimizer.safetensors", "state.json"] {
        let read = |out: &Path| std::fs::read(out.join("checkpoints/step-000003").join(file));
        assert!(
            read(&straight).unwrap() == read(&stopped).unwrap(),
            "{file} differs"
        );
    }
    let state: Value = serde_json::from_slice(
        &std::fs::read(straight.join("checkpoints/step-000003/state.json")).unwrap(),
    )
    .unwrap();
    let history = state["bstar"]
        .as_array()
        .unwrap_or_else(|| panic!("no B-STaR history in {state}"));
    assert_eq!(history.len(), 3, "{state}");
    for (step, line) in a[1..].iter().enumerate() {
        let t = line["tasks/bstar/temperature"].as_f64().unwrap();
        let n = line["tasks/bstar/samples"].as_f64().unwrap();
        assert!([0.5, 1.3].contains(&t), "{line}");
        assert!([2.0, 4.0].contains(&n), "{line}");
        let h = &history[step];
        assert_eq!(h["step"], step + 1);
        assert_eq!(h["temperature"].as_f64(), Some(t));
        assert_eq!(h["count"].as_f64(), Some(n));
        assert_eq!(h["tau"].as_f64(), line["tasks/bstar/tau"].as_f64());
        for key in ["precision", "pass_at_n", "best_of_n", "balance_score"] {
            let v = line[format!("tasks/bstar/{key}")].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{key}: {line}");
        }
        // Deduplicated: at most one kept answer per distinct text, so never more than the
        // distinct answers sampled; and what was kept is what the update learnt from.
        let selected = line["tasks/bstar/selected"].as_f64().unwrap();
        assert!(selected <= 4.0 * n, "{line}");
        assert_eq!(line["learner/samples"].as_f64(), Some(selected), "{line}");
    }
    let _ = std::fs::remove_dir_all(&straight);
    let _ = std::fs::remove_dir_all(&stopped);
}

#[test]
fn bad_settings_exit_2_naming_the_key_and_write_nothing() {
    for (set, key) in [
        ("algorithm.loss=ppo", "algorithm.loss"),
        ("bstar.counts=[0]", "bstar.counts"),
        ("bstar.temperatures=[]", "bstar.temperatures"),
        ("bstar.probe_prompts=5", "bstar.probe_prompts"),
        ("bstar.tau_step=0", "bstar.tau_min"),
        ("bstar.confidence_weight=-0.5", "bstar.confidence_weight"),
        ("bstar.temps=[1.0]", "temps"),
    ] {
        let out = temp_dir("bstar-bad");
        assert_usage_error(&train(&out, &[set]), &[key]);
        assert!(!out.exists(), "{set} wrote {}", out.display());
    }
}
