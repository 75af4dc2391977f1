//! Loading a model to run or train: from a Hugging Face checkpoint directory, a GGUF file
//! (quantised or dequantised), or a LoRA checkpoint directory (a PEFT adapter plus
//! [`BASE_JSON`] naming its base, as `spar train` with `[model.lora]` writes it).
//!
//! [`load_model`] gives a [`LoadedModel`] to sample from (with a LoRA checkpoint's adapter
//! attached); [`load_checkpoint`] gives the weights as a [`Checkpoint`] to train (with a
//! LoRA checkpoint's adapter merged); [`load_model_with_lora`] adds an adapter directory on
//! top. [`is_lora_checkpoint`], [`lora_base`] and [`write_lora_base`] read and write the
//! `base.json` link; a chain of LoRA checkpoints on each other's bases is followed up to
//! [`MAX_BASE_DEPTH`] deep, so a cycle is an error rather than endless recursion. Every
//! error names the file involved and, where it can, how to fix it.

use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::error::{LmError, Result};
use crate::gguf::Gguf;
use crate::lora::Lora;
use crate::model::Llama;
use crate::tokenizer::TextTokenizer;
use spar_core::atomic::write_atomic;

/// How a GGUF file is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GgufMode {
    /// Quantised projections (fast sampling).
    #[default]
    Quantized,
    /// Every weight dequantised to f32 (the trainable model).
    Dequantized,
}

/// A model with its tokenizer, from a checkpoint directory or a GGUF file.
#[derive(Debug)]
pub struct LoadedModel {
    /// The model.
    pub model: Llama,
    /// Its tokenizer.
    pub tokenizer: TextTokenizer,
}

/// Loads `path` (see [`load_model`]) and puts the LoRA adapter in directory `lora` on it.
pub fn load_model_with_lora(
    path: &Path,
    mode: GgufMode,
    lora: Option<&Path>,
    device: &Device,
) -> Result<LoadedModel> {
    let mut loaded = match lora {
        // A LoRA checkpoint's own adapter is merged so that the extra one does not replace it.
        Some(_) if is_lora_checkpoint(path) => {
            let ckpt = load_checkpoint(path, device)?;
            let tokenizer = ckpt.tokenizer.clone().ok_or_else(|| {
                LmError::Tokenizer(format!("{} has no tokenizer.json", path.display()))
            })?;
            LoadedModel {
                model: ckpt.frozen()?,
                tokenizer,
            }
        }
        _ => load_model(path, mode, device)?,
    };
    if let Some(dir) = lora {
        Lora::load(dir, device)?.attach(&mut loaded.model)?;
    }
    Ok(loaded)
}

/// The weights of `path` as a checkpoint: a Hugging Face directory, a `.gguf` file
/// dequantised, or a LoRA checkpoint directory (see [`is_lora_checkpoint`]) with its adapter
/// merged into its base (`W + s B A`).
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<Checkpoint> {
    load_checkpoint_at_depth(path, device, 0)
}

fn load_checkpoint_at_depth(path: &Path, device: &Device, depth: usize) -> Result<Checkpoint> {
    if path.extension().is_some_and(|e| e == "gguf") {
        Gguf::open(path)?.dequantized(device)
    } else if is_lora_checkpoint(path) {
        let base = lora_base_at_depth(path, depth)?;
        let base = load_checkpoint_at_depth(&base, device, depth + 1)?;
        Lora::load(path, device)?.merge_into(&base)
    } else {
        check_not_bare_adapter(path)?;
        Checkpoint::load(path, device)
    }
}

/// The file of a LoRA checkpoint directory that names its base model (`spar train` with
/// `[model.lora]` writes it next to `adapter_config.json` and `adapter_model.safetensors`).
pub const BASE_JSON: &str = "base.json";

/// How many LoRA checkpoints may stand on each other's bases (a cycle of `base.json` files
/// stops here with an error instead of recursing forever).
pub const MAX_BASE_DEPTH: usize = 8;

/// `base.json`: the base model a LoRA checkpoint's adapter goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseRef {
    /// A checkpoint directory or a `.gguf` file; a relative path is taken from the directory
    /// holding `base.json`.
    pub base: PathBuf,
}

