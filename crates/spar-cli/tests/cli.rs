//! End-to-end tests of the `spar` binary: the done-when lines of the foundation and
//! text-view issues, and the exit-2 error cases.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn spar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spar"))
        .args(args)
        .output()
        .expect("the spar binary runs")
}

fn spar_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spar"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the spar binary starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("stdin accepts input");
    child.wait_with_output().expect("the spar binary finishes")
}

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "spar failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn assert_usage_error(output: &Output, mentions: &[&str]) {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in mentions {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
}

#[test]
fn kuhn_uniform_nash_conv_is_eleven_twelfths() {
    // OpenSpiel exploitability_test.py: 11/12.
    let report = json(&spar(&[
        "exploitability",
        "--game",
        "kuhn",
        "--policy",
        "uniform",
        "--json",
    ]));
    let nash_conv = report["nash_conv"].as_f64().unwrap();
    assert!((nash_conv - 11.0 / 12.0).abs() < 1e-6, "{report}");
    assert!((report["exploitability"].as_f64().unwrap() - 11.0 / 24.0).abs() < 1e-6);
}

#[test]
fn kuhn_cfr_plus_200_iterations_is_below_a_thousandth() {
    let report = json(&spar(&[
        "solve",
        "--game",
        "kuhn",
        "--algo",
        "cfr+",
        "--iterations",
        "200",
        "--json",
    ]));
    assert!(
        report["exploitability"].as_f64().unwrap() <= 0.001,
        "{report}"
    );
    assert_eq!(report["iterations"], 200);
}

#[test]
fn solved_policy_round_trips_through_a_file() {
    let path = temp_path("kuhn-cfr.json");
    let solved = json(&spar(&[
        "solve",
        "--game",
        "kuhn",
        "--algo",
        "cfr",
        "--iterations",
        "50",
        "--out",
        path.to_str().unwrap(),
        "--json",
    ]));
    let evaluated = json(&spar(&[
        "exploitability",
        "--game",
        "kuhn",
        "--policy",
        path.to_str().unwrap(),
        "--json",
    ]));
    let (a, b) = (
        solved["nash_conv"].as_f64().unwrap(),
        evaluated["nash_conv"].as_f64().unwrap(),
    );
    assert!(
        (a - b).abs() < 1e-9,
        "solve said {a}, the file evaluates to {b}"
    );
    // The file also plays in a tournament.
    let spec = format!("tabular:{}", path.display());
    let report = json(&spar(&[
        "tournament",
        "--game",
        "kuhn",
        "--players",
        &format!("{spec},random"),
        "--games",
        "40",
        "--json",
    ]));
    assert_eq!(report["games"], 40);
}

#[test]
fn bad_input_exits_with_code_two_and_names_the_problem() {
    assert_usage_error(
        &spar(&["exploitability", "--game", "chess", "--policy", "uniform"]),
        &["unknown game \"chess\"", "known games: kuhn"],
    );
    assert_usage_error(
        &spar(&["tournament", "--game", "kuhn", "--players", "wizard,random"]),
        &["unknown player \"wizard\"", "accepted: random"],
    );
    assert_usage_error(
        &spar(&[
            "exploitability",
            "--game",
            "kuhn",
            "--policy",
            "/no/such/file.json",
        ]),
        &["/no/such/file.json", "uniform"],
    );
    assert_usage_error(
        &spar(&[
            "exploitability",
            "--game",
            "kuhn(hands",
            "--policy",
            "uniform",
        ]),
        &["malformed game specification"],
    );
    let bad = temp_path("bad.json");
    std::fs::write(&bad, "{\"policy\": {\"0\": [[0, 0.5], [1, 0.6]]}}").unwrap();
    assert_usage_error(
        &spar(&[
            "exploitability",
            "--game",
            "kuhn",
            "--policy",
            bad.to_str().unwrap(),
        ]),
        &["sum to"],
    );
    std::fs::write(&bad, "{not json").unwrap();
    assert_usage_error(
        &spar(&[
            "exploitability",
            "--game",
            "kuhn",
            "--policy",
            bad.to_str().unwrap(),
        ]),
        &["invalid JSON"],
    );
    assert_usage_error(
        &spar(&[
            "play",
            "--game",
            "kuhn",
            "--p0",
            "random",
            "--invalid-move-rule",
            "lenient",
        ]),
        &["spiral, textarena, retry:N"],
    );
}

