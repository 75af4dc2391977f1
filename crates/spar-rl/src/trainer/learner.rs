//! The [`Learner`]: the model being trained, what of it is trained (every weight, or a LoRA
//! adapter over a frozen base), and its tokenizer; built fresh from `[model]` or loaded from a
//! checkpoint of the run.

use std::path::{Path, PathBuf};

use candle_core::Device;
use spar_core::atomic::write_atomic;
use spar_lm::checkpoint::Checkpoint;
use spar_lm::config::Config;
use spar_lm::lora::Lora;
use spar_lm::model::init_weights;
use spar_lm::train::BYTE_SPECIAL_TOKENS;
use spar_lm::{Llama, TextTokenizer};

use super::checkpoint::write_dir_atomically;
use crate::config::{LoraSettings, ModelConfig};
use crate::error::{Error, Result};

/// What the optimisers (warm start, PPO, PPO-ptx) train.
pub(crate) enum Trained {
    /// Every weight of the model (full fine-tuning), by Hugging Face name.
    Full(candle_nn::VarMap),
    /// Only a LoRA adapter over the frozen base (`[model.lora]`); `base` is the base model's
    /// path, written to each checkpoint's `base.json`.
    Lora { lora: Box<Lora>, base: PathBuf },
}

/// The model, what of it is trained, and its tokenizer.
pub struct Learner {
    /// The weights the model was built from (with LoRA: the frozen base, never updated).
    pub(crate) checkpoint: Checkpoint,
    /// The model. Its trained tensors are candle `Var`s: sample, score and evaluate through
    /// `model.detached()`, which builds no autograd graph (ARCHITECTURE.md, "Inference
    /// through a detached view"); only a loss is computed on `model` itself.
    pub model: Llama,
    pub(crate) trained: Trained,
    /// The model's tokenizer.
    pub tokenizer: TextTokenizer,
}

impl std::fmt::Debug for Learner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let trained = match &self.trained {
            Trained::Full(_) => "full".to_string(),
            Trained::Lora { base, .. } => format!("lora over {}", base.display()),
        };
        f.debug_struct("Learner")
            .field("trained", &trained)
            .field("vocab_size", &self.tokenizer.vocab_size())
            .finish()
    }
}

pub(crate) fn tokenizer_of(checkpoint: &Checkpoint) -> Result<TextTokenizer> {
    checkpoint
        .tokenizer
        .clone()
        .ok_or_else(|| Error::Invalid("the model has no tokenizer (tokenizer.json)".into()))
}

impl Learner {
    /// Full fine-tuning: every weight of `checkpoint` a variable.
    fn from_checkpoint(checkpoint: Checkpoint) -> Result<Learner> {
        let tokenizer = tokenizer_of(&checkpoint)?;
        let (model, varmap) = checkpoint.trainable()?;
        Ok(Learner {
            checkpoint,
            model,
            trained: Trained::Full(varmap),
            tokenizer,
        })
    }

    /// LoRA: a fresh adapter (`B = 0`, `A` drawn from `seed`) over the frozen `checkpoint`,
    /// whose files are at `base`.
    fn with_new_adapter(
        checkpoint: Checkpoint,
        settings: &LoraSettings,
        seed: u64,
        base: PathBuf,
    ) -> Result<Learner> {
        let tokenizer = tokenizer_of(&checkpoint)?;
        let mut model = checkpoint.frozen()?;
        let mut lora_config = settings.lora_config();
        lora_config.base_model_name_or_path = Some(base.display().to_string());
        let lora = Lora::init(&mut model, lora_config, seed)?;
        Ok(Learner {
            checkpoint,
            model,
            trained: Trained::Lora {
                lora: Box::new(lora),
                base,
            },
            tokenizer,
        })
    }

