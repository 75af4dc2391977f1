//! The self-correction loop's preference methods, SCL and ReVISE: the step's played answers
//! become preference pairs ([`super::scl`], [`super::revise`]) instead of rewarded samples,
//! learnt from by the update every pair loss shares
//! ([`crate::objectives::preference::update_pairs`]) with DPO (Rafailov et al. 2023, eq. 7)
//! against the model after the warm start.

use std::collections::BTreeMap;

use rand::SeedableRng;

use super::{revise, scl, SelfCorrectLoop, SelfCorrectMetrics};
use crate::config::selfcorrect::Method;
use crate::error::{Error, Result};
use crate::objectives::preference::{self, PairUpdate, PreferencePair};
use crate::rollout::Sample;
use crate::trainer::{AdamW, Batch, StepInfo, UpdateStats};

impl SelfCorrectLoop {
    /// The step's pairs from its played answers (in place of advantages), counted by kind in
    /// the step's line (`pairs/c_to_i`, `pairs/i_to_c` for SCL; `pairs/stop`,
    /// `pairs/refine` for ReVISE).
    pub(super) fn build_pairs(
        &mut self,
        step: &StepInfo,
        batch: &Batch,
        line: &mut SelfCorrectMetrics,
    ) -> Result<()> {
        let s = &self.config.selfcorrect;
        let mut pairs: Vec<PreferencePair> = Vec::new();
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        match s.method {
            Method::Scl => {
                counts.extend([("c_to_i", 0), ("i_to_c", 0)]);
                let mut episodes: BTreeMap<usize, [Option<&Sample>; 2]> = BTreeMap::new();
                for x in batch.samples.iter().filter(|x| x.role.seat < 2) {
                    episodes.entry(x.episode).or_default()[x.role.seat] = Some(x);
                }
                for [first, second] in episodes.into_values() {
                    let (Some(first), Some(second)) = (first, second) else {
                        continue;
                    };
                    if let Some((pair, flip)) = scl::scl_pair(first, second, s.scl_pairs) {
                        *counts.entry(flip.name()).or_default() += 1;
                        pairs.push(pair);
                    }
                }
            }
            Method::Revise => {
                counts.extend([("refine", 0), ("stop", 0)]);
                let stage = self.config.stage(step.index);
                let task = self.setup.task.as_ref();
                for x in batch.samples.iter().filter(|x| !x.failed) {
                    let problem = self.problem_of(x, step).ok_or_else(|| {
                        Error::Invalid(format!("episode {} has no problem", x.episode))
                    })?;
                    let marker = &self.config.selfcorrect.refine_marker;
                    let graded = revise::graded(task, &problem, &x.text, marker);
                    let tokenizer = &step.learner.tokenizer;
                    for (pair, stop) in revise::revise_pairs(
                        tokenizer,
                        &x.prompt,
                        &graded,
                        stage,
                        &problem.solution,
                        marker,
                    )? {
                        *counts
                            .entry(if stop { "stop" } else { "refine" })
                            .or_default() += 1;
                        pairs.push(pair);
                    }
                }
            }
            _ => unreachable!("build_pairs is called for the pairwise methods only"),
        }
        self.pairs = pairs;
        if let Some(t) = line.train.as_mut() {
            t.pairs = counts.into_iter().collect();
        }
        Ok(())
    }

    /// DPO on the step's pairs, plus ReVISE's RPO term `rpo_alpha * NLL(chosen)` (reported as
    /// `learner/sft_loss`), the reference being the model after the warm start.
    pub(super) fn update_pairs(&mut self, step: &StepInfo, opt: &mut AdamW) -> Result<UpdateStats> {
        let (config, a) = (&self.config, &self.config.algorithm);
        let mut pairs = std::mem::take(&mut self.pairs);
        if pairs.is_empty() {
            return Ok(UpdateStats::default());
        }
        let nll_coef = match config.selfcorrect.method {
            Method::Revise => config.selfcorrect.rpo_alpha,
            _ => 0.0,
        };
        let update = PairUpdate {
            model: &step.learner.model,
            reference: self
                .reference_model
                .as_ref()
                .expect("the pairwise methods load the reference in prepare"),
            loss: self
                .pair_loss
                .as_deref()
                .expect("a pair loss for the pairwise methods"),
            epochs: a.epochs,
            minibatch_size: a.minibatch_size,
            max_grad_norm: a.max_grad_norm,
            nll_coef,
        };
        let step_seed = spar_core::seeds::task_step(config.run.seed, step.index as u64);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(step_seed ^ 0x3b);
        let p = preference::update_pairs(&update, &mut pairs, opt, &mut rng, &mut Ok)?;
        let ([loss, grad_norm], [accuracy, margin, nll]) = p.mean();
        Ok(UpdateStats {
            samples: pairs.len(),
            minibatches: p.minibatches,
            skipped: p.skipped,
            loss,
            grad_norm,
            sft_loss: (nll_coef > 0.0).then_some(nll),
            pair_accuracy: Some(accuracy),
            pair_margin: Some(margin),
            ..UpdateStats::default()
        })
    }
}
