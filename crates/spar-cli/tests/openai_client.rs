//! The official `openai` Python client against `spar serve` on loopback, serving
//! SmolLM2-135M-Instruct (the one pretrained model with a chat template): models, completions
//! and chat with log-probabilities, streamed answers equal to unstreamed ones, and a 4xx error
//! raised as the client's own exception (`scripts/openai_client_check.py`, run through
//! `scripts/openai_client_check.sh`, which installs the client from PyPI into
//! `target/openai-venv` once); then `spar bench serve` against the same server.
//!
//! The model file is not in the repository: `bash scripts/setup_smollm2.sh` puts it in
//! `models/` (CI runs it first); without it this test prints a note and passes, as spar-lm's
//! SmolLM2 tests do. Nothing else skips it: a client that cannot be installed is a failure.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the server may take to load the model and print its address.
const STARTUP: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn smollm2_gguf() -> Option<PathBuf> {
    let path = std::env::var_os("SPAR_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "note: {} is absent (run scripts/setup_smollm2.sh); openai client check skipped",
            path.display()
        );
        None
    }
}

/// A `spar serve` child process, killed when dropped (a failed assertion included).
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

/// Starts `spar serve --port 0` and waits for the line with its address.
fn serve(model: &std::path::Path, name: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spar"))
        .arg("serve")
        .arg("--model")
        .arg(model)
        .args(["--port", "0", "--served-model-name", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the spar binary starts");
    let stderr = child.stderr.take().unwrap();
    // The guard exists before the wait, so a server that never answers is still killed.
    let mut server = Server {
        child,
        url: String::new(),
    };
    // A thread reads stderr (and keeps draining it, so the server never blocks on a full
    // pipe) and sends the URL back, so that the wait can time out.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line
                .strip_prefix("spar serve: ")
                .and_then(|rest| rest.split(" on ").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
            {
                let _ = tx.send(Ok(url.to_string()));
            } else {
                seen.push(line);
            }
        }
        let _ = tx.send(Err(seen.join("\n")));
    });
    match rx.recv_timeout(STARTUP) {
        Ok(Ok(url)) => server.url = url,
        Ok(Err(stderr)) => panic!("spar serve exited without listening; stderr:\n{stderr}"),
        Err(_) => panic!("spar serve printed no address within {STARTUP:?}"),
    }
    server
}

#[test]
fn the_openai_python_client_completes_chat_and_completions_against_spar_serve() {
    let Some(model) = smollm2_gguf() else { return };
    let server = serve(&model, "smollm2");
    assert!(
        server.url.starts_with("http://127.0.0.1:") && server.url.ends_with("/v1"),
        "{}",
        server.url
    );
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/openai_client_check.sh"))
        .args(["--base-url", &server.url, "--model", "smollm2"])
        .args(["--max-tokens", "6"])
        .stdin(Stdio::null())
        .output()
        .expect("bash runs scripts/openai_client_check.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hint = match out.status.code() {
        Some(3) => "\n(the `openai` package could not be installed from PyPI: see stderr)",
        _ => "",
    };
    assert!(
        out.status.success(),
        "scripts/openai_client_check.sh failed ({}){hint}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    // Every check printed its line and none failed.
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        6,
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");

    // `spar bench serve` against the same server (reusing it spares a second model load):
    // every request answered, tokens counted, latencies ordered.
    let out = Command::new(env!("CARGO_BIN_EXE_spar"))
        .args(["bench", "serve", "--url", &server.url, "--clients", "2"])
        .args([
            "--requests",
            "3",
            "--max-tokens",
            "2",
            "--warmup",
            "0",
            "--json",
        ])
        .output()
        .expect("the spar binary runs");
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["model"], "smollm2", "{report}");
    assert_eq!(
        (report["ok"].as_u64(), report["failed"].as_u64()),
        (Some(3), Some(0))
    );
    let tokens = report["completion_tokens"].as_u64().unwrap();
    assert!((1..=6).contains(&tokens), "{report}");
    let latency = &report["latency_ms"];
    let [p50, p99, max] = ["p50", "p99", "max"].map(|k| latency[k].as_f64().unwrap());
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{report}");
    drop(server);
}
