//! What the end-to-end tests of the `spar` binary share: running it, reading its JSON, a
//! scratch directory per test process, and the exit-2 check.
// Each test file is its own crate and uses some of these.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Runs `spar` with `args`.
pub fn spar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spar"))
        .args(args)
        .output()
        .expect("the spar binary runs")
}

/// Runs `spar` with `args`, `stdin` on its standard input.
pub fn spar_with_stdin(args: &[&str], stdin: &str) -> Output {
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

/// The JSON `spar` printed on stdout, after checking that it succeeded.
pub fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "spar failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

/// `name` in a scratch directory of this test process.
pub fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// `spar` exited with code 2 and its stderr mentions each of `mentions`.
pub fn assert_usage_error(output: &Output, mentions: &[&str]) {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in mentions {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
}
