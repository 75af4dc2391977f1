//! CoSC end to end with a tiny model: phase 1 on the teacher's trajectories, phase 2 on the
//! model's own right ones, the staged evaluation, and a run stopped and resumed that gives
//! the same metrics and weights as one that never stopped. The task has ten training
//! questions, so a briefly warm-started tiny model answers some of them right.

mod support;

use spar_rl::config::selfcorrect::SelfCorrectConfig;
use spar_rl::loops::selfcorrect::run;
use spar_rl::trainer::checkpoint_dir;

fn config(steps: usize, sets: &[&str]) -> SelfCorrectConfig {
    let text = format!(
        r#"
[run]
seed = 2
steps = {steps}
checkpoint_every = 1
tensorboard = false
[task]
name = "countdown(numbers=2,max=3)"
[model]
hidden = 32
layers = 1
heads = 2
prompt_style = "raw"
[warm_start]
steps = 150
problems = 64
batch_size = 8
learning_rate = 1e-2
[rollout]
prompts = 4
group_size = 8
max_tokens = 80
temperature = 1.0
[selfcorrect]
method = "cosc"
[cosc]
stages = 2
slip_rate = 0.5
[algorithm]
minibatch_size = 8
epochs = 1
learning_rate = 1e-3
[eval]
problems = 4
samples = 2
every = 1
"#
    );
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    SelfCorrectConfig::parse(&text, &sets).unwrap()
}

#[test]
fn cosc_learns_from_its_right_trajectories_and_resumes_exactly() {
    let dir = support::temp("cosc", "resume");
    // Phase 1 once (the warm start is the slow part); phase 2 runs start from its model.
    let phase1 = run(&config(0, &[]), &dir.join("phase1"), false, |_| {}).unwrap();
    assert_eq!(phase1.len(), 1);
    // Step 0: the seed data (64 right teacher trajectories) and the evaluation.
    assert_eq!(
        phase1[0].number("selfcorrect/seed/trajectories"),
        Some(64.0)
    );
    let seed_stages = phase1[0].number("selfcorrect/seed/mean_stages").unwrap();
    assert!((1.0..=2.0).contains(&seed_stages), "{seed_stages}");
    assert!(phase1[0].number("learner/warm_start_loss").unwrap() > 0.0);
    let init = format!(
        "model.init=\"{}\"",
        checkpoint_dir(&dir.join("phase1"), 0).display()
    );
    let sets = [init.as_str(), "warm_start.steps=0"];
    let a = dir.join("a");
    let straight = run(&config(3, &sets), &a, false, |_| {}).unwrap();
    assert_eq!(straight.len(), 4);
    // Step 0 of a run from the phase-1 model evaluates exactly as phase 1's own step 0.
    for key in ["accuracy", "mean_stages", "invalid_rate"] {
        let key = format!("eval/countdown/{key}");
        assert_eq!(straight[0].number(&key), phase1[0].number(&key), "{key}");
    }
    let mut kept = 0.0;
    for l in &straight {
        for key in [
            "accuracy",
            "first_program_accuracy",
            "invalid_rate",
            "fixed_rate",
        ] {
            let v = l.number(&format!("eval/countdown/{key}")).unwrap();
            assert!((0.0..=1.0).contains(&v), "{key} {v}");
        }
        let stages = l.number("eval/countdown/mean_stages").unwrap();
        assert!((0.0..=2.0).contains(&stages), "{stages}");
        assert!(l.number("eval/countdown/stages_by_difficulty/2").is_some());
    }
    for l in &straight[1..] {
        let k = l.number("selfcorrect/kept_episodes").unwrap();
        let acc = l.number("selfcorrect/accuracy").unwrap();
        // The kept episodes are the right ones (none hit the token budget here), of 32.
        assert!(k <= 32.0 * acc + 1e-9, "{k} {acc}");
        if k > 0.0 {
            assert!(l.number("learner/samples").unwrap() >= 2.0 * k);
            assert!(l.number("learner/sft_loss").unwrap() > 0.0);
        }
        kept += k;
    }
    assert!(
        kept > 0.0,
        "no right trajectory in 3 steps: nothing tests the update"
    );
    // Every episode of a step is in its episodes file, trajectory and end.
    let episodes = std::fs::read_to_string(a.join("episodes/step-000003.jsonl")).unwrap();
    assert_eq!(episodes.lines().count(), 32);
    let first: serde_json::Value = serde_json::from_str(episodes.lines().next().unwrap()).unwrap();
    assert!(
        first["trajectory"].is_string() && first["end"].is_object(),
        "{first}"
    );
    let cosc_json = std::fs::read_to_string(checkpoint_dir(&a, 3).join("cosc.json")).unwrap();
    assert!(cosc_json.contains("\"stages\": 2"), "{cosc_json}");
    // Two steps, the step-2 checkpoint lost, resumed to three: the same lines and weights.
    let b = dir.join("b");
    run(&config(2, &sets), &b, false, |_| {}).unwrap();
    std::fs::remove_dir_all(checkpoint_dir(&b, 2)).unwrap();
    let resumed = run(&config(3, &sets), &b, true, |_| {}).unwrap();
    assert_eq!(
        support::without_time(&straight),
        support::without_time(&resumed)
    );
    support::assert_same_weights(&a, &b, 3);
    let _ = std::fs::remove_dir_all(&dir);
}
