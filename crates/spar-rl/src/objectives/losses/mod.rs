//! Policy losses on a `(batch, width)` token grid, one type per algorithm, and preference
//! losses on sequence log-probabilities.
//!
//! Every token loss implements [`TokenLoss`]: from the policy's log-probabilities of the
//! sampled tokens (`logp`, differentiable) and whatever else the algorithm needs
//! ([`TokenInputs`]) it returns the per-token loss on the whole grid, which [`aggregate`]
//! reduces to a scalar with a [`crate::objectives::ppo::Aggregation`] and [`total_loss`] sums with
//! coefficients:
//!
//! * [`PolicyGradient`]: REINFORCE, `-A log pi`;
//! * [`PpoClip`]: PPO-clip with a symmetric or asymmetric ("clip-higher", DAPO) range;
//! * [`KlPenalty`]: a reverse-KL estimator to a reference on on-policy samples (GRPO);
//! * [`ForwardKl`] and [`JensenShannon`]: DPH-RL's mass-covering divergences on samples of
//!   the reference (initial) policy;
//! * [`Nft`]: negative-aware fine-tuning (NFT), with RFT as its `neg_weight = 0` case;
//! * [`Sft`]: maximum likelihood;
//! * [`EntropyBonus`]: minus the entropy of the next-token distribution (PPO's entropy bonus).
//!
//! Preference losses ([`PairLoss`]: [`Dpo`], [`Ipo`]) work on summed sequence
//! log-probabilities ([`sequence_logp`]).
//!
//! Padding: every input is replaced by 0 at padded positions (`mask == 0`) before any
//! arithmetic, with `where_cond`, so a padded position never produces a non-finite value and
//! its gradient is exactly 0 whatever the caller left there. All arithmetic uses ops whose
//! backward candle implements (exp, log, sqrt, clamp, minimum/maximum, where_cond, relu,
//! abs); inputs may be F32 or F64 (the other inputs are converted to `logp`'s dtype).

use candle_core::{DType, Device, Tensor};

use crate::error::Result;

mod pair;
mod token;

pub use pair::{Dpo, Ipo, PairLoss, PairStats};
pub use token::{
    EntropyBonus, ForwardKl, JensenShannon, KlPenalty, Nft, PolicyGradient, PpoClip, Sft,
};

/// The per-token inputs of a [`TokenLoss`], on a `(B, W)` grid of `B` samples padded to
/// `W` tokens. Only `logp` carries a gradient; the others are detached when read.
#[derive(Debug, Clone, Copy)]
pub struct TokenInputs<'a> {
    /// The policy's log-probabilities of the sampled tokens, `(B, W)`, differentiable.
    pub logp: &'a Tensor,
    /// 1.0 on real tokens and 0.0 on padding, `(B, W)` (any non-zero value counts as real).
    pub mask: &'a Tensor,
    /// The behaviour policy's log-probabilities, `(B, W)` ([`PpoClip`], [`Nft`]; the
    /// `approx_kl` statistic of every loss when present).
    pub old_logp: Option<&'a Tensor>,
    /// The reference (initial) policy's log-probabilities, `(B, W)` ([`KlPenalty`],
    /// [`ForwardKl`], [`JensenShannon`]).
    pub ref_logp: Option<&'a Tensor>,
    /// One advantage per sample, `(B,)`, broadcast to its tokens ([`PolicyGradient`],
    /// [`PpoClip`]).
    pub advantages: Option<&'a Tensor>,
    /// 1.0 / 0.0 correctness of each sample, `(B,)` ([`Nft`]).
    pub correct: Option<&'a Tensor>,
    /// The correct rate `r_q` of each sample's group, `(B,)` ([`Nft`]).
    pub group_rate: Option<&'a Tensor>,
    /// The entropy of the policy's next-token distribution at each position, `(B, W)`,
    /// differentiable ([`EntropyBonus`]; `spar_lm::score::score_with_entropy`).
    pub entropy: Option<&'a Tensor>,
}

impl<'a> TokenInputs<'a> {
    /// Inputs with only the log-probabilities and the mask; set the other fields as needed.
    pub fn new(logp: &'a Tensor, mask: &'a Tensor) -> Self {
        TokenInputs {
            logp,
            mask,
            old_logp: None,
            ref_logp: None,
            advantages: None,
            correct: None,
            group_rate: None,
            entropy: None,
        }
    }
}

