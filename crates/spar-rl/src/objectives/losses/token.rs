//! Token losses: one type per algorithm, each a [`TokenLoss`].

use candle_core::Tensor;

use super::*;

/// REINFORCE (Williams 1992; the policy-gradient theorem of Sutton et al. 2000):
/// per token `-A * log pi(y_t)`, with `A` the sample's advantage. Its gradient is the
/// score-function estimator `-A * grad log pi`; needs `advantages`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PolicyGradient;

impl TokenLoss for PolicyGradient {
    fn per_token(&self, inputs: &TokenInputs) -> Result<(Tensor, LossStats)> {
        let name = self.name();
        let g = grid(inputs, name)?;
        let a = g.per_sample(inputs.advantages, "advantages", name)?;
        // l_t = -A log pi(y_t).
        let per_token = (&a * &g.logp)?.neg()?;
        let stats = g.stats(name, &per_token, inputs)?;
        Ok((per_token, stats))
    }

    fn name(&self) -> &'static str {
        "pg"
    }
}

/// PPO-clip (Schulman et al. 2017, eq. 7) with DAPO's decoupled range ("Clip-Higher", Yu
/// et al. 2025, arXiv 2503.14476: `clip(r, 1 - eps_low, 1 + eps_high)` in its objective;
/// verl `core_algos.py` `compute_policy_loss`, `cliprange_low` / `cliprange_high`): per token
///
/// `l_t = -min(r_t A, clip(r_t, 1 - clip_low, 1 + clip_high) A)`, `r_t = exp(logp_t - old_t)`
/// (Schulman et al. 2017, eq. 6).
///
/// Equal bounds give symmetric PPO; DAPO uses `clip_low = 0.2`, `clip_high = 0.28`. As in
/// the verl `compute_policy_loss` of seamoke/DPH-RL (`verl/trainer/ppo/core_algos.py`), the
/// log-ratio is clamped
/// to [-20, 20] before `exp` so that a stale token cannot overflow the ratio (no effect,
/// and full gradient, inside that range). Needs `old_logp` and `advantages`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PpoClip {
    /// `eps_low`: the ratio is clipped below at `1 - clip_low`.
    pub clip_low: f64,
    /// `eps_high`: the ratio is clipped above at `1 + clip_high`.
    pub clip_high: f64,
}

/// PPO's clip range must leave the ratio a non-empty interval around 1.
pub(super) fn check_clip(clip_low: f64, clip_high: f64) -> Result<()> {
    if (0.0..1.0).contains(&clip_low) && (0.0..f64::INFINITY).contains(&clip_high) {
        Ok(())
    } else {
        Err(invalid(format!(
            "ppo: clip_low must be in [0, 1) and clip_high in [0, inf), got {clip_low} and \
             {clip_high}"
        )))
    }
}

impl TokenLoss for PpoClip {
    fn per_token(&self, inputs: &TokenInputs) -> Result<(Tensor, LossStats)> {
        let name = self.name();
        check_clip(self.clip_low, self.clip_high)?;
        let g = grid(inputs, name)?;
        let old = g.tokenwise(inputs.old_logp, "old_logp", name)?;
        let a = g.per_sample(inputs.advantages, "advantages", name)?;
        // r_t = exp(logp - old), log-ratio clamped to [-20, 20] (verl core_algos.py).
        let ratio = (&g.logp - &old)?.clamp(-20.0, 20.0)?.exp()?;
        // -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A) (PPO eq. 7, DAPO's Clip-Higher).
        let surr1 = (&ratio * &a)?;
        let surr2 = (ratio.clamp(1.0 - self.clip_low, 1.0 + self.clip_high)? * &a)?;
        let per_token = surr1.minimum(&surr2)?.neg()?;
        let mut stats = g.stats(name, &per_token, inputs)?;
        // The clipped term binds (strictly): verl's pg_clipfrac = mean(pg_losses2 > pg_losses1).
        let clipped = surr2.detach().lt(&surr1.detach())?.to_dtype(g.dtype)?;
        stats.clip_fraction = g.mean(&clipped)?;
        stats.mean_ratio = g.mean(&ratio)?;
        Ok((per_token, stats))
    }

    fn name(&self) -> &'static str {
        "ppo"
    }
}

