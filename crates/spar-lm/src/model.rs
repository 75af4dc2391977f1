//! A Llama-family decoder (Touvron et al. 2023): RMSNorm, rotary embeddings, grouped-query
//! attention, SwiGLU, tied or untied embeddings, with Hugging Face `LlamaForCausalLM` tensor
//! names; and the additions of the other families of [`crate::family`]: projection biases
//! (Qwen2's q/k/v, Llama's `attention_bias`/`mlp_bias`), Qwen3's per-head q/k RMSNorm, Llama
//! 3's rotary scaling.
//!
//! The same weights serve sampling and training: [`Llama::forward`] takes a [`KvCache`] that the
//! caller owns. Every op on the path is differentiable (see [`crate::ops`]); a test asserts that
//! every parameter receives a non-zero gradient.

use crate::config::Config;
use crate::linear::Linear;
use crate::ops::{rms_norm, rope, softmax_last, RopeKind};
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;
use rand::SeedableRng;
use std::collections::HashMap;

/// Where a model's tensors come from, addressed by Hugging Face names
/// (`model.layers.0.self_attn.q_proj.weight`).
pub trait WeightSource {
    /// A dense tensor of the given shape.
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor>;
    /// A linear layer whose weight has shape `(out_features, in_features)`.
    fn linear(&self, name: &str, out_features: usize, in_features: usize) -> Result<Linear> {
        Ok(Linear::dense(self.tensor(
            &format!("{name}.weight"),
            &[out_features, in_features],
        )?))
    }
    /// A linear layer as [`WeightSource::linear`], with the bias `{name}.bias` of shape
    /// `(out_features,)` when `bias`.
    fn linear_with_bias(
        &self,
        name: &str,
        out_features: usize,
        in_features: usize,
        bias: bool,
    ) -> Result<Linear> {
        let layer = self.linear(name, out_features, in_features)?;
        Ok(if bias {
            layer.with_bias(self.tensor(&format!("{name}.bias"), &[out_features])?)
        } else {
            layer
        })
    }
    /// The output projection, or `None` when the embedding is tied.
    fn lm_head(&self, cfg: &Config) -> Result<Option<Linear>> {
        if cfg.tie_word_embeddings {
            Ok(None)
        } else {
            self.linear("lm_head", cfg.vocab_size, cfg.hidden_size)
                .map(Some)
        }
    }
    /// How the rotary embedding pairs dimensions for these weights.
    fn rope_kind(&self) -> RopeKind {
        RopeKind::Half
    }
}

impl WeightSource for VarBuilder<'_> {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.get(shape, name)
    }
}

/// Keys and values of every layer for the tokens seen so far, owned by the caller.
///
/// Sequences of different lengths share one batch by left padding: `left_pad[i]` pad tokens
/// precede sequence `i`; they are masked out and do not advance its positions.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
    left_pad: Vec<usize>,
}

impl KvCache {
    /// An empty cache for a model with `num_layers` layers and no padding.
    pub fn new(num_layers: usize) -> KvCache {
        KvCache {
            layers: vec![None; num_layers],
            len: 0,
            left_pad: Vec::new(),
        }
    }

    /// An empty cache for a left-padded batch (`left_pad[i]` pads before sequence `i`).
    pub fn with_left_padding(num_layers: usize, left_pad: Vec<usize>) -> KvCache {
        KvCache {
            left_pad,
            ..KvCache::new(num_layers)
        }
    }

