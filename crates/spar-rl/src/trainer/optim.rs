//! The optimiser of every loop: AdamW with saveable moments and learning-rate schedules.

use std::collections::HashMap;

use candle_core::{backprop::GradStore, DType, Tensor, Var};

use super::faults::Target;
use crate::error::Result;

/// Learning-rate schedules over the run's policy steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// Linear decay from the base rate to 0 at the last step.
    Linear,
    /// Cosine decay from the base rate to 0 at the last step (Loshchilov and Hutter 2017,
    /// eq. 5 with one cycle and eta_min = 0).
    Cosine,
}

impl std::str::FromStr for LrSchedule {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "constant" => Ok(LrSchedule::Constant),
            "linear" => Ok(LrSchedule::Linear),
            "cosine" => Ok(LrSchedule::Cosine),
            other => Err(crate::Error::Invalid(format!(
                "learning-rate schedule {other:?} is not one of constant, linear, cosine"
            ))),
        }
    }
}

impl LrSchedule {
    /// The rate at policy step `step` (1-based) of `total`, after `warmup` steps of linear
    /// warm-up from `base / (warmup + 1)`.
    pub fn rate(self, base: f64, step: usize, total: usize, warmup: usize) -> f64 {
        if step <= warmup {
            return base * step as f64 / (warmup + 1) as f64;
        }
        let span = total.saturating_sub(warmup).max(1) as f64;
        // Progress through the decay, 0 at the first step after warm-up.
        let progress = ((step - warmup - 1) as f64 / span).clamp(0.0, 1.0);
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Linear => base * (1.0 - progress),
            LrSchedule::Cosine => base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        }
    }
}

/// An applied optimiser step ([`AdamW::apply`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Applied {
    /// The loss's value.
    pub loss: f64,
    /// The gradient's global L2 norm before clipping.
    pub grad_norm: f64,
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
    /// Calls of [`AdamW::apply`] skipped in a row for a non-finite loss or gradient, up to now
    /// (0 after an applied step).
    pub consecutive_skips: usize,
    /// Calls of [`AdamW::apply`] in this process (what the test-only fault injection counts).
    calls: usize,
    /// Test-only NaN injection ([`super::faults`]); empty unless the kernel sets it.
    pub(crate) inject: super::faults::NanInjection,
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
            consecutive_skips: 0,
            calls: 0,
            inject: Default::default(),
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

    /// The optimiser step of every loop: back-propagates `loss`, measures the global gradient
    /// norm, and, when both the loss and the norm are finite, steps with the gradients scaled
    /// to norm at most `max_grad_norm` (0: no clipping; global-norm clipping as
    /// `torch.nn.utils.clip_grad_norm_`). A non-finite loss or gradient changes nothing and
    /// returns `None` (the caller counts it as a skipped update; [`AdamW::consecutive_skips`]
    /// counts them in a row).
    pub fn apply(&mut self, loss: &Tensor, max_grad_norm: f64) -> Result<Option<Applied>> {
        self.calls += 1;
        let injected = self.inject.at(self.calls);
        let loss = match injected {
            Some(Target::Loss) => loss.affine(f64::NAN, 0.0)?,
            _ => loss.clone(),
        };
        let value = f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?);
        let mut grads = loss.backward()?;
        if injected == Some(Target::Gradient) {
            self.poison_a_gradient(&mut grads)?;
        }
        let norm = self.grad_norm(&grads)?;
        if !(value.is_finite() && norm.is_finite()) {
            self.consecutive_skips += 1;
            return Ok(None);
        }
        self.consecutive_skips = 0;
        let scale = if max_grad_norm > 0.0 && norm > max_grad_norm {
            max_grad_norm / norm
        } else {
            1.0
        };
        self.step(&grads, scale)?;
        Ok(Some(Applied {
            loss: value,
            grad_norm: norm,
        }))
    }

    /// Test-only ([`super::faults`]): the first variable's gradient becomes NaN.
    fn poison_a_gradient(&self, grads: &mut GradStore) -> Result<()> {
        for (_, var) in &self.vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                let poisoned = g.affine(f64::NAN, 0.0)?;
                grads.insert(var.as_tensor(), poisoned);
                break;
            }
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

    #[test]
    fn learning_rate_schedules() {
        let c = LrSchedule::Constant;
        assert_eq!(c.rate(1.0, 1, 10, 0), 1.0);
        assert_eq!(c.rate(1.0, 10, 10, 0), 1.0);
        // Warm-up of 3 steps: 1/4, 2/4, 3/4, then the base rate.
        assert_eq!(c.rate(1.0, 1, 10, 3), 0.25);
        assert_eq!(c.rate(1.0, 3, 10, 3), 0.75);
        assert_eq!(c.rate(1.0, 4, 10, 3), 1.0);
        // Linear over 10 steps: 1, 0.9, ..., 0.1.
        assert!((LrSchedule::Linear.rate(2.0, 1, 10, 0) - 2.0).abs() < 1e-12);
        assert!((LrSchedule::Linear.rate(2.0, 10, 10, 0) - 0.2).abs() < 1e-12);
        // Cosine: half way down at the middle step.
        assert!((LrSchedule::Cosine.rate(1.0, 6, 10, 0) - 0.5).abs() < 1e-12);
        assert!("step".parse::<LrSchedule>().is_err());
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