/// A penalty `k(logp, ref)` per token from one of Schulman's (2020) estimators of the
/// reverse KL `KL(pi || pi_ref)` on tokens the policy sampled ([`kl_estimate`]; `k3` is the
/// penalty of GRPO, Shao et al. 2024, eq. 4). The coefficient `beta` is the one given to
/// [`total_loss`]. Needs `ref_logp`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KlPenalty {
    /// Which estimator (`k1`, `k2`, `k3`).
    pub estimator: KlEstimator,
}

impl TokenLoss for KlPenalty {
    fn per_token(&self, inputs: &TokenInputs) -> Result<(Tensor, LossStats)> {
        let name = self.name();
        let g = grid(inputs, name)?;
        let reference = g.tokenwise(inputs.ref_logp, "ref_logp", name)?;
        // k(logp, ref) with log r = ref - logp (ppo.rs, Schulman 2020).
        let per_token = kl_estimate(self.estimator, &g.logp, &reference)?;
        let mut stats = g.stats(name, &per_token, inputs)?;
        stats.kl = stats.loss;
        Ok((per_token, stats))
    }

    fn name(&self) -> &'static str {
        "kl"
    }
}

/// The log-ratio `log u = logp - ref`, clamped to [-20, 20] as in DPH-RL's `kl_penalty`
/// (`verl/trainer/ppo/core_algos.py`, `low_var_kl`); full gradient inside the range.
fn clamped_log_ratio(g: &Grid, inputs: &TokenInputs, name: &str) -> Result<Tensor> {
    let reference = g.tokenwise(inputs.ref_logp, "ref_logp", name)?;
    Ok((&g.logp - &reference)?.clamp(-20.0, 20.0)?)
}

/// DPH-RL's forward-KL rehearsal term ("The Choice of Divergence", arXiv
/// 2509.07430; seamoke/DPH-RL `verl/workers/actor/dp_actor.py`, `sft_loss_mode = forward`,
/// which calls `kl_penalty(logprob=pi_0, ref_logprob=pi_theta, "low_var_kl")` of
/// `verl/trainer/ppo/core_algos.py`) on tokens sampled from the reference (initial) policy
/// `pi_0`: with `u = pi_theta / pi_0`,
///
/// `l_t = clamp(u - log u - 1, -10, 10)`, `log u = clamp(logp - ref, -20, 20)`,
///
/// the k3 estimator of `KL(pi_0 || pi_theta)` from `pi_0`'s samples (mass-covering: it
/// penalises the policy for dropping what `pi_0` could say). Both clamps are candle clamps:
/// value and gradient pass unchanged inside the range (gradient `u - 1` per token), and, as
/// `torch.clamp` in the reference code, no gradient comes from a clamped value. Needs
/// `ref_logp` (`pi_0`'s log-probabilities of its own samples).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ForwardKl;

impl TokenLoss for ForwardKl {
    fn per_token(&self, inputs: &TokenInputs) -> Result<(Tensor, LossStats)> {
        let name = self.name();
        let g = grid(inputs, name)?;
        let log_u = clamped_log_ratio(&g, inputs, name)?;
        let u = log_u.exp()?;
        // u - log u - 1, clamped to [-10, 10] (DPH-RL core_algos.py kl_penalty, low_var_kl).
        let per_token = ((&u - &log_u)? - 1.0)?.clamp(-10.0, 10.0)?;
        let mut stats = g.stats(name, &per_token, inputs)?;
        stats.kl = stats.loss;
        stats.mean_ratio = g.mean(&u)?;
        Ok((per_token, stats))
    }

    fn name(&self) -> &'static str {
        "forward_kl"
    }
}

/// DPH-RL's Jensen-Shannon rehearsal term (`js_low_var` of seamoke/DPH-RL
/// `verl/trainer/ppo/core_algos.py`, `sft_loss_mode = js_low_var`) on tokens sampled from
/// the reference (initial) policy: with `u = pi_theta / pi_0`,
///
/// `l_t = f(u) = u log u - (u + 1) log((u + 1) / 2)`,
///
/// the generator of the JS divergence (times 2) as an f-divergence: convex, `f(1) = 0` and
/// `f'(1) = 0`, so it is non-negative and minimal at `u = 1`. `log u` is the log-ratio
/// clamped to [-20, 20] as for [`ForwardKl`] (the reference code has no clamp; inside the
/// range nothing changes), and `log((u + 1) / 2) = log(1 + e^{log u}) - log 2` is computed
/// from the clamped log-ratio. Per-token gradient `u (log u - log((u + 1) / 2))`. Needs
/// `ref_logp`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct JensenShannon;

