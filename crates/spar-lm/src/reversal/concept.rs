//! The concept-level model of Wang and Sun (2025), "Is the reversal curse a binding problem?"
//! (arXiv 2504.01928; code: OSU-NLP-Group/reversal-curse-binding, the `wernicke_broca` mode
//! of its GPT-2), at tiny scale, built from spar's Llama blocks:
//!
//! * **Wernicke** (recognition): a [`Llama`] stack that reads each concept patch (one semantic
//!   unit's bytes, at most [`ConceptConfig::max_patch_len`]) on its own; its final state at
//!   the patch's last byte is the concept vector `c_j`. Subject and object go through the same
//!   encoder, so an entity has one representation in both roles (the paper's remedy for
//!   "inconsistent" representations).
//! * **Broca** (production): a causal [`Llama`] stack over the sequence of concept vectors
//!   (with a learned start vector first), giving states `b_i`.
//! * **JEPA objective**: predict the next concept in latent space. `logits_ij = <b_i, LN(c_j)>
//!   / sqrt(d)` over the distinct concepts of the batch (in-batch negatives), cross-entropy
//!   against the next concept's index; `LN` is the paper's `variance_only` normalisation (no
//!   learned scale), here RMS normalisation.
//! * **Memory layer** (optional, `memory_slots > 0`): a key-value layer as wide as the number
//!   of entities, of which only the `memory_top_k` best-matching slots fire (the paper's
//!   `memory_block_top_k 1`: disentangled concept memories), added to each concept vector
//!   before Broca reads it.
//!
//! Simplifications (also in `docs/reversal.md`): the paper's patches are token ids of one to
//! three tokens and ours are the bytes of a unit; the `1/sqrt(d)` scale is ours (the paper uses
//! the plain dot product, which saturates at initialisation in this small model); the memory
//! layer sits on Broca's input rather than replacing a decoder layer's MLP; MSE and
//! token-decoding losses the paper logs are not computed.

use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::error::{LmError, Result};
use crate::mlm::left_padded;
use crate::model::{init_weights, tensor_shapes, KvCache, Llama};
use crate::ops::rms_norm;
use crate::tokenizer::TextTokenizer;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The concept model's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConceptConfig {
    /// Layers of the Wernicke (patch) encoder; the paper: 3.
    pub wernicke_layers: usize,
    /// Layers of the Broca (concept sequence) stack; the paper: 3.
    pub broca_layers: usize,
    /// Most bytes in one concept patch.
    pub max_patch_len: usize,
    /// Slots of the memory layer (0: no memory layer; the paper: as many as entities).
    pub memory_slots: usize,
    /// Slots that fire per concept; the paper: 1.
    pub memory_top_k: usize,
}

impl Default for ConceptConfig {
    fn default() -> Self {
        ConceptConfig {
            wernicke_layers: 2,
            broca_layers: 2,
            max_patch_len: 16,
            memory_slots: 0,
            memory_top_k: 1,
        }
    }
}

impl ConceptConfig {
    /// Checks layer counts and the memory's top-k.
    pub fn validate(&self) -> Result<()> {
        if self.wernicke_layers == 0 || self.broca_layers == 0 || self.max_patch_len == 0 {
            return Err(LmError::InvalidArgument(format!(
                "concept: wernicke_layers ({}), broca_layers ({}) and max_patch_len ({}) must \
                 be at least 1",
                self.wernicke_layers, self.broca_layers, self.max_patch_len
            )));
        }
        if self.memory_slots > 0 && !(1..=self.memory_slots).contains(&self.memory_top_k) {
            return Err(LmError::InvalidArgument(format!(
                "concept: memory_top_k {} must be in 1..={}",
                self.memory_top_k, self.memory_slots
            )));
        }
        Ok(())
    }
}

/// The memory layer: `out = topk(LN(x) K^T) V`, only the `top_k` largest scores of each row
/// kept (the rest 0).
#[derive(Debug, Clone)]
struct Memory {
    keys: Tensor,
    values: Tensor,
    top_k: usize,
}

impl Memory {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let d = xs.dim(1)?;
        let ones = Tensor::ones(d, xs.dtype(), xs.device())?;
        let scores = rms_norm(xs, &ones, 1e-5)?.matmul(&self.keys.t()?)?;
        let rows: Vec<Vec<f32>> = scores.detach().to_vec2()?;
        let keep: Vec<f32> = rows
            .iter()
            .flat_map(|row| {
                let mut sorted = row.clone();
                sorted.sort_by(|a, b| b.total_cmp(a));
                let threshold = sorted[self.top_k - 1];
                row.iter()
                    .map(move |&v| if v >= threshold { 1f32 } else { 0.0 })
            })
            .collect();
        let keep = Tensor::from_vec(keep, scores.shape(), xs.device())?;
        Ok((scores * keep)?.matmul(&self.values)?)
    }
}

