//! Every shipped config trains and evaluates from the command line: each runs one step of
//! `spar train` (with small counts) and writes the metrics its game is evaluated by.

use std::path::PathBuf;
use std::process::Command;

fn configs() -> Vec<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs"));
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    found.sort();
    found
}

fn continue_cleanup(out: &std::path::Path) {
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn every_shipped_config_trains_and_evaluates() {
    let configs = configs();
    assert!(configs.len() >= 6, "{configs:?}");
    for config in configs {
        let name = config.file_stem().unwrap().to_string_lossy().into_owned();
        let out = std::env::temp_dir().join(format!("spar-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let sets = [
            "run.steps=1",
            "warm_start.steps=2",
            "rollout.episodes=4",
            "eval.every=1",
            "eval.games_vs_random=2",
            "eval.games_vs_cfr=2",
            "eval.games_vs_opponents=2",
            "eval.cfr_iterations=20",
        ];
        let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let text = std::fs::read_to_string(&config).unwrap();
        if text.contains("models/SmolLM2")
            && !root.join("models/SmolLM2-135M-Instruct.Q4_1.gguf").exists()
        {
            eprintln!(
                "note: {name} needs models/SmolLM2-135M-Instruct.Q4_1.gguf (run \
                 scripts/setup_smollm2.sh); skipped"
            );
            continue;
        }
        // Configs name models relative to the repository root, where the README runs them.
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spar"));
        cmd.current_dir(&root);
        cmd.args([
            "train",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        for s in sets {
            cmd.args(["--set", s]);
        }
        let output = cmd.output().unwrap();
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{name}");
        let last = &lines[1];
        let keys: Vec<&str> = last
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        // The games evaluated: `eval/<game>/...`; per seat `eval/<game>/player<i>/...`.
        let games: std::collections::BTreeSet<&str> = keys
            .iter()
            .filter_map(|k| k.strip_prefix("eval/")?.split('/').next())
            .collect();
        let has = |game: &str, suffix: &str| {
            keys.iter()
                .any(|k| k.starts_with(&format!("eval/{game}/")) && k.ends_with(suffix))
        };
        for game in &games {
            assert!(has(game, "/vs_random"), "{name}/{game}: {last}");
        }
        if text.contains("\nnames = [") {
            // A multi-game config: each game evaluated on its own, its rollouts too.
            assert!(games.len() >= 2, "{name}: {last}");
            for game in &games {
                assert!(
                    last[format!("selfplay/{game}/episodes")].is_number(),
                    "{name}: {last}"
                );
            }
            assert!(
                games.iter().any(|g| has(g, "/exploitability")),
                "{name}: {last}"
            );
            continue_cleanup(&out);
            continue;
        }
        assert_eq!(games.len(), 1, "{name}: {last}");
        if text.contains("exploitability = true") || !text.contains("exploitability =") {
            assert!(
                games.iter().all(|g| has(g, "/exploitability")),
                "{name}: {last}"
            );
        }
        if text.contains("opponents = [") {
            assert!(
                keys.iter().any(|k| k.contains("/vs_players/")),
                "{name}: {last}"
            );
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

/// `spar tournament --run DIR`: the checkpoints of a run join a round robin under their step
/// names, with an Elo table.
#[test]
fn a_round_robin_of_a_runs_checkpoints() {
    let out = std::env::temp_dir().join(format!("spar-run-elo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/kuhn-spiral-tiny.toml"
    );
    let train = Command::new(env!("CARGO_BIN_EXE_spar"))
        .args(["train", config, "--out", out.to_str().unwrap()])
        .args(["--set", "run.steps=2", "--set", "run.checkpoint_every=1"])
        .args(["--set", "warm_start.steps=2", "--set", "rollout.episodes=4"])
        .args(["--set", "eval.every=0", "--set", "eval.average=false"])
        .output()
        .unwrap();
    assert!(
        train.status.success(),
        "{}",
        String::from_utf8_lossy(&train.stderr)
    );
    let t = Command::new(env!("CARGO_BIN_EXE_spar"))
        .args([
            "tournament",
            "--run",
            out.to_str().unwrap(),
            "--players",
            "random",
        ])
        .args(["--games", "4", "--json"])
        .output()
        .unwrap();
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let report: serde_json::Value = serde_json::from_slice(&t.stdout).unwrap();
    let players: Vec<&str> = report["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(players, ["random", "step-0", "step-1", "step-2"]);
    assert_eq!(report["elo"].as_array().unwrap().len(), 4);
    let _ = std::fs::remove_dir_all(&out);
}
