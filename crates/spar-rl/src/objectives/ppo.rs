//! Self-play's PPO-clip: on the tokens of free-text answers, or on the legal actions'
//! normalised probabilities (GLAM), with a KL penalty and an entropy bonus.

use candle_core::{DType, Device, Tensor};
use spar_lm::score::score_with_entropy;
use spar_lm::Llama;

use crate::error::Result;
use crate::objectives::losses::{
    token_grid, total_loss, Aggregation, EntropyBonus, KlEstimator, KlPenalty, PpoClip,
    TokenInputs, TokenLoss,
};
use crate::rollout::Sample;

/// Terms added to the PPO-clip objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regularisers {
    /// Coefficient `beta` of the KL penalty to the reference (0: none).
    pub kl_coef: f64,
    /// Which estimator of the KL the penalty uses.
    pub kl_estimator: KlEstimator,
    /// Coefficient of the entropy bonus (0: none).
    pub entropy_coef: f64,
    /// Action-level only ([`ppo_loss_actions`]): the KL to the reference computed exactly over
    /// each sample's legal actions instead of `kl_estimator` on the chosen one.
    pub kl_exact: bool,
}

impl Default for Regularisers {
    fn default() -> Self {
        Regularisers {
            kl_coef: 0.0,
            kl_estimator: KlEstimator::K3,
            entropy_coef: 0.0,
            kl_exact: false,
        }
    }
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
    /// Mean per-token KL estimate to the reference (0 without a penalty).
    pub kl_ref: f64,
    /// Mean per-token entropy of the next-token distribution (0 without a bonus).
    pub entropy: f64,
}

/// Self-play's PPO objective on the tokens of `samples` under `model`: per token `t` of a
/// completion
///
/// `l_t = -min(r_t A, clip(r_t, 1 - eps, 1 + eps) A) + beta * k(t) - c * H_t`
///
/// that is [`PpoClip`] (Schulman et al. 2017, eq. 7, `r_t = exp(logp_t - logp_old_t)`,
/// eq. 6), plus [`KlPenalty`] with coefficient `beta` against the reference (GRPO, Shao et
/// al. 2024, eq. 3; the estimator `k` of Schulman 2020) and [`EntropyBonus`] with coefficient
/// `c` (Schulman et al. 2017, eq. 9), each aggregated over tokens and samples by `agg` and
/// summed ([`total_loss`]). Differentiable in the model's variables.
pub fn ppo_loss(
    model: &Llama,
    samples: &[&Sample],
    clip: f64,
    temperature: f64,
    agg: Aggregation,
    reg: &Regularisers,
) -> Result<(Tensor, PpoStats)> {
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = samples
        .iter()
        .map(|s| (s.prompt.clone(), s.completion.clone()))
        .collect();
    let scores = score_with_entropy(model, &pairs, temperature, reg.entropy_coef != 0.0)?;
    let (_, width) = scores.token_logprobs.dims2()?;
    let device = scores.token_logprobs.device().clone();
    let olds: Vec<&[f32]> = samples.iter().map(|s| s.old_logprobs.as_slice()).collect();
    let old = token_grid(&olds, width, &device)?;
    let reference = if reg.kl_coef != 0.0 {
        if let Some(s) = samples
            .iter()
            .find(|s| s.ref_logprobs.len() != s.old_logprobs.len())
        {
            return Err(crate::Error::Invalid(format!(
                "a KL penalty needs the reference's log-probabilities of every token: sample \
                 of episode {} has {} for {} tokens",
                s.episode,
                s.ref_logprobs.len(),
                s.old_logprobs.len()
            )));
        }
        let refs: Vec<&[f32]> = samples.iter().map(|s| s.ref_logprobs.as_slice()).collect();
        Some(token_grid(&refs, width, &device)?)
    } else {
        None
    };
    let adv = advantages(samples, &device)?;
    let inputs = TokenInputs {
        old_logp: Some(&old),
        ref_logp: reference.as_ref(),
        advantages: Some(&adv),
        entropy: scores.entropy.as_ref(),
        ..TokenInputs::new(&scores.token_logprobs, &scores.mask)
    };
    objective(&inputs, clip, reg, agg)
}

