//! Remote models through `spar serve` on loopback: a tournament through the remote path equals
//! the same model played in process, a self-play run whose rollouts go through the server
//! with LoRA pushes matches an in-process run, and a tournament against a server that drops,
//! stalls and fails requests still completes with the failures counted.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn spar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spar"))
        .args(args)
        .output()
        .expect("the spar binary runs")
}

fn ok(args: &[&str]) -> Output {
    let out = spar(args);
    assert!(
        out.status.success(),
        "spar {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-remote-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `spar serve` child process, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(model: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spar"))
        .args(["serve", "--model", model.to_str().unwrap(), "--port", "0"])
        .args(["--served-model-name", "m"])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spar serve starts");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("spar serve printed its address")
            .unwrap();
        if let Some(rest) = line.split(" on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, url }
}

/// A tiny byte-level TicTacToe player: a warm start on canonical moves.
fn tictactoe_model(dir: &Path) -> PathBuf {
    let out = dir.join("ttt");
    ok(&[
        "train",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/kuhn-spiral-tiny.toml"
        ),
        "--set",
        "game.name=tictactoe",
        "--set",
        "run.steps=0",
        "--set",
        "warm_start.steps=60",
        "--set",
        "eval.every=0",
        "--set",
        "eval.exploitability=false",
        "--out",
        out.to_str().unwrap(),
    ]);
    out.join("checkpoints/step-000000")
}

fn counts_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .find(|l| l.contains("decisions"))
        .unwrap_or_default()
        .split_once(": ")
        .map(|(_, counts)| counts.to_string())
        .unwrap_or_default()
}

#[test]
fn a_tournament_through_spar_serve_equals_the_local_model() {
    let dir = scratch("tournament");
    let model = tictactoe_model(&dir);
    let server = serve(&model, &[]);
    let common = [
        "--game",
        "tictactoe",
        "--games",
        "24",
        "--seed",
        "5",
        "--policy",
        "sample",
        "--max-tokens",
        "12",
        "--json",
    ];
    let local_player = format!("model:{}", model.display());
    let mut local_args = vec!["tournament", "--players"];
    let local_players = format!("{local_player},random");
    local_args.push(&local_players);
    local_args.extend(common);
    let local = ok(&local_args);
    // The remote model has no prompting.json: the checkpoint's prompting as flags.
    let remote_players = format!("remote:{}#m,random", server.url);
    let mut remote_args = vec!["tournament", "--players", &remote_players];
    remote_args.extend(common);
    remote_args.extend([
        "--prompt-style",
        "raw",
        "--view",
        "compact",
        "--protocol",
        "boxed",
        "--temperature",
        "1",
    ]);
    let remote = ok(&remote_args);
    let parse = |o: &Output| -> serde_json::Value { serde_json::from_slice(&o.stdout).unwrap() };
    let (l, r) = (parse(&local), parse(&remote));
    assert_eq!(l["overall"], r["overall"]);
    assert_eq!(l["by_seat"], r["by_seat"]);
    let (lc, rc) = (counts_line(&local.stderr), counts_line(&remote.stderr));
    assert_eq!(lc, rc);
    assert!(lc.contains("0 failed calls"), "{lc}");
    // The games are real: some valid moves were played.
    let wins =
        l["overall"][0]["wins"].as_u64().unwrap() + l["overall"][1]["wins"].as_u64().unwrap();
    assert!(wins > 0, "{l}");
}

#[test]
fn self_play_through_spar_serve_with_lora_pushes_matches_in_process() {
    let dir = scratch("selfplay");
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/kuhn-spiral-tiny-lora.toml"
    );
    let common = [
        "--set",
        "run.steps=3",
        "--set",
        "warm_start.steps=10",
        "--set",
        "rollout.episodes=16",
        "--set",
        "eval.every=0",
        "--set",
        "eval.exploitability=false",
    ];
    let local_out = dir.join("local");
    let mut args = vec!["train", config, "--out", local_out.to_str().unwrap()];
    args.extend(common);
    ok(&args);
    // The server starts from a model of the same architecture; the run pushes its own base.
    let server = serve(&local_out.join("base"), &[]);
    let remote_out = dir.join("remote");
    let servers = format!("rollout.servers=[\"{}\"]", server.url);
    let mut args = vec!["train", config, "--out", remote_out.to_str().unwrap()];
    args.extend(common);
    args.extend(["--set", &servers]);
    ok(&args);
    let metrics = |dir: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (l, r) = (metrics(&local_out), metrics(&remote_out));
    assert_eq!(l.len(), 4);
    assert_eq!(r.len(), 4);
    for step in 1..4 {
        assert_eq!(
            r[step]["selfplay/weight_version"],
            format!("step-{}", step - 1)
        );
        assert_eq!(r[step]["selfplay/failed_calls"], 0);
        for key in ["selfplay/invalid_rate", "selfplay/response_tokens"] {
            let (a, b) = (
                l[step][key].as_f64().unwrap(),
                r[step][key].as_f64().unwrap(),
            );
            assert!((a - b).abs() < 0.1, "step {step} {key}: {a} vs {b}");
        }
        for role in ["kuhn/player0", "kuhn/player1"] {
            let key = format!("selfplay/{role}/mean_return");
            let a = l[step][&key].as_f64().unwrap_or(0.0);
            let b = r[step][&key].as_f64().unwrap_or(0.0);
            assert!((a - b).abs() < 0.35, "step {step} {role}: {a} vs {b}");
        }
    }
    // The server holds the last pushed adapter under its versioned name.
    let client = spar_remote::Client::new(spar_remote::ClientConfig::new(&server.url)).unwrap();
    let names: Vec<String> = client
        .models()
        .unwrap()
        .data
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert!(
        names.contains(&"policy-step-000002".to_string()),
        "{names:?}"
    );
}

#[test]
fn a_tournament_against_a_faulty_server_completes_and_counts_failures() {
    let dir = scratch("faults");
    let model = tictactoe_model(&dir);
    let server = serve(
        &model,
        &[
            "--faults",
            "drop=0.2,stall=0.1,error=0.4,stall_ms=1500,seed=3",
        ],
    );
    let players = format!("remote:{}#m,random", server.url);
    let out = ok(&[
        "tournament",
        "--game",
        "tictactoe",
        "--players",
        &players,
        "--games",
        "10",
        "--max-tokens",
        "12",
        "--prompt-style",
        "raw",
        "--view",
        "compact",
        "--remote-timeout",
        "0.5",
        "--remote-retries",
        "1",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["overall"][0]["games"], 10);
    let counts = counts_line(&out.stderr);
    let failed: u64 = counts
        .split(", ")
        .find_map(|part| part.strip_suffix(" failed calls (each a forfeit)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no failure count in {counts:?}"));
    assert!(failed > 0, "{counts}");
}
