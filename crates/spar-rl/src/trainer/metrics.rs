//! The metrics sink of every loop: `metrics.jsonl` (one JSON object per line, synced after
//! each) and its TensorBoard copy, truncated to the checkpoint on resume.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use spar_lm::checkpoint::write_atomic;

use crate::error::Result;
use crate::tensorboard::EventWriter;

/// `metrics.jsonl` (one JSON object per line, synced) and, optionally, the same scalars as
/// TensorBoard events in `tensorboard/`.
pub(crate) struct MetricsLog {
    path: PathBuf,
    tensorboard: Option<EventWriter>,
}

impl MetricsLog {
    /// The log of run directory `out` (which must exist).
    pub(crate) fn open(out: &Path, tensorboard: bool) -> Result<MetricsLog> {
        Ok(MetricsLog {
            path: out.join("metrics.jsonl"),
            tensorboard: if tensorboard {
                Some(EventWriter::create(&out.join("tensorboard"))?)
            } else {
                None
            },
        })
    }

    /// Appends one line (and its scalars at `step`).
    pub(crate) fn append(&mut self, m: &impl Serialize, step: usize) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| crate::Error::io(&self.path, e))?;
        writeln!(
            file,
            "{}",
            serde_json::to_string(m).expect("metrics serialise")
        )
        .map_err(|e| crate::Error::io(&self.path, e))?;
        file.sync_data()
            .map_err(|e| crate::Error::io(&self.path, e))?;
        if let Some(tb) = self.tensorboard.as_mut() {
            let value = serde_json::to_value(m).expect("metrics serialise");
            let wall = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            tb.log_metrics(&value, step as i64, wall)?;
            tb.flush()?;
        }
        Ok(())
    }

    /// Replaces the file by `lines` (atomically).
    pub(crate) fn rewrite<T: Serialize>(&self, lines: &[T]) -> Result<()> {
        let mut text = String::new();
        for m in lines {
            text.push_str(&serde_json::to_string(m).expect("metrics serialise"));
            text.push('\n');
        }
        write_atomic(&self.path, text.as_bytes())?;
        Ok(())
    }

    /// On resume: the lines up to checkpoint `step` (`step_of` reads a line's step), which
    /// become the whole file; later lines are replayed by the resumed run.
    pub(crate) fn keep_until<T: Serialize + DeserializeOwned>(
        &self,
        step: usize,
        step_of: impl Fn(&T) -> usize,
    ) -> Result<Vec<T>> {
        let kept: Vec<T> = std::fs::read_to_string(&self.path)
            .map(|text| {
                text.lines()
                    .filter_map(|l| serde_json::from_str::<T>(l).ok())
                    .filter(|m| step_of(m) <= step)
                    .collect()
            })
            .unwrap_or_default();
        self.rewrite(&kept)?;
        Ok(kept)
    }
}