impl TokenLoss for JensenShannon {
    fn per_token(&self, inputs: &TokenInputs) -> Result<(Tensor, LossStats)> {
        let name = self.name();
        let g = grid(inputs, name)?;
        let log_u = clamped_log_ratio(&g, inputs, name)?;
        let u = log_u.exp()?;
        // log((u + 1) / 2) = log(1 + u) - ln 2, with u <= e^20 (finite in f32 and f64).
        let log_mid = ((&u + 1.0)?.log()? - std::f64::consts::LN_2)?;
        // f(u) = u log u - (u + 1) log((u + 1) / 2) (DPH-RL core_algos.py js_low_var).
        let per_token = ((&u * &log_u)? - ((&u + 1.0)? * log_mid)?)?;
        let mut stats = g.stats(name, &per_token, inputs)?;
        stats.kl = stats.loss;
        stats.mean_ratio = g.mean(&u)?;
        Ok((per_token, stats))
    }

    fn name(&self) -> &'static str {
        "js"
    }
}

/// Negative-aware fine-tuning (Chen et al. 2025, "Bridging Supervised Learning and
/// Reinforcement Learning in Math Reasoning", arXiv 2505.18116; NVlabs/NFT `dp_actor.py`,
/// `ratio_type = token`, with `clamp_negative = 1.0`, `clamp_positive = 0` of `train_7B.sh`).
/// Per token of a sample with correctness `c` whose group has correct rate `r_q`:
///
/// * `r_q <- clamp(r_q, 0.02, 0.98)`;
/// * `R_t = exp(min(logp_t - old_t, 10))`;
/// * positive (correct) tokens: `L+ = -log R_t` (`clamp_positive = 0` leaves `R_t > 0`
///   unchanged);
/// * negative tokens, the implicit negative policy: `L- = -log st((1 - r_q R_t) / (1 - r_q))`
///   where `st(x)` has the value `max(x, 1)` and the gradient of `x`
///   (`clamp_preserve_grad`: `x + (max(x, 1) - x).detach()`); its gradient
///   `r_q / ((1 - r_q) max(x, 1)) * grad R_t` pushes `R_t` down, and its value is `<= 0`;
/// * `l_t = [c L+ + (1 - c) neg_weight L-] * w_q` with `w_q = 1 - r_q` (`normalize = 1`,
///   the default, equivalent to Dr. GRPO), `sqrt((1 - r_q) / r_q)` (`normalize = 2`,
///   equivalent to GRPO) or 1 (`normalize = 0`).
///
/// On-policy (`logp == old`) its gradient equals that of [`PolicyGradient`] with the Dr. GRPO
/// advantage `A = c - r_q` (`normalize = 1`, `neg_weight = 1`) or the GRPO advantage
/// `(c - r_q) / sqrt(r_q (1 - r_q))` (`normalize = 2`); see the tests. `neg_weight = 0` is
/// RFT (fine-tuning on the correct answers only). The reference sums tokens, divides by 1000
/// and sums over samples: [`Aggregation::TokenSum`]`(1000)` times the batch size. Needs
/// `old_logp`, `correct` and `group_rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nft {
    /// Weight of the negative (incorrect-answer) loss: 1 for NFT, 0 for RFT.
    pub neg_weight: f64,
    /// Group weight `w_q`: 0 none, 1 `1 - r_q` (Dr. GRPO), 2 `sqrt((1 - r_q) / r_q)` (GRPO).
    pub normalize: u8,
}

