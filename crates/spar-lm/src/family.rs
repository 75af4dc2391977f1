//! The model families spar runs, told apart by `config.json`'s `model_type`, and what each
//! adds to the Llama decoder of [`crate::model`]:
//!
//! | `model_type` | `transformers` class | differences from Llama |
//! |---|---|---|
//! | `llama` | `LlamaForCausalLM` | biases on q/k/v/o with `attention_bias`, on the MLP with `mlp_bias`; `rope_scaling` of type `llama3` (Llama 3.1 and later) |
//! | `qwen2` | `Qwen2ForCausalLM` (Qwen2, Qwen2.5) | q/k/v projections always have a bias (o_proj and the MLP never); `use_sliding_window` must be false |
//! | `qwen3` | `Qwen3ForCausalLM` | RMSNorm over each query and key head (`q_norm`, `k_norm`) before the rotary embedding; biases on q/k/v/o with `attention_bias` |
//!
//! Anything else is refused ([`Family::of`]) rather than run as a Llama with its extra
//! tensors ignored, which gives wrong logits without an error. `docs/lm.md` lists the
//! families and the checks against `transformers` (`scripts/lm/compare_families.py`).

use crate::config::Config;
use crate::error::{LmError, Result};
use serde_json::Value;

/// A supported model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Llama 1-3 (and everything saved as `LlamaForCausalLM`, such as SmolLM2).
    Llama,
    /// Qwen2 and Qwen2.5.
    Qwen2,
    /// Qwen3 (dense).
    Qwen3,
}

/// The `model_type` values spar runs, as errors list them.
pub const SUPPORTED_MODEL_TYPES: [&str; 3] = ["llama", "qwen2", "qwen3"];

impl Family {
    /// The family of a `model_type`, or an error naming it and the supported ones.
    pub fn of(model_type: &str) -> Result<Family> {
        match model_type {
            "llama" => Ok(Family::Llama),
            "qwen2" => Ok(Family::Qwen2),
            "qwen3" => Ok(Family::Qwen3),
            other => Err(LmError::Config(format!(
                "model_type {other:?} is not supported: spar runs {} (Llama-family decoders); \
                 running another architecture as a Llama would ignore its extra tensors and \
                 give wrong logits. Use a model of a supported family, or convert this one",
                SUPPORTED_MODEL_TYPES.join(", ")
            ))),
        }
    }

    /// Whether the q, k and v projections have a bias.
    pub fn qkv_bias(self, cfg: &Config) -> bool {
        match self {
            Family::Qwen2 => true,
            Family::Llama | Family::Qwen3 => cfg.attention_bias,
        }
    }

    /// Whether the output projection of attention has a bias.
    pub fn o_bias(self, cfg: &Config) -> bool {
        match self {
            Family::Qwen2 => false,
            Family::Llama | Family::Qwen3 => cfg.attention_bias,
        }
    }

    /// Whether the MLP projections have a bias.
    pub fn mlp_bias(self, cfg: &Config) -> bool {
        self == Family::Llama && cfg.mlp_bias
    }

    /// Whether each query and key head is RMS-normalised before the rotary embedding.
    pub fn qk_norm(self) -> bool {
        self == Family::Qwen3
    }

