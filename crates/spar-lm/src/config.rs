//! Model configuration, read from and written to Hugging Face `config.json`
//! (`LlamaForCausalLM`).

use crate::error::{LmError, Result};
use crate::family::Family;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A Llama-family decoder's hyperparameters, with Hugging Face's field names so that a
/// `config.json` round-trips. Fields spar does not use are kept in `extra` and written back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Number of token ids (rows of the embedding matrix).
    pub vocab_size: usize,
    /// Width of the residual stream (`d_model`).
    pub hidden_size: usize,
    /// Width of the SwiGLU hidden layer.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention); `None` means as many as query heads.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; `None` means `hidden_size / num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// Epsilon inside RMSNorm's square root.
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f64,
    /// Base of the rotary embedding frequencies.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// Longest sequence (prompt plus completion) the rotary tables cover.
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
    /// Whether the output projection reuses the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Id of the beginning-of-sequence token, if the model has one.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    /// Id of the end-of-sequence token, if the model has one.
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    /// Must be `silu` (SwiGLU).
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    /// Hugging Face model class; spar writes `["LlamaForCausalLM"]`.
    #[serde(default = "default_architectures")]
    pub architectures: Vec<String>,
    /// Hugging Face model type: `llama`, `qwen2` or `qwen3` ([`Family`]); others are refused.
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Rotary scaling: `None`, `{"rope_type": "default"}` or Llama 3's (`"llama3"`); others
    /// (YaRN, linear, dynamic) are refused ([`crate::family::rope_scaling`]).
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    /// Whether q/k/v/o projections have a bias (Llama, Qwen3; Qwen2's q/k/v always have one:
    /// [`Family::qkv_bias`]).
    #[serde(default)]
    pub attention_bias: bool,
    /// Whether MLP projections have a bias (Llama only).
    #[serde(default)]
    pub mlp_bias: bool,
    /// Whether attention is causal (a decoder, the default) or bidirectional (a masked
    /// language model: every token attends to every other, as in BERT; `docs/reversal.md`).
    /// Written to `config.json` only when `false`, so decoder checkpoints are unchanged.
    #[serde(default = "default_is_causal", skip_serializing_if = "is_true")]
    pub is_causal: bool,
    /// Every other field of the file, written back unchanged.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn default_rms_norm_eps() -> f64 {
    1e-5
}
fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_max_position_embeddings() -> usize {
    2048
}
fn default_is_causal() -> bool {
    true
}
fn is_true(value: &bool) -> bool {
    *value
}
fn default_hidden_act() -> String {
    "silu".to_string()
}
fn default_architectures() -> Vec<String> {
    vec!["LlamaForCausalLM".to_string()]
}
fn default_model_type() -> String {
    "llama".to_string()
}

impl Config {
    /// A small model for training from scratch with the byte-level tokenizer:
    /// `layers` decoder layers of width `hidden`, `heads` heads (as many key/value heads),
    /// SwiGLU width `4 * hidden`, tied embeddings.
    pub fn tiny(vocab_size: usize, hidden: usize, layers: usize, heads: usize) -> Config {
        Config {
            vocab_size,
            hidden_size: hidden,
            intermediate_size: 4 * hidden,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: Some(heads),
            head_dim: None,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            // Long enough for every game prompt spar writes in bytes (Leduc's is about 1,300).
            max_position_embeddings: 4096,
            tie_word_embeddings: true,
            bos_token_id: None,
            eos_token_id: None,
            hidden_act: default_hidden_act(),
            architectures: default_architectures(),
            model_type: default_model_type(),
            rope_scaling: None,
            attention_bias: false,
            mlp_bias: false,
            is_causal: true,
            extra: serde_json::Map::new(),
        }
    }

