//! LoRA adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") on the
//! attention and MLP projections, stored in Hugging Face PEFT's layout so that PEFT, vLLM and
//! SGLang load them.
//!
//! A target projection `W` (frozen, dense or quantised) becomes `W + s B A` (eq. 3) with
//! `A: (r, in)`, `B: (out, r)` and `s = alpha / r` (or `alpha / sqrt(r)` with rsLoRA,
//! Kalajdzievski 2023). `A` starts as PEFT's Kaiming-uniform draw (bound `1/sqrt(in)`), `B` at
//! zero, so a fresh adapter leaves the model unchanged. Only `A` and `B` are `Var`s: the base
//! receives no gradient.
//!
//! Files: `adapter_config.json` (PEFT's `LoraConfig`) and `adapter_model.safetensors` with
//! tensors named `base_model.model.<module>.lora_A.weight` / `lora_B.weight`, e.g.
//! `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`.

use crate::checkpoint::{safetensors_bytes, Checkpoint};
use crate::error::{LmError, Result};
use crate::linear::LoraPair;
use crate::model::Llama;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use spar_core::atomic::write_atomic;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The projections an adapter can target (PEFT's module names).
pub const PROJECTIONS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

fn default_peft_type() -> String {
    "LORA".into()
}
fn default_task_type() -> String {
    "CAUSAL_LM".into()
}
fn default_bias() -> String {
    "none".into()
}

/// PEFT's `adapter_config.json` for a LoRA adapter (the fields spar reads; any other field is
/// kept and written back unchanged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Always `"LORA"`.
    #[serde(default = "default_peft_type")]
    pub peft_type: String,
    /// Always `"CAUSAL_LM"` for spar's models.
    #[serde(default = "default_task_type")]
    pub task_type: String,
    /// Rank `r` of the update.
    pub r: usize,
    /// Scaling numerator: the update is multiplied by `lora_alpha / r`.
    pub lora_alpha: f64,
    /// Module names to adapt (`q_proj`, ... `down_proj`), or the string `"all-linear"`.
    pub target_modules: TargetModules,
    /// Dropout on the adapter's input during training. spar does not implement it: must be 0.
    #[serde(default)]
    pub lora_dropout: f64,
    /// Bias training: spar's models have no biases, so only `"none"` is accepted.
    #[serde(default = "default_bias")]
    pub bias: String,
    /// rsLoRA scaling `lora_alpha / sqrt(r)` instead of `lora_alpha / r`.
    #[serde(default)]
    pub use_rslora: bool,
    /// Where the base model came from (informational).
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    /// Every other field of the file.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `target_modules`: a list of module names or PEFT's shorthand `"all-linear"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetModules {
    /// Named projections.
    List(Vec<String>),
    /// `"all-linear"`: every projection of every layer (not the output head).
    Shorthand(String),
}

impl LoraConfig {
    /// An adapter of rank `r` and scale numerator `alpha` on `targets` (module names such as
    /// `q_proj`, or `all-linear`).
    pub fn new(r: usize, alpha: f64, targets: &[&str]) -> LoraConfig {
        let target_modules = if targets == ["all-linear"] {
            TargetModules::Shorthand("all-linear".into())
        } else {
            TargetModules::List(targets.iter().map(|s| s.to_string()).collect())
        };
        LoraConfig {
            peft_type: default_peft_type(),
            task_type: default_task_type(),
            r,
            lora_alpha: alpha,
            target_modules,
            lora_dropout: 0.0,
            bias: default_bias(),
            use_rslora: false,
            base_model_name_or_path: None,
            extra: BTreeMap::new(),
        }
    }

