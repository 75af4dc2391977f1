//! Learning from a verifiable task end to end with a tiny model: every loss and estimator runs
//! from a config, DPO/IPO find pairs, DPH-RL finds reference answers, and a run stopped and
//! resumed gives the same metrics and weights as one that never stopped.

use std::path::{Path, PathBuf};

mod support;

use spar_rl::config::tasks::TaskTrainConfig;
use spar_rl::loops::tasks::run;
use spar_rl::trainer::checkpoint_dir;
use spar_rl::trainer::Line;

/// A JSONL task whose answer is `7` or `8` by the parity of a number hidden in the question,
/// so that a briefly warm-started tiny model answers some right and some wrong.
fn coin_task(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("coin.jsonl");
    let mut text = String::new();
    for i in 0..40 {
        let answer = if (i * 7919) % 13 % 2 == 0 { "7" } else { "8" };
        let split = if i % 5 == 0 { "test" } else { "train" };
        text.push_str(&format!(
            "{{\"question\": \"q{i}\", \"answer\": \"{answer}\", \"difficulty\": {}, \"split\": \"{split}\"}}\n",
            i % 2
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn config(task: &Path, steps: usize, sets: &[&str]) -> TaskTrainConfig {
    let text = format!(
        r#"
[run]
seed = 3
steps = {steps}
checkpoint_every = 1
tensorboard = false
[task]
name = "jsonl:{}"
[model]
hidden = 16
layers = 1
heads = 2
prompt_style = "raw"
[warm_start]
steps = 30
problems = 32
batch_size = 8
learning_rate = 1e-2
[rollout]
prompts = 4
group_size = 4
max_tokens = 3
[algorithm]
minibatch_size = 8
epochs = 2
reference_problems = 8
reference_samples = 1
[eval]
problems = 4
samples = 4
pass_at = [1, 4]
every = 1
"#,
        task.display()
    );
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    TaskTrainConfig::parse(&text, &sets).unwrap()
}

#[test]
fn every_loss_and_estimator_trains_from_a_config() {
    let dir = support::temp("task", "losses");
    let task = coin_task(&dir);
    let arms: &[(&str, &[&str])] = &[
        (
            "ppo-grpo",
            &["algorithm.loss=ppo", "algorithm.estimator=grpo"],
        ),
        (
            "ppo-asym-kl",
            &[
                "algorithm.clip_high=0.28",
                "algorithm.kl=k3",
                "algorithm.kl_coef=0.1",
                "algorithm.loss_aggregation=batch_token_mean",
            ],
        ),
        (
            "pg-drgrpo",
            &[
                "algorithm.loss=pg",
                "algorithm.estimator=dr_grpo",
                "algorithm.loss_aggregation=token_sum",
            ],
        ),
        (
            "pg-rloo",
            &["algorithm.loss=pg", "algorithm.estimator=rloo"],
        ),
        (
            "pg-trloo-norm",
            &[
                "algorithm.loss=pg",
                "algorithm.estimator=trloo",
                "algorithm.batch_norm=true",
            ],
        ),
        (
            "pg-reinforce-batch",
            &[
                "algorithm.loss=pg",
                "algorithm.estimator=reinforce",
                "algorithm.group_by=batch",
            ],
        ),
        ("ppo-hrpo", &["algorithm.group_by=difficulty"]),
        (
            "pg-rae",
            &[
                "algorithm.loss=pg",
                "algorithm.estimator=rae",
                "algorithm.group_by=difficulty",
            ],
        ),
        (
            "nft",
            &["algorithm.loss=nft", "algorithm.filter_degenerate=true"],
        ),
        ("rft", &["algorithm.loss=rft"]),
        ("sft", &["algorithm.loss=sft"]),
        ("dpo", &["algorithm.loss=dpo"]),
        ("ipo", &["algorithm.loss=ipo"]),
        (
            "forward",
            &[
                "algorithm.divergence=forward",
                "algorithm.divergence_coef=0.05",
            ],
        ),
        (
            "js",
            &[
                "algorithm.divergence=js",
                "algorithm.divergence_coef=0.1",
                "algorithm.kl=k2",
                "algorithm.kl_coef=0.01",
            ],
        ),
    ];
    for (name, sets) in arms {
        let out = dir.join(name);
        let history = run(&config(&task, 2, sets), &out, false, |_| {}).unwrap();
        assert_eq!(history.len(), 3, "{name}");
        let first = &history[0];
        // A JSONL task: its role is `jsonl/solver`, its evaluation `eval/jsonl/...`.
        let eval = |key: &str| first.number(&format!("eval/jsonl/{key}"));
        assert_eq!(
            (eval("problems"), eval("samples")),
            (Some(4.0), Some(4.0)),
            "{name}"
        );
        for k in ["1", "4"] {
            let v = eval(&format!("pass_at/{k}")).expect("step 0 is evaluated");
            assert!((0.0..=1.0).contains(&v), "{name}: pass@{k} = {v}");
        }
        assert!(eval("pass_at/4") >= eval("pass_at/1"), "{name}: {first:?}");
        for m in &history[1..] {
            assert!(
                m.number("learner/loss").is_some() && m.number("learner/grad_norm").is_some(),
                "{name}: {m:?}"
            );
            assert_eq!(m.number("learner/skipped_updates"), Some(0.0), "{name}");
            let accuracy = m.number("tasks/train_accuracy").unwrap();
            assert!((0.0..=1.0).contains(&accuracy), "{name}");
            // The task loop does not log its (constant) learning rate yet.
            assert!(m.get("learner/learning_rate").is_none(), "{name}");
        }
        // The warm-started model answers some right and some wrong: every loss has data.
        let used: f64 = history[1..]
            .iter()
            .map(|m| m.number("learner/samples").unwrap())
            .sum();
        assert!(used > 0.0, "{name}: no samples used: {history:?}");
        if name.contains("kl") || *name == "js" {
            assert!(
                history[1]
                    .number("learner/kl_ref")
                    .is_some_and(f64::is_finite),
                "{name}"
            );
        }
        if *name == "dpo" || *name == "ipo" {
            assert!(
                history[1..]
                    .iter()
                    .all(|m| m.number("learner/pair_accuracy").is_some()),
                "{name}"
            );
        }
        if *name == "forward" || *name == "js" {
            let mastered = history[0]
                .number("tasks/reference_mastered")
                .expect("counted at step 0");
            assert!(mastered > 0.0, "{name}: the reference masters nothing");
            assert!(
                history[1]
                    .number("learner/divergence")
                    .is_some_and(f64::is_finite),
                "{name}"
            );
            assert!(out.join("reference_answers.json").exists());
        }
        let ckpt = checkpoint_dir(&out, 2);
        for f in [
            "model.safetensors",
            "optimizer.safetensors",
            "state.json",
            "task.json",
        ] {
            assert!(ckpt.join(f).exists(), "{name}: {f}");
        }
        assert!(out.join("episodes/step-000002.jsonl").exists(), "{name}");
        assert!(out.join("config.toml").exists(), "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Three steps straight in `dir/a`, and two then resumed to three in `dir/b` after losing the
/// step-2 checkpoint (a crash between metrics and checkpoint: its stale metrics line is
/// dropped): asserts the same lines and weights, bit for bit; the straight run's lines.
fn straight_and_resumed<C>(
    dir: &Path,
    config: impl Fn(usize) -> C,
    run: impl Fn(&C, &Path, bool) -> Vec<Line>,
) -> Vec<Line> {
    let straight = run(&config(3), &dir.join("a"), false);
    let b = dir.join("b");
    run(&config(2), &b, false);
    std::fs::remove_dir_all(checkpoint_dir(&b, 2)).unwrap();
    let resumed = run(&config(3), &b, true);
    assert_eq!(
        support::without_time(&straight),
        support::without_time(&resumed)
    );
    support::assert_same_weights(&dir.join("a"), &b, 3);
    straight
}

/// [`straight_and_resumed`] for a task run of `sets`.
fn resumes_exactly(dir: &Path, task: &Path, sets: &[&str]) -> Vec<Line> {
    let config = |steps| config(task, steps, sets);
    straight_and_resumed(dir, config, |c, out, resume| {
        run(c, out, resume, |_| {}).unwrap()
    })
}

#[test]
fn a_resumed_task_run_equals_an_uninterrupted_one() {
    let dir = support::temp("task", "resume");
    let task = coin_task(&dir);
    let sets = [
        "algorithm.divergence=js",
        "algorithm.divergence_coef=0.1",
        "algorithm.estimator=rae",
    ];
    let lines = resumes_exactly(&dir, &task, &sets);
    assert!(lines[1].number("tasks/explore_reward").is_none());
    // Resuming a directory without checkpoints is an error that says so.
    let e = run(&config(&task, 3, &[]), &dir.join("empty"), true, |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("no complete checkpoint"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// RLSP's reward (`algorithm.explore_alpha` < 1): every step logs the exploration term (the
/// mean answer length over `rollout.max_tokens` = 3) and the mixed reward, `alpha` times the
/// verifier's accuracy plus `1 - alpha` times that term (means are linear); the training
/// accuracy stays the verifier's, each episode's reward is the mixed one, and the run resumes
/// bit for bit.
#[test]
fn the_exploration_reward_is_logged_beside_the_verifier_and_resumes_exactly() {
    let dir = support::temp("task", "explore");
    let task = coin_task(&dir);
    let lines = resumes_exactly(&dir, &task, &["algorithm.explore_alpha=0.25"]);
    for line in &lines[1..] {
        let n = |key: &str| line.number(key).unwrap_or_else(|| panic!("{key}"));
        let (accuracy, explore) = (n("tasks/train_accuracy"), n("tasks/explore_reward"));
        assert!((explore - n("tasks/response_tokens") / 3.0).abs() < 1e-12);
        let mixed = 0.25 * accuracy + 0.75 * explore;
        assert!((n("tasks/mixed_reward") - mixed).abs() < 1e-12, "{mixed}");
    }
    let episodes = std::fs::read_to_string(dir.join("a/episodes/step-000001.jsonl")).unwrap();
    let mut right = 0.0;
    for row in episodes.lines() {
        let row: serde_json::Value = serde_json::from_str(row).unwrap();
        let correct = row["verdict"]["verdict"] == "correct";
        right += f64::from(u8::from(correct));
        // 0.25 * correct + 0.75 * tokens / 3, with 1 to 3 tokens.
        let explore =
            (row["reward"].as_f64().unwrap() - 0.25 * f64::from(u8::from(correct))) / 0.75;
        assert!(
            [1.0, 2.0, 3.0]
                .iter()
                .any(|t| (explore - t / 3.0).abs() < 1e-12),
            "{row}"
        );
    }
    let accuracy = right / episodes.lines().count() as f64;
    assert_eq!(lines[1].number("tasks/train_accuracy"), Some(accuracy));
    let _ = std::fs::remove_dir_all(&dir);
}

/// B-STaR with a one-point grid (the run's own temperature and group size), no deduplication
/// and no confidence term keeps exactly the right answers (the sweep's best threshold lies
/// between the scores 0 and 1) and learns at the sampling temperature: the same updates, bit
/// for bit, as rejection-sampling fine-tuning (`loss = "sft"`), while it logs its monitors.
#[test]
fn a_one_point_bstar_grid_is_rejection_sampling_fine_tuning() {
    let dir = support::temp("task", "bstar-rft");
    let task = coin_task(&dir);
    let rft = ["algorithm.loss=sft", "rollout.temperature=0.7"];
    let mut one_point = rft.to_vec();
    one_point.extend([
        "bstar.temperatures=[0.7]",
        "bstar.counts=[4]",
        "bstar.probe_prompts=4",
        "bstar.target_correct=4",
        "bstar.dedup=false",
        "bstar.confidence_weight=0",
    ]);
    let a = run(&config(&task, 3, &rft), &dir.join("rft"), false, |_| {}).unwrap();
    let b = run(
        &config(&task, 3, &one_point),
        &dir.join("bstar"),
        false,
        |_| {},
    )
    .unwrap();
    for (x, y) in a[1..].iter().zip(&b[1..]) {
        for key in ["tasks/train_accuracy", "learner/samples", "learner/loss"] {
            assert_eq!(x.number(key), y.number(key), "{key}");
        }
        // Every right answer kept, nothing else: precision 1 whenever one was kept.
        assert_eq!(y.number("tasks/bstar/temperature"), Some(0.7));
        assert_eq!(
            y.number("tasks/bstar/selected"),
            x.number("learner/samples")
        );
        let kept = y.number("tasks/bstar/selected").unwrap();
        let precision = if kept > 0.0 { 1.0 } else { 0.0 };
        assert_eq!(y.number("tasks/bstar/precision"), Some(precision));
    }
    assert!(
        a[1..]
            .iter()
            .any(|l| l.number("learner/samples") > Some(0.0)),
        "no right answer in 3 steps"
    );
    support::assert_same_weights(&dir.join("rft"), &dir.join("bstar"), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Self-correction on the coin task: episodes of two attempts (`spar_rl::loops::selfcorrect`).
mod selfcorrect {
    use super::*;
    use spar_rl::config::selfcorrect::SelfCorrectConfig;

    fn config(task: &Path, steps: usize, sets: &[&str]) -> SelfCorrectConfig {
        let text = format!(
            r#"
[run]
seed = 5
steps = {steps}
checkpoint_every = 1
tensorboard = false
[task]
name = "jsonl:{}"
[model]
hidden = 16
layers = 1
heads = 2
prompt_style = "raw"
[warm_start]
steps = 30
problems = 32
batch_size = 8
learning_rate = 1e-2
[rollout]
prompts = 4
group_size = 4
max_tokens = 3
[selfcorrect]
method = "score"
stage1_steps = 1
warm_start_corrections = 0.5
[algorithm]
minibatch_size = 8
epochs = 2
[eval]
problems = 4
samples = 2
every = 1
"#,
            task.display()
        );
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        SelfCorrectConfig::parse(&text, &sets).unwrap()
    }

    #[test]
    fn every_method_and_feedback_trains_from_a_config() {
        let dir = support::temp("task", "selfcorrect-methods");
        let task = coin_task(&dir);
        for (name, sets) in [
            ("score", vec!["selfcorrect.feedback=text"]),
            (
                "naive",
                vec!["selfcorrect.method=naive", "algorithm.loss=ppo"],
            ),
            (
                "single",
                vec!["selfcorrect.method=single", "selfcorrect.feedback=verdict"],
            ),
            (
                "rae",
                vec!["algorithm.estimator=rae", "selfcorrect.attempts=3"],
            ),
        ] {
            let out = dir.join(name);
            let lines =
                spar_rl::loops::selfcorrect::run(&config(&task, 2, &sets), &out, false, |_| {})
                    .unwrap();
            assert_eq!(lines.len(), 3, "{name}");
            // Step 0 has no training episodes, only the evaluation.
            assert!(lines[0].get("selfcorrect/accuracy_t1").is_none(), "{name}");
            let stages: Vec<f64> = lines[1..]
                .iter()
                .map(|l| l.number("selfcorrect/stage").unwrap())
                .collect();
            let want = if name == "score" || name == "rae" {
                vec![1.0, 2.0]
            } else {
                vec![0.0, 0.0]
            };
            assert_eq!(stages, want, "{name}");
            for l in &lines {
                for key in [
                    "accuracy_t1",
                    "accuracy_t2",
                    "delta_i_to_c",
                    "delta_c_to_i",
                    "identical_rate",
                ] {
                    let v = l.number(&format!("eval/jsonl/{key}")).unwrap();
                    assert!((0.0..=1.0).contains(&v), "{name} {key} {v}");
                }
                let (t1, t2, d) = (
                    l.number("eval/jsonl/accuracy_t1").unwrap(),
                    l.number("eval/jsonl/accuracy_t2").unwrap(),
                    l.number("eval/jsonl/delta").unwrap(),
                );
                assert_eq!(d, t2 - t1, "{name}");
                // Delta = (i->c) - (c->i), exactly, on the same episodes.
                let flips = l.number("eval/jsonl/delta_i_to_c").unwrap()
                    - l.number("eval/jsonl/delta_c_to_i").unwrap();
                assert!((d - flips).abs() < 1e-12, "{name}: {d} vs {flips}");
            }
            let last = lines.last().unwrap();
            assert!(last.number("learner/samples").unwrap() > 0.0, "{name}");
            assert!(last.number("learner/kl_ref").is_some(), "{name}");
            // The single-turn method learns from first attempts only: 4 prompts x 4 episodes.
            if name == "single" {
                assert_eq!(last.number("learner/samples"), Some(16.0));
            }
            // RLTF: those 16, each second answer distilled onto its first prompt (16), and
            // each first attempt's feedback line (16).
            if name == "rltf" {
                assert_eq!(last.number("learner/samples"), Some(48.0));
            }
            let episodes = std::fs::read_to_string(out.join("episodes/step-000002.jsonl")).unwrap();
            let first: serde_json::Value =
                serde_json::from_str(episodes.lines().next().unwrap()).unwrap();
            let attempts = if name == "rae" { 3 } else { 2 };
            assert_eq!(
                first["attempts"].as_array().unwrap().len(),
                attempts,
                "{name}"
            );
            let task_json =
                std::fs::read_to_string(checkpoint_dir(&out, 2).join("task.json")).unwrap();
            assert!(task_json.contains("\"attempts\""), "{task_json}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn spoc_trains_every_message_and_resumes_exactly() {
        let dir = support::temp("task", "selfcorrect-spoc");
        let task = coin_task(&dir);
        let sets = [
            "selfcorrect.method=spoc",
            "selfcorrect.attempts=3",
            "algorithm.estimator=rae",
        ];
        use spar_rl::loops::selfcorrect::run;
        let a = dir.join("a");
        let straight = run(&config(&task, 3, &sets), &a, false, |_| {}).unwrap();
        for l in &straight {
            for key in [
                "accuracy",
                "false_yes_rate",
                "false_no_rate",
                "precision_wrong",
                "recall_wrong",
            ] {
                let v = l.number(&format!("eval/jsonl/verify/{key}")).unwrap();
                assert!((0.0..=1.0).contains(&v), "{key} {v}");
            }
            let m = l.number("eval/jsonl/verify/mean_attempts").unwrap();
            assert!((1.0..=3.0).contains(&m), "{m}");
        }
        // Every message is learnt from: each episode's attempts and verifications.
        let episodes = std::fs::read_to_string(a.join("episodes/step-000003.jsonl")).unwrap();
        let mut messages = 0;
        for line in episodes.lines() {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            let attempts = e["attempts"].as_array().unwrap();
            assert!((1..=3).contains(&attempts.len()));
            for (k, at) in attempts.iter().enumerate() {
                // Only the last attempt may have been accepted.
                if k + 1 < attempts.len() {
                    assert_ne!(at["verified"], serde_json::json!(true), "{line}");
                }
            }
            messages += 2 * attempts.len();
        }
        assert_eq!(straight[3].number("learner/samples"), Some(messages as f64));
        let task_json = std::fs::read_to_string(checkpoint_dir(&a, 3).join("task.json")).unwrap();
        assert!(task_json.contains("\"verify\": true"), "{task_json}");
        // RAE keeps one baseline per message role (attempt1, verify1, ...), checkpointed.
        let state = std::fs::read_to_string(checkpoint_dir(&a, 3).join("state.json")).unwrap();
        assert!(state.contains("jsonl/verify1"), "{state}");
        let b = dir.join("b");
        run(&config(&task, 2, &sets), &b, false, |_| {}).unwrap();
        let resumed = run(&config(&task, 3, &sets), &b, true, |_| {}).unwrap();
        assert_eq!(
            support::without_time(&straight),
            support::without_time(&resumed)
        );
        support::assert_same_weights(&a, &b, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// [`straight_and_resumed`] for a self-correction run of `sets`.
    fn resumes_exactly(name: &str, task: &Path, sets: &[&str]) -> Vec<Line> {
        let dir = support::temp("task", &format!("selfcorrect-{name}-resume"));
        let config = |steps| config(task, steps, sets);
        let straight = straight_and_resumed(&dir, config, |c, out, resume| {
            spar_rl::loops::selfcorrect::run(c, out, resume, |_| {}).unwrap()
        });
        let _ = std::fs::remove_dir_all(&dir);
        straight
    }

    #[test]
    fn scl_learns_from_flipped_pairs_and_resumes_exactly() {
        let dir = support::temp("task", "selfcorrect-scl");
        let task = coin_task(&dir);
        let sets = ["selfcorrect.method=scl", "algorithm.learning_rate=1e-2"];
        let lines = resumes_exactly("scl", &task, &sets);
        let mut pairs = 0.0;
        for l in &lines[1..] {
            let (up, down) = (
                l.number("selfcorrect/pairs/i_to_c").unwrap(),
                l.number("selfcorrect/pairs/c_to_i").unwrap(),
            );
            // Every pair is one flipped episode: at most the step's 16 episodes, and exactly
            // the pairs the update used.
            assert!(up + down <= 16.0, "{up} {down}");
            assert_eq!(l.number("learner/samples"), Some(up + down));
            if up + down > 0.0 {
                let acc = l.number("learner/pair_accuracy").unwrap();
                assert!((0.0..=1.0).contains(&acc), "{acc}");
                assert!(l.number("learner/pair_margin").is_some());
            }
            pairs += up + down;
            assert!(l.number("selfcorrect/accuracy_t1").is_some());
        }
        assert!(pairs > 0.0, "no flipped episode in 3 steps");
        // Wrong-then-right only: no right-then-wrong pair is kept.
        let out = dir.join("up");
        let sets = ["selfcorrect.method=scl", "selfcorrect.scl_pairs=i_to_c"];
        let up = spar_rl::loops::selfcorrect::run(&config(&task, 2, &sets), &out, false, |_| {})
            .unwrap();
        for l in &up[1..] {
            assert_eq!(l.number("selfcorrect/pairs/c_to_i"), Some(0.0));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn revise_learns_from_stop_and_refine_pairs_and_resumes_exactly() {
        let dir = support::temp("task", "selfcorrect-revise");
        let task = coin_task(&dir);
        let sets = [
            "selfcorrect.method=revise",
            "selfcorrect.attempts=1",
            "selfcorrect.stage1_steps=1",
            "rollout.max_tokens=12",
        ];
        // Three steps cross from stage 1 to stage 2 (resumed at step 2, in stage 2).
        let lines = resumes_exactly("revise", &task, &sets);
        let stages: Vec<f64> = lines[1..]
            .iter()
            .map(|l| l.number("selfcorrect/stage").unwrap())
            .collect();
        assert_eq!(stages, [1.0, 2.0, 2.0]);
        for l in &lines[1..] {
            let (stop, refine) = (
                l.number("selfcorrect/pairs/stop").unwrap(),
                l.number("selfcorrect/pairs/refine").unwrap(),
            );
            // Every answer makes at least one pair (its first attempt is right or wrong).
            assert!(stop + refine >= 16.0, "{stop} {refine}");
            assert_eq!(l.number("learner/samples"), Some(stop + refine));
            assert!(l.number("learner/sft_loss").unwrap() > 0.0);
        }
        for l in &lines {
            for key in [
                "majority_accuracy",
                "weighted_accuracy",
                "p_refine",
                "refine_rate",
            ] {
                let v = l.number(&format!("eval/jsonl/refine/{key}")).unwrap();
                assert!((0.0..=1.0).contains(&v), "{key} {v}");
            }
            assert!(l.number("eval/jsonl/accuracy_t1").is_some());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rerest_and_star_self_train_on_accepted_answers_and_resume_exactly() {
        let dir = support::temp("task", "selfcorrect-rerest");
        let task = coin_task(&dir);
        let sets = ["selfcorrect.method=rerest", "selfcorrect.feedback=text"];
        let lines = resumes_exactly("rerest", &task, &sets);
        let mut fixed = 0.0;
        for l in &lines[1..] {
            let (first, corrections) = (
                l.number("selfcorrect/accepted/first").unwrap(),
                l.number("selfcorrect/accepted/corrections").unwrap(),
            );
            // 16 episodes: a right first attempt, or a wrong one fixed later, at most once
            // each; a correction is learnt twice (solver and reflector).
            assert!(first + corrections <= 16.0, "{first} {corrections}");
            assert_eq!(l.number("learner/samples"), Some(first + 2.0 * corrections));
            // The right first attempts are the step's attempt-1 accuracy times 16.
            let acc = l.number("selfcorrect/attempt1/accuracy").unwrap();
            assert_eq!(first, acc * 16.0);
            fixed += corrections;
        }
        assert!(fixed > 0.0, "no accepted correction in 3 steps");
        let star = ["selfcorrect.method=star"];
        for l in &resumes_exactly("star", &task, &star)[1..] {
            assert_eq!(l.number("selfcorrect/accepted/corrections"), Some(0.0));
            assert_eq!(
                l.number("learner/samples"),
                l.number("selfcorrect/accepted/first")
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuel_regresses_branched_answers_and_resumes_exactly() {
        let dir = support::temp("task", "selfcorrect-refuel");
        let task = coin_task(&dir);
        let sets = ["selfcorrect.method=refuel", "selfcorrect.attempts=3"];
        let lines = resumes_exactly("refuel", &task, &sets);
        let mut pairs = 0.0;
        for l in &lines[1..] {
            let (kept, same) = (
                l.number("selfcorrect/pairs/refuel").unwrap(),
                l.number("selfcorrect/pairs/identical").unwrap(),
            );
            // One branch per episode: kept, dropped as identical, or a failed call.
            assert!(kept + same <= 16.0, "{kept} {same}");
            assert_eq!(l.number("learner/samples"), Some(kept));
            if kept > 0.0 {
                let sign = l.number("learner/pair_accuracy").unwrap();
                assert!((0.0..=1.0).contains(&sign), "{sign}");
                assert!(l.number("learner/loss").unwrap() >= 0.0);
            }
            pairs += kept;
        }
        assert!(pairs > 0.0, "no REFUEL pair in 3 steps");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn role_reversal_and_trloo_train_and_resume_exactly() {
        let dir = support::temp("task", "selfcorrect-role-reversal");
        let task = coin_task(&dir);
        let sets = [
            "selfcorrect.method=role_reversal",
            "selfcorrect.warm_start_corrections=0.5",
            "algorithm.estimator=trloo",
        ];
        let lines = resumes_exactly("role_reversal", &task, &sets);
        let out = dir.join("c");
        let c = config(&task, 1, &sets);
        spar_rl::loops::selfcorrect::run(&c, &out, false, |_| {}).unwrap();
        // Every episode: attempt 1, the critique, attempt 2 (three messages learnt from).
        let episodes = std::fs::read_to_string(out.join("episodes/step-000001.jsonl")).unwrap();
        assert_eq!(episodes.lines().count(), 16);
        assert_eq!(lines[1].number("learner/samples"), Some(48.0));
        let task_json = std::fs::read_to_string(checkpoint_dir(&out, 1).join("task.json")).unwrap();
        assert!(task_json.contains("\"critique\": true"), "{task_json}");
        assert!(lines[1].number("eval/jsonl/accuracy_t2").is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_resumed_selfcorrect_run_equals_an_uninterrupted_one() {
        let dir = support::temp("task", "selfcorrect-resume");
        let task = coin_task(&dir);
        // Three steps cross the stage boundary (stage I is steps 1 and 2).
        let sets = ["algorithm.estimator=rae", "selfcorrect.stage1_steps=2"];
        resumes_exactly("score", &task, &sets);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
