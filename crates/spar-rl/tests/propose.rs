//! Proposer/solver self-play end to end with a tiny model: proposals are read, rewarded by
//! their difficulty to the solver and measured; the fixed-distribution baseline runs the same
//! solver; a run stopped and resumed gives the same metrics, proposal window and weights as one
//! that never stopped.

mod support;

use spar_rl::config::propose::ProposeConfig;
use spar_rl::loops::propose::run;
use spar_rl::trainer::checkpoint_dir;

fn config(steps: usize, sets: &[&str]) -> ProposeConfig {
    let text = format!(
        r#"
[run]
seed = 4
steps = {steps}
checkpoint_every = 1
tensorboard = false
[model]
hidden = 16
layers = 1
heads = 2
prompt_style = "raw"
[warm_start]
steps = 40
problems = 64
batch_size = 8
learning_rate = 1e-2
[propose]
digits = "1"
ops = "+-"
hops = [1, 2]
hop_weights = [1.0, 1.0]
prompts = 6
solver_samples = 3
recent_steps = 1
max_tokens = 6
[algorithm]
minibatch_size = 8
[eval]
every = 1
hops = [1, 3]
problems = 4
samples = 2
"#
    );
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    ProposeConfig::parse(&text, &sets).unwrap()
}

#[test]
fn proposals_are_rewarded_measured_and_a_resumed_run_equals_an_uninterrupted_one() {
    let dir = support::temp("propose", "resume");
    let straight = run(&config(3, &[]), &dir.join("a"), false, |_| {}).unwrap();
    let b = dir.join("b");
    run(&config(2, &[]), &b, false, |_| {}).unwrap();
    std::fs::remove_dir_all(checkpoint_dir(&b, 2)).unwrap();
    let resumed = run(&config(3, &[]), &b, true, |_| {}).unwrap();
    assert_eq!(
        support::without_time(&straight),
        support::without_time(&resumed)
    );
    support::assert_same_weights(&dir.join("a"), &b, 3);
    for line in &straight[1..] {
        let n = |k: &str| line.number(k).unwrap_or_else(|| panic!("no {k}: {line:?}"));
        let invalid = n("propose/proposer/invalid_rate");
        assert!((0.0..=1.0).contains(&invalid));
        // Every valid proposal is posed: the problems' mean hop count is over them, and a
        // proposal's reward is at most format_weight * 1 + 1.
        assert!(n("propose/proposer/reward") <= 1.5);
        for key in [
            "propose/proposals/difficulty",
            "propose/proposals/distinct",
            "propose/proposals/repeat_rate",
            "propose/problems/trivial_rate",
            "propose/problems/unsolved_rate",
            "propose/solver/accuracy",
        ] {
            assert!((0.0..=1.0).contains(&n(key)), "{key}");
        }
        // 6 proposals (one per request) and 3 answers to each valid one.
        let valid = ((1.0 - invalid) * 6.0).round();
        assert_eq!(n("learner/samples"), 6.0 + 3.0 * valid, "{line:?}");
        // The held-out hop counts, with their intervals.
        for h in [1, 3] {
            let a = n(&format!("eval/arithmetic/hops-{h}/accuracy"));
            assert!((0.0..=1.0).contains(&a));
            assert!(n(&format!("eval/arithmetic/hops-{h}/accuracy_ci95")) >= 0.0);
        }
    }
    // Step 0 (after the warm start) is evaluated and collects nothing.
    assert!(straight[0].get("propose/solver/accuracy").is_none());
    assert!(straight[0].get("eval/arithmetic/accuracy").is_some());
    // The checkpoint says how the solver is prompted, for `spar eval`.
    let task = std::fs::read_to_string(checkpoint_dir(&b, 3).join("task.json")).unwrap();
    assert!(
        task.contains("arithmetic(digits=1,terms=2..4,ops=+-)"),
        "{task}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_fixed_distribution_trains_the_solver_alone() {
    let dir = support::temp("propose", "fixed");
    let lines = run(&config(2, &["propose.source=fixed"]), &dir, false, |_| {}).unwrap();
    for line in &lines[1..] {
        assert!(line.get("propose/proposer/reward").is_none(), "{line:?}");
        // 6 problems of the arithmetic task, 3 answers each, at the requested hop counts.
        assert_eq!(line.number("learner/samples"), Some(18.0));
        let hops = line.number("propose/problems/mean_hops").unwrap();
        assert!((1.0..=2.0).contains(&hops), "{hops}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A 4-step run with `sets`, and one stopped after step 2, its last checkpoint lost, and
/// resumed to step 4: the same metrics, weights and state (the pool). The uninterrupted
/// run's lines.
fn resumed_equals_straight(name: &str, sets: &[&str]) -> Vec<spar_rl::trainer::Line> {
    let dir = support::temp("propose", name);
    let straight = run(&config(4, sets), &dir.join("a"), false, |_| {}).unwrap();
    let b = dir.join("b");
    run(&config(2, sets), &b, false, |_| {}).unwrap();
    std::fs::remove_dir_all(checkpoint_dir(&b, 2)).unwrap();
    let resumed = run(&config(4, sets), &b, true, |_| {}).unwrap();
    assert_eq!(
        support::without_time(&straight),
        support::without_time(&resumed)
    );
    support::assert_same_weights(&dir.join("a"), &b, 4);
    let _ = std::fs::remove_dir_all(&dir);
    straight
}

#[test]
fn the_evolving_pool_feeds_the_next_step_and_resumes_exactly() {
    let sets = [
        "propose.source=evolve",
        "propose.band_low=0.3",
        "propose.band_high=0.7",
    ];
    let straight = resumed_equals_straight("evolve", &sets);
    let mut pool_before = 0.0;
    for line in &straight[1..] {
        let n = |k: &str| line.number(k).unwrap_or_else(|| panic!("no {k}: {line:?}"));
        // 6 problems a step, 3 answers each, no proposer.
        assert_eq!(n("learner/samples"), 18.0);
        assert!(line.get("propose/proposer/reward").is_none());
        // Every problem is in the band, or evolved up or down.
        let judged =
            n("propose/evolve/in_band") + n("propose/evolve/up") + n("propose/evolve/down");
        assert_eq!(judged, 6.0, "{line:?}");
        // The step's first problems are the previous step's pool.
        assert_eq!(n("propose/evolve/from_pool"), pool_before, "{line:?}");
        pool_before = n("propose/evolve/pool");
        assert!(pool_before <= 6.0);
    }
}

#[test]
fn eva_evolves_the_informative_problems_and_resumes_exactly() {
    let straight = resumed_equals_straight("eva", &["propose.source=eva", "propose.evolutions=2"]);
    let mut pool_before = 0.0;
    for line in &straight[1..] {
        let n = |k: &str| line.number(k).unwrap_or_else(|| panic!("no {k}: {line:?}"));
        assert_eq!(n("learner/samples"), 18.0);
        // ceil(0.25 * 6) = 2 problems drawn, 2 variants each: a pool of at most 4.
        assert_eq!(n("propose/eva/selected"), 2.0);
        assert!(n("propose/evolve/pool") <= 4.0);
        // Informativeness p (1 - p) is at most 1/4.
        let (info, drawn) = (n("propose/eva/info"), n("propose/eva/selected_info"));
        assert!((0.0..=0.25).contains(&info) && (0.0..=0.25).contains(&drawn));
        assert_eq!(n("propose/evolve/from_pool"), pool_before, "{line:?}");
        pool_before = n("propose/evolve/pool");
        assert!(line.get("propose/evolve/in_band").is_none());
    }
}
