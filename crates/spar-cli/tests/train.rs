//! End-to-end tests of `spar train` on games: a run directory, `--resume` (exact after a
//! SIGKILL; refused when the config differs in more than `run.steps`), config errors with exit code 2 before anything is written, and the accepted values
//! in `--help`.

mod common;

use std::process::{Command, Stdio};

use common::{assert_usage_error, spar, temp_path};

/// `spar train`: a tiny Kuhn self-play run from the shipped config with overrides, its run
/// directory, `--resume` (and a resume with another config refused), and config errors with
/// exit code 2.
#[test]
fn train_runs_resumes_and_rejects_bad_configs() {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/kuhn-spiral-tiny.toml"
    );
    let out = temp_path("train-run");
    let out_s = out.to_str().unwrap();
    let tiny = [
        "--set",
        "model.hidden=16",
        "--set",
        "model.layers=1",
        "--set",
        "model.heads=2",
        "--set",
        "warm_start.steps=2",
        "--set",
        "warm_start.episodes=2",
        "--set",
        "rollout.episodes=2",
        "--set",
        "rollout.max_tokens=8",
        "--set",
        "eval.games_vs_random=1",
        "--set",
        "eval.every=1",
    ];
    let mut args = vec!["train", config, "--out", out_s, "--set", "run.steps=1"];
    args.extend_from_slice(&tiny);
    let run = spar(&args);
    assert!(run.status.success(), "{run:?}");
    // stdout: the exploitability curve, then the last metrics line as JSON.
    let stdout = String::from_utf8(run.stdout.clone()).unwrap();
    assert!(stdout.starts_with("step  exploitability"), "{stdout}");
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["step"], 1);
    let e = last["eval/kuhn/exploitability"].as_f64().unwrap();
    // `spar exploitability` on the last checkpoint agrees (its prompting.json gives the
    // prompts and temperature of the run).
    let ckpt = format!("model:{}", out.join("checkpoints/step-000001").display());
    let ex = spar(&[
        "exploitability",
        "--game",
        "kuhn",
        "--policy",
        &ckpt,
        "--json",
    ]);
    assert!(ex.status.success(), "{ex:?}");
    let ex: serde_json::Value = serde_json::from_slice(&ex.stdout).unwrap();
    assert!(
        (ex["exploitability"].as_f64().unwrap() - e).abs() < 1e-9,
        "{ex} vs {e}"
    );
    assert!(out.join("report/summary.md").exists());
    // spar eval against CFR+ in both seats.
    let ev = spar(&[
        "eval",
        "--model",
        out.join("checkpoints/step-000001").to_str().unwrap(),
        "--vs",
        "cfr+:50",
        "--games",
        "3",
        "--json",
    ]);
    assert!(ev.status.success(), "{ev:?}");
    let ev: serde_json::Value = serde_json::from_slice(&ev.stdout).unwrap();
    assert_eq!(ev["seats"].as_array().unwrap().len(), 2);
    assert_eq!(ev["seats"][1]["games"], 3);
    assert_usage_error(
        &spar(&[
            "eval",
            "--model",
            out.join("checkpoints/step-000001").to_str().unwrap(),
            "--vs",
            "nobody",
        ]),
        &["nobody"],
    );
    let resolved = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(resolved.contains("hidden = 16"), "{resolved}");
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    assert!(out.join("checkpoints/step-000001/state.json").exists());
    // The same directory again without --resume is refused; --resume continues (nothing left).
    assert_usage_error(&spar(&args), &["--resume"]);
    let resumed = spar(&["train", "--resume", out_s]);
    assert!(resumed.status.success(), "{resumed:?}");
    // A resume that changes the run's recipe is refused, naming each changed key with both
    // values, and writes nothing; run.steps alone may change (tests/tasks.rs extends a run).
    let metrics_before = std::fs::read(out.join("metrics.jsonl")).unwrap();
    assert_usage_error(
        &spar(&[
            "train",
            "--resume",
            out_s,
            "--set",
            "run.steps=3",
            "--set",
            "ppo.clip=0.1",
            "--set",
            "model.hidden=32",
        ]),
        &[
            "config.toml in model.hidden (16 in the run, 32 now), ppo.clip (",
            "in the run, 0.1 now)",
            "only run.steps may change",
        ],
    );
    assert_eq!(
        std::fs::read(out.join("metrics.jsonl")).unwrap(),
        metrics_before
    );
    // Unknown and ill-typed keys are named.
    let bad = temp_path("bad.toml");
    std::fs::write(&bad, "[ppo]\nclipp = 0.1\n").unwrap();
    assert_usage_error(&spar(&["train", bad.to_str().unwrap()]), &["clipp"]);
    assert_usage_error(
        &spar(&["train", config, "--set", "ppo.epochs=two"]),
        &["epochs"],
    );
}

