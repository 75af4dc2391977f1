//! Checkpoints in Hugging Face layout: `config.json`, `model.safetensors` (f32, Hugging Face
//! tensor names) and the tokenizer files, each written atomically (temporary file, then
//! rename), so a reader never sees a half-written file.
//!
//! Reading takes what `transformers` writes too: weights in f32, bf16 or f16 (converted to
//! f32), in one `model.safetensors` or in shards listed by `model.safetensors.index.json`
//! (its `weight_map` names the shard of every tensor). Every tensor the configuration needs
//! must be there with its shape, and every tensor there must be one the model uses: a
//! checkpoint with tensors spar would ignore (another architecture's, or biases its
//! `config.json` does not declare) is refused with their names, because running it would
//! give logits that differ from `transformers` without an error.

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

/// The files [`Checkpoint::load`] reads (those present; shards of a sharded checkpoint too).
const CHECKPOINT_FILES: [&str; 5] = [
    "config.json",
    "model.safetensors",
    SHARD_INDEX,
    "tokenizer.json",
    "tokenizer_config.json",
];

/// The index of a sharded checkpoint: `{"weight_map": {"TENSOR": "SHARD FILE", ...}}`, as
/// `transformers`' `save_pretrained` writes it.
pub const SHARD_INDEX: &str = "model.safetensors.index.json";

/// Tensors that checkpoints carry and no model reads: the rotary tables older
/// `transformers` versions saved (`model.layers.N.self_attn.rotary_emb.inv_freq`; spar
/// computes them from `config.json`, as `transformers` does when it drops them on load).
fn is_ignorable(name: &str) -> bool {
    name.ends_with(".rotary_emb.inv_freq")
}

/// The shard files of the sharded checkpoint in `dir` (from [`SHARD_INDEX`]'s `weight_map`,
/// in first-listed order) and the map itself.
fn shard_files(dir: &Path) -> Result<(Vec<String>, HashMap<String, String>)> {
    let path = dir.join(SHARD_INDEX);
    let text = std::fs::read_to_string(&path).map_err(|e| LmError::io(&path, e))?;
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: HashMap<String, String>,
    }
    let index: Index = serde_json::from_str(&text).map_err(|source| LmError::Json {
        path: path.clone(),
        source,
    })?;
    let mut files: Vec<String> = index.weight_map.values().cloned().collect();
    files.sort();
    files.dedup();
    for file in &files {
        if file.contains('/') || file.contains('\\') || file.starts_with('.') {
            return Err(LmError::corrupt(
                &path,
                format!("shard {file:?} is not a file name in the checkpoint directory"),
            ));
        }
    }
    Ok((files, index.weight_map))
}