/// Statistics of one loss evaluation (no gradient). Means are over real tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossStats {
    /// The loss's [`TokenLoss::name`].
    pub name: &'static str,
    /// From [`TokenLoss::per_token`]: the mean per-token loss; from [`total_loss`]: the
    /// term's aggregated value (before its coefficient).
    pub loss: f64,
    /// Fraction of tokens whose value was clipped: for [`PpoClip`] the tokens where the
    /// clipped surrogate is the (strictly) smaller one, so that the token has no gradient
    /// (verl's `pg_clipfrac`); for [`Nft`] the tokens whose log-ratio exceeds 10 or whose
    /// negative-loss argument was raised to 1 by the straight-through clamp; 0 otherwise.
    pub clip_fraction: f64,
    /// Mean ratio: `pi / pi_old` for [`PpoClip`] and [`Nft`], `pi / pi_ref` for
    /// [`ForwardKl`] and [`JensenShannon`]; 0 for losses without a ratio.
    pub mean_ratio: f64,
    /// Mean of `old - new` log-probability (the k1 estimate of `KL(old || new)`); 0
    /// without `old_logp`.
    pub approx_kl: f64,
    /// Mean per-token value of the divergence term ([`KlPenalty`], [`ForwardKl`],
    /// [`JensenShannon`]); 0 for the other losses.
    pub kl: f64,
    /// Mean entropy per real token ([`EntropyBonus`]); 0 for the other losses.
    pub entropy: f64,
    /// Number of real tokens.
    pub tokens: f64,
}

/// A loss defined per token on a `(B, W)` grid.
pub trait TokenLoss: std::fmt::Debug {
    /// The per-token loss, `(B, W)`, differentiable in `inputs.logp` and **not masked yet**
    /// (padded positions hold finite values that [`aggregate`] drops), and its statistics.
    fn per_token(&self, inputs: &TokenInputs) -> Result<(Tensor, LossStats)>;
    /// A short name for logs (`pg`, `ppo`, `kl`, `forward_kl`, `js`, `nft`, `rft`, `sft`).
    fn name(&self) -> &'static str;
}

/// The per-token grid of one evaluation: shape, dtype, which positions are real, and the
/// log-probabilities with padding replaced by 0.
struct Grid {
    b: usize,
    w: usize,
    dtype: DType,
    /// U8, 1 on real tokens.
    keep: Tensor,
    tokens: f64,
    /// `logp` with 0 at padded positions (differentiable).
    logp: Tensor,
}

fn invalid(msg: String) -> crate::Error {
    crate::Error::Invalid(msg)
}

/// The value of a one-element tensor as `f64`, whatever its dtype.
fn value(t: &Tensor) -> Result<f64> {
    Ok(t.detach()
        .to_dtype(DType::F64)?
        .reshape(())?
        .to_scalar::<f64>()?)
}

/// `x` where `keep`, 0 elsewhere: no value and no gradient comes from padded positions.
fn zero_padding(x: &Tensor, keep: &Tensor) -> Result<Tensor> {
    Ok(keep.where_cond(x, &x.zeros_like()?)?)
}

/// The straight-through lower clamp of NFT's `clamp_preserve_grad` (NVlabs/NFT
/// `dp_actor.py`): value `max(x, lo)`, gradient that of `x` (`x + (clamp(x) - x).detach()`).
fn straight_through_min(x: &Tensor, lo: f64) -> Result<Tensor> {
    let clamped = x.maximum(lo)?;
    Ok((x + (clamped - x)?.detach())?)
}

fn grid(inputs: &TokenInputs, loss: &str) -> Result<Grid> {
    let (b, w) = inputs.logp.dims2().map_err(|_| {
        invalid(format!(
            "{loss}: logp must be a (batch, width) grid, got shape {:?}",
            inputs.logp.dims()
        ))
    })?;
    if inputs.mask.dims() != [b, w] {
        return Err(invalid(format!(
            "{loss}: mask has shape {:?}, logp has ({b}, {w})",
            inputs.mask.dims()
        )));
    }
    let dtype = inputs.logp.dtype();
    let keep = inputs.mask.ne(0.0)?;
    let tokens = value(&keep.to_dtype(DType::F64)?.sum_all()?)?;
    let logp = zero_padding(inputs.logp, &keep)?;
    Ok(Grid {
        b,
        w,
        dtype,
        keep,
        tokens,
        logp,
    })
}

