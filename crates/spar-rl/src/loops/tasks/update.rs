//! The task loop's update: token losses (PG, PPO, NFT, RFT, SFT) with the optional KL
//! penalty, or preference losses (DPO, IPO) on pairs of a right and a wrong answer to one
//! problem; DPH-RL's divergence term on the reference answers added to either.

use candle_core::Tensor;
use rand::seq::SliceRandom;
use spar_lm::Llama;

use super::reference::{divergence_term, ReferenceAnswer};
use crate::config::choice::Choice;
use crate::config::tasks::{Divergence, TaskLoss, TaskTrainConfig};
use crate::error::Result;
use crate::objectives::logprobs::fill_old_and_reference;
use crate::objectives::losses::{
    self, token_grid, Aggregation, ForwardKl, JensenShannon, KlPenalty, PairLoss, TokenInputs,
    TokenLoss,
};
use crate::objectives::preference::{self, PairUpdate, PreferencePair};
use crate::rollout::Sample;
use crate::trainer::AdamW;

pub(super) fn aggregation(config: &TaskTrainConfig) -> Aggregation {
    let a = &config.algorithm;
    a.loss_aggregation.aggregation(a.normaliser)
}

/// Accumulated statistics of one step's update.
#[derive(Debug, Default)]
pub(super) struct UpdateStats {
    pub(super) loss: f64,
    pub(super) clip_fraction: f64,
    pub(super) approx_kl: f64,
    pub(super) kl_ref: f64,
    pub(super) divergence: f64,
    pub(super) pair_accuracy: f64,
    pub(super) pair_margin: f64,
    pub(super) grad_norm: f64,
    pub(super) minibatches: usize,
    pub(super) skipped: usize,
}

/// Applies one optimiser step from `loss` ([`AdamW::apply`]) and counts it.
fn apply(
    loss: &Tensor,
    opt: &mut AdamW,
    max_grad_norm: f64,
    stats: &mut UpdateStats,
) -> Result<()> {
    match opt.apply(loss, max_grad_norm)? {
        Some(applied) => {
            stats.loss += applied.loss;
            stats.grad_norm += applied.grad_norm;
            stats.minibatches += 1;
        }
        None => stats.skipped += 1,
    }
    Ok(())
}

/// The losses of a run, built once from `[algorithm]`.
pub(super) struct Objective {
    /// The token-level policy loss (every loss but DPO/IPO).
    pub(super) policy: Option<Box<dyn TokenLoss>>,
    /// DPO or IPO.
    pub(super) pair: Option<Box<dyn PairLoss>>,
    /// The reverse-KL penalty to the reference model.
    pub(super) kl: Option<Box<dyn TokenLoss>>,
    /// DPH-RL's divergence on the reference answers.
    pub(super) divergence: Option<Box<dyn TokenLoss>>,
}

impl Objective {
    pub(super) fn from_config(a: &crate::config::tasks::AlgorithmConfig) -> Result<Objective> {
        let pairwise = a.loss.is_pairwise();
        Ok(Objective {
            policy: if pairwise {
                None
            } else {
                Some(losses::policy_loss_from_name(
                    a.loss.name(),
                    a.clip_low,
                    a.clip_high,
                    a.nft_neg_weight,
                    a.nft_normalize,
                )?)
            },
            pair: if pairwise {
                let strength = if a.loss == TaskLoss::Dpo {
                    a.dpo_beta
                } else {
                    a.ipo_tau
                };
                Some(losses::pair_loss_from_name(a.loss.name(), strength)?)
            } else {
                None
            },
            kl: a
                .kl
                .map(|estimator| Box::new(KlPenalty { estimator }) as Box<dyn TokenLoss>),
            divergence: a.divergence.map(|d| -> Box<dyn TokenLoss> {
                match d {
                    Divergence::Forward => Box::new(ForwardKl),
                    Divergence::Js => Box::new(JensenShannon),
                }
            }),
        })
    }
}