/// The samples' advantages, `(B,)`.
fn advantages(samples: &[&Sample], device: &Device) -> Result<Tensor> {
    let adv: Vec<f32> = samples.iter().map(|s| s.advantage as f32).collect();
    Ok(Tensor::from_vec(adv, samples.len(), device)?)
}

/// [`PpoClip`] + `beta` [`KlPenalty`] + `c` [`EntropyBonus`] on `inputs`, and the statistics
/// self-play logs (`clip_fraction` is [`PpoClip`]'s: verl's `pg_clipfrac`).
fn objective(
    inputs: &TokenInputs,
    clip: f64,
    reg: &Regularisers,
    agg: Aggregation,
) -> Result<(Tensor, PpoStats)> {
    let ppo = PpoClip {
        clip_low: clip,
        clip_high: clip,
    };
    let kl = KlPenalty {
        estimator: reg.kl_estimator,
    };
    let mut terms: Vec<(&dyn TokenLoss, f64)> = vec![(&ppo, 1.0)];
    if reg.kl_coef != 0.0 {
        terms.push((&kl, reg.kl_coef));
    }
    if reg.entropy_coef != 0.0 {
        terms.push((&EntropyBonus, reg.entropy_coef));
    }
    let (loss, stats) = total_loss(&terms, inputs, agg)?;
    let of = |name: &str| stats.iter().find(|s| s.name == name).copied();
    let stats = PpoStats {
        loss: f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?),
        clip_fraction: stats[0].clip_fraction,
        approx_kl: stats[0].approx_kl,
        kl_ref: of("kl").map_or(0.0, |s| s.kl),
        entropy: of("entropy").map_or(0.0, |s| s.entropy),
    };
    Ok((loss, stats))
}

/// An action-level sample's policy under `model`: the normalised log-probability of the
/// chosen alternative, the entropy over the alternatives, and every alternative's normalised
/// log-probability (differentiable).
struct ActionScores {
    /// `(B,)`: `log pi(a_chosen | s)`.
    chosen: Tensor,
    /// `(B,)`: `H(pi(. | s))`.
    entropy: Tensor,
    /// Per sample, `(n_alternatives,)`: `log pi(. | s)`.
    log_pi: Vec<Tensor>,
}

/// The [`ActionScores`] of action-level samples under `model` at `temperature`.
fn action_scores(model: &Llama, samples: &[&Sample], temperature: f64) -> Result<ActionScores> {
    let mut pairs = Vec::new();
    for s in samples {
        if s.alternatives.is_empty() || s.chosen >= s.alternatives.len() {
            return Err(crate::Error::Invalid(format!(
                "an action-level sample (episode {}) has no alternatives or a bad choice",
                s.episode
            )));
        }
        for alt in &s.alternatives {
            pairs.push((s.prompt.clone(), alt.clone()));
        }
    }
    let sums = score_with_entropy(model, &pairs, temperature, false)?.sums()?;
    let (mut chosen, mut entropy, mut all) = (Vec::new(), Vec::new(), Vec::new());
    let mut offset = 0;
    for s in samples {
        let n = s.alternatives.len();
        // log pi(a | s) = log p(c_a) - logsumexp_b log p(c_b).
        let logits = sums.narrow(0, offset, n)?;
        let log_pi = candle_nn::ops::log_softmax(&logits, 0)?;
        chosen.push(log_pi.narrow(0, s.chosen, 1)?);
        entropy.push((log_pi.exp()? * &log_pi)?.sum_all()?.neg()?.reshape(1)?);
        all.push(log_pi);
        offset += n;
    }
    Ok(ActionScores {
        chosen: Tensor::cat(&chosen, 0)?,
        entropy: Tensor::cat(&entropy, 0)?,
        log_pi: all,
    })
}

