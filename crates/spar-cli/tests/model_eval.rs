//! End-to-end tests of `spar eval --model`'s exact values: the model's expected return per
//! seat, computed on the game tree, beside the sampled means and their confidence intervals.
//!
//! The model is a tiny byte-level language model pretrained for 300 steps on `\boxed{bet}`
//! lines, which makes it bet (or call) at every Kuhn information state with probability
//! above 0.9999 (checked below): a policy whose values can be worked out by hand.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use spar_core::UniformRandom;
use spar_games::kuhn::KuhnPoker;

fn spar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spar"))
        .args(args)
        .output()
        .expect("the spar binary runs")
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
    let dir = std::env::temp_dir().join(format!("spar-cli-model-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// The always-betting tiny model (built once per test binary).
fn betting_model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let data = temp_path("bet-data.txt");
        std::fs::write(&data, "\\boxed{bet}\n".repeat(80)).unwrap();
        let model = temp_path("bet-model");
        let out = spar(&[
            "lm",
            "pretrain",
            "--data",
            data.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
            "--steps",
            "300",
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
        model
    })
}

/// `spar eval` of the betting model on Kuhn Poker with the compact view (short prompts),
/// answering with the model's distribution over the legal answers (`--policy legal`), which
/// is the distribution the exact values are computed for.
fn eval_kuhn(vs: &str, games: usize, extra: &[&str]) -> Output {
    let model = betting_model().to_str().unwrap().to_string();
    let games = games.to_string();
    let mut args = vec![
        "eval", "--model", &model, "--game", "kuhn", "--vs", vs, "--games", &games, "--policy",
        "legal", "--view", "compact",
    ];
    args.extend_from_slice(extra);
    spar(&args)
}

fn exact_returns(report: &serde_json::Value) -> Vec<f64> {
    let returns: Vec<f64> = report["exact"]["returns"]
        .as_array()
        .expect("exact.returns is an array")
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(returns.len(), 2, "{report}");
    for (seat, value) in returns.iter().enumerate() {
        assert!(value.is_finite(), "{report}");
        assert_eq!(report["seats"][seat]["exact_return"].as_f64(), Some(*value));
    }
    returns
}

/// Each seat's sampled mean lies within three 95% half-widths of its exact value (the games
/// draw fresh deals, so the interval is the plain one; a correct implementation fails this
/// with probability about 3e-3 per seat, and the seeds are fixed).
fn assert_sampled_near_exact(report: &serde_json::Value, exact: &[f64]) {
    for (seat, value) in exact.iter().enumerate() {
        let s = &report["seats"][seat];
        let mean = s["mean_return"].as_f64().unwrap();
        let ci95 = s["ci95"].as_f64().unwrap();
        assert!(ci95 > 0.0 && ci95 < 0.1, "{s}");
        assert!(
            (mean - value).abs() <= 3.0 * ci95,
            "seat {seat}: sampled {mean} ± {ci95}, exact {value}"
        );
    }
}

#[test]
fn kuhn_exact_values_against_cfr_plus_agree_with_spar_eval_and_the_samples() {
    let model = betting_model();
    // The model's table, saved by `spar exploitability` with the same prompting.
    let model_file = temp_path("bet-policy.json");
    let spec = format!("model:{}", model.display());
    let saved = json(&spar(&[
        "exploitability",
        "--game",
        "kuhn",
        "--policy",
        &spec,
        "--view",
        "compact",
        "--save-policy",
        model_file.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(saved["model"]["information_sets"], 12);
    let cfr_file = temp_path("cfr-200.json");
    let solved = spar(&[
        "solve",
        "--game",
        "kuhn",
        "--algo",
        "cfr+",
        "--iterations",
        "200",
        "--out",
        cfr_file.to_str().unwrap(),
        "--json",
    ]);
    assert!(solved.status.success(), "{solved:?}");
    let game = KuhnPoker::new();
    let model_policy = spar_eval::policy_file::load(&model_file, &game).unwrap();
    let cfr_policy = spar_eval::policy_file::load(&cfr_file, &game).unwrap();
    for distribution in model_policy.table.values() {
        assert!(
            distribution[1].1 > 0.9999,
            "the model bets: {distribution:?}"
        );
    }
    let direct = spar_eval::returns_by_seat(&game, &model_policy, &cfr_policy).unwrap();

    let report = json(&eval_kuhn("cfr+:200", 2000, &["--json"]));
    let exact = exact_returns(&report);
    for seat in 0..2 {
        assert!(
            (exact[seat] - direct[seat]).abs() < 1e-9,
            "seat {seat}: eval {exact:?}, spar-eval {direct:?}"
        );
    }
    // Always betting against an equilibrium: player 1 folds J, calls Q with 1/3 and calls K,
    // so seat 0 gets 1/3 * 1 + 1/3 * (2/3 * 1 + 1/3 * 0) + 1/3 * (-2) = -1/9 (CFR+ after 200
    // iterations is within a few thousandths of equilibrium); no policy beats -1/18 in seat 0.
    assert!((exact[0] + 1.0 / 9.0).abs() < 0.01, "{exact:?}");
    assert!(exact[0] <= -1.0 / 18.0 + 0.01, "{exact:?}");
    let mean = report["exact"]["mean_return"].as_f64().unwrap();
    assert!((mean - (exact[0] + exact[1]) / 2.0).abs() < 1e-12);
    assert!(report["exact_unavailable"].is_null(), "{report}");
    assert_eq!(report["policy"], "legal");
    assert_sampled_near_exact(&report, &exact);

    // The human table prints the interval and the exact value of each seat.
    let human = eval_kuhn("cfr+:200", 20, &[]);
    assert!(human.status.success(), "{human:?}");
    let text = String::from_utf8(human.stdout).unwrap();
    assert!(text.contains("mean return (95% CI)  exact"), "{text}");
    for value in &exact {
        assert!(text.contains(&format!("{value:+.4}")), "{text}");
    }
    assert!(text.contains(" ± "), "{text}");
    assert!(
        text.contains("exact: the model tabulated at 12 information sets"),
        "{text}"
    );
}

#[test]
fn kuhn_exact_values_against_random_are_hand_checked() {
    // The model (always bet or call) against uniform random play.
    // Seat 0: it bets; player 1 folds half the time (+1) and calls otherwise (a 2-chip
    // showdown, mean 0 over the deals): 1/2.
    // Seat 1: player 0 checks half the time, the model bets and player 0 folds half of
    // those times (+1 for the model; calls are showdowns, mean 0); when player 0 bets, the
    // model calls (showdown, mean 0): 1/4.
    let report = json(&eval_kuhn("random", 2000, &["--json"]));
    let exact = exact_returns(&report);
    assert!((exact[0] - 0.5).abs() < 1e-3, "{exact:?}");
    assert!((exact[1] - 0.25).abs() < 1e-3, "{exact:?}");
    let model_file = temp_path("bet-policy-random.json");
    let spec = format!("model:{}", betting_model().display());
    json(&spar(&[
        "exploitability",
        "--game",
        "kuhn",
        "--policy",
        &spec,
        "--view",
        "compact",
        "--save-policy",
        model_file.to_str().unwrap(),
        "--json",
    ]));
    let game = KuhnPoker::new();
    let model_policy = spar_eval::policy_file::load(&model_file, &game).unwrap();
    let direct = spar_eval::returns_by_seat(&game, &model_policy, &UniformRandom).unwrap();
    assert!((exact[0] - direct[0]).abs() < 1e-9 && (exact[1] - direct[1]).abs() < 1e-9);
    assert_sampled_near_exact(&report, &exact);
}

#[test]
fn eval_says_why_it_has_no_exact_value() {
    let model = betting_model().to_str().unwrap().to_string();
    let unavailable = |report: &serde_json::Value| -> String {
        assert!(report["exact"].is_null(), "{report}");
        for seat in 0..2 {
            assert!(report["seats"][seat]["exact_return"].is_null(), "{report}");
        }
        report["exact_unavailable"].as_str().unwrap().to_string()
    };
    // A language model opponent samples free text: no exact policy.
    let vs = format!("model:{model}");
    let report = json(&eval_kuhn(&vs, 2, &["--json"]));
    let reason = unavailable(&report);
    assert!(reason.contains("no exact policy"), "{reason}");
    let report = json(&eval_kuhn("cfr+:20", 2, &["--json", "--no-exact"]));
    assert_eq!(unavailable(&report), "--no-exact");
    // TicTacToe's tree is above the limit.
    let report = json(&spar(&[
        "eval",
        "--model",
        &model,
        "--game",
        "tictactoe",
        "--vs",
        "random",
        "--games",
        "1",
        "--view",
        "compact",
        "--max-tokens",
        "4",
        "--json",
    ]));
    let reason = unavailable(&report);
    assert!(reason.contains("more than 100000 nodes"), "{reason}");
    let human = eval_kuhn(&vs, 2, &[]);
    let text = String::from_utf8(human.stdout).unwrap();
    assert!(text.contains("exact: not computed: the opponent"), "{text}");
}