/// Every tensor of the checkpoint in `dir`, in its stored dtype: `model.safetensors`, or the
/// shards of [`SHARD_INDEX`] (each tensor checked to be in the shard the index names).
fn read_weights(dir: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return load_safetensors(&single, device);
    }
    if !dir.join(SHARD_INDEX).exists() {
        return Err(LmError::io(
            &single,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no model.safetensors and no {SHARD_INDEX} in the checkpoint directory"),
            ),
        ));
    }
    let (files, weight_map) = shard_files(dir)?;
    let mut tensors = HashMap::new();
    for file in &files {
        let path = dir.join(file);
        if !path.exists() {
            return Err(LmError::corrupt(
                &path,
                format!(
                    "missing, but {} lists it as a shard",
                    dir.join(SHARD_INDEX).display()
                ),
            ));
        }
        tensors.extend(load_safetensors(&path, device)?);
    }
    let mut absent: Vec<String> = weight_map
        .iter()
        .filter(|(name, _)| !tensors.contains_key(*name))
        .map(|(name, file)| format!("{name} (in {file})"))
        .collect();
    absent.sort();
    if let Some(first) = absent.first() {
        return Err(LmError::corrupt(
            dir.join(SHARD_INDEX),
            format!(
                "{} tensor(s) listed but not in their shard, first {first}: a shard is stale \
                 or from another checkpoint",
                absent.len()
            ),
        ));
    }
    Ok(tensors)
}

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

    /// Reads a checkpoint directory (`config.json`, `model.safetensors` or the shards of
    /// [`SHARD_INDEX`], optional tokenizer); weights of any float dtype become f32. When the
    /// directory has a `manifest.json` ([`crate::manifest`]), the files read are first
    /// checked against it; a damaged file is an [`LmError::Corrupt`] naming it. Tensors the
    /// model would not use are refused by name (see the module docs).
    pub fn load(dir: &Path, device: &Device) -> Result<Checkpoint> {
        let mut files: Vec<String> = CHECKPOINT_FILES.iter().map(|f| f.to_string()).collect();
        if !dir.join("model.safetensors").exists() && dir.join(SHARD_INDEX).exists() {
            files.extend(shard_files(dir)?.0);
        }
        let names: Vec<&str> = files.iter().map(String::as_str).collect();
        crate::manifest::verify_files(dir, &names)?;
        let config = Config::from_file(&dir.join("config.json"))?;
        let mut tensors = read_weights(dir, device)?
            .into_iter()
            .filter(|(k, _)| !is_ignorable(k))
            .map(|(k, v)| Ok((k, v.to_dtype(DType::F32)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        drop_tied_head_copy(&config, &mut tensors)?;
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
        out.check_tensors().map_err(|e| match e {
            LmError::Config(message) => LmError::Config(format!("{}: {message}", dir.display())),
            other => other,
        })?;
        Ok(out)
    }

    /// Checks that every tensor the configuration needs is present with its shape, and that
    /// there is no other.
    fn check_tensors(&self) -> Result<()> {
        let expected = tensor_shapes(&self.config);
        let mut unused: Vec<&str> = self
            .tensors
            .keys()
            .filter(|name| !expected.iter().any(|(e, _)| e == *name))
            .map(String::as_str)
            .collect();
        unused.sort_unstable();
        if !unused.is_empty() {
            const SHOWN: usize = 8;
            let more = unused.len().saturating_sub(SHOWN);
            let mut list = unused[..unused.len().min(SHOWN)].join(", ");
            if more > 0 {
                list.push_str(&format!(" and {more} more"));
            }
            return Err(LmError::Config(format!(
                "{} tensor(s) that a {} model with this config.json does not use: {list}. \
                 Running without them would give different logits from transformers; check \
                 model_type and the bias/norm fields of config.json (attention_bias, \
                 mlp_bias), or remove these tensors if they are not part of the model",
                unused.len(),
                self.config.model_type
            )));
        }
        for (name, shape) in expected {
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

    pub(crate) fn device(&self) -> Device {
        self.tensors
            .values()
            .next()
            .map(|t| t.device().clone())
            .unwrap_or(Device::Cpu)
    }
}

/// With tied embeddings the head is the embedding matrix: a checkpoint that also stores
/// `lm_head.weight` (some exporters do) loads when it is the same matrix, and is refused when
/// it differs (the model would ignore it, as `transformers` does when it ties them).
fn drop_tied_head_copy(config: &Config, tensors: &mut HashMap<String, Tensor>) -> Result<()> {
    if !config.tie_word_embeddings {
        return Ok(());
    }
    let (Some(head), Some(embed)) = (
        tensors.get("lm_head.weight"),
        tensors.get("model.embed_tokens.weight"),
    ) else {
        return Ok(());
    };
    let same = head.dims() == embed.dims()
        && head.sub(embed)?.abs()?.max_all()?.to_scalar::<f32>()? == 0.0;
    if same {
        tensors.remove("lm_head.weight");
        Ok(())
    } else {
        Err(LmError::Config(
            "lm_head.weight differs from model.embed_tokens.weight but config.json has \
             tie_word_embeddings true, so it would be ignored: set tie_word_embeddings to \
             false if the head is separate"
                .to_string(),
        ))
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
