//! REFUEL (Gao et al. 2024, "Regressing the Relative Future: Efficient Policy Optimization
//! for Multi-turn RLHF", sec. 4, Algorithm 1) on multi-attempt episodes.
//!
//! Data, per step and on-policy: every played episode `tau` is re-rolled from one of its
//! attempts `h`, drawn uniformly (the paper draws the branching turn uniformly up to the
//! dialogue's length): the attempts before `h` are replayed as they were and the model plays
//! attempt `h` onwards again with another random stream, giving `tau'`. Each trajectory's
//! *future* reward is the sum of its attempts' rewards from `h` on, `R = sum_{k >= h} r_k`.
//! Pairs whose two answers at `h` are the same text are dropped (the paper drops identical
//! branching responses); the one with the higher future reward is `y` (ties keep the played
//! one first, with a gap of 0).
//!
//! Loss per pair, only the tokens of attempt `h` scored (REFUEL's mask), log-probabilities
//! at the sampling temperature (the paper's code divides the logits by it):
//! `[(log pi(y|x_h) - log pi_old(y|x_h)) - (log pi(y'|x_h) - log pi_old(y'|x_h)) -
//! eta (R(tau) - R(tau'))]^2`, averaged over the minibatch; `pi_old` is the model that
//! collected the step. Logged: `learner/pair_accuracy` is the paper's `sign_align`, the
//! fraction of pairs with a non-zero gap whose log-ratio gap has the gap's sign (before each
//! minibatch's update), and `learner/pair_margin` the mean log-ratio gap.

use candle_core::Tensor;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use spar_core::Env;
use spar_games::tasks::{AttemptsEnv, Split};

use super::SelfCorrectLoop;
use crate::error::{Error, Result};
use crate::objectives::losses::sequence_logp;
use crate::rollout::{Batch as Played, Sample};
use crate::trainer::{AdamW, StepInfo, UpdateStats};

/// One REFUEL pair: two answers at the same branching attempt of one problem.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RefuelPair {
    /// The prompt of the branching attempt (the same in both trajectories).
    pub prompt: Vec<u32>,
    /// The answer whose trajectory's future reward is higher (or equal).
    pub better: Vec<u32>,
    /// The other answer.
    pub worse: Vec<u32>,
    /// `R(tau) - R(tau') >= 0`.
    pub gap: f64,
}

/// What the branching gave: the pairs and how many branches were dropped as identical.
#[derive(Debug, Default)]
pub(super) struct Branches {
    pub pairs: Vec<RefuelPair>,
    pub identical: usize,
}

/// The future reward of an episode from attempt `h` on.
fn future(returns: &[f64], h: usize) -> f64 {
    returns.iter().skip(h).sum()
}