    /// Number of token positions cached (pads included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn padded(&self) -> bool {
        self.left_pad.iter().any(|&p| p > 0)
    }

    /// The cache of a one-sequence batch repeated `n` times along the batch axis: `n`
    /// continuations of one shared prompt (scoring many candidate answers after one prompt,
    /// `crate::reversal::eval`). Errors when the cache holds more than one sequence.
    pub fn repeat_batch(&self, n: usize) -> Result<KvCache> {
        let layers = self
            .layers
            .iter()
            .map(|slot| match slot {
                None => Ok(None),
                Some((k, v)) => {
                    if k.dim(0)? != 1 {
                        candle_core::bail!("repeat_batch: the cache holds {} sequences", k.dim(0)?)
                    }
                    Ok(Some((k.repeat((n, 1, 1, 1))?, v.repeat((n, 1, 1, 1))?)))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        if self.left_pad.len() > 1 {
            candle_core::bail!("repeat_batch: the cache is padded for several sequences")
        }
        Ok(KvCache {
            layers,
            len: self.len,
            left_pad: self.left_pad.repeat(n),
        })
    }
}

#[derive(Debug, Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    /// Qwen3's RMSNorm weights over each query and key head (`(head_dim,)`).
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
    norm_eps: f64,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(cfg: &Config, w: &dyn WeightSource, prefix: &str) -> Result<Attention> {
        let (d, hd) = (cfg.hidden_size, cfg.head_width());
        let (h, kv) = (cfg.num_attention_heads, cfg.kv_heads());
        let family = cfg.family();
        let (qkv_bias, o_bias) = (family.qkv_bias(cfg), family.o_bias(cfg));
        let norm = |name: &str| -> Result<Option<Tensor>> {
            family
                .qk_norm()
                .then(|| w.tensor(&format!("{prefix}.{name}.weight"), &[hd]))
                .transpose()
        };
        Ok(Attention {
            q_proj: w.linear_with_bias(&format!("{prefix}.q_proj"), h * hd, d, qkv_bias)?,
            k_proj: w.linear_with_bias(&format!("{prefix}.k_proj"), kv * hd, d, qkv_bias)?,
            v_proj: w.linear_with_bias(&format!("{prefix}.v_proj"), kv * hd, d, qkv_bias)?,
            o_proj: w.linear_with_bias(&format!("{prefix}.o_proj"), d, h * hd, o_bias)?,
            q_norm: norm("q_norm")?,
            k_norm: norm("k_norm")?,
            norm_eps: cfg.rms_norm_eps,
            num_heads: h,
            num_kv_heads: kv,
            head_dim: hd,
        })
    }

    fn forward(
        &self,
        xs: &Tensor,
        rotary: &Rotary,
        mask: Option<&Tensor>,
        slot: &mut Option<(Tensor, Tensor)>,
    ) -> Result<Tensor> {
        let (b_sz, seq_len, _) = xs.dims3()?;
        let (h, kv, hd) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let q = self.q_proj.forward(xs)?.reshape((b_sz, seq_len, h, hd))?;
        let k = self.k_proj.forward(xs)?.reshape((b_sz, seq_len, kv, hd))?;
        let v = self.v_proj.forward(xs)?.reshape((b_sz, seq_len, kv, hd))?;
        // Qwen3: each head normalised before the rotation (`Qwen3Attention.forward`).
        let (q, k) = match (&self.q_norm, &self.k_norm) {
            (Some(qn), Some(kn)) => (
                rms_norm(&q, qn, self.norm_eps)?,
                rms_norm(&k, kn, self.norm_eps)?,
            ),
            _ => (q, k),
        };
        let q = rotary.apply(&q)?.transpose(1, 2)?.contiguous()?;
        let k = rotary.apply(&k)?.transpose(1, 2)?.contiguous()?;
        let v = v.transpose(1, 2)?.contiguous()?;
        let (k, v) = match slot.take() {
            Some((pk, pv)) => (Tensor::cat(&[pk, k], 2)?, Tensor::cat(&[pv, v], 2)?),
            None => (k, v),
        };
        *slot = Some((k.clone(), v.clone()));
        let total = k.dim(2)?;
        // Grouped-query attention without copying keys: query head j uses key head j / n_rep,
        // so the n_rep query heads of a group stack along the sequence axis.
        let n_rep = h / kv;
        let q = q.reshape((b_sz, kv, n_rep * seq_len, hd))?;
        let scores = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
        let scores = scores.reshape((b_sz, h, seq_len, total))?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        let probs = softmax_last(&scores)?.reshape((b_sz, kv, n_rep * seq_len, total))?;
        let out = probs.matmul(&v)?.reshape((b_sz, h, seq_len, hd))?;
        let out = out.transpose(1, 2)?.reshape((b_sz, seq_len, h * hd))?;
        self.o_proj.forward(&out)
    }
}

#[derive(Debug, Clone)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn new(cfg: &Config, w: &dyn WeightSource, prefix: &str) -> Result<Mlp> {
        let (d, f) = (cfg.hidden_size, cfg.intermediate_size);
        let bias = cfg.family().mlp_bias(cfg);
        Ok(Mlp {
            gate_proj: w.linear_with_bias(&format!("{prefix}.gate_proj"), f, d, bias)?,
            up_proj: w.linear_with_bias(&format!("{prefix}.up_proj"), f, d, bias)?,
            down_proj: w.linear_with_bias(&format!("{prefix}.down_proj"), d, f, bias)?,
        })
    }

    /// SwiGLU (Shazeer 2020, eq. 6): `down(silu(gate(x)) * up(x))`.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let gate = self.gate_proj.forward(xs)?.silu()?;
        self.down_proj.forward(&(gate * self.up_proj.forward(xs)?)?)
    }
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    input_layernorm: Tensor,
    self_attn: Attention,
    post_attention_layernorm: Tensor,
    mlp: Mlp,
}

