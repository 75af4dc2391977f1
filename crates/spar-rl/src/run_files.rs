//! What every training loop writes into its run directory besides the model: the
//! `metrics.jsonl` log (with its TensorBoard copy) and the atomic checkpoint directories.
//! Shared by self-play ([`crate::selfplay`]) and task training ([`crate::task_train`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use spar_lm::checkpoint::{safetensors_bytes, write_atomic};

use crate::error::Result;
use crate::ppo::AdamW;
use crate::selfplay::{checkpoint_dir, io_err, write_dir_atomically};
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
            .map_err(|e| io_err(&self.path, e))?;
        writeln!(
            file,
            "{}",
            serde_json::to_string(m).expect("metrics serialise")
        )
        .map_err(|e| io_err(&self.path, e))?;
        file.sync_data().map_err(|e| io_err(&self.path, e))?;
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

/// Writes checkpoint `step` of run `out` atomically: `write` fills a temporary directory
/// (the model and whatever the loop adds), then the AdamW moments
/// (`optimizer.safetensors`) and `state` (`state.json`, whose presence marks the checkpoint
/// complete) are added, and the directory is renamed into place.
pub(crate) fn save_checkpoint(
    out: &Path,
    step: usize,
    opt: &AdamW,
    state: &impl Serialize,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let final_dir = checkpoint_dir(out, step);
    let tmp = out.join("checkpoints").join(format!(".tmp-step-{step:06}"));
    write_dir_atomically(&final_dir, &tmp, |tmp| {
        write(tmp)?;
        write_atomic(
            &tmp.join("optimizer.safetensors"),
            &safetensors_bytes(&opt.state_tensors())?,
        )?;
        let json = serde_json::to_string_pretty(state).expect("state serialises");
        write_atomic(&tmp.join("state.json"), json.as_bytes())?;
        Ok(())
    })
}