/// The Wernicke-Broca model (module docs).
pub struct ConceptModel {
    cfg: ConceptConfig,
    wernicke: Llama,
    broca: Llama,
    memory: Option<Memory>,
    tokenizer: TextTokenizer,
    varmap: VarMap,
}

impl std::fmt::Debug for ConceptModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConceptModel")
            .field("cfg", &self.cfg)
            .field("wernicke", self.wernicke.config())
            .field("broca", self.broca.config())
            .finish_non_exhaustive()
    }
}

/// The model configs of the two stacks for a residual width and head count.
fn stack_configs(
    cfg: &ConceptConfig,
    vocab: usize,
    hidden: usize,
    heads: usize,
) -> (Config, Config) {
    let mut wernicke = Config::tiny(vocab, hidden, cfg.wernicke_layers, heads);
    wernicke.max_position_embeddings = cfg.max_patch_len;
    // Broca's one-row embedding is its learned start vector.
    let mut broca = Config::tiny(1, hidden, cfg.broca_layers, heads);
    broca.max_position_embeddings = 64;
    (wernicke, broca)
}

impl ConceptModel {
    /// A fresh trainable model (weights normal with standard deviation `init_std`, seeded).
    pub fn new(
        cfg: &ConceptConfig,
        hidden: usize,
        heads: usize,
        init_std: f64,
        seed: u64,
        device: &Device,
    ) -> Result<ConceptModel> {
        cfg.validate()?;
        let tokenizer = TextTokenizer::byte_level(&crate::mlm::masked_special_tokens())?;
        let (wc, bc) = stack_configs(cfg, tokenizer.vocab_size(), hidden, heads);
        wc.validate()?;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (prefix, c, s) in [("wernicke", &wc, seed), ("broca", &bc, seed ^ 0xb50ca)] {
            for (name, t) in init_weights(c, init_std, s, device)? {
                tensors.insert(format!("{prefix}.{name}"), t);
            }
        }
        if cfg.memory_slots > 0 {
            let mut rng =
                <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed ^ 0x3e3e);
            let n = cfg.memory_slots * hidden;
            for name in ["memory.keys", "memory.values"] {
                let data = crate::rng::normal_vec(&mut rng, n, init_std);
                tensors.insert(
                    name.to_string(),
                    Tensor::from_vec(data, (cfg.memory_slots, hidden), device)?,
                );
            }
        }
        Self::from_tensors(cfg, &wc, &bc, &tensors, tokenizer, device)
    }

    fn from_tensors(
        cfg: &ConceptConfig,
        wc: &Config,
        bc: &Config,
        tensors: &HashMap<String, Tensor>,
        tokenizer: TextTokenizer,
        device: &Device,
    ) -> Result<ConceptModel> {
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().expect("fresh VarMap");
            for (name, t) in tensors {
                data.insert(name.clone(), Var::from_tensor(t)?);
            }
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let wernicke = Llama::new(wc, &vb.pp("wernicke"))?;
        let broca = Llama::new(bc, &vb.pp("broca"))?;
        let memory = if cfg.memory_slots > 0 {
            let shape = (cfg.memory_slots, wc.hidden_size);
            Some(Memory {
                keys: vb.get(shape, "memory.keys")?,
                values: vb.get(shape, "memory.values")?,
                top_k: cfg.memory_top_k,
            })
        } else {
            None
        };
        Ok(ConceptModel {
            cfg: cfg.clone(),
            wernicke,
            broca,
            memory,
            tokenizer,
            varmap,
        })
    }

    /// Every trainable tensor.
    pub fn vars(&self) -> Vec<Var> {
        self.varmap.all_vars()
    }

    /// Number of parameters.
    pub fn num_parameters(&self) -> usize {
        self.vars().iter().map(|v| v.as_tensor().elem_count()).sum()
    }

    /// Concept vectors `(units, hidden)` of `units` (each read by Wernicke on its own).
    pub fn encode(&self, units: &[String]) -> Result<Tensor> {
        let rows = units
            .iter()
            .map(|u| {
                let ids = self.tokenizer.encode(u)?;
                if ids.is_empty() || ids.len() > self.cfg.max_patch_len {
                    return Err(LmError::InvalidArgument(format!(
                        "concept patch {u:?} has {} bytes; max_patch_len is {}",
                        ids.len(),
                        self.cfg.max_patch_len
                    )));
                }
                Ok(ids)
            })
            .collect::<Result<Vec<_>>>()?;
        let (ids, pads) = left_padded(&rows, self.wernicke.device())?;
        let longest = ids.dim(1)?;
        let mut cache = KvCache::with_left_padding(self.cfg.wernicke_layers, pads);
        let hidden = self.wernicke.forward_hidden(&ids, &mut cache)?;
        Ok(hidden.narrow(1, longest - 1, 1)?.squeeze(1)?.contiguous()?)
    }

    /// `LN(c)`: RMS normalisation without a learned scale (the paper's `variance_only`).
    pub fn normalise(concepts: &Tensor) -> Result<Tensor> {
        let d = concepts.dim(1)?;
        let ones = Tensor::ones(d, concepts.dtype(), concepts.device())?;
        Ok(rms_norm(concepts, &ones, 1e-5)?)
    }

    /// Broca's states `(batch, n + 1, hidden)` for sequences of concept indices into
    /// `concepts` (every sequence `n` long): position 0 reads the start vector, position `i`
    /// the `i`-th concept; `b_i` predicts concept `i + 1`.
    pub fn predict(&self, concepts: &Tensor, sequences: &[Vec<u32>]) -> Result<Tensor> {
        let n = sequences.first().map_or(0, Vec::len);
        if sequences.iter().any(|s| s.len() != n) {
            return Err(LmError::InvalidArgument(
                "concept sequences of one batch must have the same number of units".into(),
            ));
        }
        let inputs = match &self.memory {
            Some(memory) => (concepts + memory.forward(concepts)?)?,
            None => concepts.clone(),
        };
        let hidden = inputs.dim(1)?;
        let flat: Vec<u32> = sequences.iter().flatten().copied().collect();
        let index = Tensor::from_vec(flat, sequences.len() * n, concepts.device())?;
        let xs = inputs
            .index_select(&index, 0)?
            .reshape((sequences.len(), n, hidden))?;
        let start =
            self.broca
                .embeddings()
                .unsqueeze(0)?
                .broadcast_as((sequences.len(), 1, hidden))?;
        let xs = Tensor::cat(&[&start, &xs], 1)?;
        Ok(self
            .broca
            .forward_embeds(&xs, &mut self.broca.new_cache())?)
    }

    /// Logits `<b, LN(c)> / sqrt(d)` of states `b` `(rows, hidden)` against concepts
    /// `(candidates, hidden)`.
    pub fn concept_logits(states: &Tensor, concepts: &Tensor) -> Result<Tensor> {
        let d = states.dim(1)? as f64;
        Ok((states.matmul(&Self::normalise(concepts)?.t()?)? / d.sqrt())?)
    }

    /// The JEPA loss of a batch of sentences given as units: the distinct units are encoded
    /// once, and every position predicts the next unit among them (module docs).
    pub fn loss(&self, sentences: &[Vec<String>]) -> Result<Tensor> {
        let mut distinct: Vec<String> = sentences.iter().flatten().cloned().collect();
        distinct.sort();
        distinct.dedup();
        let index_of = |u: &String| distinct.binary_search(u).expect("listed") as u32;
        let sequences: Vec<Vec<u32>> = sentences
            .iter()
            .map(|s| s.iter().map(index_of).collect())
            .collect();
        let concepts = self.encode(&distinct)?;
        let states = self.predict(&concepts, &sequences)?;
        let (b_sz, positions, hidden) = states.dims3()?;
        // Position i (0..n) predicts unit i; the last state predicts nothing.
        let states = states
            .narrow(1, 0, positions - 1)?
            .reshape((b_sz * (positions - 1), hidden))?;
        let logits = Self::concept_logits(&states, &concepts)?;
        let targets: Vec<u32> = sequences.iter().flatten().copied().collect();
        let targets = Tensor::from_vec(targets, b_sz * (positions - 1), concepts.device())?;
        Ok(candle_nn::loss::cross_entropy(&logits, &targets)?)
    }

    /// Scores of every candidate unit as the concept after `prefix` (the query's units):
    /// `<b_last, LN(c)> / sqrt(d)`, without a gradient.
    pub fn next_concept_scores(&self, prefix: &[String], candidates: &Tensor) -> Result<Vec<f32>> {
        let concepts = self.encode(prefix)?.detach();
        let order: Vec<u32> = (0..prefix.len() as u32).collect();
        let states = self.predict(&concepts, &[order])?.detach();
        let last = states.narrow(1, prefix.len(), 1)?.squeeze(1)?;
        Ok(Self::concept_logits(&last, candidates)?
            .squeeze(0)?
            .to_vec1()?)
    }

    /// Writes `wernicke/` and `broca/` (Hugging Face checkpoint directories; Wernicke's has
    /// the byte-level tokenizer), `memory.safetensors` when there is a memory layer, and
    /// `concept.json` (the [`ConceptConfig`]) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tensors = crate::checkpoint::varmap_tensors(&self.varmap);
        let part = |prefix: &str| -> HashMap<String, Tensor> {
            tensors
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix(&format!("{prefix}."))
                        .map(|n| (n.to_string(), v.clone()))
                })
                .collect()
        };
        Checkpoint {
            config: self.wernicke.config().clone(),
            tensors: part("wernicke"),
            tokenizer: Some(self.tokenizer.clone()),
        }
        .save(&dir.join("wernicke"))?;
        Checkpoint {
            config: self.broca.config().clone(),
            tensors: part("broca"),
            tokenizer: None,
        }
        .save(&dir.join("broca"))?;
        if self.memory.is_some() {
            spar_core::atomic::write_atomic(
                &dir.join("memory.safetensors"),
                &crate::checkpoint::safetensors_bytes(&part("memory"))?,
            )?;
        }
        spar_core::atomic::write_atomic(
            &dir.join("concept.json"),
            serde_json::to_string_pretty(&self.cfg)
                .expect("config serialises")
                .as_bytes(),
        )?;
        Ok(())
    }

    /// Reads a model written by [`ConceptModel::save`].
    pub fn load(dir: &Path, device: &Device) -> Result<ConceptModel> {
        let path = dir.join("concept.json");
        let text = std::fs::read_to_string(&path).map_err(|e| LmError::io(&path, e))?;
        let cfg: ConceptConfig =
            serde_json::from_str(&text).map_err(|source| LmError::Json { path, source })?;
        cfg.validate()?;
        let wernicke = Checkpoint::load(&dir.join("wernicke"), device)?;
        let broca = Checkpoint::load(&dir.join("broca"), device)?;
        let tokenizer = wernicke.tokenizer.clone().ok_or_else(|| {
            LmError::Tokenizer(format!("{}: no tokenizer", dir.join("wernicke").display()))
        })?;
        let mut tensors = HashMap::new();
        for (prefix, ckpt) in [("wernicke", &wernicke), ("broca", &broca)] {
            for (name, t) in &ckpt.tensors {
                tensors.insert(format!("{prefix}.{name}"), t.clone());
            }
        }
        if cfg.memory_slots > 0 {
            let file = dir.join("memory.safetensors");
            for (name, t) in candle_core::safetensors::load(&file, device)? {
                tensors.insert(format!("memory.{name}"), t);
            }
        }
        let expected = tensor_shapes(&wernicke.config).len()
            + tensor_shapes(&broca.config).len()
            + if cfg.memory_slots > 0 { 2 } else { 0 };
        if tensors.len() != expected {
            return Err(LmError::Config(format!(
                "{}: {} tensors, expected {expected}",
                dir.display(),
                tensors.len()
            )));
        }
        Self::from_tensors(
            &cfg,
            &wernicke.config,
            &broca.config,
            &tensors,
            tokenizer,
            device,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(text: &str) -> Vec<String> {
        text.split(" | ").map(String::from).collect()
    }

    #[test]
    fn every_parameter_gets_a_gradient_and_a_save_loads_back() {
        let cfg = ConceptConfig {
            memory_slots: 6,
            memory_top_k: 2,
            ..ConceptConfig::default()
        };
        let model = ConceptModel::new(&cfg, 16, 2, 0.2, 1, &Device::Cpu).unwrap();
        let batch = vec![
            units("The father of | Zorvin | is | Amelt"),
            units("The child of | Amelt | is | Zorvin"),
        ];
        let loss = model.loss(&batch).unwrap();
        let value: f32 = loss.to_scalar().unwrap();
        assert!(value.is_finite() && value > 0.0, "{value}");
        let grads = loss.backward().unwrap();
        let data = model.varmap.data().lock().unwrap();
        for (name, var) in data.iter() {
            let g = crate::ops::grad_of(&grads, var.as_tensor(), name).unwrap();
            let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
            assert!(norm > 0.0 && norm.is_finite(), "{name}: {norm}");
        }
        drop(data);
        let dir = std::env::temp_dir().join(format!("spar-concept-{}", std::process::id()));
        model.save(&dir).unwrap();
        let back = ConceptModel::load(&dir, &Device::Cpu).unwrap();
        let again: f32 = back.loss(&batch).unwrap().to_scalar().unwrap();
        assert!((again - value).abs() < 1e-5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_concept_has_one_vector_whatever_its_role() {
        // Wernicke reads a patch alone: "Zorvin" as subject and as object is the same vector.
        let model =
            ConceptModel::new(&ConceptConfig::default(), 16, 2, 0.2, 2, &Device::Cpu).unwrap();
        let a = model.encode(&units("Zorvin | The father of")).unwrap();
        let b = model.encode(&units("is | Zorvin")).unwrap();
        let diff: f32 = (a.get(0).unwrap() - b.get(1).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(diff < 1e-5, "{diff}");
        let long = "x".repeat(17);
        assert!(model.encode(&[long]).is_err());
    }
}