/// Cosines and sines for the positions of one forward call.
struct Rotary {
    cos: Tensor,
    sin: Tensor,
    kind: RopeKind,
}

impl Rotary {
    fn apply(&self, xs: &Tensor) -> Result<Tensor> {
        rope(xs, &self.cos, &self.sin, self.kind)
    }
}

/// A Llama-family causal language model.
#[derive(Debug, Clone)]
pub struct Llama {
    cfg: Config,
    embed_tokens: Tensor,
    layers: Vec<DecoderLayer>,
    norm: Tensor,
    lm_head: Linear,
    cos: Tensor,
    sin: Tensor,
    rope_kind: RopeKind,
}

impl Llama {
    /// Builds the model from `weights` (Hugging Face names), as candle's models do from a
    /// `VarBuilder`.
    pub fn new(cfg: &Config, weights: &dyn WeightSource) -> Result<Llama> {
        let d = cfg.hidden_size;
        let embed_tokens = weights.tensor("model.embed_tokens.weight", &[cfg.vocab_size, d])?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let p = format!("model.layers.{i}");
                Ok(DecoderLayer {
                    input_layernorm: weights
                        .tensor(&format!("{p}.input_layernorm.weight"), &[d])?,
                    self_attn: Attention::new(cfg, weights, &format!("{p}.self_attn"))?,
                    post_attention_layernorm: weights
                        .tensor(&format!("{p}.post_attention_layernorm.weight"), &[d])?,
                    mlp: Mlp::new(cfg, weights, &format!("{p}.mlp"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let norm = weights.tensor("model.norm.weight", &[d])?;
        let lm_head = match weights.lm_head(cfg)? {
            Some(head) => head,
            None => Linear::dense(embed_tokens.clone()),
        };
        let (cos, sin) = rotary_tables(cfg, embed_tokens.device())?;
        Ok(Llama {
            cfg: cfg.clone(),
            embed_tokens,
            layers,
            norm,
            lm_head,
            cos,
            sin,
            rope_kind: weights.rope_kind(),
        })
    }

    /// The same model with every weight detached from the autograd graph (storage shared:
    /// optimiser updates show through). A forward pass through a model whose weights are
    /// variables keeps every intermediate tensor alive until its result is dropped (candle
    /// records the graph); sampling and scoring without a gradient should use this view
    /// (SmolLM2 with a LoRA adapter: 20+ GiB for one scoring batch otherwise).
    pub fn detached(&self) -> Llama {
        Llama {
            cfg: self.cfg.clone(),
            embed_tokens: self.embed_tokens.detach(),
            layers: self
                .layers
                .iter()
                .map(|l| DecoderLayer {
                    input_layernorm: l.input_layernorm.detach(),
                    self_attn: Attention {
                        q_proj: l.self_attn.q_proj.detached(),
                        k_proj: l.self_attn.k_proj.detached(),
                        v_proj: l.self_attn.v_proj.detached(),
                        o_proj: l.self_attn.o_proj.detached(),
                        q_norm: l.self_attn.q_norm.as_ref().map(Tensor::detach),
                        k_norm: l.self_attn.k_norm.as_ref().map(Tensor::detach),
                        ..l.self_attn.clone()
                    },
                    post_attention_layernorm: l.post_attention_layernorm.detach(),
                    mlp: Mlp {
                        gate_proj: l.mlp.gate_proj.detached(),
                        up_proj: l.mlp.up_proj.detached(),
                        down_proj: l.mlp.down_proj.detached(),
                    },
                })
                .collect(),
            norm: self.norm.detach(),
            lm_head: self.lm_head.detached(),
            cos: self.cos.clone(),
            sin: self.sin.clone(),
            rope_kind: self.rope_kind,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.embed_tokens.device()
    }

    /// A fresh cache for this model (no padding).
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.layers.len())
    }

    /// Logits `(batch, seq, vocab)` for `ids` `(batch, seq)` (u32), which follow the tokens
    /// already in `cache`; the new keys and values are appended to `cache`.
    pub fn forward(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let hidden = self.forward_hidden(ids, cache)?;
        self.logits(&hidden)
    }

    /// The final normalised hidden states `(batch, seq, hidden)`; see [`Llama::forward`].
    pub fn forward_hidden(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (b_sz, seq_len) = ids.dims2()?;
        let xs = self
            .embed_tokens
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b_sz, seq_len, self.cfg.hidden_size))?;
        self.forward_embeds(&xs, cache)
    }

    /// The final normalised hidden states `(batch, seq, hidden)` for input vectors `xs`
    /// `(batch, seq, hidden)` in place of token embeddings (a model over concept vectors,
    /// `crate::reversal::concept`); otherwise as [`Llama::forward_hidden`].
    pub fn forward_embeds(&self, xs: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (b_sz, seq_len, _) = xs.dims3()?;
        let offset = cache.len;
        if cache.padded() && cache.left_pad.len() != b_sz {
            candle_core::bail!(
                "cache has padding for {} sequences, batch has {b_sz}",
                cache.left_pad.len()
            )
        }
        if offset + seq_len > self.cfg.max_position_embeddings {
            candle_core::bail!(
                "sequence of {} tokens exceeds max_position_embeddings {}",
                offset + seq_len,
                self.cfg.max_position_embeddings
            )
        }
        let rotary = self.rotary(b_sz, seq_len, offset, cache)?;
        let mask = self.mask(seq_len, offset, cache)?;
        let mut xs = xs.clone();
        let eps = self.cfg.rms_norm_eps;
        for (layer, slot) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let normed = rms_norm(&xs, &layer.input_layernorm, eps)?;
            xs = (&xs
                + layer
                    .self_attn
                    .forward(&normed, &rotary, mask.as_ref(), slot)?)?;
            let normed = rms_norm(&xs, &layer.post_attention_layernorm, eps)?;
            xs = (&xs + layer.mlp.forward(&normed)?)?;
        }
        cache.len += seq_len;
        rms_norm(&xs, &self.norm, eps)
    }

