//! The preference update every loop that learns from pairs shares: minibatches of (chosen,
//! rejected) sequences of one prompt, scored by the policy and the frozen reference, a
//! [`PairLoss`] (DPO, IPO) on their sequence log-probabilities, and optionally RPO's
//! negative log-likelihood of the chosen sequence (Pang et al. 2024, "Iterative Reasoning
//! Preference Optimization", eq. 1: `L = L_DPO + alpha * NLL(y_w)`), restricted to a suffix
//! of the chosen completion when ReVISE asks for it.
//!
//! Used by the task loop (`algorithm.loss = "dpo"`/`"ipo"`, with DPH-RL's divergence term as
//! an extra) and the self-correction loop (SCL's flipped-correction pairs, ReVISE's
//! stop-or-refine pairs).

use candle_core::Tensor;
use rand::seq::SliceRandom;
use spar_lm::score::score;
use spar_lm::Llama;

use crate::error::Result;
use crate::objectives::losses::{self, token_grid, PairLoss};
use crate::trainer::AdamW;

/// One preference pair: two completions of the same prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct PreferencePair {
    /// The prompt's token ids.
    pub prompt: Vec<u32>,
    /// The preferred completion (`y_w`).
    pub chosen: Vec<u32>,
    /// The dispreferred completion (`y_l`).
    pub rejected: Vec<u32>,
    /// The first token of `chosen` its NLL term covers (0: all of it; ReVISE: the tokens
    /// after the refine marker; `chosen.len()`: none).
    pub nll_from: usize,
}

/// How a step's pairs are learnt from.
pub struct PairUpdate<'a> {
    /// The policy.
    pub model: &'a Llama,
    /// The frozen reference of the loss's log-ratios.
    pub reference: &'a Llama,
    /// DPO or IPO.
    pub loss: &'a dyn PairLoss,
    /// Passes over the pairs.
    pub epochs: usize,
    /// Pairs per optimiser step.
    pub minibatch_size: usize,
    /// Gradient-norm clipping (0 disables).
    pub max_grad_norm: f64,
    /// RPO's `alpha`: the coefficient of the chosen sequences' NLL (0: none).
    pub nll_coef: f64,
}

impl std::fmt::Debug for PairUpdate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairUpdate")
            .field("loss", &self.loss)
            .field("epochs", &self.epochs)
            .field("minibatch_size", &self.minibatch_size)
            .field("nll_coef", &self.nll_coef)
            .finish()
    }
}

/// What the update of one step's pairs measured: sums over the minibatches (divide by
/// `minibatches` for means, as [`PairUpdateStats::mean`] does).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairUpdateStats {
    /// Optimiser steps applied.
    pub minibatches: usize,
    /// Optimiser steps skipped for a non-finite loss or gradient.
    pub skipped: usize,
    /// Sum of the applied minibatches' total losses.
    pub loss: f64,
    /// Sum of the applied minibatches' gradient norms.
    pub grad_norm: f64,
    /// Sum over minibatches of the fraction of pairs ranked right by the implicit reward.
    pub accuracy: f64,
    /// Sum over minibatches of the mean implicit reward margin ([`losses::PairStats`]).
    pub margin: f64,
    /// Sum over minibatches of the chosen sequences' NLL per token (with `nll_coef > 0`).
    pub nll: f64,
}

impl PairUpdateStats {
    /// `(loss, grad_norm)` per applied minibatch and `(accuracy, margin, nll)` per minibatch
    /// evaluated.
    pub fn mean(&self) -> ([f64; 2], [f64; 3]) {
        let applied = self.minibatches.max(1) as f64;
        let all = (self.minibatches + self.skipped).max(1) as f64;
        (
            [self.loss / applied, self.grad_norm / applied],
            [self.accuracy / all, self.margin / all, self.nll / all],
        )
    }
}

