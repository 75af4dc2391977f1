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

/// One raw HTTP exchange on a fresh connection: `send` written in `chunks` (a slow client
/// sleeps `pause` between them), the write side shut when `shut` (a truncated request), and
/// the answer's status code (`None`: the connection closed without one).
fn exchange(
    addr: &str,
    send: &[u8],
    chunks: usize,
    pause: std::time::Duration,
    shut: bool,
) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .ok()?;
    for chunk in send.chunks(send.len().div_ceil(chunks.max(1)).max(1)) {
        stream.write_all(chunk).ok()?;
        std::thread::sleep(pause);
    }
    if send.is_empty() {
        // An idle connection: open, silent, then closed.
        std::thread::sleep(pause);
    }
    if shut {
        stream.shutdown(std::net::Shutdown::Write).ok()?;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1)?.parse().ok()
}

fn post_request(body: &str) -> Vec<u8> {
    format!(
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The peak resident memory of process `pid` in KiB (`VmHWM`, Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The smallest Kuhn model `spar train` makes (hidden 16, one layer, one warm-start step),
/// in `dir/run`; returns its checkpoint.
fn smallest_model(dir: &Path) -> PathBuf {
    let out = dir.join("run");
    ok(&[
        "train",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/kuhn-spiral-tiny.toml"
        ),
        "--set",
        "run.steps=0",
        "--set",
        "warm_start.steps=1",
        "--set",
        "model.hidden=16",
        "--set",
        "model.layers=1",
        "--set",
        "model.heads=2",
        "--set",
        "eval.every=0",
        "--set",
        "eval.exploitability=false",
        "--out",
        out.to_str().unwrap(),
    ]);
    out.join("checkpoints/step-000000")
}

/// `spar serve` on 127.0.0.1 under hostile load, all at once: malformed JSON, bodies over
/// `--max-body-bytes`, requests cut short, binary garbage, slow clients (a byte every few
/// milliseconds), idle connections, and concurrent well-formed completions. No crash, every
/// well-formed request answered 200, every hostile one answered 4xx (or closed), memory
/// bounded (peak RSS under 1 GiB), and the server healthy after. Prints the figures recorded
/// in docs/BENCHMARKS.md (`cargo test -p spar-cli --test remote hostile -- --nocapture`).
#[test]
fn spar_serve_survives_hostile_load_and_answers_every_well_formed_request() {
    use std::time::{Duration, Instant};
    let dir = scratch("hostile");
    let server = serve(
        &smallest_model(&dir),
        &["--max-body-bytes", "65536", "--max-connections", "128"],
    );
    let addr = server
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string();
    let pid = server.child.id();
    let good = |seed: usize| {
        post_request(&format!(
            r#"{{"model":"m","prompt":"Kuhn {seed}","max_tokens":4,"temperature":1.0,"seed":{seed}}}"#
        ))
    };
    let fast = Duration::ZERO;
    // (kind, how many, request, chunks, pause, shut write side, well-formed)
    type Load = (&'static str, usize, Vec<u8>, usize, Duration, bool, bool);
    let loads: Vec<Load> = vec![
        (
            "malformed JSON",
            40,
            post_request("{\"model\": \"m\", \"prompt\": [1, 2"),
            1,
            fast,
            false,
            false,
        ),
        (
            "oversized body",
            20,
            b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n".to_vec(),
            1,
            fast,
            false,
            false,
        ),
        (
            "truncated body",
            20,
            b"POST /v1/completions HTTP/1.1\r\nContent-Length: 200\r\n\r\n{\"model\":".to_vec(),
            1,
            fast,
            true,
            false,
        ),
        (
            "binary garbage",
            10,
            (0..200u8)
                .map(|b| b.wrapping_mul(37))
                .chain(*b"\r\n\r\n")
                .collect(),
            1,
            fast,
            false,
            false,
        ),
        (
            "idle connection",
            8,
            Vec::new(),
            1,
            Duration::from_millis(500),
            true,
            false,
        ),
        (
            "slow client",
            10,
            good(1000),
            40,
            Duration::from_millis(10),
            false,
            true,
        ),
        ("well-formed", 64, Vec::new(), 1, fast, false, true),
    ];
    let started = Instant::now();
    let results: Vec<(&str, Option<u16>, Duration, bool)> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (kind, count, request, chunks, pause, shut, well_formed) in &loads {
            for i in 0..*count {
                let request = if *kind == "well-formed" {
                    good(i)
                } else {
                    request.clone()
                };
                let addr = addr.clone();
                handles.push(scope.spawn(move || {
                    let t = Instant::now();
                    let status = exchange(&addr, &request, *chunks, *pause, *shut);
                    (*kind, status, t.elapsed(), *well_formed)
                }));
            }
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = started.elapsed();
    assert!(server.child.id() == pid);
    let mut latencies: Vec<Duration> = Vec::new();
    let mut errors = 0;
    for (kind, status, latency, well_formed) in &results {
        if *well_formed {
            assert_eq!(*status, Some(200), "a {kind} request was not answered");
            if *kind == "well-formed" {
                latencies.push(*latency);
            }
        } else {
            // A hostile request gets a 4xx, or (an idle connection) is closed quietly.
            assert!(
                status.is_none_or(|s| (400..500).contains(&s)),
                "{kind}: {status:?}"
            );
            if *kind != "idle connection" {
                assert!(status.is_some(), "{kind} got no answer");
            }
            errors += 1;
        }
    }
    latencies.sort();
    let p =
        |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).min(latencies.len()) - 1];
    let health = exchange(
        &addr,
        b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n",
        1,
        fast,
        false,
    );
    assert_eq!(health, Some(200), "the server is healthy after the load");
    let peak = peak_rss_kib(pid);
    if let Some(kib) = peak {
        assert!(kib < 1 << 20, "peak RSS {kib} KiB");
    }
    println!(
        "hostile load: {} requests in {:.2} s ({} well-formed, all answered 200; {} hostile, \
         all answered 4xx or closed); the {} concurrent well-formed completions: latency p50 \
         {:.0} ms, p99 {:.0} ms; server peak RSS {} MiB",
        results.len(),
        wall.as_secs_f64(),
        results.iter().filter(|r| r.3).count(),
        errors,
        latencies.len(),
        p(0.5).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
        peak.map_or("?".into(), |k| (k / 1024).to_string())
    );
}

/// `spar serve --host 0.0.0.0` with its key from `SPAR_API_KEY`: a weight update without the
/// key is refused (401), spar's client with the key (from the same variable) gets it done, and
/// stderr has one log line per request with method, path and status. A malformed `--api-key`
/// or `--log` is a usage error (exit 2).
#[test]
fn spar_serve_takes_its_api_key_from_the_environment_and_logs_each_request() {
    let model = smallest_model(&scratch("apikey"));
    let m = model.to_str().unwrap();
    for (flag, value) in [("--api-key", "two words"), ("--log", "spar_remote=loud")] {
        let refused = spar(&["serve", "--model", m, "--port", "0", flag, value]);
        assert_eq!(refused.status.code(), Some(2), "{flag} {value:?}");
        assert!(String::from_utf8_lossy(&refused.stderr).contains(flag));
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_spar"))
        .args(["serve", "--model", m, "--host", "0.0.0.0", "--port", "0"])
        .env("SPAR_API_KEY", "k-123")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spar serve starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("spar serve printed its address")
            .unwrap();
        if let Some(rest) = line.split(" on http://0.0.0.0:").nth(1) {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    // Reached on loopback; the guard kills the server if an assertion fails first.
    let mut server = Server {
        child,
        url: format!("http://127.0.0.1:{port}/v1"),
    };
    let request = spar_remote::protocol::UpdateWeightsRequest {
        model_path: m.to_string(),
        weight_version: Some("pushed".into()),
    };
    let client = |key: Option<&str>| {
        let mut config = spar_remote::ClientConfig::new(&server.url);
        config.api_key = key.map(str::to_string);
        spar_remote::Client::new(config).unwrap()
    };
    match client(None).update_weights_from_disk(&request) {
        Err(spar_remote::RemoteError::Status { status, .. }) => assert_eq!(status, 401),
        other => panic!("an update without the key: {other:?}"),
    }
    client(Some("k-123"))
        .update_weights_from_disk(&request)
        .unwrap();
    let _ = server.child.kill();
    let _ = server.child.wait();
    let logged: Vec<String> = lines.map_while(Result::ok).collect();
    for status in [401, 200] {
        assert!(
            logged.iter().any(|l| l.contains("method=POST")
                && l.contains("path=/update_weights_from_disk")
                && l.contains(&format!("status={status}"))),
            "no log line for the {status}: {logged:#?}"
        );
    }
}