    /// The token embedding matrix `(vocab, hidden)`.
    pub fn embeddings(&self) -> &Tensor {
        &self.embed_tokens
    }

    /// Logits for hidden states from [`Llama::forward_hidden`].
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.lm_head.forward(hidden)
    }

    fn rotary(
        &self,
        b_sz: usize,
        seq_len: usize,
        offset: usize,
        cache: &KvCache,
    ) -> Result<Rotary> {
        let (cos, sin) = if cache.padded() {
            let positions: Vec<u32> = cache
                .left_pad
                .iter()
                .flat_map(|&pad| {
                    (offset..offset + seq_len).map(move |p| p.saturating_sub(pad) as u32)
                })
                .collect();
            let positions = Tensor::new(positions, self.device())?;
            let half = self.cfg.head_width() / 2;
            let pick = |t: &Tensor| -> Result<Tensor> {
                t.index_select(&positions, 0)?
                    .reshape((b_sz, seq_len, half))
            };
            (pick(&self.cos)?, pick(&self.sin)?)
        } else {
            (
                self.cos.narrow(0, offset, seq_len)?,
                self.sin.narrow(0, offset, seq_len)?,
            )
        };
        Ok(Rotary {
            cos,
            sin,
            kind: self.rope_kind,
        })
    }

    /// Additive mask `(batch or 1, 1, seq, offset + seq)`: 0 where a query may attend, -inf
    /// elsewhere. A query sees earlier keys and itself (causal) or every key that is not a pad
    /// (bidirectional, `Config::is_causal` false); a padded query sees only itself (its
    /// output is never used, but its softmax row must not be empty).
    fn mask(&self, seq_len: usize, offset: usize, cache: &KvCache) -> Result<Option<Tensor>> {
        let padded = cache.padded();
        let causal = self.cfg.is_causal;
        if !padded && (seq_len == 1 || !causal) {
            return Ok(None);
        }
        let total = offset + seq_len;
        let pads: Vec<usize> = if padded {
            cache.left_pad.clone()
        } else {
            vec![0]
        };
        let mut data = Vec::with_capacity(pads.len() * seq_len * total);
        for &pad in &pads {
            for i in 0..seq_len {
                let query = offset + i;
                for key in 0..total {
                    let visible =
                        key == query || ((key < query || !causal) && key >= pad && query >= pad);
                    data.push(if visible { 0f32 } else { f32::NEG_INFINITY });
                }
            }
        }
        let mask = Tensor::from_vec(data, (pads.len(), 1, seq_len, total), self.device())?;
        Ok(Some(mask.to_dtype(self.embed_tokens.dtype())?))
    }

    /// Mutable access to every linear layer with its Hugging Face module name
    /// (`model.layers.0.self_attn.q_proj`), for attaching or merging LoRA adapters.
    pub fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let p = format!("model.layers.{i}");
            let a = &mut layer.self_attn;
            out.push((format!("{p}.self_attn.q_proj"), &mut a.q_proj));
            out.push((format!("{p}.self_attn.k_proj"), &mut a.k_proj));
            out.push((format!("{p}.self_attn.v_proj"), &mut a.v_proj));
            out.push((format!("{p}.self_attn.o_proj"), &mut a.o_proj));
            let m = &mut layer.mlp;
            out.push((format!("{p}.mlp.gate_proj"), &mut m.gate_proj));
            out.push((format!("{p}.mlp.up_proj"), &mut m.up_proj));
            out.push((format!("{p}.mlp.down_proj"), &mut m.down_proj));
        }
        out
    }
}