impl Grid {
    /// A required `(B, W)` input, detached, in the grid's dtype, 0 on padding.
    fn tokenwise(&self, t: Option<&Tensor>, field: &str, loss: &str) -> Result<Tensor> {
        let t = t.ok_or_else(|| invalid(format!("{loss} needs {field} (B, W)")))?;
        if t.dims() != [self.b, self.w] {
            return Err(invalid(format!(
                "{loss}: {field} has shape {:?}, logp has ({}, {})",
                t.dims(),
                self.b,
                self.w
            )));
        }
        zero_padding(&t.detach().to_dtype(self.dtype)?, &self.keep)
    }

    /// A required `(B,)` input, detached, in the grid's dtype, broadcast to `(B, W)`.
    fn per_sample(&self, t: Option<&Tensor>, field: &str, loss: &str) -> Result<Tensor> {
        let t = t.ok_or_else(|| invalid(format!("{loss} needs {field} (B,)")))?;
        if t.dims() != [self.b] {
            return Err(invalid(format!(
                "{loss}: {field} has shape {:?}, expected ({},) (one value per sample)",
                t.dims(),
                self.b
            )));
        }
        Ok(t.detach()
            .to_dtype(self.dtype)?
            .reshape((self.b, 1))?
            .broadcast_as((self.b, self.w))?
            .contiguous()?)
    }

    /// Mean of `x` over real tokens (no gradient; 0 without tokens).
    fn mean(&self, x: &Tensor) -> Result<f64> {
        let sum = value(&zero_padding(&x.detach(), &self.keep)?.sum_all()?)?;
        Ok(sum / self.tokens.max(1.0))
    }

    /// Statistics with the loss's mean value, the token count and, when `old_logp` is given,
    /// `approx_kl`.
    fn stats(
        &self,
        name: &'static str,
        per_token: &Tensor,
        inputs: &TokenInputs,
    ) -> Result<LossStats> {
        let approx_kl = match inputs.old_logp {
            Some(old) => {
                let old = self.tokenwise(Some(old), "old_logp", name)?;
                self.mean(&(old - &self.logp)?)?
            }
            None => 0.0,
        };
        Ok(LossStats {
            name,
            loss: self.mean(per_token)?,
            approx_kl,
            tokens: self.tokens,
            ..LossStats::default()
        })
    }
}

/// Reduces a per-token loss `(B, W)` to a scalar over the real tokens of `mask`:
///
/// * [`Aggregation::TokenSum`]`(C)`: `mean_b (sum_t l_bt) / C` (Dr. GRPO, Liu et al. 2025,
///   eq. 3);
/// * [`Aggregation::TokenMean`]: `mean_b (sum_t l_bt / |o_b|)` (GRPO, Shao et al. 2024,
///   eq. 3);
/// * [`Aggregation::BatchTokenMean`]: `sum_bt l_bt / sum_b |o_b|` (DAPO's token-level loss,
///   Yu et al. 2025, "Token-Level Policy Gradient Loss", the `1 / sum_i |o_i|` of its
///   objective; verl's `use_token_level_loss`: every token of the batch weighs the same).
///
/// Padded positions contribute neither value nor gradient. A sample without real tokens
/// counts as a sample of loss 0 in the per-sample means; a batch without tokens gives 0.
pub fn aggregate(per_token: &Tensor, mask: &Tensor, agg: Aggregation) -> Result<Tensor> {
    if per_token.dims().len() != 2 || per_token.dims() != mask.dims() {
        return Err(invalid(format!(
            "aggregate: per-token loss {:?} and mask {:?} must be the same (B, W) grid",
            per_token.dims(),
            mask.dims()
        )));
    }
    let keep = mask.ne(0.0)?;
    let masked = zero_padding(per_token, &keep)?;
    Ok(match agg {
        Aggregation::TokenSum(c) => {
            if !(c.is_finite() && c > 0.0) {
                return Err(invalid(format!(
                    "aggregate: the token-sum normaliser must be positive, got {c}"
                )));
            }
            (masked.sum(1)? / c)?.mean_all()?
        }
        Aggregation::TokenMean => {
            let lengths = keep.to_dtype(per_token.dtype())?.sum(1)?.maximum(1.0)?;
            masked.sum(1)?.div(&lengths)?.mean_all()?
        }
        Aggregation::BatchTokenMean => {
            let tokens = value(&keep.to_dtype(DType::F64)?.sum_all()?)?;
            (masked.sum_all()? / tokens.max(1.0))?
        }
    })
}