    /// Checks the family's own `config.json` fields.
    pub fn validate(self, cfg: &Config) -> Result<()> {
        let flag = |key: &str| cfg.extra.get(key).and_then(Value::as_bool).unwrap_or(false);
        if self != Family::Llama && cfg.mlp_bias {
            return Err(LmError::Config(format!(
                "mlp_bias true is not part of {self:?} models (only llama has MLP biases)"
            )));
        }
        if self != Family::Llama && flag("use_sliding_window") {
            return Err(LmError::Config(
                "use_sliding_window true: spar runs full attention only; set it to false \
                 (as Qwen2.5 and Qwen3 checkpoints ship)"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

/// How the rotary frequencies are scaled: `rope_scaling` (transformers 4) or
/// `rope_parameters` (transformers 5) in `config.json`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// Plain RoFormer frequencies.
    Default,
    /// Llama 3.1's scaling (`rope_type` `llama3`): low frequencies divided by `factor`, high
    /// ones kept, a smooth ramp between.
    Llama3 {
        /// Divisor of the low frequencies.
        factor: f64,
        /// Wavelengths longer than `original_max_position_embeddings / low_freq_factor` are
        /// scaled fully.
        low_freq_factor: f64,
        /// Wavelengths shorter than `original_max_position_embeddings / high_freq_factor` are
        /// kept.
        high_freq_factor: f64,
        /// The context length the model was pretrained with.
        original_max_position_embeddings: f64,
    },
}

/// The rotary scaling object of `cfg` (`rope_scaling`, else `rope_parameters`), if any.
fn scaling_object(cfg: &Config) -> Option<&serde_json::Map<String, Value>> {
    cfg.rope_scaling
        .as_ref()
        .and_then(Value::as_object)
        .or_else(|| cfg.extra.get("rope_parameters").and_then(Value::as_object))
}

/// The base of the rotary frequencies: `rope_parameters.rope_theta` (transformers 5 moves it
/// there) or `rope_theta`.
pub fn rope_theta(cfg: &Config) -> f64 {
    cfg.extra
        .get("rope_parameters")
        .and_then(|p| p.get("rope_theta"))
        .and_then(Value::as_f64)
        .unwrap_or(cfg.rope_theta)
}

/// The rotary scaling of `cfg`, or an error naming an unsupported `rope_type` or a missing
/// field.
pub fn rope_scaling(cfg: &Config) -> Result<RopeScaling> {
    if let Some(value) = &cfg.rope_scaling {
        if !value.is_null() && !value.is_object() {
            return Err(LmError::Config(format!(
                "rope_scaling {value} is neither null nor an object"
            )));
        }
    }
    let Some(obj) = scaling_object(cfg) else {
        return Ok(RopeScaling::Default);
    };
    let kind = obj
        .get("rope_type")
        .or_else(|| obj.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let number = |key: &str| -> Result<f64> {
        obj.get(key).and_then(Value::as_f64).ok_or_else(|| {
            LmError::Config(format!(
                "rope_scaling of type {kind:?} lacks the number {key:?}"
            ))
        })
    };
    match kind {
        "default" => Ok(RopeScaling::Default),
        "llama3" => {
            let scaling = RopeScaling::Llama3 {
                factor: number("factor")?,
                low_freq_factor: number("low_freq_factor")?,
                high_freq_factor: number("high_freq_factor")?,
                original_max_position_embeddings: number("original_max_position_embeddings")?,
            };
            if let RopeScaling::Llama3 {
                low_freq_factor,
                high_freq_factor,
                ..
            } = scaling
            {
                if high_freq_factor <= low_freq_factor {
                    return Err(LmError::Config(format!(
                        "rope_scaling: high_freq_factor {high_freq_factor} must exceed \
                         low_freq_factor {low_freq_factor}"
                    )));
                }
            }
            Ok(scaling)
        }
        other => Err(LmError::Config(format!(
            "rope_scaling of type {other:?} is not supported (spar supports none, \"default\" \
             and \"llama3\"); a model that needs it would get wrong positions"
        ))),
    }
}

/// The rotary inverse frequencies `theta_i = base^(-2i/head_dim)` (RoFormer, Su et al. 2021,
/// eq. 15), scaled as `scaling` says. Llama 3's rule is `_compute_llama3_parameters` of
/// `transformers.modeling_rope_utils` (the scaling Meta's Llama 3.1 reference code
/// `apply_scaling` applies): with `wavelen = 2 pi / theta`, wavelengths above
/// `old / low_freq_factor` give `theta / factor`, those below `old / high_freq_factor` keep
/// `theta`, and between them `(1 - s) theta / factor + s theta` with
/// `s = (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)`.
pub fn inv_freq(base: f64, head_dim: usize, scaling: RopeScaling) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| {
            // transformers computes the exponent and power in float32.
            let exponent = (2 * i) as f32 / head_dim as f32;
            let theta = 1.0 / (base as f32).powf(exponent);
            match scaling {
                RopeScaling::Default => theta,
                RopeScaling::Llama3 {
                    factor,
                    low_freq_factor,
                    high_freq_factor,
                    original_max_position_embeddings: old,
                } => {
                    let (factor, low, high, old) = (
                        factor as f32,
                        low_freq_factor as f32,
                        high_freq_factor as f32,
                        old as f32,
                    );
                    let wavelen = 2.0 * std::f32::consts::PI / theta;
                    if wavelen > old / low {
                        theta / factor
                    } else if wavelen < old / high {
                        theta
                    } else {
                        let smooth = (old / wavelen - low) / (high - low);
                        (1.0 - smooth) * theta / factor + smooth * theta
                    }
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_model_types_are_refused_by_name() {
        let err = Family::of("gpt_neox").unwrap_err().to_string();
        assert!(
            err.contains("\"gpt_neox\"") && err.contains("llama, qwen2, qwen3"),
            "{err}"
        );
        assert_eq!(Family::of("qwen2").unwrap(), Family::Qwen2);
    }

    #[test]
    fn llama3_scaling_matches_hand_computed_frequencies() {
        // head_dim 8, base 10000: theta = 1, 0.1, 0.01, 0.001; wavelengths 2 pi / theta =
        // 6.28, 62.8, 628.3, 6283. With old = 1024, low 1 and high 4 the bands are:
        // wavelen < 256 kept, > 1024 divided by factor 8, and between smoothed with
        // s = (1024 / 628.3 - 1) / 3 = 0.2099: (1 - s) 0.01 / 8 + s 0.01 = 0.0030863.
        let scaling = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 1024.0,
        };
        let got = inv_freq(10_000.0, 8, scaling);
        let s = (1024.0 / (2.0 * std::f64::consts::PI / 0.01) - 1.0) / 3.0;
        let want = [1.0, 0.1, (1.0 - s) * 0.01 / 8.0 + s * 0.01, 0.001 / 8.0];
        for (g, w) in got.iter().zip(want) {
            assert!(
                (*g as f64 - w).abs() < 1e-6 * w.max(1e-3),
                "{got:?} vs {want:?}"
            );
        }
        assert!((want[2] - 0.0030863).abs() < 1e-6);
        let plain = inv_freq(10_000.0, 8, RopeScaling::Default);
        for (g, w) in plain.iter().zip([1.0f32, 0.1, 0.01, 0.001]) {
            assert!((g - w).abs() < 1e-6 * w, "{plain:?}");
        }
    }

    #[test]
    fn rope_scaling_types_are_read_or_refused() {
        let mut cfg = Config::tiny(16, 8, 1, 1);
        assert_eq!(rope_scaling(&cfg).unwrap(), RopeScaling::Default);
        cfg.rope_scaling = Some(serde_json::json!({"type": "linear", "factor": 2.0}));
        let err = rope_scaling(&cfg).unwrap_err().to_string();
        assert!(err.contains("\"linear\""), "{err}");
        cfg.rope_scaling = Some(serde_json::json!({"rope_type": "llama3", "factor": 8.0}));
        let err = rope_scaling(&cfg).unwrap_err().to_string();
        assert!(err.contains("low_freq_factor"), "{err}");
        // transformers 5 writes `rope_parameters` with the base inside.
        cfg.rope_scaling = None;
        cfg.extra.insert(
            "rope_parameters".into(),
            serde_json::json!({"rope_type": "default", "rope_theta": 500000.0}),
        );
        assert_eq!(rope_scaling(&cfg).unwrap(), RopeScaling::Default);
        assert_eq!(rope_theta(&cfg), 500_000.0);
    }
}
