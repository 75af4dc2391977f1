//! Checkpoints: one writer and one resume path for every loop.
//!
//! A checkpoint is a directory `checkpoints/step-NNNNNN/` holding the model (full weights, or
//! a LoRA adapter in PEFT layout with `base.json`), the loop's own files
//! ([`Loop::write_checkpoint_files`]), the AdamW moments (`optimizer.safetensors`) and
//! `state.json` ([`RunState`]), written to a temporary directory and renamed into place, so a
//! killed run never leaves a partial checkpoint that `--resume` would pick.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use spar_core::atomic::write_atomic;
use spar_lm::checkpoint::{safetensors_bytes, Checkpoint};
use spar_lm::lora::Lora;

use super::metrics::MetricsLog;
use super::{AdamW, Learner, Line, Loop, RunState, Settings};
use crate::error::{Error, Result};

/// Where a run keeps its checkpoints.
pub fn checkpoint_dir(out: &Path, step: usize) -> PathBuf {
    out.join("checkpoints").join(format!("step-{step:06}"))
}

/// The latest complete checkpoint of a run directory (one with `state.json`).
pub fn latest_checkpoint(out: &Path) -> Option<(usize, PathBuf)> {
    complete_checkpoints(out).pop()
}

/// The complete checkpoints of a run directory (those with `state.json`), by step.
pub fn complete_checkpoints(out: &Path) -> Vec<(usize, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(out.join("checkpoints")) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step-")?.parse::<usize>().ok()?;
            entry
                .path()
                .join("state.json")
                .exists()
                .then(|| (step, entry.path()))
        })
        .collect();
    found.sort();
    found
}

/// Fills `tmp` with `write`, then renames it to `final_dir` (replacing it), so that a reader
/// (or a resume after SIGKILL) sees the whole directory or none of it.
pub(crate) fn write_dir_atomically(
    final_dir: &Path,
    tmp: &Path,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    if tmp.exists() {
        std::fs::remove_dir_all(tmp).map_err(|e| Error::io(tmp, e))?;
    }
    std::fs::create_dir_all(tmp).map_err(|e| Error::io(tmp, e))?;
    write(tmp)?;
    if final_dir.exists() {
        std::fs::remove_dir_all(final_dir).map_err(|e| Error::io(final_dir, e))?;
    }
    std::fs::rename(tmp, final_dir).map_err(|e| Error::io(final_dir, e))
}

/// The trained tensors of a checkpoint directory of a run, for comparing runs (tests, tools):
/// every weight, or for a LoRA run the adapter's (PEFT names).
pub fn checkpoint_tensors(dir: &Path) -> Result<HashMap<String, Tensor>> {
    if spar_lm::load::is_lora_checkpoint(dir) {
        let lora = Lora::load(dir, &Device::Cpu)?;
        return Ok(spar_lm::checkpoint::varmap_tensors(&lora.varmap));
    }
    Ok(Checkpoint::load(dir, &Device::Cpu)?.tensors)
}

/// Writes checkpoint `state.step` of run `out` atomically: the learner's model, the loop's
/// files, the AdamW moments and `state.json` (whose presence marks the checkpoint complete).
pub(crate) fn save<L: Loop>(
    lp: &L,
    out: &Path,
    learner: &Learner,
    opt: &AdamW,
    state: &RunState<L::State>,
) -> Result<()> {
    let step = state.step;
    let tmp = out.join("checkpoints").join(format!(".tmp-step-{step:06}"));
    write_dir_atomically(&checkpoint_dir(out, step), &tmp, |tmp| {
        learner.save(tmp)?;
        lp.write_checkpoint_files(tmp)?;
        write_atomic(
            &tmp.join("optimizer.safetensors"),
            &safetensors_bytes(&opt.state_tensors())?,
        )?;
        let json = serde_json::to_string_pretty(state).expect("state serialises");
        write_atomic(&tmp.join("state.json"), json.as_bytes())?;
        Ok(())
    })
}

/// The checkpoint a resume of `out` under `settings` starts from: its latest complete one.
/// An error says there is none, or that its weights (full or a LoRA adapter) are not the kind
/// `settings.model` trains.
pub(crate) fn resume_dir(out: &Path, settings: &Settings) -> Result<PathBuf> {
    let Some((_, dir)) = latest_checkpoint(out) else {
        return Err(Error::Invalid(format!(
            "--resume: {} has no complete checkpoint (checkpoints/step-*/state.json)",
            out.display()
        )));
    };
    let lora_checkpoint = spar_lm::load::is_lora_checkpoint(&dir);
    if settings.model.lora.is_some() != lora_checkpoint {
        return Err(Error::Invalid(format!(
            "--resume: the run's config {} [model.lora], but {} holds {}; resume with the \
             run's own config.toml",
            if settings.model.lora.is_some() {
                "has"
            } else {
                "has no"
            },
            dir.display(),
            if lora_checkpoint {
                "a LoRA adapter"
            } else {
                "full weights"
            }
        )));
    }
    Ok(dir)
}

/// The one resume path: the latest complete checkpoint's learner, optimiser moments and
/// state; `metrics.jsonl` cut back to the checkpoint's step (later lines are replayed); then
/// [`Loop::prepare`].
#[allow(clippy::type_complexity)]
pub(crate) fn resume<L: Loop>(
    lp: &mut L,
    out: &Path,
    log: &mut MetricsLog,
) -> Result<(Learner, AdamW, RunState<L::State>, Vec<Line>)> {
    let settings = lp.settings().clone();
    let dir = resume_dir(out, &settings)?;
    let device = spar_lm::device::default_device();
    let learner = Learner::load(&dir, &device)?;
    let path = dir.join("state.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let state: RunState<L::State> = serde_json::from_str(&text)
        .map_err(|e| Error::Invalid(format!("{}: corrupt state.json: {e}", dir.display())))?;
    let mut opt = AdamW::new(
        learner.named_vars(),
        settings.learning_rate,
        settings.weight_decay,
    )?;
    let moments = candle_core::safetensors::load(dir.join("optimizer.safetensors"), &device)?;
    opt.load_state(&moments, state.optimizer_step)?;
    let history = log.keep_until(state.step)?;
    lp.prepare(&learner, out, None)?;
    Ok((learner, opt, state, history))
}