/// A config value outside its key's accepted values is refused before anything is written:
/// exit code 2, the key and every accepted value named, and no run directory.
#[test]
fn train_refuses_unknown_values_before_writing_a_run_directory() {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/kuhn-spiral-tiny.toml"
    );
    let cases: &[(&str, &[&str])] = &[
        (
            "game.name=kuhnn",
            &[
                "game.name",
                "\"kuhnn\"",
                "kuhn, leduc, tictactoe, connect_four, negotiation",
            ],
        ),
        (
            "game.names=[\"kuhn\", \"chess\"]",
            &["game.names", "\"chess\"", "kuhn, leduc, tictactoe"],
        ),
        (
            "game.protocol=boxd",
            &["config: game.protocol: \"boxd\" is not one of boxed, bracketed, bare"],
        ),
        (
            "advantage.estimator=ppo",
            &["config: advantage.estimator: \"ppo\" is not one of reinforce, grpo, dr_grpo, \
               rloo, trloo, rae"],
        ),
        (
            "rollout.policy=smple",
            &["config: rollout.policy: \"smple\" is not one of sample, legal"],
        ),
        (
            "game.invalid_move_rule=retry:x",
            &["config: game.invalid_move_rule: \"retry:x\" is not one of spiral, textarena, retry:N"],
        ),
        (
            "rollout.opponent=grandmaster",
            &[
                "config: rollout.opponent: unknown player \"grandmaster\"",
                "random, uniform, minimax",
            ],
        ),
        (
            "eval.opponents=[\"random\", \"grandmaster\"]",
            &[
                "config: eval.opponents: unknown player \"grandmaster\"",
                "random, uniform, minimax",
            ],
        ),
    ];
    for (i, (set, mentions)) in cases.iter().enumerate() {
        let out = temp_path(&format!("refused-{i}"));
        let _ = std::fs::remove_dir_all(&out);
        let output = spar(&[
            "train",
            config,
            "--out",
            out.to_str().unwrap(),
            "--set",
            set,
        ]);
        assert_usage_error(&output, mentions);
        assert!(
            !out.exists(),
            "--set {set}: a refused config wrote {}",
            out.display()
        );
    }
}

/// An estimator that compares the units of a group refused where every group would be one
/// unit (issue 15): self-play with one game per step (or one per seat against an opponent),
/// a task grouped by prompt with one answer per problem. Exit code 2, the key and the
/// estimators that fit named, nothing written.
#[test]
fn train_refuses_an_estimator_that_does_not_fit_the_loops_groups() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "kuhn-spiral-tiny.toml",
            &["advantage.estimator=grpo", "rollout.episodes=1"],
            &[
                "config: advantage.estimator: \"grpo\"",
                "rollout.episodes = 1",
                "reinforce, rae",
            ],
        ),
        (
            "kuhn-spiral-tiny.toml",
            &[
                "advantage.estimator=rloo",
                "rollout.episodes=3",
                "rollout.opponent=random",
            ],
            &[
                "config: advantage.estimator: \"rloo\"",
                "split between 2 seats",
                "reinforce, rae",
            ],
        ),
        (
            "tasks/arithmetic-grpo-tiny.toml",
            &["rollout.group_size=1"],
            &[
                "config: algorithm.estimator: \"grpo\"",
                "rollout.group_size = 1 with algorithm.group_by = \"prompt\"",
                "reinforce, rae",
            ],
        ),
    ];
    assert_refused_before_writing("unfit", cases);
}

/// Each case (a shipped config, `--set` overrides, what stderr must mention) is refused by
/// `spar train` with exit code 2, and no run directory is written.
fn assert_refused_before_writing(tag: &str, cases: &[(&str, &[&str], &[&str])]) {
    let configs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/");
    for (i, (config, sets, mentions)) in cases.iter().enumerate() {
        let out = temp_path(&format!("{tag}-{i}"));
        let _ = std::fs::remove_dir_all(&out);
        let path = format!("{configs}{config}");
        let mut args = vec!["train", &path, "--out", out.to_str().unwrap()];
        for set in *sets {
            args.extend(["--set", set]);
        }
        assert_usage_error(&spar(&args), mentions);
        assert!(
            !out.exists(),
            "{sets:?}: a refused config wrote {}",
            out.display()
        );
    }
}

/// Issue 21: the moving magnet's keys checked before anything is written: a rate outside
/// [0, 1], a moving magnet without a KL term, over a LoRA adapter, and the exact KL without
/// the action-level policy. Exit code 2, the key and the fix named, no run directory.
#[test]
fn train_refuses_bad_magnet_settings_before_writing() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "kuhn-mmd-tiny.toml",
            &["ppo.magnet_rate=1.5"],
            &["config: ppo.magnet_rate 1.5 is not in [0, 1]"],
        ),
        (
            "kuhn-mmd-tiny.toml",
            &["ppo.kl_coef=0"],
            &["ppo.magnet_rate moves the magnet", "set ppo.kl_coef > 0"],
        ),
        (
            "kuhn-spiral-tiny-lora.toml",
            &["ppo.kl_coef=0.2", "ppo.magnet_rate=0.05"],
            &["ppo.magnet_rate needs full fine-tuning", "[model.lora]"],
        ),
        (
            "kuhn-mmd-tiny.toml",
            &["rollout.policy=sample"],
            &["ppo.kl_exact", "rollout.policy = \"legal\""],
        ),
    ];
    assert_refused_before_writing("magnet", cases);
}