    /// The multiplier `s` of `B A`.
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.lora_alpha / (self.r as f64).sqrt()
        } else {
            self.lora_alpha / self.r as f64
        }
    }

    /// The targeted projection names, checked.
    pub fn targets(&self) -> Result<Vec<String>> {
        let list = match &self.target_modules {
            TargetModules::Shorthand(s) if s == "all-linear" => {
                return Ok(PROJECTIONS.iter().map(|s| s.to_string()).collect())
            }
            TargetModules::Shorthand(s) => vec![s.clone()],
            TargetModules::List(l) => l.clone(),
        };
        if list.is_empty() {
            return Err(LmError::Config(
                "lora target_modules is empty: name at least one of q_proj, k_proj, v_proj, \
                 o_proj, gate_proj, up_proj, down_proj (or all-linear)"
                    .into(),
            ));
        }
        for t in &list {
            if !PROJECTIONS.contains(&t.as_str()) {
                return Err(LmError::Config(format!(
                    "lora target module {t:?} is not a projection of this model; use some of \
                     {PROJECTIONS:?} or \"all-linear\""
                )));
            }
        }
        Ok(list)
    }

    /// Checks the fields spar depends on.
    pub fn validate(&self) -> Result<()> {
        if self.peft_type != "LORA" {
            return Err(LmError::Config(format!(
                "adapter peft_type is {:?}; spar reads only LORA adapters",
                self.peft_type
            )));
        }
        if self.r == 0 {
            return Err(LmError::Config("lora rank r must be at least 1".into()));
        }
        if !(self.lora_alpha.is_finite() && self.lora_alpha > 0.0) {
            return Err(LmError::Config(format!(
                "lora_alpha must be a positive number, got {}",
                self.lora_alpha
            )));
        }
        if self.lora_dropout != 0.0 {
            return Err(LmError::Config(format!(
                "lora_dropout is {}; spar's adapters have no dropout: set it to 0",
                self.lora_dropout
            )));
        }
        if self.bias != "none" {
            return Err(LmError::Config(format!(
                "lora bias is {:?}; spar's models have no biases: set it to \"none\"",
                self.bias
            )));
        }
        self.targets().map(|_| ())
    }
}

/// A LoRA adapter: its configuration and its `A`/`B` matrices as trainable variables, keyed by
/// PEFT tensor names.
#[derive(Clone)]
pub struct Lora {
    /// The configuration (`adapter_config.json`).
    pub config: LoraConfig,
    /// The `A` and `B` matrices by PEFT name (`base_model.model.<module>.lora_A.weight`).
    pub varmap: VarMap,
}

impl std::fmt::Debug for Lora {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lora")
            .field("config", &self.config)
            .field(
                "tensors",
                &self.varmap.data().lock().map(|d| d.len()).unwrap_or(0),
            )
            .finish()
    }
}

fn peft_names(module: &str) -> (String, String) {
    (
        format!("base_model.model.{module}.lora_A.weight"),
        format!("base_model.model.{module}.lora_B.weight"),
    )
}

fn short_name(module: &str) -> &str {
    module.rsplit('.').next().unwrap_or(module)
}