/// What one step's update reads besides its answers.
pub(super) struct UpdateContext<'a> {
    pub(super) config: &'a TaskTrainConfig,
    pub(super) objective: &'a Objective,
    /// The learner's model.
    pub(super) model: &'a Llama,
    /// The frozen model after the warm start (KL penalty, DPO/IPO).
    pub(super) reference_model: Option<&'a Llama>,
    /// DPH-RL's reference answers.
    pub(super) reference: &'a [ReferenceAnswer],
    /// The temperature the step's answers were sampled at (their log-probabilities are read
    /// at it).
    pub(super) temperature: f64,
    /// `[bstar]`: per answer, whether B-STaR selected it (it replaces `sft`'s "correct
    /// answers only").
    pub(super) selected: Option<&'a [bool]>,
}

/// DPO/IPO: pairs of the i-th correct with the i-th wrong answer of each problem, learnt from
/// by the shared preference update ([`crate::objectives::preference::update_pairs`]) with
/// DPH-RL's divergence term added to each minibatch's loss. Returns the pairs used.
#[allow(clippy::too_many_arguments)]
pub(super) fn update_pairs(
    cx: &UpdateContext<'_>,
    answers: &[Sample],
    problems: usize,
    opt: &mut AdamW,
    rng: &mut rand_chacha::ChaCha8Rng,
    offset: &mut usize,
    stats: &mut UpdateStats,
) -> Result<usize> {
    let a = &cx.config.algorithm;
    let mut pairs: Vec<PreferencePair> = Vec::new();
    for p in 0..problems {
        let group: Vec<&Sample> = answers.iter().filter(|x| x.group == p as u64).collect();
        let right = group.iter().filter(|x| x.reward > 0.5);
        let wrong = group.iter().filter(|x| x.reward <= 0.5);
        pairs.extend(right.zip(wrong).map(|(r, w)| PreferencePair {
            prompt: r.prompt.clone(),
            chosen: r.completion.clone(),
            rejected: w.completion.clone(),
            nll_from: r.completion.len(),
        }));
    }
    let update = PairUpdate {
        model: cx.model,
        reference: cx.reference_model.expect("a reference for DPO/IPO"),
        loss: cx.objective.pair.as_deref().expect("a pair loss"),
        epochs: a.epochs,
        minibatch_size: a.minibatch_size,
        max_grad_norm: a.max_grad_norm,
        nll_coef: 0.0,
    };
    let mut divergence = 0.0;
    let p = preference::update_pairs(&update, &mut pairs, opt, rng, &mut |loss| {
        add_divergence(cx, loss, offset, &mut divergence)
    })?;
    stats.divergence += divergence;
    stats.loss += p.loss;
    stats.grad_norm += p.grad_norm;
    stats.minibatches += p.minibatches;
    stats.skipped += p.skipped;
    [stats.pair_accuracy, stats.pair_margin, _] = p.mean().1;
    Ok(pairs.len())
}