/// `sum_i coef_i * aggregate(per_token_i)` and each term's statistics (their `loss` is the
/// term's aggregated value before its coefficient).
pub fn total_loss(
    terms: &[(&dyn TokenLoss, f64)],
    inputs: &TokenInputs,
    agg: Aggregation,
) -> Result<(Tensor, Vec<LossStats>)> {
    let mut total: Option<Tensor> = None;
    let mut all = Vec::with_capacity(terms.len());
    for (term, coef) in terms {
        let (per_token, mut stats) = term.per_token(inputs)?;
        let loss = aggregate(&per_token, inputs.mask, agg)?;
        stats.loss = value(&loss)?;
        let scaled = (loss * *coef)?;
        total = Some(match total {
            Some(t) => (t + scaled)?,
            None => scaled,
        });
        all.push(stats);
    }
    let total = total.ok_or_else(|| invalid("total_loss needs at least one term".into()))?;
    Ok((total, all))
}

/// The per-token values of `rows` on a zero-padded `(rows, width)` grid (the layout of
/// `spar_lm::score`'s log-probabilities: a row's tokens first, padding after).
pub fn token_grid(rows: &[&[f32]], width: usize, device: &Device) -> Result<Tensor> {
    let mut v = vec![0f32; rows.len() * width];
    for (i, r) in rows.iter().enumerate() {
        let n = r.len().min(width);
        v[i * width..i * width + n].copy_from_slice(&r[..n]);
    }
    Ok(Tensor::from_vec(v, (rows.len(), width), device)?)
}

/// The masked sum of per-token log-probabilities of each sample, `(B, W) -> (B,)`: the
/// sequence log-probability `log pi(y | x)` that [`PairLoss`] takes (differentiable).
pub fn sequence_logp(logp: &Tensor, mask: &Tensor) -> Result<Tensor> {
    if logp.dims().len() != 2 || logp.dims() != mask.dims() {
        return Err(invalid(format!(
            "sequence_logp: logp {:?} and mask {:?} must be the same (B, W) grid",
            logp.dims(),
            mask.dims()
        )));
    }
    Ok(zero_padding(logp, &mask.ne(0.0)?)?.sum(1)?)
}

/// Per-token estimators of `KL(pi_theta || pi_ref)` from tokens sampled by the policy
/// (Schulman 2020, "Approximating KL divergence"), with `log r = log pi_ref - log pi_theta`:
///
/// * `k1 = -log r`: unbiased, high variance, can be negative; as a loss its expected
///   gradient is zero (only its value is informative);
/// * `k2 = (log r)^2 / 2`: biased, low variance, non-negative; as a loss its gradient is the
///   gradient of the reverse KL `KL(pi_theta || pi_ref)` (the magnet term of magnetic mirror
///   descent, Sokota et al. 2023, eq. 3);
/// * `k3 = (r - 1) - log r`: unbiased, low variance, non-negative; the estimator of GRPO
///   (Shao et al. 2024, eq. 4) and of SPIRAL's oat trainer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KlEstimator {
    /// `-log r`.
    K1,
    /// `(log r)^2 / 2`.
    K2,
    /// `r - 1 - log r`.
    K3,
}

impl std::str::FromStr for KlEstimator {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "k1" => Ok(KlEstimator::K1),
            "k2" => Ok(KlEstimator::K2),
            "k3" => Ok(KlEstimator::K3),
            other => Err(crate::Error::Invalid(format!(
                "KL estimator {other:?} is not one of k1, k2, k3"
            ))),
        }
    }
}

/// The estimator's per-token values from the policy's and the reference's log-probabilities
/// (same shape; differentiable in `logp`).
pub fn kl_estimate(estimator: KlEstimator, logp: &Tensor, ref_logp: &Tensor) -> Result<Tensor> {
    // log r = log pi_ref - log pi_theta.
    let log_r = (ref_logp - logp)?;
    Ok(match estimator {
        KlEstimator::K1 => log_r.neg()?,
        KlEstimator::K2 => (log_r.sqr()? * 0.5)?,
        // Clamped as in the reference implementations (log r in [-20, 20]) so that one
        // near-impossible token under the reference cannot make the loss infinite.
        KlEstimator::K3 => {
            let log_r = log_r.clamp(-20f32, 20f32)?;
            ((log_r.exp()? - 1.0)? - log_r)?
        }
    })
}