impl Lora {
    /// A fresh adapter for `model`: `A` Kaiming-uniform (bound `1/sqrt(in_features)`, PEFT's
    /// default), `B` zero, reproducible from `seed`.
    pub fn init(model: &mut Llama, config: LoraConfig, seed: u64) -> Result<Lora> {
        config.validate()?;
        let targets = config.targets()?;
        let device = model.device().clone();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().expect("fresh VarMap");
            for (module, linear) in model.linears_mut() {
                if !targets.iter().any(|t| t == short_name(&module)) {
                    continue;
                }
                let (out_f, in_f) = linear.shape()?;
                let bound = 1.0 / (in_f as f64).sqrt();
                let a: Vec<f32> = (0..config.r * in_f)
                    .map(|_| rng.gen_range(-bound..bound) as f32)
                    .collect();
                let a = Tensor::from_vec(a, (config.r, in_f), &device)?;
                let b = Tensor::zeros((out_f, config.r), DType::F32, &device)?;
                let (na, nb) = peft_names(&module);
                data.insert(na, Var::from_tensor(&a)?);
                data.insert(nb, Var::from_tensor(&b)?);
            }
        }
        let lora = Lora { config, varmap };
        lora.attach(model)?;
        Ok(lora)
    }

    /// Puts the adapter on `model`'s target projections (replacing any adapter there). The
    /// model shares the variables: optimiser updates to them are seen at once.
    pub fn attach(&self, model: &mut Llama) -> Result<()> {
        self.config.validate()?;
        let targets = self.config.targets()?;
        let scale = self.config.scale();
        let data = self.varmap.data().lock().expect("VarMap lock poisoned");
        let mut used = 0;
        for (module, linear) in model.linears_mut() {
            if !targets.iter().any(|t| t == short_name(&module)) {
                continue;
            }
            let (na, nb) = peft_names(&module);
            let (Some(a), Some(b)) = (data.get(&na), data.get(&nb)) else {
                return Err(LmError::Config(format!(
                    "adapter has no {na} / {nb}: it was made for a model with other layers"
                )));
            };
            let (out_f, in_f) = linear.shape()?;
            let (r, a_in) = a.as_tensor().dims2()?;
            let (b_out, b_r) = b.as_tensor().dims2()?;
            if a_in != in_f || b_out != out_f || r != b_r || r != self.config.r {
                return Err(LmError::Config(format!(
                    "adapter tensors of {module} have shapes A {:?} and B {:?}; this model \
                     needs A ({}, {in_f}) and B ({out_f}, {})",
                    a.as_tensor().dims(),
                    b.as_tensor().dims(),
                    self.config.r,
                    self.config.r
                )));
            }
            linear.lora = Some(LoraPair {
                a: a.as_tensor().clone(),
                b: b.as_tensor().clone(),
                scale,
            });
            used += 2;
        }
        if used != data.len() {
            return Err(LmError::Config(format!(
                "adapter has {} tensors but only {used} match this model's target projections",
                data.len()
            )));
        }
        Ok(())
    }

    /// Removes every adapter from `model`.
    pub fn detach(model: &mut Llama) {
        for (_, linear) in model.linears_mut() {
            linear.lora = None;
        }
    }

    /// The trainable variables (every `A` and `B`), in name order.
    pub fn vars(&self) -> Vec<Var> {
        let data = self.varmap.data().lock().expect("VarMap lock poisoned");
        let mut named: Vec<(&String, &Var)> = data.iter().collect();
        named.sort_by_key(|(n, _)| n.as_str());
        named.into_iter().map(|(_, v)| v.clone()).collect()
    }

    /// The number of trainable parameters.
    pub fn num_parameters(&self) -> usize {
        self.vars().iter().map(|v| v.elem_count()).sum()
    }

    /// Writes `adapter_config.json` and `adapter_model.safetensors` into `dir`, atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(&self.config).expect("config serialises");
        write_atomic(&dir.join("adapter_config.json"), json.as_bytes())?;
        let tensors = crate::checkpoint::varmap_tensors(&self.varmap);
        write_atomic(
            &dir.join("adapter_model.safetensors"),
            &safetensors_bytes(&tensors)?,
        )?;
        Ok(())
    }

    /// Reads an adapter directory written by spar or PEFT (its files checked against its
    /// `manifest.json` first, when it has one: [`crate::manifest`]).
    pub fn load(dir: &Path, device: &Device) -> Result<Lora> {
        crate::manifest::verify_files(
            dir,
            &[
                "adapter_config.json",
                "adapter_model.safetensors",
                "base.json",
            ],
        )?;
        let path = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| LmError::io(&path, e))?;
        let config: LoraConfig =
            serde_json::from_str(&text).map_err(|source| LmError::Json { path, source })?;
        config.validate()?;
        let weights = dir.join("adapter_model.safetensors");
        if !weights.exists() {
            return Err(LmError::io(
                &weights,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no adapter_model.safetensors"),
            ));
        }
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().expect("fresh VarMap");
            for (name, t) in crate::checkpoint::load_safetensors(&weights, device)? {
                // PEFT writes `...lora_A.weight`; older files may name the adapter
                // (`...lora_A.default.weight`).
                let name = name.replace(".default.weight", ".weight");
                data.insert(name, Var::from_tensor(&t.to_dtype(DType::F32)?)?);
            }
        }
        Ok(Lora { config, varmap })
    }

    /// `W + s B A` for every adapted projection of `base`: a checkpoint that needs no adapter.
    pub fn merge_into(&self, base: &Checkpoint) -> Result<Checkpoint> {
        let scale = self.config.scale();
        let data = self.varmap.data().lock().expect("VarMap lock poisoned");
        let mut tensors: HashMap<String, Tensor> = base.tensors.clone();
        for (name, a) in data.iter() {
            let Some(module) = name
                .strip_prefix("base_model.model.")
                .and_then(|n| n.strip_suffix(".lora_A.weight"))
            else {
                continue;
            };
            let (_, nb) = peft_names(module);
            let b = data
                .get(&nb)
                .ok_or_else(|| LmError::Config(format!("adapter has {name} but no {nb}")))?;
            let key = format!("{module}.weight");
            let w = tensors.get(&key).ok_or_else(|| {
                LmError::Config(format!(
                    "adapter targets {module}, which the base checkpoint does not have"
                ))
            })?;
            let delta = (b.as_tensor().matmul(a.as_tensor())? * scale)?;
            let merged = (w + delta.to_dtype(w.dtype())?)?;
            tensors.insert(key, merged);
        }
        Ok(Checkpoint {
            config: base.config.clone(),
            tensors,
            tokenizer: base.tokenizer.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::init_weights;
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};

    fn base() -> Checkpoint {
        let mut config = Config::tiny(32, 16, 2, 4);
        config.num_key_value_heads = Some(2);
        config.intermediate_size = 24;
        Checkpoint {
            tensors: init_weights(&config, 0.2, 9, &Device::Cpu).unwrap(),
            config,
            tokenizer: None,
        }
    }

    fn ids() -> Tensor {
        Tensor::new(&[[1u32, 4, 9, 16, 25, 3], [2, 7, 1, 8, 2, 8]], &Device::Cpu).unwrap()
    }

    fn logits(model: &Llama) -> Vec<f32> {
        model
            .forward(&ids(), &mut model.new_cache())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// Trains the adapter a few steps on next-token prediction of `ids()`.
    fn train(model: &Llama, lora: &Lora, steps: usize) -> Vec<f32> {
        let mut opt = AdamW::new(
            lora.vars(),
            ParamsAdamW {
                lr: 0.05,
                weight_decay: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
        let input = ids().narrow(1, 0, 5).unwrap();
        let target = ids().narrow(1, 1, 5).unwrap();
        (0..steps)
            .map(|_| {
                let out = model.forward(&input, &mut model.new_cache()).unwrap();
                let loss = candle_nn::loss::cross_entropy(
                    &out.flatten_to(1).unwrap(),
                    &target.flatten_all().unwrap(),
                )
                .unwrap();
                opt.backward_step(&loss).unwrap();
                loss.to_scalar::<f32>().unwrap()
            })
            .collect()
    }

    #[test]
    fn config_parses_peft_files_and_rejects_what_spar_cannot_do() {
        // The shape of the file PEFT 0.13 writes for LoraConfig(r=8, lora_alpha=16,
        // target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM").
        let peft = r#"{"alpha_pattern": {}, "auto_mapping": null, "base_model_name_or_path":
            "HuggingFaceTB/SmolLM2-135M-Instruct", "bias": "none", "fan_in_fan_out": false,
            "inference_mode": true, "init_lora_weights": true, "lora_alpha": 16,
            "lora_dropout": 0.0, "modules_to_save": null, "peft_type": "LORA", "r": 8,
            "rank_pattern": {}, "revision": null, "target_modules": ["v_proj", "q_proj"],
            "task_type": "CAUSAL_LM", "use_rslora": false}"#;
        let cfg: LoraConfig = serde_json::from_str(peft).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.scale(), 2.0);
        assert_eq!(cfg.targets().unwrap(), ["v_proj", "q_proj"]);
        assert_eq!(cfg.extra["fan_in_fan_out"], serde_json::json!(false));
        // Round trip keeps the unknown fields.
        let back: LoraConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        let all = LoraConfig::new(4, 8.0, &["all-linear"]);
        assert_eq!(all.targets().unwrap().len(), 7);
        let mut rs = LoraConfig::new(4, 8.0, &["q_proj"]);
        rs.use_rslora = true;
        assert_eq!(rs.scale(), 4.0);
        let err = LoraConfig::new(4, 8.0, &["qkv"]).validate().unwrap_err();
        assert!(err.to_string().contains("\"qkv\""), "{err}");
        let mut drop = LoraConfig::new(4, 8.0, &["q_proj"]);
        drop.lora_dropout = 0.1;
        assert!(drop
            .validate()
            .unwrap_err()
            .to_string()
            .contains("lora_dropout"));
    }

    #[test]
    fn fresh_adapter_is_the_identity_and_only_it_trains() {
        let base = base();
        let mut model = base.frozen().unwrap();
        let before = logits(&model);
        let lora = Lora::init(
            &mut model,
            LoraConfig::new(2, 4.0, &["q_proj", "v_proj", "down_proj"]),
            1,
        )
        .unwrap();
        // 2 layers x 3 projections x (A, B).
        assert_eq!(lora.vars().len(), 12);
        // B = 0: the adapted model computes the base model's logits exactly.
        assert_eq!(logits(&model), before);
        let losses = train(&model, &lora, 30);
        assert!(
            losses[29] < 0.5 * losses[0],
            "adapter training did not lower the loss: {losses:?}"
        );
        // The base weights did not move (they are plain tensors, not variables).
        let frozen_again = base.frozen().unwrap();
        assert_eq!(logits(&frozen_again), before);
        // Every A and B received a gradient.
        let out = model
            .forward(&ids(), &mut model.new_cache())
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = out.backward().unwrap();
        for v in lora.vars() {
            let g = grads
                .get(v.as_tensor())
                .expect("adapter tensor has a gradient");
            let n: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
            assert!(n > 0.0 && n.is_finite());
        }
    }

    #[test]
    fn saved_adapter_reloads_and_merges_to_the_same_logits() {
        let base = base();
        let mut model = base.frozen().unwrap();
        let lora = Lora::init(&mut model, LoraConfig::new(3, 6.0, &["all-linear"]), 2).unwrap();
        train(&model, &lora, 10);
        let adapted = logits(&model);
        let dir = std::env::temp_dir().join(format!("spar-lora-{}", std::process::id()));
        lora.save(&dir).unwrap();
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["adapter_config.json", "adapter_model.safetensors"]);
        let names =
            candle_core::safetensors::load(dir.join("adapter_model.safetensors"), &Device::Cpu)
                .unwrap();
        assert!(names.contains_key("base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight"));
        assert_eq!(names.len(), 2 * 7 * 2);

        let back = Lora::load(&dir, &Device::Cpu).unwrap();
        let mut reloaded = base.frozen().unwrap();
        back.attach(&mut reloaded).unwrap();
        assert_eq!(logits(&reloaded), adapted);

        let merged = back.merge_into(&base).unwrap().frozen().unwrap();
        let diff = max_diff(&logits(&merged), &adapted);
        assert!(diff < 1e-4, "merged logits differ by {diff}");
        assert!(max_diff(&adapted, &logits(&base.frozen().unwrap())) > 1e-3);

        // An adapter for another shape of model is refused with the shapes named.
        let mut other_cfg = base.config.clone();
        other_cfg.hidden_size = 8;
        other_cfg.head_dim = None;
        let other = Checkpoint {
            tensors: init_weights(&other_cfg, 0.2, 1, &Device::Cpu).unwrap(),
            config: other_cfg,
            tokenizer: None,
        };
        let err = back.attach(&mut other.frozen().unwrap()).unwrap_err();
        assert!(err.to_string().contains("shapes"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
