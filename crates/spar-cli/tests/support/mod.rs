//! What the task and self-correction CLI tests share: running `spar` in the repository root,
//! checking its exit and output, fresh directories and a run's metrics.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The repository root: configs name models and files relative to it.
pub fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Runs `spar` in the repository root.
pub fn spar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spar"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("the spar binary runs")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn succeeded(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({:?}): {}",
        output.status,
        stderr(output)
    );
}

pub fn json(output: &Output, what: &str) -> Value {
    succeeded(output, what);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {output:?}"))
}

pub fn assert_usage_error(output: &Output, mentions: &[&str]) {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = stderr(output);
    for needle in mentions {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
}

/// A fresh directory for this test process (removed first if a previous run left it).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-tasks-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn metrics(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap_or_else(|e| panic!("{}/metrics.jsonl: {e}", out.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a metrics line is JSON"))
        .collect()
}