    /// Number of key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Width of one attention head.
    pub fn head_width(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// Checks that spar can run this configuration.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(LmError::Config(m));
        if self.hidden_act != "silu" {
            return fail(format!("hidden_act {:?} (only \"silu\")", self.hidden_act));
        }
        let family = Family::of(&self.model_type)?;
        family.validate(self)?;
        crate::family::rope_scaling(self)?;
        if self.num_attention_heads == 0 || self.kv_heads() == 0 {
            return fail("zero attention heads".to_string());
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return fail(format!(
                "num_attention_heads {} not a multiple of num_key_value_heads {}",
                self.num_attention_heads,
                self.kv_heads()
            ));
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return fail(format!(
                "hidden_size {} not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !self.head_width().is_multiple_of(2) {
            return fail(format!("head width {} is odd", self.head_width()));
        }
        Ok(())
    }

    /// The model family (`model_type`); [`Config::validate`] has refused unknown ones, so
    /// this falls back to Llama only for a configuration that was never validated.
    pub fn family(&self) -> Family {
        Family::of(&self.model_type).unwrap_or(Family::Llama)
    }

    /// Number of trainable parameters (every tensor of [`crate::model::tensor_shapes`]).
    pub fn num_parameters(&self) -> usize {
        crate::model::tensor_shapes(self)
            .iter()
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum()
    }

    /// Reads a Hugging Face `config.json`.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| LmError::io(path, e))?;
        let cfg: Config = serde_json::from_str(&text).map_err(|source| LmError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        cfg.validate().map_err(|e| match e {
            LmError::Config(message) => LmError::Config(format!("{}: {message}", path.display())),
            other => other,
        })?;
        Ok(cfg)
    }

    /// The `config.json` text (pretty-printed, with `torch_dtype` float32 unless set).
    pub fn to_json(&self) -> String {
        let mut cfg = self.clone();
        cfg.extra
            .entry("torch_dtype")
            .or_insert_with(|| serde_json::Value::String("float32".to_string()));
        serde_json::to_string_pretty(&cfg).expect("a Config always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of SmolLM2-135M-Instruct's `config.json` as published on the Hugging Face hub.
    const SMOLLM2: &str = r#"{
      "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
      "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 576,
      "initializer_range": 0.041666666666666664, "intermediate_size": 1536,
      "max_position_embeddings": 8192, "mlp_bias": false, "model_type": "llama",
      "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3,
      "pad_token_id": 2, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null,
      "rope_theta": 100000, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
      "transformers_version": "4.42.3", "use_cache": true, "vocab_size": 49152 }"#;

    #[test]
    fn reads_smollm2_config_and_counts_its_parameters() {
        let cfg: Config = serde_json::from_str(SMOLLM2).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.kv_heads(), 3);
        assert_eq!(cfg.head_width(), 64);
        // Hand count: embeddings 49152*576 + 30 layers * (attention 884,736 + MLP 2,654,208
        // + norms 1,152) + final norm 576 = 134,515,008 (the model card rounds it to 135M).
        assert_eq!(cfg.num_parameters(), 134_515_008);
        // Unknown fields survive a round trip.
        let back: Config = serde_json::from_str(&cfg.to_json()).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(back.extra["initializer_range"], 0.041666666666666664);
    }

    #[test]
    fn refuses_unsupported_rope_scaling_and_model_types() {
        let mut cfg = Config::tiny(256, 32, 1, 2);
        cfg.rope_scaling = Some(serde_json::json!({"rope_type": "yarn", "factor": 4.0}));
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("rope_scaling") && err.contains("\"yarn\""),
            "{err}"
        );
        cfg.rope_scaling = None;
        cfg.model_type = "mistral".into();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("model_type \"mistral\""), "{err}");
        cfg.model_type = "qwen2".into();
        cfg.extra
            .insert("use_sliding_window".into(), serde_json::Value::Bool(true));
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("use_sliding_window"), "{err}");
    }

    #[test]
    fn qwen2_and_qwen3_parameters_count_biases_and_head_norms() {
        let mut cfg = Config::tiny(100, 16, 2, 4);
        cfg.num_key_value_heads = Some(2);
        let llama = cfg.num_parameters();
        cfg.model_type = "qwen2".into();
        // q bias 4 heads * 4 + k and v biases 2 heads * 4 each = 32 per layer.
        assert_eq!(cfg.num_parameters(), llama + 2 * 32);
        cfg.model_type = "qwen3".into();
        // q_norm and k_norm, head_dim 4 each.
        assert_eq!(cfg.num_parameters(), llama + 2 * 8);
    }
}