/// `epochs` passes over `pairs` in minibatches (shuffled by `rng` each pass): for each, the
/// pair loss on the policy's and the reference's sequence log-probabilities, plus
/// `nll_coef` times the chosen completions' NLL per token over their `nll_from..` tokens, plus
/// whatever `extra` adds to the loss (the task loop's divergence term), then one optimiser
/// step. The pairs' order after the call is the last pass's.
pub fn update_pairs(
    u: &PairUpdate<'_>,
    pairs: &mut [PreferencePair],
    opt: &mut AdamW,
    rng: &mut rand_chacha::ChaCha8Rng,
    extra: &mut dyn FnMut(Tensor) -> Result<Tensor>,
) -> Result<PairUpdateStats> {
    let mut stats = PairUpdateStats::default();
    for _ in 0..u.epochs {
        pairs.shuffle(rng);
        for mb in pairs.chunks(u.minibatch_size) {
            let n = mb.len();
            let seqs: Vec<(Vec<u32>, Vec<u32>)> = mb
                .iter()
                .map(|p| (p.prompt.clone(), p.chosen.clone()))
                .chain(mb.iter().map(|p| (p.prompt.clone(), p.rejected.clone())))
                .collect();
            let scores = score(u.model, &seqs)?;
            let sums = losses::sequence_logp(&scores.token_logprobs, &scores.mask)?;
            let ref_scores = score(u.reference, &seqs)?;
            let ref_sums =
                losses::sequence_logp(&ref_scores.token_logprobs, &ref_scores.mask)?.detach();
            let (mut loss, pstats) = u.loss.loss(
                &sums.narrow(0, 0, n)?,
                &sums.narrow(0, n, n)?,
                &ref_sums.narrow(0, 0, n)?,
                &ref_sums.narrow(0, n, n)?,
            )?;
            if u.nll_coef > 0.0 {
                let logp = scores.token_logprobs.narrow(0, 0, n)?;
                let nll = chosen_nll(&logp, mb)?;
                stats.nll += nll.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
                // RPO (Pang et al. 2024, eq. 1): L_DPO + alpha * NLL(y_w).
                loss = (loss + (nll * u.nll_coef)?)?;
            }
            let loss = extra(loss)?;
            stats.accuracy += pstats.accuracy;
            stats.margin += pstats.margin;
            match opt.apply(&loss, u.max_grad_norm)? {
                Some(applied) => {
                    stats.loss += applied.loss;
                    stats.grad_norm += applied.grad_norm;
                    stats.minibatches += 1;
                }
                None => stats.skipped += 1,
            }
        }
    }
    Ok(stats)
}

/// The chosen completions' negative log-likelihood per token over each pair's `nll_from..`
/// tokens (`logp`: the chosen rows' `(P, W)` token log-probabilities, column `j` the
/// completion's token `j`): `-sum(logp * m) / max(1, sum(m))`, the token mean over the
/// minibatch as TRL's `rpo_alpha` computes it (0 when no pair has such tokens).
fn chosen_nll(logp: &Tensor, pairs: &[PreferencePair]) -> Result<Tensor> {
    let width = logp.dim(1)?;
    let rows: Vec<Vec<f32>> = pairs
        .iter()
        .map(|p| {
            (0..p.chosen.len())
                .map(|j| if j >= p.nll_from { 1.0 } else { 0.0 })
                .collect()
        })
        .collect();
    let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
    let mask = token_grid(&refs, width, logp.device())?.to_dtype(logp.dtype())?;
    let count = rows.iter().flatten().sum::<f32>().max(1.0) as f64;
    Ok(((logp * mask)?.sum_all()?.neg()? / count)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn the_nll_covers_only_the_tokens_after_nll_from() {
        // Two chosen rows: [-1, -2, -3] from token 1 on (2 + 3), [-4, -5, pad] from 0 on
        // (4 + 5): NLL = 14 / 4 tokens.
        let logp = Tensor::new(&[[-1f32, -2., -3.], [-4., -5., 0.]], &Device::Cpu).unwrap();
        let pair = |chosen: Vec<u32>, nll_from| PreferencePair {
            prompt: vec![0],
            chosen,
            rejected: vec![1],
            nll_from,
        };
        let pairs = [pair(vec![1, 2, 3], 1), pair(vec![4, 5], 0)];
        let nll = chosen_nll(&logp, &pairs)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(nll, 14.0 / 4.0);
        // No token to imitate (a chosen that ends at the marker): 0.
        let none = [pair(vec![1, 2, 3], 3)];
        let logp = logp.narrow(0, 0, 1).unwrap();
        assert_eq!(
            chosen_nll(&logp, &none)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );
    }
}