/// How per-token terms become one loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    /// `mean over samples of (sum over tokens) / C` (Dr. GRPO, Liu et al. 2025, eq. 3, and
    /// SPIRAL's oat setting `critic_type = drgrpo`, C = its generation budget).
    TokenSum(f64),
    /// `mean over samples of (mean over tokens)` (PPO as in Schulman et al. 2017).
    TokenMean,
    /// `(sum over all tokens of the batch) / (number of tokens)`: DAPO's token-level loss
    /// (Yu et al. 2025, eq. 10), where every token weighs the same whatever its answer's
    /// length.
    BatchTokenMean,
}

const POLICY_LOSSES: &str = "pg, ppo, nft, rft, sft";

/// The token loss named `name`: `pg` ([`PolicyGradient`]), `ppo` ([`PpoClip`] with
/// `clip_low` / `clip_high`), `nft` ([`Nft`] with `nft_neg_weight`, `nft_normalize`), `rft`
/// ([`Nft`] with `neg_weight = 0`), `sft` ([`Sft`]). `dpo` and `ipo` are pair losses
/// ([`pair_loss_from_name`]).
pub fn policy_loss_from_name(
    name: &str,
    clip_low: f64,
    clip_high: f64,
    nft_neg_weight: f64,
    nft_normalize: u8,
) -> Result<Box<dyn TokenLoss>> {
    let nft = |neg_weight: f64| -> Result<Box<dyn TokenLoss>> {
        if nft_normalize > 2 {
            return Err(invalid(format!(
                "nft normalize must be 0, 1 or 2, got {nft_normalize}"
            )));
        }
        Ok(Box::new(Nft {
            neg_weight,
            normalize: nft_normalize,
        }))
    };
    match name {
        "pg" => Ok(Box::new(PolicyGradient)),
        "ppo" => {
            token::check_clip(clip_low, clip_high)?;
            Ok(Box::new(PpoClip {
                clip_low,
                clip_high,
            }))
        }
        "nft" => nft(nft_neg_weight),
        "rft" => nft(0.0),
        "sft" => Ok(Box::new(Sft)),
        "dpo" | "ipo" => Err(invalid(format!(
            "policy loss {name:?} is a preference (pair) loss, not a token loss; token losses: \
             {POLICY_LOSSES}"
        ))),
        other => Err(invalid(format!(
            "policy loss {other:?} is not one of {POLICY_LOSSES}"
        ))),
    }
}

/// The preference loss named `name`: `dpo` ([`Dpo`] with `beta`) or `ipo` ([`Ipo`] with
/// `tau = beta`, as TRL's `DPOTrainer` passes its `beta` to IPO).
pub fn pair_loss_from_name(name: &str, beta: f64) -> Result<Box<dyn PairLoss>> {
    if !(beta.is_finite() && beta > 0.0) {
        return Err(invalid(format!(
            "preference loss {name:?}: beta must be positive, got {beta}"
        )));
    }
    match name {
        "dpo" => Ok(Box::new(Dpo { beta })),
        "ipo" => Ok(Box::new(Ipo { tau: beta })),
        other => Err(invalid(format!(
            "preference loss {other:?} is not one of dpo, ipo"
        ))),
    }
}

/// The divergence term named `name`: `none` (no term), `k1` / `k2` / `k3` ([`KlPenalty`]
/// with that estimator: reverse KL on the policy's samples), `forward` ([`ForwardKl`]) or
/// `js` ([`JensenShannon`]) on the reference's samples.
pub fn divergence_from_name(name: &str) -> Result<Option<Box<dyn TokenLoss>>> {
    match name {
        "none" => Ok(None),
        "k1" | "k2" | "k3" => Ok(Some(Box::new(KlPenalty {
            estimator: name.parse()?,
        }))),
        "forward" => Ok(Some(Box::new(ForwardKl))),
        "js" => Ok(Some(Box::new(JensenShannon))),
        other => Err(invalid(format!(
            "divergence {other:?} is not one of none, k1, k2, k3, forward, js"
        ))),
    }
}

#[cfg(test)]
mod tests;
