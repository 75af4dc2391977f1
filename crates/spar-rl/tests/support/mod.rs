//! What the loop tests share: fresh directories, metrics lines without their wall-clock time,
//! and a bit-for-bit comparison of two runs' checkpoints.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use spar_rl::trainer::{checkpoint_dir, checkpoint_tensors, Line};

/// A fresh directory `spar-rl-<prefix>-<name>-<pid>` under the system's temporary directory
/// (removed first if a previous run left it).
pub fn temp(prefix: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-rl-{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The lines without `time/seconds`, the one value two equal runs may differ in.
pub fn without_time(ms: &[Line]) -> Vec<Line> {
    ms.iter()
        .map(|m| {
            let mut m = m.clone();
            m.remove(spar_rl::trainer::metrics::SECONDS);
            m
        })
        .collect()
}

/// Asserts that two runs' checkpoints at `step` hold the same tensors, bit for bit.
pub fn assert_same_weights(a: &Path, b: &Path, step: usize) {
    let (ta, tb) = (
        checkpoint_tensors(&checkpoint_dir(a, step)).unwrap(),
        checkpoint_tensors(&checkpoint_dir(b, step)).unwrap(),
    );
    assert_eq!(ta.len(), tb.len());
    for (name, t) in &ta {
        let (x, y): (Vec<f32>, Vec<f32>) = (
            t.flatten_all().unwrap().to_vec1().unwrap(),
            tb[name].flatten_all().unwrap().to_vec1().unwrap(),
        );
        assert_eq!(x, y, "{name}");
    }
}