impl SelfCorrectLoop {
    /// Re-rolls every played episode of `envs` (`played`: their samples, in episode order)
    /// from a uniformly drawn attempt and pairs the two answers there.
    pub(super) fn refuel_branches(
        &self,
        step: &StepInfo,
        envs: &[AttemptsEnv],
        played: &Played,
    ) -> Result<Branches> {
        let seed = spar_core::seeds::task_step(self.config.run.seed, step.index as u64);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x7ef0e1);
        let (g, prompts) = (self.config.rollout.group_size, self.config.rollout.prompts);
        let first = self.config.warm_start.problems + (step.index - 1) * prompts;
        let mut heads = Vec::with_capacity(envs.len());
        let mut branches = Vec::with_capacity(envs.len());
        for (e, env) in envs.iter().enumerate() {
            let answers = env.answers();
            let h = rng.gen_range(0..answers.len().max(1));
            let mut branch = self.setup.env(Split::Train, (first + e / g) as u64);
            for (seat, answer) in answers.iter().take(h).enumerate() {
                branch.step(seat, answer);
            }
            heads.push(h);
            branches.push(branch);
        }
        let rounds = self.setup.max_messages() as u64;
        let replayed = super::play_envs(
            &self.config,
            step,
            self.style,
            rounds,
            &mut branches,
            seed ^ 0xb7a9c4,
        )?;
        let at = |batch: &Played, e: usize, h: usize| -> Option<Sample> {
            batch
                .turns
                .iter()
                .find(|x| x.episode == e && x.role.seat == h && !x.failed)
                .cloned()
        };
        let mut out = Branches::default();
        for (e, &h) in heads.iter().enumerate() {
            let (Some(a), Some(b)) = (at(played, e, h), at(&replayed, e, h)) else {
                continue;
            };
            if a.prompt != b.prompt {
                return Err(Error::Invalid(format!(
                    "refuel: episode {e} re-rolled from attempt {} saw another prompt",
                    h + 1
                )));
            }
            if a.text == b.text {
                out.identical += 1;
                continue;
            }
            let (ra, rb) = (
                future(&played.returns[e], h),
                future(&replayed.returns[e], h),
            );
            let (better, worse, gap) = match ra >= rb {
                true => (a.completion, b.completion, ra - rb),
                false => (b.completion, a.completion, rb - ra),
            };
            out.pairs.push(RefuelPair {
                prompt: a.prompt,
                better,
                worse,
                gap,
            });
        }
        Ok(out)
    }

    /// REFUEL's regression on the step's pairs (module docs).
    pub(super) fn update_refuel(
        &mut self,
        step: &StepInfo,
        opt: &mut AdamW,
    ) -> Result<UpdateStats> {
        let (config, a) = (&self.config, &self.config.algorithm);
        let mut pairs = std::mem::take(&mut self.refuel_pairs);
        if pairs.is_empty() {
            return Ok(UpdateStats::default());
        }
        let (model, temperature) = (&step.learner.model, config.rollout.temperature);
        let eta = config.selfcorrect.refuel_eta;
        // log pi_old of both answers, from the model that collected the step.
        let seq = |mb: &[(RefuelPair, [f64; 2])]| -> Result<Tensor> {
            let seqs: Vec<(Vec<u32>, Vec<u32>)> = mb
                .iter()
                .map(|(p, _)| (p.prompt.clone(), p.better.clone()))
                .chain(mb.iter().map(|(p, _)| (p.prompt.clone(), p.worse.clone())))
                .collect();
            let s = spar_lm::score::score_at_temperature(model, &seqs, temperature)?;
            sequence_logp(&s.token_logprobs, &s.mask)
        };
        let mut with_old: Vec<(RefuelPair, [f64; 2])> = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(a.minibatch_size) {
            let tagged: Vec<(RefuelPair, [f64; 2])> =
                chunk.iter().map(|p| (p.clone(), [0.0; 2])).collect();
            let old = seq(&tagged)?
                .detach()
                .to_dtype(candle_core::DType::F64)?
                .to_vec1::<f64>()?;
            let n = chunk.len();
            for (i, (p, _)) in tagged.into_iter().enumerate() {
                with_old.push((p, [old[i], old[n + i]]));
            }
        }
        let step_seed = spar_core::seeds::task_step(config.run.seed, step.index as u64);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(step_seed ^ 0x3b);
        let mut stats = UpdateStats {
            samples: with_old.len(),
            ..UpdateStats::default()
        };
        let (mut sign, mut margin) = (0.0, 0.0);
        for _ in 0..a.epochs {
            with_old.shuffle(&mut rng);
            for mb in with_old.chunks(a.minibatch_size) {
                let n = mb.len();
                let old: Vec<[f64; 2]> = mb.iter().map(|(_, o)| *o).collect();
                let gaps: Vec<f64> = mb.iter().map(|(p, _)| p.gap).collect();
                let (loss, hv) = regression(&seq(mb)?, &old, &gaps, eta)?;
                let signed: Vec<bool> = mb
                    .iter()
                    .zip(&hv)
                    .filter(|((p, _), _)| p.gap > 0.0)
                    .map(|(_, &x)| x > 0.0)
                    .collect();
                sign += signed.iter().filter(|&&b| b).count() as f64 / signed.len().max(1) as f64;
                margin += hv.iter().sum::<f64>() / n as f64;
                match opt.apply(&loss, a.max_grad_norm)? {
                    Some(applied) => {
                        stats.loss += applied.loss;
                        stats.grad_norm += applied.grad_norm;
                        stats.minibatches += 1;
                    }
                    None => stats.skipped += 1,
                }
            }
        }
        let all = (stats.minibatches + stats.skipped).max(1) as f64;
        let applied = stats.minibatches.max(1) as f64;
        stats.loss /= applied;
        stats.grad_norm /= applied;
        stats.pair_accuracy = Some(sign / all);
        stats.pair_margin = Some(margin / all);
        pairs.clear();
        Ok(stats)
    }
}