/// Cosine and sine tables `(max_position_embeddings, head_dim/2)` with
/// `theta_i = rope_theta^(-2i/head_dim)` (RoFormer, eq. 15), scaled as `rope_scaling` says
/// ([`crate::family::inv_freq`]).
fn rotary_tables(cfg: &Config, device: &Device) -> Result<(Tensor, Tensor)> {
    let scaling = crate::family::rope_scaling(cfg).map_err(candle_core::Error::wrap)?;
    let inv_freq =
        crate::family::inv_freq(crate::family::rope_theta(cfg), cfg.head_width(), scaling);
    let inv_freq = Tensor::new(inv_freq, device)?.unsqueeze(0)?;
    let positions = Tensor::arange(0u32, cfg.max_position_embeddings as u32, device)?
        .to_dtype(DType::F32)?
        .unsqueeze(1)?;
    let angles = positions.broadcast_mul(&inv_freq)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// Every tensor of a model with this configuration: Hugging Face name and shape (biases and
/// Qwen3's head norms as the family has them, [`crate::family::Family`]).
pub fn tensor_shapes(cfg: &Config) -> Vec<(String, Vec<usize>)> {
    let (d, f, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let (hd, h, kv) = (cfg.head_width(), cfg.num_attention_heads, cfg.kv_heads());
    let family = cfg.family();
    let (qkv_bias, o_bias) = (family.qkv_bias(cfg), family.o_bias(cfg));
    let mlp_bias = family.mlp_bias(cfg);
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![v, d])];
    // The order of the matrices fixes what `init_weights` draws for each: keep it.
    let linear = |out: &mut Vec<(String, Vec<usize>)>, name: String, rows, cols, bias: bool| {
        out.push((format!("{name}.weight"), vec![rows, cols]));
        if bias {
            out.push((format!("{name}.bias"), vec![rows]));
        }
    };
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}");
        out.push((format!("{p}.input_layernorm.weight"), vec![d]));
        linear(
            &mut out,
            format!("{p}.self_attn.q_proj"),
            h * hd,
            d,
            qkv_bias,
        );
        linear(
            &mut out,
            format!("{p}.self_attn.k_proj"),
            kv * hd,
            d,
            qkv_bias,
        );
        linear(
            &mut out,
            format!("{p}.self_attn.v_proj"),
            kv * hd,
            d,
            qkv_bias,
        );
        linear(&mut out, format!("{p}.self_attn.o_proj"), d, h * hd, o_bias);
        if family.qk_norm() {
            out.push((format!("{p}.self_attn.q_norm.weight"), vec![hd]));
            out.push((format!("{p}.self_attn.k_norm.weight"), vec![hd]));
        }
        out.push((format!("{p}.post_attention_layernorm.weight"), vec![d]));
        linear(&mut out, format!("{p}.mlp.gate_proj"), f, d, mlp_bias);
        linear(&mut out, format!("{p}.mlp.up_proj"), f, d, mlp_bias);
        linear(&mut out, format!("{p}.mlp.down_proj"), d, f, mlp_bias);
    }
    out.push(("model.norm.weight".to_string(), vec![d]));
    if !cfg.tie_word_embeddings {
        out.push(("lm_head.weight".to_string(), vec![v, d]));
    }
    out
}