/// `spar train --help` and `spar --help` list the accepted values of every key with a fixed
/// set, from the config types themselves.
#[test]
fn help_lists_the_accepted_values_of_every_choice_key() {
    let collapse = |text: &[u8]| -> String {
        let text = String::from_utf8_lossy(text);
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let keys = spar_rl::TrainConfig::choices()
        .into_iter()
        .chain(spar_rl::config::tasks::TaskTrainConfig::choices());
    let train = spar(&["train", "--help"]);
    assert!(train.status.success(), "{train:?}");
    let top = spar(&["--help"]);
    assert!(top.status.success(), "{top:?}");
    let (train, top) = (collapse(&train.stdout), collapse(&top.stdout));
    let mut count = 0;
    for (key, values) in keys {
        let line = format!("{key} {}", collapse(values.as_bytes()));
        assert!(
            train.contains(&line),
            "spar train --help lacks {line:?}: {train}"
        );
        assert!(top.contains(&line), "spar --help lacks {line:?}: {top}");
        count += 1;
    }
    assert!(count >= 20, "{count} keys");
    for line in [
        "game.protocol boxed, bracketed, bare",
        "advantage.estimator reinforce, grpo, dr_grpo, rloo, trloo, rae",
        "algorithm.estimator reinforce, grpo, dr_grpo, rloo, trloo, rae",
        "algorithm.kl none, k1, k2, k3",
    ] {
        assert!(
            train.contains(line),
            "spar train --help lacks {line:?}: {train}"
        );
    }
}

/// A run killed with SIGKILL while it trains resumes from its last complete checkpoint and
/// ends exactly as a run that was never interrupted: same metrics (but for wall-clock
/// seconds) and byte-identical weights. The config uses a cosine learning-rate schedule and a
/// KL penalty to the warm-started reference, so that those are restored too.
#[test]
fn train_killed_with_sigkill_resumes_exactly() {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/kuhn-spiral-tiny.toml"
    );
    let sets = [
        "model.hidden=16",
        "model.layers=1",
        "model.heads=2",
        "warm_start.steps=2",
        "warm_start.episodes=2",
        "rollout.episodes=4",
        "rollout.max_tokens=8",
        "run.steps=4",
        "run.checkpoint_every=1",
        "eval.every=2",
        "eval.games_vs_random=2",
        "eval.games_vs_cfr=2",
        "eval.cfr_iterations=20",
        "ppo.lr_schedule=\"cosine\"",
        "ppo.kl_coef=0.05",
    ];
    let args_for = |out: &str| -> Vec<String> {
        let mut args = vec![
            "train".to_string(),
            config.to_string(),
            "--out".into(),
            out.into(),
        ];
        for s in sets {
            args.push("--set".into());
            args.push(s.into());
        }
        args
    };
    let straight = temp_path("sigkill-straight");
    let a: Vec<String> = args_for(straight.to_str().unwrap());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let run = spar(&a);
    assert!(run.status.success(), "{run:?}");

    let killed = temp_path("sigkill-killed");
    let b: Vec<String> = args_for(killed.to_str().unwrap());
    let mut child = Command::new(env!("CARGO_BIN_EXE_spar"))
        .args(&b)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once its step-1 checkpoint is complete (it is then inside step 2 or later).
    let marker = killed.join("checkpoints/step-000001/state.json");
    let start = std::time::Instant::now();
    while !marker.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            start.elapsed().as_secs() < 600,
            "no checkpoint after 10 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let resumed = spar(&["train", "--resume", killed.to_str().unwrap()]);
    assert!(resumed.status.success(), "{resumed:?}");

    let metrics = |dir: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("time/seconds");
                v
            })
            .collect()
    };
    let (x, y) = (metrics(&straight), metrics(&killed));
    assert_eq!(x.len(), 5, "steps 0 to 4");
    assert_eq!(x, y);
    assert!(x[4]["learner/kl_ref"].as_f64().is_some());
    assert!(
        x[4]["eval/kuhn/player0/vs_cfr"].is_number() && x[4]["learner/learning_rate"].is_number()
    );
    for file in ["model.safetensors", "optimizer.safetensors", "state.json"] {
        let p = |d: &std::path::Path| d.join("checkpoints/step-000004").join(file);
        assert_eq!(
            std::fs::read(p(&straight)).unwrap(),
            std::fs::read(p(&killed)).unwrap(),
            "{file} differs after SIGKILL and resume"
        );
    }
    // The report of the run: plots and a summary.
    let report = spar(&["report", killed.to_str().unwrap()]);
    assert!(report.status.success(), "{report:?}");
    let summary = std::fs::read_to_string(killed.join("report/summary.md")).unwrap();
    assert!(summary.contains("exploitability"), "{summary}");
    assert!(killed.join("report/exploitability.svg").exists());
    assert_usage_error(
        &spar(&["report", straight.join("nope").to_str().unwrap()]),
        &["metrics.jsonl"],
    );
    std::fs::remove_dir_all(&straight).unwrap();
    std::fs::remove_dir_all(&killed).unwrap();
}