/// REFUEL's loss on one minibatch of `n` pairs: `cur` holds the policy's sequence
/// log-probabilities, the better answers' then the worse ones' (`(2n,)`), `old` the
/// collecting model's (`[better, worse]` per pair), `gaps` the future-reward gaps. Returns the
/// mean squared error (differentiable in `cur`) and each pair's log-ratio gap `h`.
fn regression(
    cur: &Tensor,
    old: &[[f64; 2]],
    gaps: &[f64],
    eta: f64,
) -> Result<(Tensor, Vec<f64>)> {
    let n = old.len();
    let device = cur.device().clone();
    let column = |v: Vec<f32>| -> Result<Tensor> {
        let len = v.len();
        Ok(Tensor::from_vec(v, len, &device)?.to_dtype(cur.dtype())?)
    };
    let old = column(
        old.iter()
            .map(|o| o[0] as f32)
            .chain(old.iter().map(|o| o[1] as f32))
            .collect(),
    )?;
    let ratio = (cur - old)?;
    // h = (log pi(y) - log pi_old(y)) - (log pi(y') - log pi_old(y')).
    let h = (ratio.narrow(0, 0, n)? - ratio.narrow(0, n, n)?)?;
    let target = column(gaps.iter().map(|g| (eta * g) as f32).collect())?;
    // [h - eta (R(tau) - R(tau'))]^2, the pair mean (REFUEL, Algorithm 1).
    let loss = (&h - target)?.sqr()?.mean_all()?;
    let hv = h
        .detach()
        .to_dtype(candle_core::DType::F64)?
        .to_vec1::<f64>()?;
    Ok((loss, hv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_future_reward_sums_the_attempts_from_the_branch_on() {
        let r = [0.0, 1.0, 1.0];
        assert_eq!(future(&r, 0), 2.0);
        assert_eq!(future(&r, 1), 2.0);
        assert_eq!(future(&r, 2), 1.0);
        assert_eq!(future(&r, 3), 0.0);
    }

    #[test]
    fn the_regression_loss_and_its_gradient_by_hand() {
        // Two pairs. Policy log-probs: better [-1, -2], worse [-3, -1.5]; old: pair 0
        // [-1.5, -2.5], pair 1 [-2, -2]. Ratios: better [0.5, 0], worse [-0.5, 0.5], so
        // h = [1, -0.5]. Gaps [1, 0] with eta 2: targets [2, 0]. Loss ((1-2)^2 + 0.25) / 2.
        let var =
            candle_core::Var::new(&[-1f32, -2., -3., -1.5], &candle_core::Device::Cpu).unwrap();
        let (loss, h) = regression(
            var.as_tensor(),
            &[[-1.5, -2.5], [-2.0, -2.0]],
            &[1.0, 0.0],
            2.0,
        )
        .unwrap();
        assert_eq!(h, [1.0, -0.5]);
        assert_eq!(loss.to_scalar::<f32>().unwrap(), 0.625);
        // d loss / d cur: (h - t) for the better answer, -(h - t) for the worse (2/n = 1).
        let grads = loss.backward().unwrap();
        let g = grads.get(&var).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(g, [-1.0, -0.5, 1.0, 0.5]);
    }
}