/// Freshly initialised weights, reproducible from `seed`: norms at one, biases at zero, every
/// matrix normal with mean 0 and standard deviation `std` (Hugging Face uses
/// `initializer_range` = 0.02).
pub fn init_weights(
    cfg: &Config,
    std: f64,
    seed: u64,
    device: &Device,
) -> Result<HashMap<String, Tensor>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    tensor_shapes(cfg)
        .into_iter()
        .map(|(name, shape)| {
            let t = if name.ends_with(".bias") {
                Tensor::zeros(shape, DType::F32, device)?
            } else if shape.len() == 1 {
                Tensor::ones(shape, DType::F32, device)?
            } else {
                let n = shape.iter().product();
                Tensor::from_vec(crate::rng::normal_vec(&mut rng, n, std), shape, device)?
            };
            Ok((name, t))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    fn tiny() -> Config {
        // GQA (4 query heads over 2 key/value heads), untied head.
        let mut cfg = Config::tiny(40, 16, 2, 4);
        cfg.num_key_value_heads = Some(2);
        cfg.intermediate_size = 24;
        cfg.tie_word_embeddings = false;
        cfg.max_position_embeddings = 64;
        cfg
    }

    fn frozen(cfg: &Config, seed: u64) -> Llama {
        let weights = init_weights(cfg, 0.2, seed, &Device::Cpu).unwrap();
        let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
        Llama::new(cfg, &vb).unwrap()
    }

    fn ids(rows: &[&[u32]]) -> Tensor {
        Tensor::new(
            rows.iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
            &Device::Cpu,
        )
        .unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn shapes_of_a_tiny_config() {
        let cfg = tiny();
        let model = frozen(&cfg, 1);
        let logits = model
            .forward(&ids(&[&[1, 2, 3], &[4, 5, 6]]), &mut model.new_cache())
            .unwrap();
        assert_eq!(logits.dims(), &[2, 3, 40]);
        let count: usize = tensor_shapes(&cfg)
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(count, cfg.num_parameters());
    }

    #[test]
    fn kv_cache_gives_the_same_logits_as_one_pass() {
        let model = frozen(&tiny(), 2);
        let full = model
            .forward(&ids(&[&[3, 1, 4, 1, 5, 9]]), &mut model.new_cache())
            .unwrap();
        let mut cache = model.new_cache();
        let first = model.forward(&ids(&[&[3, 1, 4]]), &mut cache).unwrap();
        let mut steps = vec![first];
        for t in [1u32, 5, 9] {
            steps.push(model.forward(&ids(&[&[t]]), &mut cache).unwrap());
        }
        let incremental = Tensor::cat(&steps, 1).unwrap();
        assert!(max_abs_diff(&full, &incremental) < 1e-5);
        assert_eq!(cache.len(), 6);
    }

    /// A left-padded sequence in a batch gets the logits it gets alone; returns the model
    /// and the batch's cache.
    fn check_left_padding(causal: bool) -> (Llama, KvCache) {
        let mut cfg = tiny();
        cfg.is_causal = causal;
        let model = frozen(&cfg, 3);
        let alone = model
            .forward(&ids(&[&[7, 8, 9]]), &mut model.new_cache())
            .unwrap();
        // Batch with a longer sequence: [7, 8, 9] gets two pads (token 0) in front.
        let mut cache = KvCache::with_left_padding(2, vec![2, 0]);
        let batch = model
            .forward(&ids(&[&[0, 0, 7, 8, 9], &[1, 2, 3, 4, 5]]), &mut cache)
            .unwrap();
        let padded = batch
            .get(0)
            .unwrap()
            .narrow(0, 2, 3)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        assert!(max_abs_diff(&alone, &padded) < 1e-5, "causal {causal}");
        (model, cache)
    }

    #[test]
    fn left_padding_does_not_change_a_sequence() {
        // Bidirectional attention hides the pads too.
        check_left_padding(false);
        let (model, mut cache) = check_left_padding(true);
        // One more step with the cache.
        let mut solo_cache = model.new_cache();
        model.forward(&ids(&[&[7, 8, 9]]), &mut solo_cache).unwrap();
        let next_alone = model.forward(&ids(&[&[10]]), &mut solo_cache).unwrap();
        let next_batch = model.forward(&ids(&[&[10], &[6]]), &mut cache).unwrap();
        let next_padded = next_batch.get(0).unwrap().unsqueeze(0).unwrap();
        assert!(max_abs_diff(&next_alone, &next_padded) < 1e-5);
    }

    #[test]
    fn a_later_token_changes_earlier_logits_only_when_bidirectional() {
        for causal in [true, false] {
            let mut cfg = tiny();
            cfg.is_causal = causal;
            let model = frozen(&cfg, 5);
            let a = model
                .forward(&ids(&[&[1, 2, 3, 4]]), &mut model.new_cache())
                .unwrap();
            let b = model
                .forward(&ids(&[&[1, 2, 3, 9]]), &mut model.new_cache())
                .unwrap();
            let first = |t: &Tensor| t.narrow(1, 0, 3).unwrap();
            let diff = max_abs_diff(&first(&a), &first(&b));
            if causal {
                assert_eq!(diff, 0.0, "a causal model's earlier logits moved");
            } else {
                assert!(
                    diff > 1e-3,
                    "bidirectional: earlier logits moved only {diff}"
                );
            }
            // The last position sees the changed token in both modes.
            assert!(max_abs_diff(&a, &b) > 1e-3);
        }
    }

    #[test]
    fn a_repeated_cache_continues_each_copy_like_the_original() {
        let model = frozen(&tiny(), 7);
        let mut cache = model.new_cache();
        model.forward(&ids(&[&[3, 1, 4]]), &mut cache).unwrap();
        let mut repeated = cache.repeat_batch(2).unwrap();
        let both = model
            .forward(&ids(&[&[5, 9], &[2, 6]]), &mut repeated)
            .unwrap();
        for (row, tail) in [[5u32, 9], [2, 6]].iter().enumerate() {
            let full: Vec<u32> = [3, 1, 4].iter().chain(tail).copied().collect();
            let alone = model
                .forward(&ids(&[full.as_slice()]), &mut model.new_cache())
                .unwrap()
                .narrow(1, 3, 2)
                .unwrap();
            let copy = both.get(row).unwrap().unsqueeze(0).unwrap();
            assert!(max_abs_diff(&alone, &copy) < 1e-5);
        }
    }

    #[test]
    fn every_parameter_gets_a_nonzero_gradient() {
        for causal in [true, false] {
            every_parameter_gets_a_gradient(causal, "llama");
        }
        // Qwen2's q/k/v biases and Qwen3's head norms train too.
        every_parameter_gets_a_gradient(true, "qwen2");
        every_parameter_gets_a_gradient(true, "qwen3");
    }

    fn every_parameter_gets_a_gradient(causal: bool, model_type: &str) {
        let mut cfg = tiny();
        cfg.is_causal = causal;
        cfg.model_type = model_type.into();
        let weights = init_weights(&cfg, 0.2, 4, &Device::Cpu).unwrap();
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().unwrap();
            for (name, t) in &weights {
                data.insert(name.clone(), candle_core::Var::from_tensor(t).unwrap());
            }
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = Llama::new(&cfg, &vb).unwrap();
        let input = ids(&[&[1, 2, 3, 4], &[5, 6, 7, 8]]);
        let target = ids(&[&[2, 3, 4, 5], &[6, 7, 8, 9]]);
        let logits = model.forward(&input, &mut model.new_cache()).unwrap();
        let loss = candle_nn::loss::cross_entropy(
            &logits.flatten_to(1).unwrap(),
            &target.flatten_all().unwrap(),
        )
        .unwrap();
        let grads = loss.backward().unwrap();
        let data = varmap.data().lock().unwrap();
        assert_eq!(data.len(), tensor_shapes(&cfg).len());
        for (name, var) in data.iter() {
            let g = crate::ops::grad_of(&grads, var.as_tensor(), name).unwrap();
            let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
            assert!(
                norm > 0.0 && norm.is_finite(),
                "{name}: gradient norm {norm}"
            );
        }
    }
}
