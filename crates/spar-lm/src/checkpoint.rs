//! Checkpoints in Hugging Face layout: `config.json`, `model.safetensors` (f32, Hugging Face
//! tensor names) and the tokenizer files, each written atomically (temporary file, then
//! rename), so a reader never sees a half-written file.

use crate::config::Config;
use crate::error::{LmError, Result};
use crate::model::{tensor_shapes, Llama};
use crate::tokenizer::TextTokenizer;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use std::collections::HashMap;
use std::path::Path;

/// [`spar_core::atomic::write_atomic`] under its old path, for callers in `spar-rl` that have
/// not moved to the new one yet (`rollout::prompt`, `trainer::metrics`). New code calls
/// `spar_core::atomic::write_atomic`.
pub use spar_core::atomic::write_atomic;

/// Serialises tensors to safetensors bytes (metadata `format: pt`, as `transformers` expects).
pub fn safetensors_bytes(tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
    let mut sorted: Vec<(&String, &Tensor)> = tensors.iter().collect();
    sorted.sort_by_key(|(name, _)| name.as_str());
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(sorted, Some(metadata))
        .map_err(|e| LmError::Candle(candle_core::Error::wrap(e)))
}

/// The files [`Checkpoint::load`] reads (those present).
const CHECKPOINT_FILES: [&str; 4] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
];

/// The tensors of the safetensors file `path`; a file that does not parse (truncated, or not
/// safetensors) is an [`LmError::Corrupt`] naming it.
pub fn load_safetensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    candle_core::safetensors::load(path, device).map_err(|e| {
        LmError::corrupt(
            path,
            format!(
                "not a readable safetensors file ({e}): it is truncated or corrupt; restore \
                 it, or use another checkpoint"
            ),
        )
    })
}

/// The tensors of a `VarMap`, by name.
pub fn varmap_tensors(varmap: &VarMap) -> HashMap<String, Tensor> {
    let data = varmap.data().lock().expect("VarMap lock poisoned");
    data.iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().detach()))
        .collect()
}

/// A model's configuration, weights and tokenizer, as stored in a checkpoint directory.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The model configuration.
    pub config: Config,
    /// Every weight, by Hugging Face name.
    pub tensors: HashMap<String, Tensor>,
    /// The tokenizer, when the directory has one.
    pub tokenizer: Option<TextTokenizer>,
}

impl Checkpoint {
    /// Writes `config.json`, `model.safetensors` and (when present) the tokenizer files into
    /// `dir`, creating it.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.check_tensors()?;
        write_atomic(&dir.join("config.json"), self.config.to_json().as_bytes())?;
        let f32_tensors = self
            .tensors
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.to_dtype(DType::F32)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        write_atomic(
            &dir.join("model.safetensors"),
            &safetensors_bytes(&f32_tensors)?,
        )?;
        if let Some(tok) = &self.tokenizer {
            tok.save(dir)?;
        }
        Ok(())
    }

    /// Reads a checkpoint directory (`config.json`, `model.safetensors`, optional tokenizer).
    /// When the directory has a `manifest.json` ([`crate::manifest`]), the files read are
    /// first checked against it; a damaged file is an [`LmError::Corrupt`] naming it.
    pub fn load(dir: &Path, device: &Device) -> Result<Checkpoint> {
        crate::manifest::verify_files(dir, &CHECKPOINT_FILES)?;
        let config = Config::from_file(&dir.join("config.json"))?;
        let weights = dir.join("model.safetensors");
        if !weights.exists() {
            return Err(LmError::io(
                &weights,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no model.safetensors"),
            ));
        }
        let tensors = load_safetensors(&weights, device)?
            .into_iter()
            .map(|(k, v)| Ok((k, v.to_dtype(DType::F32)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        let tokenizer = if dir.join("tokenizer.json").exists() {
            Some(TextTokenizer::from_hf(dir)?)
        } else {
            None
        };
        let out = Checkpoint {
            config,
            tensors,
            tokenizer,
        };
        out.check_tensors()?;
        Ok(out)
    }

    /// Checks that every tensor the configuration needs is present with its shape.
    fn check_tensors(&self) -> Result<()> {
        for (name, shape) in tensor_shapes(&self.config) {
            match self.tensors.get(&name) {
                None => return Err(LmError::Config(format!("tensor {name} is missing"))),
                Some(t) if t.dims() != shape.as_slice() => {
                    return Err(LmError::Config(format!(
                        "tensor {name} has shape {:?}, config says {shape:?}",
                        t.dims()
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The model with frozen weights (no gradient tracking), for sampling and evaluation.
    pub fn frozen(&self) -> Result<Llama> {
        let device = self.device();
        let vb = VarBuilder::from_tensors(self.tensors.clone(), DType::F32, &device);
        Ok(Llama::new(&self.config, &vb)?)
    }

    /// The model with every weight a trainable `Var`, and the `VarMap` that holds them (pass
    /// `varmap.all_vars()` to an optimiser; the model sees updates in place).
    pub fn trainable(&self) -> Result<(Llama, VarMap)> {
        let device = self.device();
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().expect("fresh VarMap");
            for (name, t) in &self.tensors {
                data.insert(name.clone(), Var::from_tensor(t)?);
            }
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let model = Llama::new(&self.config, &vb)?;
        Ok((model, varmap))
    }

    fn device(&self) -> Device {
        self.tensors
            .values()
            .next()
            .map(|t| t.device().clone())
            .unwrap_or(Device::Cpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init_weights;

    #[test]
    fn checkpoint_round_trips_bit_for_bit() {
        let dir = std::env::temp_dir().join(format!("spar-lm-ckpt-{}", std::process::id()));
        let config = Config::tiny(259, 16, 1, 2);
        let ckpt = Checkpoint {
            tensors: init_weights(&config, 0.02, 5, &Device::Cpu).unwrap(),
            config,
            tokenizer: Some(
                TextTokenizer::byte_level(&["<|endoftext|>", "<|a|>", "<|b|>"]).unwrap(),
            ),
        };
        ckpt.save(&dir).unwrap();
        let names: Vec<String> = {
            let mut v: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        // No temporary files are left behind.
        assert_eq!(
            names,
            [
                "config.json",
                "model.safetensors",
                "tokenizer.json",
                "tokenizer_config.json"
            ]
        );
        let mut back = Checkpoint::load(&dir, &Device::Cpu).unwrap();
        assert_eq!(back.config.extra.remove("torch_dtype").unwrap(), "float32");
        assert_eq!(back.config, ckpt.config);
        for (name, t) in &ckpt.tensors {
            let a: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            let b: Vec<f32> = back.tensors[name].flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(a, b, "{name}");
        }
        assert_eq!(back.tokenizer.unwrap().vocab_size(), 259);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_names_a_missing_tensor() {
        let dir = std::env::temp_dir().join(format!("spar-lm-ckpt-bad-{}", std::process::id()));
        let config = Config::tiny(256, 16, 1, 2);
        let mut tensors = init_weights(&config, 0.02, 5, &Device::Cpu).unwrap();
        tensors.remove("model.layers.0.mlp.up_proj.weight");
        std::fs::create_dir_all(&dir).unwrap();
        write_atomic(&dir.join("config.json"), config.to_json().as_bytes()).unwrap();
        write_atomic(
            &dir.join("model.safetensors"),
            &safetensors_bytes(&tensors).unwrap(),
        )
        .unwrap();
        let err = Checkpoint::load(&dir, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.layers.0.mlp.up_proj.weight"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