#[test]
fn kuhn_play_writes_a_full_transcript() {
    let path = temp_path("kuhn.jsonl");
    let output = spar(&[
        "play",
        "--game",
        "kuhn",
        "--p0",
        "random",
        "--p1",
        "random",
        "--seed",
        "1",
        "--transcript",
        path.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one episode, one line");
    let episode: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let turns = episode["turns"].as_array().unwrap();
    assert!(turns.len() >= 2);
    for turn in turns {
        assert!(turn["prompt"].as_str().unwrap().contains("Your card is"));
        assert!(turn["completion"].as_str().unwrap().starts_with("\\boxed{"));
        assert!(turn["role"]["name"].as_str().unwrap().starts_with("player"));
        assert_eq!(turn["outcome"]["kind"], "move");
        assert!(turn["outcome"]["action"].is_u64());
    }
    let returns = episode["returns"].as_array().unwrap();
    assert_eq!(returns.len(), 2);
    let sum: f64 = returns.iter().map(|r| r.as_f64().unwrap()).sum();
    assert_eq!(sum, 0.0);
}

#[test]
fn a_human_kuhn_session_through_stdin_handles_an_illegal_answer() {
    // Player 0 is human; under `textarena` one invalid answer earns a retry.
    let output = spar_with_stdin(
        &[
            "play",
            "--game",
            "kuhn",
            "--p0",
            "human",
            "--p1",
            "random",
            "--seed",
            "3",
            "--invalid-move-rule",
            "textarena",
            "--json",
        ],
        "I raise!\n\\boxed{bet}\n\\boxed{call}\n",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Legal actions: [check], [bet]"), "{stdout}");
    assert!(stdout.contains("Invalid move by player 0"), "{stdout}");
    assert!(stdout.contains("previous answer was invalid"), "{stdout}");
}

#[test]
fn minimax_never_loses_tictactoe_in_either_seat() {
    let report = json(&spar(&[
        "tournament",
        "--game",
        "tictactoe",
        "--players",
        "minimax,random",
        "--games",
        "200",
        "--json",
    ]));
    for seat in 0..2 {
        let record = &report["by_seat"][0][seat];
        assert_eq!(record["losses"], 0, "minimax lost in seat {seat}: {record}");
        assert!(record["games"].as_u64().unwrap() == 100);
    }
    assert!(
        report["overall"][0]["wins"].as_u64().unwrap() > 150,
        "{report}"
    );
}

#[test]
fn a_scripted_human_tictactoe_game_with_one_illegal_input() {
    // Both seats human; player 1's first answer names an occupied cell, which the
    // `textarena` rule answers with one retry. X then wins on the 2-4-6 diagonal.
    let transcript = temp_path("ttt.jsonl");
    let output = spar_with_stdin(
        &[
            "play",
            "--game",
            "tictactoe",
            "--p0",
            "human",
            "--p1",
            "human",
            "--invalid-move-rule",
            "textarena",
            "--transcript",
            transcript.to_str().unwrap(),
        ],
        "\\boxed{4}\nI take the center \\boxed{4}\n\\boxed{0}\n\\boxed{2}\n[1]\n6\n",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Invalid move by player 1"), "{stdout}");
    assert!(
        stdout.contains("Game over: returns [1.0, -1.0]"),
        "{stdout}"
    );
    let episode: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&transcript).unwrap().trim()).unwrap();
    assert_eq!(episode["invalid_moves"], serde_json::json!([0, 1]));
    assert_eq!(episode["turns"].as_array().unwrap().len(), 6);
    assert_eq!(episode["turns"][1]["outcome"]["kind"], "invalid");
}

#[test]
fn the_spiral_rule_ends_a_human_game_at_the_first_illegal_input() {
    let output = spar_with_stdin(
        &[
            "play",
            "--game",
            "tictactoe",
            "--p0",
            "human",
            "--p1",
            "random",
        ],
        "\\boxed{center}\n",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("Game over: returns [-1.5, 0.5]"),
        "{stdout}"
    );
}

#[test]
fn minimax_is_refused_where_the_tree_is_too_large_and_alphabeta_plays() {
    assert_usage_error(
        &spar(&[
            "tournament",
            "--game",
            "connect_four",
            "--players",
            "minimax,random",
        ]),
        &["alphabeta"],
    );
    assert_usage_error(
        &spar(&[
            "tournament",
            "--game",
            "kuhn",
            "--players",
            "minimax,random",
        ]),
        &["minimax"],
    );
    let report = json(&spar(&[
        "tournament",
        "--game",
        "connect_four",
        "--players",
        "alphabeta:2,random",
        "--games",
        "10",
        "--json",
    ]));
    assert!(
        report["overall"][0]["wins"].as_u64().unwrap() >= 8,
        "{report}"
    );
}

#[test]
fn three_players_play_a_round_robin_with_elo() {
    let report = json(&spar(&[
        "tournament",
        "--game",
        "tictactoe",
        "--players",
        "minimax,alphabeta:1,random",
        "--games",
        "20",
        "--json",
    ]));
    let elo: Vec<f64> = report["elo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_f64().unwrap())
        .collect();
    assert_eq!(elo.len(), 3);
    assert!(elo[0] > elo[2], "minimax outrates random: {elo:?}");
    assert_eq!(report["matches"].as_array().unwrap().len(), 3);
}

#[test]
fn games_lists_every_game() {
    let listing = json(&spar(&["games", "--json"]));
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for name in ["kuhn", "tictactoe", "connect_four", "negotiation"] {
        assert!(names.contains(&name), "{names:?}");
    }
}

#[test]
fn leduc_uniform_nash_conv_matches_openspiel() {
    // OpenSpiel exploitability_test.py: 4.747222222222222.
    let report = json(&spar(&[
        "exploitability",
        "--game",
        "leduc",
        "--policy",
        "uniform",
        "--json",
    ]));
    assert!(
        (report["nash_conv"].as_f64().unwrap() - 4.7472).abs() < 1e-4,
        "{report}"
    );
}

#[test]
fn leduc_cfr_1000_iterations_reaches_openspiels_exploitability() {
    // OpenSpiel's CFR trace on Leduc: 0.0118 at 999 iterations (PR #197); the issue asks
    // for <= 0.015.
    let report = json(&spar(&[
        "solve",
        "--game",
        "leduc",
        "--algo",
        "cfr",
        "--iterations",
        "1000",
        "--report-every",
        "0",
        "--json",
    ]));
    let exploitability = report["exploitability"].as_f64().unwrap();
    assert!(exploitability <= 0.015, "{report}");
    assert!((exploitability - 0.0118).abs() < 1e-4, "{report}");
}

/// `spar lm`: pretrain a tiny model, fine-tune a LoRA adapter on it, merge the adapter, and
/// check that the adapter and the merged checkpoint sample the same greedy text.
#[test]
fn lm_pretrain_lora_finetune_merge_and_sample() {
    let data = temp_path("lm-data.txt");
    std::fs::write(&data, "one two three four. ".repeat(60)).unwrap();
    let text = data.to_str().unwrap();
    let base = temp_path("lm-base");
    let base_s = base.to_str().unwrap();
    let out = spar(&[
        "lm",
        "pretrain",
        "--data",
        text,
        "--out",
        base_s,
        "--steps",
        "40",
        "--hidden",
        "32",
        "--layers",
        "1",
        "--heads",
        "2",
        "--seq-len",
        "32",
        "--batch",
        "8",
        "--lr",
        "1e-2",
    ]);
    assert!(out.status.success(), "{out:?}");
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "loss.csv",
    ] {
        assert!(base.join(file).exists(), "pretrain wrote no {file}");
    }
    let adapter = temp_path("lm-adapter");
    let adapter_s = adapter.to_str().unwrap();
    let out = spar(&[
        "lm",
        "finetune",
        "--model",
        base_s,
        "--data",
        text,
        "--out",
        adapter_s,
        "--lora-rank",
        "4",
        "--lora-targets",
        "all-linear",
        "--steps",
        "20",
        "--seq-len",
        "32",
        "--lr",
        "1e-2",
    ]);
    assert!(out.status.success(), "{out:?}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(adapter.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 4);
    let merged = temp_path("lm-merged");
    let merged_s = merged.to_str().unwrap();
    let out = spar(&[
        "lm", "merge", "--model", base_s, "--lora", adapter_s, "--out", merged_s,
    ]);
    assert!(out.status.success(), "{out:?}");
    let sample = |extra: &[&str]| {
        let mut args = vec![
            "lm",
            "sample",
            "--prompt",
            "one two",
            "--max-tokens",
            "12",
            "--json",
        ];
        args.extend_from_slice(extra);
        json(&spar(&args))
    };
    let with_adapter = sample(&["--model", base_s, "--lora", adapter_s]);
    let with_merged = sample(&["--model", merged_s]);
    assert_eq!(with_adapter["token_ids"], with_merged["token_ids"]);
    assert_eq!(with_adapter["token_ids"].as_array().unwrap().len(), 12);
    // Seeded sampling at temperature 1 repeats itself.
    let hot = |seed: &str| {
        sample(&["--model", base_s, "--temperature", "1", "--seed", seed])["token_ids"].clone()
    };
    assert_eq!(hot("3"), hot("3"));

    // Bad input: exit code 2 with the path named.
    let out = spar(&[
        "lm", "sample", "--model", base_s, "--lora", text, "--prompt", "x",
    ]);
    assert_usage_error(&out, &["adapter_config.json"]);
    let missing = temp_path("no-such-model");
    let out = spar(&["lm", "info", "--model", missing.to_str().unwrap()]);
    assert_usage_error(&out, &["no-such-model"]);
}

/// `spar exploitability --policy model:DIR`: a language model evaluated exactly on Kuhn Poker.
#[test]
fn exploitability_of_a_language_model_policy() {
    let data = temp_path("kuhn-lm-data.txt");
    std::fs::write(&data, "\\boxed{bet}\n".repeat(80)).unwrap();
    let model = temp_path("kuhn-lm");
    let out = spar(&[
        "lm",
        "pretrain",
        "--data",
        data.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--steps",
        "5",
        "--hidden",
        "16",
        "--layers",
        "1",
        "--heads",
        "2",
        "--seq-len",
        "32",
        "--batch",
        "4",
    ]);
    assert!(out.status.success(), "{out:?}");
    let policy_file = temp_path("kuhn-lm-policy.json");
    let spec = format!("model:{}", model.display());
    let report = json(&spar(&[
        "exploitability",
        "--game",
        "kuhn",
        "--policy",
        &spec,
        "--json",
        "--save-policy",
        policy_file.to_str().unwrap(),
    ]));
    let m = &report["model"];
    assert_eq!(m["information_sets"], 12);
    let outside = m["outside_mass_mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&outside));
    // The saved table is an ordinary policy file: evaluating it gives the same NashConv.
    let again = json(&spar(&[
        "exploitability",
        "--game",
        "kuhn",
        "--policy",
        policy_file.to_str().unwrap(),
        "--json",
    ]));
    let a = report["nash_conv"].as_f64().unwrap();
    let b = again["nash_conv"].as_f64().unwrap();
    assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    assert!(a > 0.0 && a <= 4.0);
    // A bad temperature is a usage error.
    let out = spar(&[
        "exploitability",
        "--game",
        "kuhn",
        "--policy",
        &spec,
        "--temperature",
        "0",
    ]);
    assert_usage_error(&out, &["--temperature"]);
}

/// `spar train`: a tiny Kuhn self-play run from the shipped config with overrides, its run
/// directory, `--resume`, and config errors with exit code 2.
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
    let e = last["exploitability"].as_f64().unwrap();
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
    let configs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/");
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
    for (i, (config, sets, mentions)) in cases.iter().enumerate() {
        let out = temp_path(&format!("unfit-{i}"));
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
                v.as_object_mut().unwrap().remove("seconds");
                v
            })
            .collect()
    };
    let (x, y) = (metrics(&straight), metrics(&killed));
    assert_eq!(x.len(), 5, "steps 0 to 4");
    assert_eq!(x, y);
    assert!(x[4]["kl_ref"].as_f64().is_some() && x[4]["vs_cfr"].is_array());
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