impl TokenLoss for Nft {
    fn per_token(&self, inputs: &TokenInputs) -> Result<(Tensor, LossStats)> {
        let name = self.name();
        if self.normalize > 2 {
            return Err(invalid(format!(
                "nft: normalize must be 0 (none), 1 (1 - r_q) or 2 (sqrt((1 - r_q) / r_q)), \
                 got {}",
                self.normalize
            )));
        }
        let g = grid(inputs, name)?;
        let old = g.tokenwise(inputs.old_logp, "old_logp", name)?;
        let c = g.per_sample(inputs.correct, "correct", name)?;
        // r_q clamped to [0.02, 0.98] (dp_actor.py).
        let rq = g
            .per_sample(inputs.group_rate, "group_rate", name)?
            .clamp(0.02, 0.98)?;
        let log_ratio = (&g.logp - &old)?;
        // R_t = exp(min(logp - old, 10)).
        let log_r = log_ratio.minimum(10.0)?;
        let ratio = log_r.exp()?;
        // L+ = -log R_t.
        let positive = log_r.neg()?;
        // L- = -log st((1 - r_q R_t) / (1 - r_q)), st: value max(., 1), gradient unclamped.
        let negative_rate = rq.affine(-1.0, 1.0)?;
        let proxy = ((&rq * &ratio)?.affine(-1.0, 1.0)? / &negative_rate)?;
        let negative = straight_through_min(&proxy, 1.0)?.log()?.neg()?;
        // [c L+ + (1 - c) neg_weight L-] * w_q.
        let incorrect = c.affine(-1.0, 1.0)?;
        let mixed = ((&c * &positive)? + ((&incorrect * &negative)? * self.neg_weight)?)?;
        let per_token = match self.normalize {
            0 => mixed,
            1 => (mixed * &negative_rate)?,
            _ => (mixed * (&negative_rate / &rq)?.sqrt()?)?,
        };
        let mut stats = g.stats(name, &per_token, inputs)?;
        stats.mean_ratio = g.mean(&ratio)?;
        let over = log_ratio.detach().gt(10.0)?.to_dtype(g.dtype)?;
        let clipped = if self.neg_weight != 0.0 {
            let raised = (proxy.detach().lt(1.0)?.to_dtype(g.dtype)? * &incorrect)?;
            over.maximum(&raised)?
        } else {
            over
        };
        stats.clip_fraction = g.mean(&clipped)?;
        Ok((per_token, stats))
    }

    fn name(&self) -> &'static str {
        if self.neg_weight == 0.0 {
            "rft"
        } else {
            "nft"
        }
    }
}

/// Supervised fine-tuning: per token `-log pi(y_t)` (maximum likelihood).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sft;

impl TokenLoss for Sft {
    fn per_token(&self, inputs: &TokenInputs) -> Result<(Tensor, LossStats)> {
        let name = self.name();
        let g = grid(inputs, name)?;
        // l_t = -log pi(y_t).
        let per_token = g.logp.neg()?;
        let stats = g.stats(name, &per_token, inputs)?;
        Ok((per_token, stats))
    }

    fn name(&self) -> &'static str {
        "sft"
    }
}

/// The entropy bonus of PPO (Schulman et al. 2017, eq. 9, the `c_2 S[pi_theta](s_t)` term;
/// Williams and Peng 1991): per token `l_t = -H_t`, with `H_t` the entropy of the policy's
/// next-token distribution at position `t` (at the sampling temperature), so that a positive
/// coefficient given to [`total_loss`] rewards spread. For action-level samples `H` is the
/// exact entropy over the legal actions. Differentiable in `inputs.entropy`; needs it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EntropyBonus;

impl TokenLoss for EntropyBonus {
    fn per_token(&self, inputs: &TokenInputs) -> Result<(Tensor, LossStats)> {
        let name = self.name();
        let g = grid(inputs, name)?;
        let h = inputs
            .entropy
            .ok_or_else(|| invalid(format!("{name} needs entropy (B, W)")))?;
        if h.dims() != [g.b, g.w] {
            return Err(invalid(format!(
                "{name}: entropy has shape {:?}, logp has ({}, {})",
                h.dims(),
                g.b,
                g.w
            )));
        }
        // l_t = -H_t (PPO eq. 9), 0 on padding; the gradient flows through H.
        let h = zero_padding(&h.to_dtype(g.dtype)?, &g.keep)?;
        let per_token = h.neg()?;
        let mut stats = g.stats(name, &per_token, inputs)?;
        stats.entropy = g.mean(&h)?;
        Ok((per_token, stats))
    }

    fn name(&self) -> &'static str {
        "entropy"
    }
}