    /// The learner saved in a checkpoint directory of a run: full weights, or a LoRA
    /// checkpoint (the base named by `base.json`, frozen, and the adapter's variables).
    pub(crate) fn load(dir: &Path, device: &Device) -> Result<Learner> {
        if !spar_lm::load::is_lora_checkpoint(dir) {
            return Learner::from_checkpoint(Checkpoint::load(dir, device)?);
        }
        let base = spar_lm::load::lora_base(dir)?;
        let checkpoint = spar_lm::load::load_checkpoint(&base, device)?;
        let tokenizer = tokenizer_of(&checkpoint)?;
        let mut model = checkpoint.frozen()?;
        let lora = Lora::load(dir, device)?;
        lora.attach(&mut model)?;
        Ok(Learner {
            checkpoint,
            model,
            trained: Trained::Lora {
                lora: Box::new(lora),
                base,
            },
            tokenizer,
        })
    }

    /// The trained variables by name (with LoRA: the adapter's `A` and `B` only).
    pub fn named_vars(&self) -> Vec<(String, candle_core::Var)> {
        let varmap = match &self.trained {
            Trained::Full(varmap) => varmap,
            Trained::Lora { lora, .. } => &lora.varmap,
        };
        let data = varmap.data().lock().expect("VarMap lock");
        data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// A frozen copy of the model saved in checkpoint `dir` of this run: its own tensors,
    /// never the learner's variables (with LoRA: the base and a copy of that adapter).
    pub fn load_frozen(&self, dir: &Path) -> Result<Llama> {
        let device = self.model.device();
        match &self.trained {
            Trained::Full(_) => Ok(Checkpoint::load(dir, device)?.frozen()?),
            Trained::Lora { .. } => {
                let mut model = self.checkpoint.frozen()?;
                Lora::load(dir, device)?.attach(&mut model)?;
                // The loaded adapter's tensors are variables: detach them.
                Ok(model.detached())
            }
        }
    }

    /// Writes the model into `dir`: a checkpoint (full), or the adapter in PEFT layout with
    /// `base.json` and the base's `config.json` and tokenizer files (LoRA).
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        match &self.trained {
            Trained::Full(varmap) => Checkpoint {
                tensors: spar_lm::checkpoint::varmap_tensors(varmap),
                ..self.checkpoint.clone()
            }
            .save(dir)?,
            Trained::Lora { lora, base } => {
                lora.save(dir)?;
                spar_lm::load::write_lora_base(dir, base)?;
                write_atomic(
                    &dir.join("config.json"),
                    self.checkpoint.config.to_json().as_bytes(),
                )?;
                self.tokenizer.save(dir)?;
            }
        }
        Ok(())
    }
}

fn fresh_model(m: &ModelConfig, seed: u64, device: &Device) -> Result<Checkpoint> {
    if m.init == "scratch" {
        let tokenizer = TextTokenizer::byte_level(&BYTE_SPECIAL_TOKENS)?;
        let mut cfg = Config::tiny(tokenizer.vocab_size(), m.hidden, m.layers, m.heads);
        cfg.eos_token_id = Some(256);
        cfg.validate()?;
        Ok(Checkpoint {
            tensors: init_weights(&cfg, 0.02, seed, device)?,
            config: cfg,
            tokenizer: Some(tokenizer),
        })
    } else {
        Ok(spar_lm::load::load_checkpoint(Path::new(&m.init), device)?)
    }
}

/// The learner of a fresh run: full fine-tuning, or (`[model.lora]`) a fresh adapter seeded by
/// `run.seed` over the frozen base. A scratch base is saved once as `out/base/` (LoRA
/// checkpoints name it in `base.json`); a loaded base is named by its absolute path.
pub(crate) fn fresh_learner(
    model: &ModelConfig,
    seed: u64,
    out: &Path,
    device: &Device,
) -> Result<Learner> {
    let checkpoint = fresh_model(model, seed, device)?;
    let Some(settings) = &model.lora else {
        return Learner::from_checkpoint(checkpoint);
    };
    let base = if model.init == "scratch" {
        let base = std::path::absolute(out.join("base")).map_err(|e| Error::io(out, e))?;
        write_dir_atomically(&base, &out.join(".tmp-base"), |tmp| {
            Ok(checkpoint.save(tmp)?)
        })?;
        base
    } else {
        let init = Path::new(&model.init);
        std::path::absolute(init).map_err(|e| Error::io(init, e))?
    };
    Learner::with_new_adapter(checkpoint, settings, seed, base)
}