/// The normalised log-probability of each action-level sample's chosen alternative (no
/// gradient): the `old_logprobs` / `ref_logprobs` of [`ppo_loss_actions`].
pub fn action_logprobs(model: &Llama, samples: &[&Sample], temperature: f64) -> Result<Vec<f32>> {
    let scores = action_scores(model, samples, temperature)?;
    Ok(scores.chosen.detach().to_vec1()?)
}

/// Every alternative's normalised log-probability, per action-level sample (no gradient): the
/// `ref_logprobs` of [`ppo_loss_actions`] with [`Regularisers::kl_exact`].
pub fn action_distributions(
    model: &Llama,
    samples: &[&Sample],
    temperature: f64,
) -> Result<Vec<Vec<f32>>> {
    let scores = action_scores(model, samples, temperature)?;
    scores
        .log_pi
        .iter()
        .map(|t| Ok(t.detach().to_vec1::<f32>()?))
        .collect()
}

/// The exact `KL(pi || rho)` over each sample's alternatives, `(B,)`, from the policy's
/// normalised log-probabilities (differentiable) and the reference's (`s.ref_logprobs`, one
/// per alternative): `sum_a pi(a) (log pi(a) - log rho(a))` (MMD's magnet term
/// `KL(pi, rho)`, Sokota et al. 2023, eq. 10).
fn exact_kl(log_pi: &[Tensor], samples: &[&Sample]) -> Result<Tensor> {
    let mut kls = Vec::with_capacity(samples.len());
    for (lp, s) in log_pi.iter().zip(samples) {
        if s.ref_logprobs.len() != s.alternatives.len() {
            return Err(crate::Error::Invalid(format!(
                "the exact KL needs the reference's log-probability of every legal action: \
                 sample of episode {} has {} for {} actions",
                s.episode,
                s.ref_logprobs.len(),
                s.alternatives.len()
            )));
        }
        let rho = Tensor::from_slice(&s.ref_logprobs, s.ref_logprobs.len(), lp.device())?
            .to_dtype(lp.dtype())?;
        kls.push((lp.exp()? * (lp - rho)?)?.sum_all()?.reshape(1)?);
    }
    Ok(Tensor::cat(&kls, 0)?)
}