/// Whether `dir` is a LoRA checkpoint directory: a PEFT adapter (`adapter_config.json`,
/// `adapter_model.safetensors`) plus [`BASE_JSON`] naming its base model. [`load_model`] and
/// [`load_checkpoint`] load such a directory as base plus adapter.
pub fn is_lora_checkpoint(dir: &Path) -> bool {
    dir.join("adapter_config.json").is_file() && dir.join(BASE_JSON).is_file()
}

/// Writes `dir/base.json` naming `base` (atomically).
pub fn write_lora_base(dir: &Path, base: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(&BaseRef {
        base: base.to_path_buf(),
    })
    .expect("base.json serialises");
    write_atomic(&dir.join(BASE_JSON), json.as_bytes())?;
    Ok(())
}

/// The base model named by `dir/base.json` (a relative path resolved against `dir`), checked
/// to exist.
pub fn lora_base(dir: &Path) -> Result<PathBuf> {
    lora_base_at_depth(dir, 0)
}

pub(crate) fn lora_base_at_depth(dir: &Path, depth: usize) -> Result<PathBuf> {
    let path = dir.join(BASE_JSON);
    let text = std::fs::read_to_string(&path).map_err(|e| LmError::io(&path, e))?;
    let base: BaseRef = serde_json::from_str(&text).map_err(|source| LmError::Json {
        path: path.clone(),
        source,
    })?;
    let resolved = if base.base.is_absolute() {
        base.base
    } else {
        dir.join(base.base)
    };
    if !resolved.exists() {
        return Err(LmError::Config(format!(
            "{} names the base model {}, which does not exist: put the base model (a \
             checkpoint directory or .gguf file) there, or edit the \"base\" field of {}",
            path.display(),
            resolved.display(),
            path.display()
        )));
    }
    if depth >= MAX_BASE_DEPTH {
        return Err(LmError::Config(format!(
            "{}: more than {MAX_BASE_DEPTH} LoRA checkpoints stand on each other's bases (a \
             cycle of base.json files?); point \"base\" at a full checkpoint or .gguf file",
            path.display()
        )));
    }
    Ok(resolved)
}