/// Token-level losses (PG, PPO, NFT, RFT, SFT) with the optional KL penalty: the answers kept
/// (degenerate groups dropped with `filter_degenerate`; only correct ones for `sft`), their
/// behaviour and reference log-probabilities computed before the update, then `epochs`
/// passes of minibatches. Returns the samples used.
#[allow(clippy::too_many_arguments)]
pub(super) fn update_tokens(
    cx: &UpdateContext<'_>,
    answers: &[Sample],
    rates: &[f64],
    opt: &mut AdamW,
    rng: &mut rand_chacha::ChaCha8Rng,
    offset: &mut usize,
    stats: &mut UpdateStats,
) -> Result<usize> {
    let (config, a) = (cx.config, &cx.config.algorithm);
    let policy_loss = cx.objective.policy.as_ref().expect("a policy loss");
    let kl_loss = cx.objective.kl.as_ref();
    let temperature = cx.temperature;
    // The answers learnt from, each with its group's correct rate (NFT's r_q).
    let mut samples: Vec<(Sample, f64)> = answers
        .iter()
        .zip(rates)
        .enumerate()
        .filter(|(_, (_, &rate))| !a.filter_degenerate || (rate > 0.0 && rate < 1.0))
        .filter(|&(i, (x, _))| match cx.selected {
            Some(selected) => selected[i],
            None => a.loss != TaskLoss::Sft || x.reward > 0.5,
        })
        .map(|(_, (x, &rate))| (x.clone(), rate))
        .collect();
    // Old (behaviour) and reference log-probabilities, before the update.
    let reference = cx.reference_model.filter(|_| kl_loss.is_some());
    let mut refs: Vec<&mut Sample> = samples.iter_mut().map(|(s, _)| s).collect();
    fill_old_and_reference(cx.model, reference, &mut refs, temperature)?;
    for _ in 0..a.epochs {
        samples.shuffle(rng);
        for mb in samples.chunks(a.minibatch_size) {
            let pairs: Vec<(Vec<u32>, Vec<u32>)> = mb
                .iter()
                .map(|(s, _)| (s.prompt.clone(), s.completion.clone()))
                .collect();
            let scores = spar_lm::score::score_at_temperature(cx.model, &pairs, temperature)?;
            let device = scores.mask.device().clone();
            let width = scores.token_logprobs.dim(1)?;
            let olds: Vec<&[f32]> = mb.iter().map(|(s, _)| s.old_logprobs.as_slice()).collect();
            let old = token_grid(&olds, width, &device)?;
            let refs: Vec<&[f32]> = mb.iter().map(|(s, _)| s.ref_logprobs.as_slice()).collect();
            let ref_grid = token_grid(&refs, width, &device)?;
            let column = |f: &dyn Fn(&(Sample, f64)) -> f32| {
                Tensor::from_vec(mb.iter().map(f).collect::<Vec<f32>>(), mb.len(), &device)
            };
            let adv = column(&|(s, _)| s.advantage as f32)?;
            let correct = column(&|(s, _)| if s.reward > 0.5 { 1.0 } else { 0.0 })?;
            let rate = column(&|(_, rate)| *rate as f32)?;
            let inputs = TokenInputs {
                logp: &scores.token_logprobs,
                mask: &scores.mask,
                old_logp: Some(&old),
                ref_logp: kl_loss.is_some().then_some(&ref_grid),
                advantages: Some(&adv),
                correct: Some(&correct),
                group_rate: Some(&rate),
                entropy: None,
            };
            let mut terms: Vec<(&dyn TokenLoss, f64)> = vec![(policy_loss.as_ref(), 1.0)];
            if let Some(kl) = kl_loss {
                terms.push((kl.as_ref(), a.kl_coef));
            }
            let (loss, term_stats) = losses::total_loss(&terms, &inputs, aggregation(config))?;
            stats.clip_fraction += term_stats[0].clip_fraction;
            stats.approx_kl += term_stats[0].approx_kl;
            if let Some(k) = term_stats.get(1) {
                stats.kl_ref += k.kl;
            }
            let loss = add_divergence(cx, loss, offset, &mut stats.divergence)?;
            apply(&loss, opt, a.max_grad_norm, stats)?;
        }
    }
    Ok(samples.len())
}

/// `loss` plus the divergence term on the next minibatch of reference answers (when there is
/// a divergence and reference answers), its value added to `total`.
fn add_divergence(
    cx: &UpdateContext<'_>,
    loss: Tensor,
    offset: &mut usize,
    total: &mut f64,
) -> Result<Tensor> {
    let Some(divergence) = cx.objective.divergence.as_deref() else {
        return Ok(loss);
    };
    if cx.reference.is_empty() {
        return Ok(loss);
    }
    let size = cx.config.algorithm.minibatch_size;
    let (term, value) =
        divergence_term(cx.model, divergence, cx.reference, *offset, size, cx.config)?;
    *offset += size;
    *total += value;
    Ok((loss + term)?)
}
