//! The moving magnet of magnetic mirror descent (MMD; Sokota et al. 2023, "A Unified Approach
//! to Reinforcement Learning, Quantal Response Equilibria, and Two-Player Zero-Sum Games",
//! arXiv 2206.05825).
//!
//! MMD's update (eq. 10) is `pi_{t+1} = argmax_pi E_pi[q_t] - alpha KL(pi, rho) -
//! (1/eta) KL(pi, pi_t)`: a step of size `eta` regularised towards a magnet `rho`. With a
//! fixed magnet it converges to the magnet's regularised equilibrium, not to a Nash
//! equilibrium; appendix H.5 makes it a Nash solver by letting the magnet trail the iterate,
//! `rho_{t+1} ∝ rho_t^{1 - eta~} pi_{t+1}^{eta~}` (`eta~ = 0.05` with `alpha = 1`,
//! `eta = 0.1`, constant, in its Kuhn experiment).
//!
//! A network policy has no per-state table to mix, so spar keeps the magnet as a second set
//! of weights `zeta` and moves them after every step's update:
//!
//! `zeta_{t+1} = (1 - r) zeta_t + r theta_{t+1}` (`r` = `ppo.magnet_rate`),
//!
//! the parameter-space magnet of MMD's Euclidean form (eq. 11, `zeta` a point in parameter
//! space) trailing the iterate as in H.5. To first order in the distance between the two
//! weight vectors the magnet's logits are the same mixture of the two networks' logits, which
//! is H.5's geometric mixture of the two policies. The magnet's weights are part of every
//! checkpoint ([`MAGNET_FILE`]) so that `--resume` continues the same run bit for bit.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Tensor, Var};
use spar_core::atomic::write_atomic;
use spar_lm::checkpoint::{load_safetensors, safetensors_bytes, Checkpoint};
use spar_lm::Llama;

use crate::error::{Error, Result};

/// The magnet's weights in a checkpoint directory (absent from step 0's checkpoint, whose
/// magnet is the model itself).
pub const MAGNET_FILE: &str = "magnet.safetensors";

/// The magnet: its weights, by Hugging Face name, and the frozen model built from them.
pub struct Magnet {
    /// The weights `zeta` and the model configuration.
    weights: Checkpoint,
    /// The model of `weights` (no gradient).
    model: Llama,
}

impl std::fmt::Debug for Magnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Magnet")
            .field("tensors", &self.weights.tensors.len())
            .finish()
    }
}

impl Magnet {
    /// The magnet whose weights are `checkpoint`'s (at step 0: the warm-started model).
    pub fn new(checkpoint: Checkpoint) -> Result<Magnet> {
        let weights = Checkpoint {
            tokenizer: None,
            ..checkpoint
        };
        let model = weights.frozen()?;
        Ok(Magnet { weights, model })
    }

    /// The magnet of run checkpoint `dir` of step `step`: its [`MAGNET_FILE`], or at step 0
    /// (written before the magnet existed) the checkpoint's own model.
    pub fn load(dir: &Path, step: usize, device: &candle_core::Device) -> Result<Magnet> {
        let mut checkpoint = Checkpoint::load(dir, device)?;
        let path = dir.join(MAGNET_FILE);
        if !path.exists() {
            if step == 0 {
                return Magnet::new(checkpoint);
            }
            return Err(Error::Invalid(format!(
                "--resume: {} lacks {MAGNET_FILE}, the moving magnet of ppo.magnet_rate; it was \
                 written by a run without a moving magnet, so resume with that run's own \
                 config.toml",
                dir.display()
            )));
        }
        let tensors = load_safetensors(&path, device)?;
        let mut names: Vec<&String> = tensors.keys().collect();
        let mut expected: Vec<&String> = checkpoint.tensors.keys().collect();
        names.sort();
        expected.sort();
        if names != expected {
            return Err(spar_lm::LmError::corrupt(
                &path,
                "its tensors are not the model's (names differ from model.safetensors)",
            )
            .into());
        }
        checkpoint.tensors = tensors;
        Magnet::new(checkpoint)
    }

    /// The magnet's model (no gradient).
    pub fn model(&self) -> &Llama {
        &self.model
    }

    /// The magnet's weights, by name.
    pub fn tensors(&self) -> &HashMap<String, Tensor> {
        &self.weights.tensors
    }

    /// One step of the trailing magnet: `zeta <- (1 - rate) zeta + rate theta` for every
    /// weight (module docs: MMD eq. 11's parameter-space magnet moved as in app. H.5), then
    /// the model rebuilt. `vars` are the learner's trained variables; every weight of the
    /// magnet must be among them (full fine-tuning).
    pub fn trail(&mut self, vars: &[(String, Var)], rate: f64) -> Result<()> {
        let by_name: HashMap<&str, &Var> = vars.iter().map(|(n, v)| (n.as_str(), v)).collect();
        let mut moved = HashMap::with_capacity(self.weights.tensors.len());
        for (name, zeta) in &self.weights.tensors {
            let theta = by_name.get(name.as_str()).ok_or_else(|| {
                Error::Invalid(format!(
                    "the moving magnet needs every weight trained (full fine-tuning); {name} is \
                     not a trained variable"
                ))
            })?;
            let theta = theta.as_tensor().detach();
            // (1 - r) zeta + r theta, in f32 on the weights' device.
            let next = (zeta.affine(1.0 - rate, 0.0)? + theta.affine(rate, 0.0)?)?;
            moved.insert(name.clone(), next);
        }
        self.weights.tensors = moved;
        self.model = self.weights.frozen()?;
        Ok(())
    }

