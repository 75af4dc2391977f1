//! The self-play loop end to end on Kuhn Poker with a tiny model: it runs, writes its run
//! directory, and a run stopped and resumed gives the same metrics and weights as one that
//! never stopped.

use std::path::Path;

use spar_rl::selfplay::{checkpoint_dir, checkpoint_tensors, run, Metrics};
use spar_rl::TrainConfig;

fn tiny_config(steps: usize) -> TrainConfig {
    let text = format!(
        r#"
[run]
seed = 7
steps = {steps}
checkpoint_every = 1
[model]
hidden = 16
layers = 1
heads = 2
prompt_style = "raw"
[warm_start]
steps = 3
episodes = 4
batch_size = 4
[rollout]
episodes = 4
max_tokens = 16
[game]
view = "compact"
[ppo]
minibatch_size = 4
learning_rate = 1e-3
kl_coef = 0.05
kl_estimator = "k2"
entropy_coef = 0.01
sft_coef = 0.5
[eval]
every = 1
games_vs_random = 2
games_vs_cfr = 2
cfr_iterations = 50
"#
    );
    TrainConfig::parse(&text, &[]).unwrap()
}

fn without_time(ms: &[Metrics]) -> Vec<Metrics> {
    ms.iter()
        .map(|m| Metrics {
            seconds: 0.0,
            ..m.clone()
        })
        .collect()
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-rl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn read_metrics(dir: &Path) -> Vec<Metrics> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn resumed_run_matches_an_uninterrupted_one() {
    let straight = temp("straight");
    let full = run(&tiny_config(2), &straight, false, |_| {}).unwrap();
    assert_eq!(full.len(), 3, "step 0 (warm start) and two steps");
    let m = &full[2];
    assert!(m.samples > 0 && m.response_tokens > 0.0);
    assert!(m.nash_conv.is_some_and(|v| (0.0..=4.0).contains(&v)));
    assert_eq!(m.vs_random.as_ref().map(Vec::len), Some(2));
    assert_eq!(m.vs_cfr.as_ref().map(Vec::len), Some(2));
    assert!(m.kl_ref.is_some_and(|k| k.is_finite()) && m.entropy.is_some_and(|h| h > 0.0));
    assert!(m.sft_loss.is_some_and(|l| l > 0.0));
    // The average of the checkpointed policies (steps 1 and 2) at the last step only.
    assert!(m
        .avg_exploitability
        .is_some_and(|e| (0.0..=2.0).contains(&e)));
    assert!(full[1].avg_exploitability.is_none());
    assert!(straight.join("average_policy.json").exists());
    assert!(straight
        .join("checkpoints/step-000002/prompting.json")
        .exists());
    assert!(
        std::fs::read_dir(straight.join("tensorboard"))
            .unwrap()
            .count()
            >= 1
    );
    assert!(full[0].warm_start_loss.is_some());
    for file in ["config.toml", "metrics.jsonl"] {
        assert!(straight.join(file).exists(), "{file}");
    }
    assert_eq!(without_time(&read_metrics(&straight)), without_time(&full));

    // Stop after one step (as a run killed after its step-1 checkpoint would), then resume.
    let split = temp("split");
    // (A 1-step run's last step is step 1, where it would average its policies; a run killed
    // there would not have, so the average is off for this stand-in.)
    let mut one = tiny_config(1);
    one.eval.average = false;
    run(&one, &split, false, |_| {}).unwrap();
    // A half-written later checkpoint (no state.json) is ignored on resume.
    std::fs::create_dir_all(checkpoint_dir(&split, 2)).unwrap();
    let resumed = run(&tiny_config(2), &split, true, |_| {}).unwrap();
    assert_eq!(without_time(&resumed), without_time(&full));
    assert_eq!(without_time(&read_metrics(&split)), without_time(&full));
    let a = checkpoint_tensors(&checkpoint_dir(&straight, 2)).unwrap();
    let b = checkpoint_tensors(&checkpoint_dir(&split, 2)).unwrap();
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        let x: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let y: Vec<f32> = b[name].flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(x, y, "{name} differs after resume");
    }
    std::fs::remove_dir_all(&straight).unwrap();
    std::fs::remove_dir_all(&split).unwrap();
}

#[test]
fn resume_without_a_checkpoint_is_refused() {
    let dir = temp("empty");
    std::fs::create_dir_all(&dir).unwrap();
    let err = run(&tiny_config(1), &dir, true, |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("no complete checkpoint"), "{err}");
}
