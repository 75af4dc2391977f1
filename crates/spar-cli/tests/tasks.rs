//! End-to-end tests of training and evaluating on verifiable tasks from the command line:
//! `spar tasks`, every shipped task config (`configs/tasks/*.toml`) for one step with small
//! counts, `spar eval --task` on the checkpoint it writes, `spar train --resume` of a task run,
//! and the exit-2 errors.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use spar_rl::config::tasks::TaskTrainConfig;

mod support;
use support::*;

/// `configs/tasks/*.toml`, sorted.
fn task_configs() -> Vec<PathBuf> {
    let dir = root().join("configs/tasks");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    found.sort();
    found
}

/// Overrides that make any task config train for one step in seconds (every key exists in
/// `TaskTrainConfig`).
const SMALL: &[&str] = &[
    "run.steps=1",
    "warm_start.steps=3",
    "warm_start.problems=16",
    "warm_start.batch_size=8",
    "rollout.prompts=2",
    "rollout.group_size=2",
    "rollout.max_tokens=8",
    "eval.problems=2",
    "eval.samples=2",
    "eval.pass_at=[1,2]",
    "algorithm.reference_problems=2",
    "algorithm.reference_samples=1",
];

/// `spar train CONFIG --out OUT` with [`SMALL`] and `extra` overrides.
fn train_small(config: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train".to_string(),
        config.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    for s in SMALL.iter().chain(extra) {
        args.push("--set".into());
        args.push((*s).to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spar(&args)
}

/// The held-out evaluation of a metrics line, `eval/<task>/...`, as one object nested by the
/// names' segments (`pass_at/1` is `["pass_at"]["1"]`), the shape `spar eval --task` prints.
fn held_out(line: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (key, value) in line.as_object().into_iter().flatten() {
        let Some(rest) = key.strip_prefix("eval/") else {
            continue;
        };
        let mut path: Vec<&str> = rest.split('/').skip(1).collect();
        let last = path.pop().unwrap_or_default();
        let mut at = &mut out;
        for segment in path {
            at = at
                .entry(segment)
                .or_insert_with(|| Value::Object(serde_json::Map::new()))
                .as_object_mut()
                .unwrap();
        }
        at.insert(last.to_string(), value.clone());
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

/// Rewrites `run.steps` in a run's config.toml (what a user does to lengthen a finished run).
fn set_steps(out: &Path, steps: usize) {
    let path = out.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut config = TaskTrainConfig::parse(&text, &[]).unwrap();
    config.run.steps = steps;
    std::fs::write(&path, config.to_toml()).unwrap();
}

/// The keys of a JSON object, sorted as numbers.
fn numeric_keys(v: &Value) -> Vec<usize> {
    let mut ks: Vec<usize> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(|k| k.parse().unwrap_or_else(|_| panic!("key {k:?} of {v}")))
        .collect();
    ks.sort_unstable();
    ks
}

#[test]
fn spar_tasks_lists_every_task_as_text_and_json() {
    let text = spar(&["tasks"]);
    succeeded(&text, "spar tasks");
    let text = String::from_utf8(text.stdout).unwrap();
    for name in [
        "arithmetic",
        "countdown",
        "countdown_steps",
        "wordproblem",
        "jsonl",
        "choice",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "no line for {name}: {text}"
        );
    }
    assert!(text.contains("parameters:"), "{text}");

    let listed = json(&spar(&["tasks", "--json"]), "spar tasks --json");
    let names: Vec<&str> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|t| t["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(
        names,
        [
            "arithmetic",
            "countdown",
            "countdown_steps",
            "wordproblem",
            "jsonl",
            "choice"
        ]
    );
    for t in listed.as_array().unwrap() {
        assert!(
            t["description"].is_string() && t["parameters"].is_string(),
            "{t}"
        );
    }
}

/// Every shipped task config trains for one step; its last checkpoint evaluates with
/// `spar eval` (task from task.json, or named with `--task`); a finished run whose
/// config.toml is edited to two steps resumes to step 2.
#[test]
fn every_task_config_trains_one_step_and_its_checkpoint_evaluates() {
    let configs = task_configs();
    assert!(!configs.is_empty(), "no configs/tasks/*.toml");
    let mut trained = 0;
    let mut resumed = false;
    for config in configs {
        let name = config.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&config).unwrap();
        assert!(
            TaskTrainConfig::is_task_config(&text),
            "{name}: configs/tasks holds a config without a [task] table"
        );
        let parsed = TaskTrainConfig::parse(&text, &[])
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        let init = &parsed.model.init;
        if init != "scratch" && !root().join(init).exists() {
            eprintln!("note: {name}: model.init {init:?} does not exist here; skipped");
            continue;
        }
        let out = temp_dir(&name);
        let run = train_small(&config, &out, &[]);
        succeeded(&run, &format!("spar train {name}"));

        // stdout ends with the last metrics line.
        let stdout = String::from_utf8(run.stdout.clone()).unwrap();
        let last_line: Value = serde_json::from_str(stdout.lines().last().unwrap())
            .unwrap_or_else(|e| panic!("{name}: last stdout line is not JSON ({e}): {stdout}"));
        assert_eq!(last_line["step"], 1, "{name}: {stdout}");

        // metrics.jsonl: step 0 (after the warm start) and step 1, both evaluated.
        let lines = metrics(&out);
        assert_eq!(lines.len(), 2, "{name}: {lines:?}");
        assert_eq!(lines[0]["step"], 0, "{name}");
        assert_eq!(lines[1]["step"], 1, "{name}");
        assert!(
            lines[0]["learner/warm_start_loss"].is_number(),
            "{name}: {}",
            lines[0]
        );
        let last = &lines[1];
        assert_eq!(
            numeric_keys(&held_out(last)["pass_at"]),
            [1, 2],
            "{name}: {last}"
        );
        assert_eq!(held_out(last)["problems"], 2, "{name}: {last}");
        assert_eq!(held_out(last)["samples"], 2, "{name}: {last}");
        for field in [
            "tasks/train_accuracy",
            "tasks/degenerate_groups",
            "learner/loss",
            "time/seconds",
        ] {
            assert!(last[field].is_number(), "{name}: no {field} in {last}");
        }
        assert_eq!(last, &last_line, "{name}: stdout and metrics.jsonl differ");

        // The run directory.
        let summary = std::fs::read_to_string(out.join("report/summary.md")).unwrap();
        assert!(summary.contains("Held-out evaluation"), "{name}: {summary}");
        let config_toml = std::fs::read_to_string(out.join("config.toml")).unwrap();
        assert!(config_toml.contains("steps = 1"), "{name}: {config_toml}");
        let episodes = std::fs::read_to_string(out.join("episodes/step-000001.jsonl")).unwrap();
        assert_eq!(episodes.lines().count(), 4, "{name}: 2 prompts x 2 answers");
        let ckpt = out.join("checkpoints/step-000001");
        let prompting: Value =
            serde_json::from_str(&std::fs::read_to_string(ckpt.join("task.json")).unwrap())
                .unwrap();
        assert!(prompting["task"].is_string(), "{name}: {prompting}");
        assert!(out.join("checkpoints/step-000000/task.json").exists());

        // spar eval reads the task from task.json.
        let ckpt_s = ckpt.to_str().unwrap();
        let eval = json(
            &spar(&[
                "eval",
                "--model",
                ckpt_s,
                "--k",
                "4",
                "--problems",
                "3",
                "--json",
            ]),
            &format!("spar eval {name}"),
        );
        assert_eq!(numeric_keys(&eval["pass_at"]), [1, 2, 4], "{name}: {eval}");
        assert!(eval["majority_accuracy"].is_number(), "{name}: {eval}");
        assert_eq!(eval["task"], prompting["task"], "{name}: {eval}");
        assert_eq!(eval["samples"], 4, "{name}: {eval}");
        // pass@k is non-decreasing in k.
        let p = |k: &str| eval["pass_at"][k].as_f64().unwrap();
        assert!(
            p("1") <= p("2") + 1e-12 && p("2") <= p("4") + 1e-12,
            "{eval}"
        );

        // With the run's evaluation seed (run.seed ^ 0xe7a1) and counts, spar eval repeats
        // the run's last evaluation exactly: same problems, prompts, answer budget and
        // sampling streams.
        let seed = (parsed.run.seed ^ 0xe7a1).to_string();
        let again = json(
            &spar(&[
                "eval",
                "--model",
                ckpt_s,
                "--k",
                "2",
                "--problems",
                "2",
                "--pass-at",
                "1,2",
                "--seed",
                &seed,
                "--json",
            ]),
            &format!("spar eval --seed {seed} {name}"),
        );
        for field in [
            "pass_at",
            "majority_accuracy",
            "accuracy_by_difficulty",
            "unparsable_rate",
            "distinct_correct",
            "response_tokens",
        ] {
            assert_eq!(again[field], held_out(last)[field], "{name}: {field}");
        }

        // ... or from --task.
        let named = json(
            &spar(&[
                "eval",
                "--model",
                ckpt_s,
                "--task",
                "arithmetic",
                "--k",
                "4",
                "--problems",
                "3",
                "--json",
            ]),
            &format!("spar eval --task arithmetic {name}"),
        );
        assert_eq!(named["task"], "arithmetic(digits=1..2,terms=2,ops=+-)");
        assert_eq!(numeric_keys(&named["pass_at"]), [1, 2, 4], "{named}");
        assert!(named["majority_accuracy"].is_number(), "{named}");

        // The table.
        let plain = spar(&["eval", "--model", ckpt_s, "--k", "4", "--problems", "3"]);
        succeeded(&plain, "spar eval (text)");
        let plain = String::from_utf8(plain.stdout).unwrap();
        for needle in ["pass@1", "pass@2", "pass@4", "majority vote accuracy"] {
            assert!(plain.contains(needle), "{name}: no {needle}: {plain}");
        }

        // Resume, once: the same directory without --resume is refused; a finished run
        // whose config.toml now asks for two steps continues to step 2.
        if !resumed {
            assert_usage_error(&train_small(&config, &out, &[]), &["--resume"]);
            set_steps(&out, 2);
            let out_s = out.to_str().unwrap();
            succeeded(&spar(&["train", "--resume", out_s]), "spar train --resume");
            let lines = metrics(&out);
            let steps: Vec<u64> = lines.iter().map(|m| m["step"].as_u64().unwrap()).collect();
            assert_eq!(steps, [0, 1, 2], "{name}");
            assert!(held_out(&lines[2])["pass_at"].is_object(), "{}", lines[2]);
            assert!(out.join("checkpoints/step-000002/task.json").exists());
            assert!(out.join("episodes/step-000002.jsonl").exists());
            resumed = true;
        }
        trained += 1;
        let _ = std::fs::remove_dir_all(&out);
    }
    assert!(trained > 0, "every task config was skipped");
}

/// Bad input exits with code 2 and names the problem.
#[test]
fn task_errors_exit_with_code_two_and_name_the_problem() {
    let config = root().join("configs/tasks/arithmetic-grpo-tiny.toml");
    let config_s = config.to_str().unwrap();
    // An unknown task (named before any model is read).
    let missing = temp_dir("no-model");
    let missing_s = missing.to_str().unwrap();
    assert_usage_error(
        &spar(&["eval", "--task", "chess", "--model", missing_s]),
        &["chess", "unknown task", "arithmetic"],
    );
    // A k of pass@k larger than the samples per problem.
    assert_usage_error(
        &spar(&[
            "eval",
            "--task",
            "arithmetic",
            "--model",
            missing_s,
            "--pass-at",
            "32",
            "--k",
            "4",
        ]),
        &["--pass-at 32", "--k (4)"],
    );
    assert_usage_error(
        &spar(&[
            "eval",
            "--task",
            "arithmetic",
            "--model",
            missing_s,
            "--k",
            "0",
        ]),
        &["--k"],
    );
    // Config errors name the key, and nothing is written.
    let out = temp_dir("bad-config");
    let out_s = out.to_str().unwrap();
    assert_usage_error(
        &spar(&[
            "train",
            config_s,
            "--out",
            out_s,
            "--set",
            "algorithm.loss=gspo",
        ]),
        &["algorithm.loss", "gspo", "ppo"],
    );
    assert_usage_error(
        &spar(&[
            "train",
            config_s,
            "--out",
            out_s,
            "--set",
            "eval.pass_at=[1,32]",
        ]),
        &["eval.pass_at", "32"],
    );
    // A self-play key is not a task key.
    assert_usage_error(
        &spar(&[
            "train",
            config_s,
            "--out",
            out_s,
            "--set",
            "rollout.episodes=4",
        ]),
        &["episodes"],
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let with_unknown = text.replacen("[rollout]\n", "[rollout]\nbatch = 4\n", 1);
    assert_ne!(text, with_unknown, "the config has a [rollout] table");
    let bad = temp_dir("unknown-key.toml");
    std::fs::write(&bad, with_unknown).unwrap();
    assert_usage_error(
        &spar(&["train", bad.to_str().unwrap(), "--out", out_s]),
        &["unknown field `batch`", "rollout"],
    );
    // RLSP's exploration reward needs a loss that learns from advantages.
    assert_usage_error(
        &spar(&[
            "train",
            config_s,
            "--out",
            out_s,
            "--set",
            "algorithm.explore_alpha=0.5",
            "--set",
            "algorithm.loss=nft",
        ]),
        &[
            "algorithm.explore_alpha = 0.5",
            "\"nft\"",
            "\"pg\" or \"ppo\"",
        ],
    );
    assert!(!out.exists(), "a rejected config wrote {}", out.display());
    let _ = std::fs::remove_file(&bad);
    // Values outside a key's accepted ones: the key and every accepted value are named, and
    // no run directory is made.
    for (set, message) in [
        (
            "algorithm.loss=gspo",
            "config: algorithm.loss: \"gspo\" is not one of pg, ppo, nft, rft, sft, dpo, ipo",
        ),
        (
            "algorithm.estimator=ppo",
            "config: algorithm.estimator: \"ppo\" is not one of reinforce, grpo, dr_grpo, \
             rloo, trloo, rae",
        ),
        (
            "algorithm.kl=k4",
            "config: algorithm.kl: \"k4\" is not one of none, k1, k2, k3",
        ),
        (
            "task.name=chess",
            "config: task.name: task spec \"chess\": unknown task \"chess\"; known tasks: \
             arithmetic",
        ),
        (
            "algorithm.explore_alpha=1.5",
            "config: algorithm.explore_alpha 1.5 is not in [0, 1]",
        ),
    ] {
        assert_usage_error(
            &spar(&["train", config_s, "--out", out_s, "--set", set]),
            &[message],
        );
        assert!(
            !out.exists(),
            "--set {set}: a rejected config wrote {}",
            out.display()
        );
    }
}

/// Every estimator, grouping, loss and regulariser trains a step through the command line,
/// and the metrics name what they measured; a run with a DPH-RL divergence resumes from its
/// stored reference answers.
#[test]
fn every_estimator_and_loss_trains_a_step() {
    let config = root().join("configs/tasks/arithmetic-grpo-tiny.toml");
    let variants: &[&[&str]] = &[
        &["algorithm.estimator=reinforce", "algorithm.batch_norm=true"],
        &[
            "algorithm.estimator=dr_grpo",
            "algorithm.loss_aggregation=token_sum",
        ],
        &["algorithm.estimator=rloo", "algorithm.group_by=difficulty"],
        &[
            "algorithm.estimator=trloo",
            "algorithm.group_by=batch",
            "algorithm.filter_degenerate=true",
        ],
        &[
            "algorithm.clip_high=0.28",
            "algorithm.loss_aggregation=batch_token_mean",
            "algorithm.epochs=2",
            "algorithm.minibatch_size=2",
        ],
        &[
            "algorithm.loss=pg",
            "algorithm.kl=k1",
            "algorithm.kl_coef=0.1",
        ],
        &["algorithm.kl=k3", "algorithm.kl_coef=0.1"],
        &["algorithm.loss=nft", "algorithm.nft_normalize=2"],
        &["algorithm.loss=rft"],
        &["algorithm.loss=sft"],
        &["algorithm.loss=dpo"],
        &["algorithm.loss=ipo"],
        &[
            "algorithm.divergence=forward",
            "algorithm.divergence_coef=0.1",
        ],
        &[
            "algorithm.loss=nft",
            "algorithm.divergence=js",
            "algorithm.divergence_coef=0.1",
        ],
        &["task.name=countdown(numbers=3)"],
        &["task.name=wordproblem(steps=1)"],
    ];
    for (i, sets) in variants.iter().enumerate() {
        let what = sets.join(" ");
        let out = temp_dir(&format!("variant-{i}"));
        succeeded(&train_small(&config, &out, sets), &what);
        let lines = metrics(&out);
        assert_eq!(lines.len(), 2, "{what}");
        let (first, last) = (&lines[0], &lines[1]);
        assert!(held_out(last)["pass_at"].is_object(), "{what}: {last}");
        let has = |key: &str| sets.iter().any(|s| s.starts_with(key));
        let pairs = sets
            .iter()
            .any(|s| s.ends_with("=dpo") || s.ends_with("=ipo"));
        assert_eq!(
            last["learner/pair_accuracy"].is_number(),
            pairs,
            "{what}: {last}"
        );
        assert_eq!(
            last["learner/kl_ref"].is_number(),
            has("algorithm.kl="),
            "{what}: {last}"
        );
        let divergence = has("algorithm.divergence=");
        assert_eq!(
            last["learner/divergence"].is_number(),
            divergence,
            "{what}: {last}"
        );
        assert_eq!(
            first["tasks/reference_mastered"].is_number(),
            divergence,
            "{what}: {first}"
        );
        assert_eq!(
            out.join("reference_answers.json").exists(),
            divergence,
            "{what}"
        );
        for line in &lines {
            for (key, value) in line.as_object().unwrap() {
                if let Some(x) = value.as_f64() {
                    assert!(x.is_finite(), "{what}: {key} = {value}");
                }
            }
        }
        if has("task.name=") {
            let prompting =
                std::fs::read_to_string(out.join("checkpoints/step-000001/task.json")).unwrap();
            let task = sets[0].trim_start_matches("task.name=");
            let family = task.split('(').next().unwrap();
            assert!(prompting.contains(family), "{what}: {prompting}");
        }
        if divergence && has("algorithm.loss=nft") {
            // Resume reads reference_answers.json back.
            set_steps(&out, 2);
            let out_s = out.to_str().unwrap();
            succeeded(
                &spar(&["train", "--resume", out_s]),
                &format!("resume {what}"),
            );
            let lines = metrics(&out);
            assert_eq!(lines.len(), 3, "{what}");
            assert!(
                lines[2]["learner/divergence"].is_number(),
                "{what}: {}",
                lines[2]
            );
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

/// A JSONL task trains and evaluates; the evaluation never asks for more test problems than
/// the file holds.
#[test]
fn a_jsonl_task_trains_and_evaluates_on_its_test_rows() {
    let dir = temp_dir("jsonl");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("sums.jsonl");
    let mut rows = String::new();
    for a in 0..8 {
        rows.push_str(&format!(
            "{{\"question\": \"{a}+1=\", \"answer\": \"{}\", \"split\": \"train\"}}\n",
            a + 1
        ));
    }
    rows.push_str(
        "{\"question\": \"7+2=\", \"answer\": 9, \"split\": \"test\", \"difficulty\": 1}\n",
    );
    rows.push_str(
        "{\"question\": \"8+2=\", \"answer\": 10, \"split\": \"test\", \"difficulty\": 2}\n",
    );
    std::fs::write(&data, rows).unwrap();
    let config = root().join("configs/tasks/arithmetic-grpo-tiny.toml");
    let out = dir.join("run");
    let task = format!("task.name=jsonl:{}", data.display());
    succeeded(&train_small(&config, &out, &[&task]), "spar train jsonl");
    let lines = metrics(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(held_out(&lines[1])["problems"], 2, "{}", lines[1]);
    let ckpt = out.join("checkpoints/step-000001");
    let eval = json(
        &spar(&[
            "eval",
            "--model",
            ckpt.to_str().unwrap(),
            "--k",
            "4",
            "--problems",
            "5",
            "--json",
        ]),
        "spar eval jsonl",
    );
    assert!(
        eval["task"].as_str().unwrap().starts_with("jsonl"),
        "{eval}"
    );
    assert_eq!(eval["problems"], 2, "two test rows: {eval}");
    assert_eq!(
        numeric_keys(&eval["accuracy_by_difficulty"]),
        [1, 2],
        "{eval}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run stopped after step 1 and resumed, once with `--set run.steps=2` and once after its
/// config.toml was edited to three steps, ends exactly where an uninterrupted three-step run
/// ends: the same metrics (but seconds), weights, optimiser moments and state.
#[test]
fn a_resumed_task_run_matches_an_uninterrupted_one() {
    let config = root().join("configs/tasks/arithmetic-grpo-tiny.toml");
    // NFT moves the weights even when every answer is wrong; a KL penalty and a second
    // epoch of minibatches exercise the rest of the state.
    let sets = [
        "eval.every=1",
        "algorithm.loss=nft",
        "algorithm.kl=k3",
        "algorithm.kl_coef=0.1",
        "algorithm.epochs=2",
        "algorithm.minibatch_size=2",
    ];
    let straight = temp_dir("straight");
    let mut with_steps = sets.to_vec();
    with_steps.push("run.steps=3");
    succeeded(&train_small(&config, &straight, &with_steps), "3 steps");

    let stopped = temp_dir("stopped");
    succeeded(&train_small(&config, &stopped, &sets), "1 step");
    let stopped_s = stopped.to_str().unwrap();
    succeeded(
        &spar(&["train", "--resume", stopped_s, "--set", "run.steps=2"]),
        "--resume --set run.steps=2",
    );
    assert_eq!(metrics(&stopped).len(), 3);
    set_steps(&stopped, 3);
    succeeded(&spar(&["train", "--resume", stopped_s]), "--resume");

    let without_seconds = |out: &Path| -> Vec<Value> {
        metrics(out)
            .into_iter()
            .map(|mut m| {
                m.as_object_mut().unwrap().remove("time/seconds");
                m
            })
            .collect()
    };
    let a = without_seconds(&straight);
    assert_eq!(a.len(), 4);
    assert!(
        a[3]["learner/grad_norm"].as_f64().unwrap() > 0.0,
        "{}",
        a[3]
    );
    assert_eq!(a, without_seconds(&stopped));
    for file in ["model.safetensors", "optimizer.safetensors", "state.json"] {
        let read = |out: &Path| std::fs::read(out.join("checkpoints/step-000003").join(file));
        assert!(
            read(&straight).unwrap() == read(&stopped).unwrap(),
            "{file} differs"
        );
    }
    let _ = std::fs::remove_dir_all(&straight);
    let _ = std::fs::remove_dir_all(&stopped);
}
