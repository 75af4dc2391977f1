//! The policy update: PPO-clip on per-token log-probabilities, AdamW with saveable state,
//! gradient-norm clipping, and a guard that skips non-finite steps.

use std::collections::HashMap;

use candle_core::{backprop::GradStore, DType, Tensor, Var};
use spar_lm::score::score_at_temperature;
use spar_lm::Llama;

use crate::error::Result;

/// One learnable turn: the prompt the model saw, the tokens it wrote (stop token included
/// when it stopped), whose turn it was, and its advantage.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// Completion token ids.
    pub completion: Vec<u32>,
    /// `game/role`, e.g. `kuhn/player1`.
    pub role: String,
    /// Index of the episode in its batch.
    pub episode: usize,
    /// The turn's advantage (the same for every token).
    pub advantage: f64,
    /// Log-probabilities of the completion tokens under the policy that sampled them
    /// (recomputed before the update).
    pub old_logprobs: Vec<f32>,
}

/// How per-token terms become one loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    /// `mean over samples of (sum over tokens) / C` (Dr. GRPO, Liu et al. 2025, eq. 3, and
    /// SPIRAL's oat setting `critic_type = drgrpo`, C = its generation budget).
    TokenSum(f64),
    /// `mean over samples of (mean over tokens)` (PPO as in Schulman et al. 2017).
    TokenMean,
}

/// Statistics of one PPO minibatch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PpoStats {
    /// The loss.
    pub loss: f64,
    /// Fraction of tokens whose ratio was clipped.
    pub clip_fraction: f64,
    /// Mean of `old - new` log-probability over tokens (the k1 estimate of KL(old || new)).
    pub approx_kl: f64,
}

/// The PPO-clip loss (Schulman et al. 2017, eq. 7) of `samples` under `model`:
/// `-min(r A, clip(r, 1 - eps, 1 + eps) A)` per token with `r = exp(logp - logp_old)`,
/// aggregated by `agg`. Differentiable in the model's variables.
pub fn ppo_loss(
    model: &Llama,
    samples: &[&Sample],
    clip: f64,
    temperature: f64,
    agg: Aggregation,
) -> Result<(Tensor, PpoStats)> {
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = samples
        .iter()
        .map(|s| (s.prompt.clone(), s.completion.clone()))
        .collect();
    let scores = score_at_temperature(model, &pairs, temperature)?;
    let (b, width) = scores.token_logprobs.dims2()?;
    let device = scores.token_logprobs.device().clone();
    let mut old = vec![0f32; b * width];
    let mut adv = vec![0f32; b * width];
    for (i, s) in samples.iter().enumerate() {
        for (j, &lp) in s.old_logprobs.iter().enumerate() {
            old[i * width + j] = lp;
            adv[i * width + j] = s.advantage as f32;
        }
    }
    let old = Tensor::from_vec(old, (b, width), &device)?;
    let adv = Tensor::from_vec(adv, (b, width), &device)?;
    let mask = &scores.mask;
    let new = &scores.token_logprobs;
    let ratio = ((new - &old)? * mask)?.exp()?;
    let surr1 = (&ratio * &adv)?;
    let surr2 = (ratio.clamp(1.0 - clip, 1.0 + clip)? * &adv)?;
    let per_token = (surr1.minimum(&surr2)?.neg()? * mask)?;
    let lengths = mask.sum(1)?;
    let per_sample = match agg {
        Aggregation::TokenSum(c) => (per_token.sum(1)? / c)?,
        Aggregation::TokenMean => per_token.sum(1)?.div(&lengths.clamp(1.0, f64::MAX)?)?,
    };
    let loss = per_sample.mean_all()?;
    // Statistics (no gradient).
    let tokens: f32 = mask.sum_all()?.to_scalar()?;
    let r = ratio.detach();
    let clipped = ((r.ge(1.0 + clip)?.to_dtype(DType::F32)?
        + r.le(1.0 - clip)?.to_dtype(DType::F32)?)?
        * mask)?
        .sum_all()?
        .to_scalar::<f32>()?;
    let kl: f32 = ((&old - new.detach())? * mask)?.sum_all()?.to_scalar()?;
    let stats = PpoStats {
        loss: f64::from(loss.to_scalar::<f32>()?),
        clip_fraction: f64::from(clipped / tokens.max(1.0)),
        approx_kl: f64::from(kl / tokens.max(1.0)),
    };
    Ok((loss, stats))
}