/// PPO-clip on the action-level policy of [`crate::rollout::Decode::Legal`]: one ratio per
/// sample, `r = pi(a | s) / pi_old(a | s)` with `pi` the model's probabilities of the legal
/// actions' canonical completions normalised over them (GLAM, Carta et al. 2023, sec. 3.1),
/// `-min(r A, clip(r) A)` (Schulman et al. 2017, eq. 7), plus `beta * k` against the
/// reference ([`KlPenalty`] on the chosen action's normalised log-probabilities) and minus
/// `c * H` ([`EntropyBonus`], `H` the exact entropy over the legal actions). Mean over
/// samples.
pub fn ppo_loss_actions(
    model: &Llama,
    samples: &[&Sample],
    clip: f64,
    temperature: f64,
    reg: &Regularisers,
) -> Result<(Tensor, PpoStats)> {
    let scores = action_scores(model, samples, temperature)?;
    let (new, entropy) = (scores.chosen, scores.entropy);
    let device = new.device().clone();
    let first = |v: &Vec<f32>, what: &str, s: &Sample| {
        v.first().copied().ok_or_else(|| {
            crate::Error::Invalid(format!(
                "action-level sample of episode {} lacks its {what} log-probability",
                s.episode
            ))
        })
    };
    let old: Vec<f32> = samples
        .iter()
        .map(|s| first(&s.old_logprobs, "old", s))
        .collect::<Result<_>>()?;
    let n = samples.len();
    let reference = if reg.kl_coef != 0.0 && !reg.kl_exact {
        let values: Vec<f32> = samples
            .iter()
            .map(|s| first(&s.ref_logprobs, "reference", s))
            .collect::<Result<_>>()?;
        Some(Tensor::from_vec(values, (n, 1), &device)?)
    } else {
        None
    };
    // One element per sample: the token-level objective on a (n, 1) grid.
    let new = new.reshape((n, 1))?;
    let entropy = entropy.reshape((n, 1))?;
    let mask = Tensor::ones((n, 1), DType::F32, &device)?;
    let old = Tensor::from_vec(old, (n, 1), &device)?;
    let adv = advantages(samples, &device)?;
    let inputs = TokenInputs {
        old_logp: Some(&old),
        ref_logp: reference.as_ref(),
        advantages: Some(&adv),
        entropy: (reg.entropy_coef != 0.0).then_some(&entropy),
        ..TokenInputs::new(&new, &mask)
    };
    if !(reg.kl_exact && reg.kl_coef != 0.0) {
        return objective(&inputs, clip, reg, Aggregation::TokenMean);
    }
    // PPO-clip and the entropy bonus as above, plus beta times the mean exact KL to the
    // reference over the legal actions.
    let without_kl = Regularisers {
        kl_coef: 0.0,
        ..*reg
    };
    let (loss, mut stats) = objective(&inputs, clip, &without_kl, Aggregation::TokenMean)?;
    let kl = exact_kl(&scores.log_pi, samples)?.mean_all()?;
    stats.kl_ref = f64::from(kl.to_dtype(DType::F32)?.to_scalar::<f32>()?);
    let loss = (loss + (kl * reg.kl_coef)?)?;
    stats.loss = f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?);
    Ok((loss, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
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
        let mut s = Sample::new(
            spar_core::Role::player("kuhn", 0),
            vec![1, 2],
            (0..n as u32).collect(),
        );
        s.advantage = advantage;
        s.old_logprobs = vec![old; n];
        s
    }

    #[test]
    fn ppo_clip_loss_matches_hand_computation() {
        let (model, lp) = zero_model();
        let r = 0.5f64.exp(); // ratio when the old log-probability is 0.5 lower
                              // Ratio 1, A = 2, 3 tokens: per-token objective 2, token-sum loss -(3 * 2) / 10.
        let s1 = sample(3, 2.0, lp);
        let (loss, stats) = ppo_loss(
            &model,
            &[&s1],
            0.2,
            1.0,
            Aggregation::TokenSum(10.0),
            &Regularisers::default(),
        )
        .unwrap();
        assert!((stats.loss + 0.6).abs() < 1e-5, "{stats:?}");
        assert_eq!(stats.clip_fraction, 0.0);
        assert!(stats.approx_kl.abs() < 1e-6);
        assert!((f64::from(loss.to_scalar::<f32>().unwrap()) + 0.6).abs() < 1e-5);
        // Ratio e^0.5 > 1.2 with A = +1: clipped at 1.2 per token.
        let s2 = sample(4, 1.0, lp - 0.5);
        let (_, stats) = ppo_loss(
            &model,
            &[&s2],
            0.2,
            1.0,
            Aggregation::TokenSum(10.0),
            &Regularisers::default(),
        )
        .unwrap();
        assert!((stats.loss + 4.0 * 1.2 / 10.0).abs() < 1e-5, "{stats:?}");
        assert_eq!(stats.clip_fraction, 1.0);
        assert!((stats.approx_kl + 0.5).abs() < 1e-5);
        // Same ratio with A = -1: the unclipped term is the minimum (pessimistic bound).
        let s3 = sample(4, -1.0, lp - 0.5);
        let (_, stats) = ppo_loss(
            &model,
            &[&s3],
            0.2,
            1.0,
            Aggregation::TokenSum(10.0),
            &Regularisers::default(),
        )
        .unwrap();
        assert!((stats.loss - 4.0 * r / 10.0).abs() < 1e-5, "{stats:?}");
        // Token mean over a batch: mean over samples of the per-sample token means.
        let (_, stats) = ppo_loss(
            &model,
            &[&s1, &s2],
            0.2,
            1.0,
            Aggregation::TokenMean,
            &Regularisers::default(),
        )
        .unwrap();
        assert!((stats.loss - (-2.0 - 1.2) / 2.0).abs() < 1e-5, "{stats:?}");
    }

    #[test]
    fn batch_token_mean_weighs_every_token_of_the_batch_equally() {
        let (model, lp) = zero_model();
        // 3 tokens at ratio 1 with A = 2 (per token -2) and 4 tokens clipped at 1.2 with
        // A = 1 (per token -1.2): (3 * -2 + 4 * -1.2) / 7 = -10.8 / 7, whereas the token
        // mean is (-2 - 1.2) / 2 = -1.6.
        let s1 = sample(3, 2.0, lp);
        let s2 = sample(4, 1.0, lp - 0.5);
        let (loss, stats) = ppo_loss(
            &model,
            &[&s1, &s2],
            0.2,
            1.0,
            Aggregation::BatchTokenMean,
            &Regularisers::default(),
        )
        .unwrap();
        assert!((stats.loss + 10.8 / 7.0).abs() < 1e-5, "{stats:?}");
        assert!((f64::from(loss.to_scalar::<f32>().unwrap()) + 10.8 / 7.0).abs() < 1e-5);
        assert!((stats.clip_fraction - 4.0 / 7.0).abs() < 1e-6, "{stats:?}");
    }

    #[test]
    fn ppo_gradient_raises_positive_and_lowers_negative_advantage_answers() {
        let cfg = Config::tiny(50, 16, 1, 2);
        let ckpt = Checkpoint {
            tensors: spar_lm::model::init_weights(&cfg, 0.1, 3, &Device::Cpu).unwrap(),
            config: cfg,
            tokenizer: None,
        };
        for advantage in [1.0, -1.0] {
            let (model, varmap) = ckpt.trainable().unwrap();
            let vars: Vec<(String, Var)> = varmap
                .data()
                .lock()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let pairs = vec![(vec![1u32, 2, 3], vec![4u32, 5])];
            let old = spar_lm::score::score_values(&model, &pairs).unwrap();
            let mut s = Sample::new(
                spar_core::Role::player("r", 0),
                pairs[0].0.clone(),
                pairs[0].1.clone(),
            );
            s.advantage = advantage;
            s.old_logprobs = old[0].clone();
            let (loss, _) = ppo_loss(
                &model,
                &[&s],
                0.2,
                1.0,
                Aggregation::TokenMean,
                &Regularisers::default(),
            )
            .unwrap();
            let grads = loss.backward().unwrap();
            // A small plain gradient step.
            for (_, v) in &vars {
                if let Some(g) = grads.get(v.as_tensor()) {
                    v.set(&(v.as_tensor() - (g * 0.01).unwrap()).unwrap())
                        .unwrap();
                }
            }
            let new = spar_lm::score::score_values(&model, &pairs).unwrap();
            let (before, after): (f32, f32) = (old[0].iter().sum(), new[0].iter().sum());
            assert!(
                (after - before) * advantage as f32 > 0.0,
                "A = {advantage}: log p went {before} -> {after}"
            );
        }
    }

    #[test]
    fn ppo_gradient_separates_samples_of_one_batch() {
        let cfg = Config::tiny(50, 16, 1, 2);
        let ckpt = Checkpoint {
            tensors: spar_lm::model::init_weights(&cfg, 0.1, 3, &Device::Cpu).unwrap(),
            config: cfg,
            tokenizer: None,
        };
        let (model, varmap) = ckpt.trainable().unwrap();
        let vars: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Same completion after two prompts of different lengths: A = +1 after the first,
        // A = -1 after the second.
        let pairs = vec![
            (vec![1u32, 2, 3], vec![4u32, 5]),
            (vec![7u32, 8, 9, 10, 11], vec![4u32, 5]),
        ];
        let old = spar_lm::score::score_values(&model, &pairs).unwrap();
        let samples: Vec<Sample> = pairs
            .iter()
            .zip([1.0, -1.0])
            .zip(&old)
            .map(|(((p, c), a), o)| {
                let mut s = Sample::new(spar_core::Role::player("r", 0), p.clone(), c.clone());
                s.advantage = a;
                s.old_logprobs = o.clone();
                s
            })
            .collect();
        let refs: Vec<&Sample> = samples.iter().collect();
        let (loss, _) = ppo_loss(
            &model,
            &refs,
            0.2,
            1.0,
            Aggregation::TokenSum(4.0),
            &Regularisers::default(),
        )
        .unwrap();
        let grads = loss.backward().unwrap();
        for (_, v) in &vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                v.set(&(v.as_tensor() - (g * 0.01).unwrap()).unwrap())
                    .unwrap();
            }
        }
        let new = spar_lm::score::score_values(&model, &pairs).unwrap();
        let sum = |v: &Vec<f32>| v.iter().sum::<f32>();
        assert!(sum(&new[0]) > sum(&old[0]), "{old:?} -> {new:?}");
        assert!(sum(&new[1]) < sum(&old[1]), "{old:?} -> {new:?}");
    }

    #[test]
    fn action_level_ppo_matches_hand_computation() {
        // Zero model: a completion of n tokens has log-probability -n ln 50, so alternatives
        // of 2 and 3 tokens get pi = (50/51, 1/51) once normalised.
        let (model, _) = zero_model();
        let pi0 = 50.0f64 / 51.0;
        let mut s = sample(2, 1.0, 0.0);
        s.alternatives = vec![vec![0, 1], vec![0, 1, 2]];
        s.chosen = 0;
        s.old_logprobs = vec![pi0.ln() as f32];
        s.ref_logprobs = vec![(pi0.ln() - 0.5) as f32];
        let reg = Regularisers {
            kl_coef: 0.1,
            kl_estimator: KlEstimator::K1,
            entropy_coef: 0.01,
            kl_exact: false,
        };
        let (_, stats) = ppo_loss_actions(&model, &[&s], 0.2, 1.0, &reg).unwrap();
        let h = -(pi0 * pi0.ln() + (1.0 - pi0) * (1.0 - pi0).ln());
        // Ratio 1, A = 1: -1; k1 = log pi - log pi_ref = 0.5; minus c * H.
        assert!((stats.kl_ref - 0.5).abs() < 1e-5, "{stats:?}");
        assert!((stats.entropy - h).abs() < 1e-5, "{stats:?}");
        assert!(
            (stats.loss - (-1.0 + 0.1 * 0.5 - 0.01 * h)).abs() < 1e-5,
            "{stats:?}"
        );
        assert!(stats.approx_kl.abs() < 1e-6);
        // The no-gradient helper gives the same normalised log-probability.
        let lp = action_logprobs(&model, &[&s], 1.0).unwrap();
        assert!((f64::from(lp[0]) - pi0.ln()).abs() < 1e-5);
        // The other alternative: log(1/51).
        s.chosen = 1;
        let lp = action_logprobs(&model, &[&s], 1.0).unwrap();
        assert!((f64::from(lp[0]) - (1.0f64 / 51.0).ln()).abs() < 1e-5);
        // A sample without alternatives is an error.
        s.alternatives.clear();
        assert!(ppo_loss_actions(&model, &[&s], 0.2, 1.0, &reg).is_err());
    }

    #[test]
    fn exact_kl_over_the_legal_actions_matches_hand_computation() {
        // Zero model: alternatives of 2 and 3 tokens get pi = (50/51, 1/51); the reference is
        // uniform, rho = (1/2, 1/2). KL(pi || rho) = sum_a pi(a) ln(pi(a) / rho(a)).
        let (model, _) = zero_model();
        let pi = [50.0f64 / 51.0, 1.0 / 51.0];
        let kl = pi.iter().map(|p| p * (p / 0.5).ln()).sum::<f64>();
        let mut s = sample(2, 0.0, 0.0);
        s.alternatives = vec![vec![0, 1], vec![0, 1, 2]];
        s.chosen = 1;
        s.old_logprobs = vec![pi[1].ln() as f32];
        s.ref_logprobs = vec![0.5f32.ln(); 2];
        let reg = Regularisers {
            kl_coef: 0.1,
            kl_exact: true,
            ..Regularisers::default()
        };
        // A = 0 at ratio 1: the loss is beta * KL alone, whichever action was sampled.
        let (loss, stats) = ppo_loss_actions(&model, &[&s], 0.2, 1.0, &reg).unwrap();
        assert!((stats.kl_ref - kl).abs() < 1e-5, "{stats:?} vs {kl}");
        assert!((stats.loss - 0.1 * kl).abs() < 1e-5, "{stats:?}");
        assert!((f64::from(loss.to_scalar::<f32>().unwrap()) - 0.1 * kl).abs() < 1e-5);
        // The no-gradient helper returns the whole normalised distribution.
        let d = action_distributions(&model, &[&s], 1.0).unwrap();
        assert_eq!(d[0].len(), 2);
        for (got, p) in d[0].iter().zip(pi) {
            assert!((f64::from(*got) - p.ln()).abs() < 1e-5);
        }
        // One reference value per action is required, not one for the chosen action.
        s.ref_logprobs = vec![0.5f32.ln()];
        assert!(ppo_loss_actions(&model, &[&s], 0.2, 1.0, &reg).is_err());
    }

    #[test]
    fn a_gradient_step_on_the_exact_kl_moves_the_policy_towards_the_reference() {
        let cfg = Config::tiny(50, 16, 1, 2);
        let ckpt = Checkpoint {
            tensors: spar_lm::model::init_weights(&cfg, 0.5, 3, &Device::Cpu).unwrap(),
            config: cfg,
            tokenizer: None,
        };
        let (model, varmap) = ckpt.trainable().unwrap();
        let mut s = sample(1, 0.0, 0.0);
        s.prompt = vec![1, 2, 3];
        s.alternatives = vec![vec![4], vec![5], vec![6]];
        s.chosen = 0;
        s.old_logprobs = action_logprobs(&model, &[&s], 1.0).unwrap();
        // A reference far from the policy: (0.7, 0.2, 0.1).
        s.ref_logprobs = [0.7f32, 0.2, 0.1].iter().map(|p| p.ln()).collect();
        let reg = Regularisers {
            kl_coef: 1.0,
            kl_exact: true,
            ..Regularisers::default()
        };
        let (loss, before) = ppo_loss_actions(&model, &[&s], 0.2, 1.0, &reg).unwrap();
        let grads = loss.backward().unwrap();
        for v in varmap.all_vars() {
            if let Some(g) = grads.get(v.as_tensor()) {
                v.set(&(v.as_tensor() - (g * 0.05).unwrap()).unwrap())
                    .unwrap();
            }
        }
        let (_, after) = ppo_loss_actions(&model, &[&s], 0.2, 1.0, &reg).unwrap();
        assert!(before.kl_ref > 0.0);
        assert!(after.kl_ref < before.kl_ref, "{before:?} -> {after:?}");
    }

    #[test]
    fn kl_penalty_and_entropy_bonus_enter_the_loss() {
        // Zero model: every token has log-probability lp = -ln 50 and the next-token entropy
        // is ln 50 at every position.
        let (model, lp) = zero_model();
        let mut s = sample(2, 0.0, lp);
        s.ref_logprobs = vec![lp - 0.5; 2]; // log r = -0.5: k2 = 0.125 per token
        let reg = Regularisers {
            kl_coef: 0.1,
            kl_estimator: KlEstimator::K2,
            entropy_coef: 0.01,
            kl_exact: false,
        };
        let (_, stats) = ppo_loss(&model, &[&s], 0.2, 1.0, Aggregation::TokenMean, &reg).unwrap();
        let h = 50f64.ln();
        assert!((stats.kl_ref - 0.125).abs() < 1e-5, "{stats:?}");
        assert!((stats.entropy - h).abs() < 1e-4, "{stats:?}");
        // A = 0: loss = beta * k2 - c * H per token (token mean).
        assert!(
            (stats.loss - (0.1 * 0.125 - 0.01 * h)).abs() < 1e-5,
            "{stats:?}"
        );
        // A penalty without reference log-probabilities is an error, not a silent zero.
        s.ref_logprobs.clear();
        assert!(ppo_loss(&model, &[&s], 0.2, 1.0, Aggregation::TokenMean, &reg).is_err());
    }
}