    /// Writes [`MAGNET_FILE`] into checkpoint directory `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        write_atomic(
            &dir.join(MAGNET_FILE),
            &safetensors_bytes(&self.weights.tensors)?,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use spar_lm::config::Config;

    use super::*;

    fn checkpoint(seed: u64) -> Checkpoint {
        let cfg = Config::tiny(50, 8, 1, 2);
        Checkpoint {
            tensors: spar_lm::model::init_weights(&cfg, 0.1, seed, &Device::Cpu).unwrap(),
            config: cfg,
            tokenizer: None,
        }
    }

    /// Every weight of `checkpoint` as a trained variable (what full fine-tuning trains).
    fn trained_vars(checkpoint: &Checkpoint) -> Vec<(String, Var)> {
        let (_, varmap) = checkpoint.trainable().unwrap();
        let data = varmap.data().lock().unwrap();
        data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn trailing_moves_every_weight_a_fraction_rate_towards_the_policy() {
        let (zeta0, theta) = (checkpoint(0), checkpoint(1));
        let mut magnet = Magnet::new(zeta0.clone()).unwrap();
        let vars = trained_vars(&theta);
        magnet.trail(&vars, 0.25).unwrap();
        for (name, z) in magnet.tensors() {
            let (a, b) = (values(&zeta0.tensors[name]), values(&theta.tensors[name]));
            for ((z, a), b) in values(z).iter().zip(&a).zip(&b) {
                // zeta_1 = 0.75 zeta_0 + 0.25 theta, by hand in f64.
                let want = 0.75 * f64::from(*a) + 0.25 * f64::from(*b);
                assert!((f64::from(*z) - want).abs() < 1e-7, "{name}: {z} vs {want}");
            }
        }
        // A second step from there: zeta_2 = 0.75 zeta_1 + 0.25 theta = 0.5625 zeta_0 +
        // 0.4375 theta, and the model follows its weights.
        magnet.trail(&vars, 0.25).unwrap();
        let name = "model.embed_tokens.weight";
        let (a, b) = (values(&zeta0.tensors[name]), values(&theta.tensors[name]));
        for ((z, a), b) in values(&magnet.tensors()[name]).iter().zip(&a).zip(&b) {
            let want = 0.5625 * f64::from(*a) + 0.4375 * f64::from(*b);
            assert!((f64::from(*z) - want).abs() < 1e-6, "{z} vs {want}");
        }
        let ids = [1u32, 2, 3];
        let logits = |m: &Llama| spar_lm::score::next_token_logits(m, &ids).unwrap();
        let rebuilt = Checkpoint {
            tensors: magnet.tensors().clone(),
            ..zeta0.clone()
        };
        assert_eq!(logits(magnet.model()), logits(&rebuilt.frozen().unwrap()));
        // Rate 1 is the policy itself; rate 0 leaves the magnet where it is.
        let mut copy = Magnet::new(zeta0.clone()).unwrap();
        copy.trail(&vars, 0.0).unwrap();
        assert_eq!(values(&copy.tensors()[name]), values(&zeta0.tensors[name]));
        copy.trail(&vars, 1.0).unwrap();
        assert_eq!(values(&copy.tensors()[name]), values(&theta.tensors[name]));
        // Without every weight among the trained variables (LoRA), an error says so.
        let err = copy.trail(&vars[..1], 0.5).unwrap_err().to_string();
        assert!(err.contains("full fine-tuning"), "{err}");
    }

    #[test]
    fn the_magnet_saves_and_loads_bit_for_bit() {
        let dir = std::env::temp_dir().join(format!("spar-magnet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let model = checkpoint(0);
        model.save(&dir).unwrap();
        // Step 0's checkpoint has no magnet file: the magnet is the model.
        let at_zero = Magnet::load(&dir, 0, &Device::Cpu).unwrap();
        for (name, t) in at_zero.tensors() {
            assert_eq!(values(t), values(&model.tensors[name]));
        }
        // A later checkpoint without it is refused.
        let err = Magnet::load(&dir, 3, &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains(MAGNET_FILE), "{err}");
        let mut magnet = Magnet::new(model.clone()).unwrap();
        let vars = trained_vars(&checkpoint(5));
        magnet.trail(&vars, 0.1).unwrap();
        magnet.save(&dir).unwrap();
        let back = Magnet::load(&dir, 3, &Device::Cpu).unwrap();
        for (name, t) in magnet.tensors() {
            let bits = |t: &Tensor| values(t).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(t), bits(&back.tensors()[name]), "{name}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