/// AdamW (Loshchilov and Hutter 2019, Algorithm 2) whose moments can be saved and restored, so
/// that a resumed run continues exactly. Bias-corrected moments, decoupled weight decay.
#[derive(Debug)]
pub struct AdamW {
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Steps taken.
    pub step: u64,
    /// Learning rate.
    pub lr: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl AdamW {
    /// An optimiser for named variables (sorted by name for a stable order).
    pub fn new(mut vars: Vec<(String, Var)>, lr: f64, weight_decay: f64) -> Result<AdamW> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let zeros = |v: &Var| Tensor::zeros(v.shape(), DType::F32, v.device());
        let m = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let v = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(AdamW {
            vars,
            m,
            v,
            step: 0,
            lr,
            weight_decay,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        })
    }

    /// The global L2 norm of the gradients of the optimiser's variables.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut total = 0f64;
        for (_, var) in &self.vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                total += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
            }
        }
        Ok(total.sqrt())
    }

    /// One update with the gradients scaled by `scale` (for norm clipping).
    pub fn step(&mut self, grads: &GradStore, scale: f64) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (self.beta1, self.beta2);
        let c1 = 1.0 - b1.powi(t);
        let c2 = 1.0 - b2.powi(t);
        for (i, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let g = (g * scale)?;
            self.m[i] = ((&self.m[i] * b1)? + (&g * (1.0 - b1))?)?;
            self.v[i] = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let m_hat = (&self.m[i] / c1)?;
            let v_hat = (&self.v[i] / c2)?;
            let update = (m_hat / (v_hat.sqrt()? + self.eps)?)?;
            let theta = var.as_tensor();
            let decayed = (theta * (1.0 - self.lr * self.weight_decay))?;
            var.set(&(decayed - (update * self.lr)?)?)?;
        }
        Ok(())
    }

    /// The moments by name (`m.<var>`, `v.<var>`), for a checkpoint.
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.vars.iter().enumerate() {
            out.insert(format!("m.{name}"), self.m[i].clone());
            out.insert(format!("v.{name}"), self.v[i].clone());
        }
        out
    }

    /// Restores moments saved by [`AdamW::state_tensors`] and the step count.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: u64) -> Result<()> {
        for (i, (name, _)) in self.vars.iter().enumerate() {
            let get = |k: String| {
                tensors.get(&k).cloned().ok_or_else(|| {
                    crate::Error::Invalid(format!(
                        "optimizer state lacks {k}: the checkpoint is corrupt"
                    ))
                })
            };
            self.m[i] = get(format!("m.{name}"))?;
            self.v[i] = get(format!("v.{name}"))?;
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use spar_lm::checkpoint::Checkpoint;
    use spar_lm::config::Config;

    /// A model whose weights are all zero: every token has log-probability -ln V.
    fn zero_model() -> (Llama, f32) {
        let cfg = Config::tiny(50, 8, 1, 2);
        let tensors = spar_lm::model::init_weights(&cfg, 0.1, 0, &Device::Cpu)
            .unwrap()
            .into_iter()
            .map(|(k, t)| (k, t.zeros_like().unwrap()))
            .collect();
        let ckpt = Checkpoint {
            config: cfg,
            tensors,
            tokenizer: None,
        };
        (ckpt.frozen().unwrap(), -(50f32.ln()))
    }

    fn sample(n: usize, advantage: f64, old: f32) -> Sample {
        Sample {
            prompt: vec![1, 2],
            completion: (0..n as u32).collect(),
            role: "kuhn/player0".into(),
            episode: 0,
            advantage,
            old_logprobs: vec![old; n],
        }
    }

    #[test]
    fn ppo_clip_loss_matches_hand_computation() {
        let (model, lp) = zero_model();
        let r = 0.5f64.exp(); // ratio when the old log-probability is 0.5 lower
                              // Ratio 1, A = 2, 3 tokens: per-token objective 2, token-sum loss -(3 * 2) / 10.
        let s1 = sample(3, 2.0, lp);
        let (loss, stats) =
            ppo_loss(&model, &[&s1], 0.2, 1.0, Aggregation::TokenSum(10.0)).unwrap();
        assert!((stats.loss + 0.6).abs() < 1e-5, "{stats:?}");
        assert_eq!(stats.clip_fraction, 0.0);
        assert!(stats.approx_kl.abs() < 1e-6);
        assert!((f64::from(loss.to_scalar::<f32>().unwrap()) + 0.6).abs() < 1e-5);
        // Ratio e^0.5 > 1.2 with A = +1: clipped at 1.2 per token.
        let s2 = sample(4, 1.0, lp - 0.5);
        let (_, stats) = ppo_loss(&model, &[&s2], 0.2, 1.0, Aggregation::TokenSum(10.0)).unwrap();
        assert!((stats.loss + 4.0 * 1.2 / 10.0).abs() < 1e-5, "{stats:?}");
        assert_eq!(stats.clip_fraction, 1.0);
        assert!((stats.approx_kl + 0.5).abs() < 1e-5);
        // Same ratio with A = -1: the unclipped term is the minimum (pessimistic bound).
        let s3 = sample(4, -1.0, lp - 0.5);
        let (_, stats) = ppo_loss(&model, &[&s3], 0.2, 1.0, Aggregation::TokenSum(10.0)).unwrap();
        assert!((stats.loss - 4.0 * r / 10.0).abs() < 1e-5, "{stats:?}");
        // Token mean over a batch: mean over samples of the per-sample token means.
        let (_, stats) = ppo_loss(&model, &[&s1, &s2], 0.2, 1.0, Aggregation::TokenMean).unwrap();
        assert!((stats.loss - (-2.0 - 1.2) / 2.0).abs() < 1e-5, "{stats:?}");
    }

    #[test]
    fn adamw_first_steps_match_hand_computation() {
        // f(x) = x^2 at x = 1: g = 2. Step 1: m = 0.2, v = 0.004, m_hat = 2, v_hat = 4,
        // update = 2 / (2 + 1e-8) ~ 1; x = 1 * (1 - 0.1 * 0.01) - 0.1 * 1 = 0.899.
        let x = Var::new(&[1f32], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![("x".into(), x.clone())], 0.1, 0.01).unwrap();
        let grads = x
            .as_tensor()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!((opt.grad_norm(&grads).unwrap() - 2.0).abs() < 1e-6);
        opt.step(&grads, 1.0).unwrap();
        let v: Vec<f32> = x.as_tensor().to_vec1().unwrap();
        assert!((v[0] - 0.899).abs() < 1e-6, "{v:?}");
        // Saved and restored moments continue identically.
        let y = Var::new(&[0.899f32], &Device::Cpu).unwrap();
        let mut opt2 = AdamW::new(vec![("x".into(), y.clone())], 0.1, 0.01).unwrap();
        opt2.load_state(&opt.state_tensors(), opt.step).unwrap();
        let g1 = x
            .as_tensor()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g2 = y
            .as_tensor()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        opt.step(&g1, 1.0).unwrap();
        opt2.step(&g2, 1.0).unwrap();
        assert_eq!(
            x.as_tensor().to_vec1::<f32>().unwrap(),
            y.as_tensor().to_vec1::<f32>().unwrap()
        );
    }
}
