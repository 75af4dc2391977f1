//! Checkpoints: one writer and one resume path for every loop.
//!
//! A checkpoint is a directory `checkpoints/step-NNNNNN/` holding the model (full weights, or
//! a LoRA adapter in PEFT layout with `base.json`), the loop's own files
//! ([`Loop::write_checkpoint_files`]), the AdamW moments (`optimizer.safetensors`),
//! `state.json` ([`RunState`]) and, last, `manifest.json` (the size and SHA-256 of every other
//! file, [`spar_lm::manifest`]), written to a temporary directory and renamed into place, so a
//! killed run never leaves a partial checkpoint that `--resume` would pick.
//!
//! A resume ([`find_resume`]) takes the latest checkpoint whose files match its manifest: one
//! that does not is skipped with a warning naming the damaged file, and moved aside to
//! `checkpoints/corrupt-step-NNNNNN` (kept for inspection, out of the way of the resumed run,
//! which writes that step again). A checkpoint without a manifest (written before spar wrote
//! them) is accepted unverified, with a note. `docs/reliability.md` lists what this promises
//! and the tests that hold it.

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

/// Fills `tmp` with `write`, writes its `manifest.json` last, then renames it to `final_dir`
/// (replacing it), so that a reader (or a resume after SIGKILL) sees the whole directory or
/// none of it. When writing fails (a full disk, a read-only directory), `tmp` is removed and
/// the error names the file and `final_dir`; nothing else in the run directory is touched.
pub(crate) fn write_dir_atomically(
    final_dir: &Path,
    tmp: &Path,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let filled = (|| {
        if tmp.exists() {
            std::fs::remove_dir_all(tmp).map_err(|e| Error::io(tmp, e))?;
        }
        std::fs::create_dir_all(tmp).map_err(|e| Error::io(tmp, e))?;
        write(tmp)?;
        spar_lm::manifest::write_manifest(tmp)?;
        Ok(())
    })();
    if let Err(e) = filled {
        // Best effort: a directory that cannot be written may not be removable either.
        let _ = std::fs::remove_dir_all(tmp);
        return Err(Error::Write {
            target: final_dir.to_path_buf(),
            source: Box::new(e),
        });
    }
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

/// Where a resume starts: the latest checkpoint that verifies, and the later ones that did
/// not (moved aside by [`resume`]).
#[derive(Debug)]
pub(crate) struct ResumePoint {
    /// The checkpoint's step and directory; `None` when no checkpoint verifies.
    pub(crate) checkpoint: Option<(usize, PathBuf)>,
    /// Complete checkpoints after it whose files do not match their manifest.
    pub(crate) damaged: Vec<PathBuf>,
}

/// The checkpoint a resume of `out` under `settings` starts from: the latest complete one
/// whose files match its manifest (one without a manifest is taken unverified, with a note
/// on stderr); each later one that fails is named in a warning on stderr. Reads only. An
/// error says that its weights (full or a LoRA adapter) are not the kind `settings.model`
/// trains.
pub(crate) fn find_resume(out: &Path, settings: &Settings) -> Result<ResumePoint> {
    let mut damaged = Vec::new();
    let mut checkpoint = None;
    for (step, dir) in complete_checkpoints(out).into_iter().rev() {
        match spar_lm::manifest::verify(&dir) {
            Ok(spar_lm::manifest::Verification::Verified(_)) => {}
            Ok(spar_lm::manifest::Verification::Unverified) => eprintln!(
                "note: {} has no {} (written before spar checked its checkpoints); resuming \
                 from it unverified",
                dir.display(),
                spar_lm::manifest::MANIFEST
            ),
            // A file that cannot be read at all (permissions) is not evidence of damage.
            Err(e @ spar_lm::LmError::Io { .. }) => return Err(e.into()),
            Err(e) => {
                eprintln!(
                    "warning: skipping checkpoint {}: {e}; it will be moved to {}",
                    dir.display(),
                    aside(&dir).display()
                );
                damaged.push(dir);
                continue;
            }
        }
        checkpoint = Some((step, dir));
        break;
    }
    if let Some((_, dir)) = &checkpoint {
        check_kind(dir, settings)?;
    }
    Ok(ResumePoint {
        checkpoint,
        damaged,
    })
}

/// Where a damaged checkpoint directory `dir` is moved: `corrupt-step-NNNNNN` beside it (with
/// a numeric suffix when that exists).
fn aside(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    std::iter::once(dir.with_file_name(format!("corrupt-{name}")))
        .chain((2..).map(|i| dir.with_file_name(format!("corrupt-{name}-{i}"))))
        .find(|candidate| !candidate.exists())
        .expect("an unused name")
}

/// Refuses a checkpoint whose weights are not the kind `settings.model` trains.
fn check_kind(dir: &Path, settings: &Settings) -> Result<()> {
    let lora_checkpoint = spar_lm::load::is_lora_checkpoint(dir);
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
    Ok(())
}

/// The one resume path: the damaged later checkpoints of `point` moved aside; the
/// checkpoint's learner, optimiser moments and state; `metrics.jsonl` cut back to the
/// checkpoint's step (later lines are replayed); then [`Loop::prepare`].
#[allow(clippy::type_complexity)]
pub(crate) fn resume<L: Loop>(
    lp: &mut L,
    out: &Path,
    log: &mut MetricsLog,
    dir: &Path,
) -> Result<(Learner, AdamW, RunState<L::State>, Vec<Line>)> {
    let settings = lp.settings().clone();
    let device = spar_lm::device::default_device();
    let learner = Learner::load(dir, &device)?;
    let path = dir.join("state.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let state: RunState<L::State> = serde_json::from_str(&text)
        .map_err(|e| spar_lm::LmError::corrupt(&path, format!("not the run's state.json ({e})")))?;
    let mut opt = AdamW::new(
        learner.named_vars(),
        settings.learning_rate,
        settings.weight_decay,
    )?;
    let moments =
        spar_lm::checkpoint::load_safetensors(&dir.join("optimizer.safetensors"), &device)?;
    opt.load_state(&moments, state.optimizer_step)?;
    opt.consecutive_skips = state.consecutive_skips;
    let history = log.keep_until(state.step)?;
    lp.prepare(&learner, out, None)?;
    Ok((learner, opt, state, history))
}

/// Moves each damaged checkpoint of `point` aside (`corrupt-step-NNNNNN`), so that neither the
/// resumed run nor a reader of the run directory takes it for a checkpoint.
pub(crate) fn move_damaged_aside(point: &ResumePoint) -> Result<()> {
    for dir in &point.damaged {
        let to = aside(dir);
        std::fs::rename(dir, &to).map_err(|e| Error::io(&to, e))?;
    }
    Ok(())
}
