//! The policy-gradient update on rewarded samples that the self-correction and proposer/solver
//! loops share: each sample's behaviour (and reference) log-probabilities scored once at the
//! sampling temperature, then `epochs` passes over minibatches in an order drawn from the
//! step's generator, each minibatch's token loss (the policy loss plus, with a reference, a
//! per-sample KL coefficient times the KL penalty) averaged over its tokens and applied by
//! [`AdamW::apply`] (clipping, the non-finite guard).

use candle_core::Tensor;
use rand::seq::SliceRandom;
use spar_lm::Llama;

use crate::error::Result;
use crate::objectives::logprobs::fill_old_and_reference;
use crate::objectives::losses::{
    aggregate, token_grid, Aggregation, KlPenalty, TokenInputs, TokenLoss,
};
use crate::rollout::Sample;
use crate::trainer::{AdamW, UpdateStats};

/// One update's model, losses and schedule.
pub struct PolicyUpdate<'a> {
    /// The model being trained.
    pub model: &'a Llama,
    /// The frozen reference of the KL penalty (`None`: no penalty).
    pub reference: Option<&'a Llama>,
    /// The policy loss (policy gradient, PPO-clip).
    pub policy: &'a dyn TokenLoss,
    /// The KL penalty to the reference.
    pub kl: &'a KlPenalty,
    /// Each sample's KL coefficient (read only with a reference).
    pub kl_coefs: &'a [f64],
    /// The sampling temperature (log-probabilities are those of the sampling distribution).
    pub temperature: f64,
    /// Passes over the samples.
    pub epochs: usize,
    /// Samples per optimiser step.
    pub minibatch_size: usize,
    /// Gradient-norm clipping (0 disables).
    pub max_grad_norm: f64,
}

impl std::fmt::Debug for PolicyUpdate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyUpdate")
            .field("reference", &self.reference.is_some())
            .field("temperature", &self.temperature)
            .field("epochs", &self.epochs)
            .field("minibatch_size", &self.minibatch_size)
            .finish()
    }
}

impl PolicyUpdate<'_> {
    /// Scores `samples` and takes the update's minibatch steps, in an order drawn from `rng`.
    pub fn run(
        &self,
        samples: &mut [Sample],
        rng: &mut impl rand::Rng,
        opt: &mut AdamW,
    ) -> Result<UpdateStats> {
        let (model, reference) = (self.model, self.reference);
        {
            let mut all: Vec<&mut Sample> = samples.iter_mut().collect();
            fill_old_and_reference(model, reference, &mut all, self.temperature)?;
        }
        let mut order: Vec<usize> = (0..samples.len()).collect();
        let mut stats = UpdateStats {
            samples: samples.len(),
            ..UpdateStats::default()
        };
        let (mut kl_sum, mut kl_terms) = (0.0, 0usize);
        for _ in 0..self.epochs {
            order.shuffle(rng);
            for mb in order.chunks(self.minibatch_size) {
                let batch: Vec<&Sample> = mb.iter().map(|&i| &samples[i]).collect();
                let pairs: Vec<(Vec<u32>, Vec<u32>)> = batch
                    .iter()
                    .map(|s| (s.prompt.clone(), s.completion.clone()))
                    .collect();
                let scores = spar_lm::score::score_at_temperature(model, &pairs, self.temperature)?;
                let device = scores.mask.device().clone();
                let width = scores.token_logprobs.dim(1)?;
                let grid = |f: &dyn Fn(&Sample) -> &[f32]| {
                    let rows: Vec<&[f32]> = batch.iter().map(|s| f(s)).collect();
                    token_grid(&rows, width, &device)
                };
                let old = grid(&|s| s.old_logprobs.as_slice())?;
                let refs = grid(&|s| s.ref_logprobs.as_slice())?;
                let column = |v: Vec<f32>| Tensor::from_vec(v, mb.len(), &device);
                let adv = column(batch.iter().map(|s| s.advantage as f32).collect())?;
                let inputs = TokenInputs {
                    old_logp: Some(&old),
                    ref_logp: reference.is_some().then_some(&refs),
                    advantages: Some(&adv),
                    ..TokenInputs::new(&scores.token_logprobs, &scores.mask)
                };
                let (mut per_token, pg) = self.policy.per_token(&inputs)?;
                stats.clip_fraction += pg.clip_fraction;
                stats.approx_kl += pg.approx_kl;
                if reference.is_some() {
                    let coef: Vec<f32> = mb.iter().map(|&i| self.kl_coefs[i] as f32).collect();
                    let (kl, kl_stats) = self.kl.per_token(&inputs)?;
                    let coef = column(coef)?.to_dtype(kl.dtype())?.unsqueeze(1)?;
                    per_token = (per_token + kl.broadcast_mul(&coef)?)?;
                    kl_sum += kl_stats.kl;
                    kl_terms += 1;
                }
                let loss = aggregate(&per_token, &scores.mask, Aggregation::TokenMean)?;
                match opt.apply(&loss, self.max_grad_norm)? {
                    Some(applied) => {
                        stats.loss += applied.loss;
                        stats.grad_norm += applied.grad_norm;
                        stats.minibatches += 1;
                    }
                    None => stats.skipped += 1,
                }
            }
        }
        let n = (stats.minibatches + stats.skipped).max(1) as f64;
        let applied = stats.minibatches.max(1) as f64;
        stats.loss /= applied;
        stats.grad_norm /= applied;
        stats.clip_fraction /= n;
        stats.approx_kl /= n;
        stats.kl_ref = reference.is_some().then(|| kl_sum / kl_terms.max(1) as f64);
        Ok(stats)
    }
}