/// A PEFT adapter directory without [`BASE_JSON`] and without weights of its own cannot be
/// loaded alone: say so, and how to fix it, instead of reporting a missing `config.json`.
fn check_not_bare_adapter(dir: &Path) -> Result<()> {
    if dir.join("adapter_config.json").is_file() && !dir.join("model.safetensors").exists() {
        return Err(LmError::Config(format!(
            "{} is a LoRA adapter without {BASE_JSON}: load its base model and pass the \
             adapter with --lora {}, or write {}/{BASE_JSON} as {{\"base\": \"PATH OF THE BASE \
             MODEL\"}}",
            dir.display(),
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// Loads `path`: a `.gguf` file (in `mode`), a Hugging Face checkpoint directory, or a LoRA
/// checkpoint directory ([`is_lora_checkpoint`]: the base named by `base.json`, loaded by
/// these same rules, with the adapter attached; the tokenizer is the base's).
pub fn load_model(path: &Path, mode: GgufMode, device: &Device) -> Result<LoadedModel> {
    if is_lora_checkpoint(path) {
        let base = lora_base(path)?;
        let mut loaded = if is_lora_checkpoint(&base) {
            // An adapter on an adapted base: the base's adapter is merged first (a model
            // holds one adapter per projection).
            let ckpt = load_checkpoint_at_depth(&base, device, 1)?;
            let tokenizer = ckpt.tokenizer.clone().ok_or_else(|| {
                LmError::Tokenizer(format!("{} has no tokenizer.json", base.display()))
            })?;
            LoadedModel {
                model: ckpt.frozen()?,
                tokenizer,
            }
        } else {
            load_model(&base, mode, device)?
        };
        Lora::load(path, device)?.attach(&mut loaded.model)?;
        return Ok(loaded);
    }
    let is_gguf = path.extension().is_some_and(|e| e == "gguf");
    if is_gguf {
        let gguf = Gguf::open(path)?;
        let model = match mode {
            GgufMode::Quantized => gguf.quantized(device)?,
            GgufMode::Dequantized => gguf.dequantized(device)?.frozen()?,
        };
        return Ok(LoadedModel {
            model,
            tokenizer: gguf.tokenizer()?,
        });
    }
    check_not_bare_adapter(path)?;
    let ckpt = Checkpoint::load(path, device)?;
    let tokenizer = ckpt
        .tokenizer
        .clone()
        .ok_or_else(|| LmError::Tokenizer(format!("{} has no tokenizer.json", path.display())))?;
    Ok(LoadedModel {
        model: ckpt.frozen()?,
        tokenizer,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;
    use crate::lora::LoraConfig;
    use crate::model::init_weights;
    use crate::score::next_token_logits;
    use crate::train::BYTE_SPECIAL_TOKENS;

    /// A tiny byte-level base saved in `dir/base`, and a LoRA checkpoint of it in `dir/step`
    /// (B set to non-zero values so that the adapter changes the logits), and the adapted
    /// model's next-token logits after `[1, 2, 3]`.
    pub(crate) fn lora_checkpoint(dir: &Path) -> (PathBuf, Vec<f32>) {
        let tokenizer = TextTokenizer::byte_level(&BYTE_SPECIAL_TOKENS).unwrap();
        let config = Config::tiny(tokenizer.vocab_size(), 16, 1, 2);
        let base = Checkpoint {
            tensors: init_weights(&config, 0.2, 5, &Device::Cpu).unwrap(),
            config,
            tokenizer: Some(tokenizer),
        };
        base.save(&dir.join("base")).unwrap();
        let mut model = base.frozen().unwrap();
        let lora = Lora::init(
            &mut model,
            LoraConfig::new(2, 4.0, &["q_proj", "up_proj"]),
            1,
        )
        .unwrap();
        for var in lora.vars() {
            var.set(&var.as_tensor().ones_like().unwrap()).unwrap();
        }
        let step = dir.join("step");
        lora.save(&step).unwrap();
        write_lora_base(&step, Path::new("../base")).unwrap();
        (step, next_token_logits(&model, &[1, 2, 3]).unwrap())
    }

    #[test]
    fn lora_checkpoints_load_as_base_plus_adapter_and_errors_say_how_to_fix_them() {
        let dir = std::env::temp_dir().join(format!("spar-lm-lora-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (step, expected) = lora_checkpoint(&dir);
        assert!(is_lora_checkpoint(&step) && !is_lora_checkpoint(&dir.join("base")));
        // A relative base is taken from the checkpoint directory.
        assert_eq!(lora_base(&step).unwrap(), step.join("../base"));
        let loaded = load_model(&step, GgufMode::Quantized, &Device::Cpu).unwrap();
        assert_eq!(
            next_token_logits(&loaded.model, &[1, 2, 3]).unwrap(),
            expected
        );
        let base = load_model(&dir.join("base"), GgufMode::Quantized, &Device::Cpu).unwrap();
        assert_ne!(
            next_token_logits(&base.model, &[1, 2, 3]).unwrap(),
            expected
        );
        let merged = load_checkpoint(&step, &Device::Cpu)
            .unwrap()
            .frozen()
            .unwrap();
        let merged = next_token_logits(&merged, &[1, 2, 3]).unwrap();
        let gap = merged
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(gap < 1e-4, "merged logits differ by {gap}");

        // A base that is not there: both paths named, and how to fix it.
        write_lora_base(&step, &dir.join("gone")).unwrap();
        let err = load_model(&step, GgufMode::Quantized, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gone") && err.contains("base.json") && err.contains("does not exist"),
            "{err}"
        );
        // A cycle of base.json files stops with an error.
        write_lora_base(&step, Path::new(".")).unwrap();
        let err = load_checkpoint(&step, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cycle"), "{err}");
        // An adapter without base.json: say to pass it with --lora or to write base.json.
        std::fs::remove_file(step.join(BASE_JSON)).unwrap();
        let err = load_model(&step, GgufMode::Quantized, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--lora") && err.contains("base.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
