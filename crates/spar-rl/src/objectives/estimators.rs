//! Group-relative advantage estimators for sampled answers: GRPO, Dr. GRPO, RLOO, TRLOO,
//! HRPO (GRPO grouped by hop class) and REINFORCE++'s batch normalisation. These are the pure
//! functions of the math; the loops reach them through the
//! [`AdvantageEstimator`](crate::objectives::advantages::AdvantageEstimator) trait, whose
//! implementations call them.
//!
//! Every estimator takes one scalar reward per sample and a group key per sample; the caller
//! builds the key: the prompt id for GRPO, Dr. GRPO and RLOO, the hop class for HRPO (Dr. Zero,
//! where one proposal is sampled per prompt and samples are grouped by hop count), and the pair
//! `(prompt, turn)` for TRLOO (Dr. Kernel). Keys may be any `Ord` type (`&str`, `u32`,
//! `(String, usize)`, ...); groups need not be contiguous in the batch.
//!
//! | estimator | advantage of sample `i` in group `g` of size `N` | source |
//! |---|---|---|
//! | `reinforce` | `r_i` | Williams 1992, REINFORCE with reinforcement baseline 0 (section not confirmed) |
//! | `grpo` | `(r_i - mean_g) / (std_g + eps)` | Shao et al. 2024, sec. 4.1.2 |
//! | `dr_grpo` | `r_i - mean_g` | Liu et al. 2025, sec. 3.1, Fig. 1 |
//! | `rloo` | `r_i - (1/(N-1)) sum_{j != i} r_j = N/(N-1) (r_i - mean_g)` | Kool et al. 2019; Ahmadian et al. 2024, sec. 3 |
//! | `trloo` | `rloo` on turn returns `G_{i,t}`, grouped by `(prompt, turn)` | Dr. Kernel (KernelGYM code) |
//!
//! Equation numbers are given where they were checked; elsewhere the section is cited and the
//! line says that the number is not confirmed. DeepSeekMath writes GRPO's outcome-supervision
//! advantage inline in sec. 4.1.2 (`A_{i,t} = r~_i = (r_i - mean(r)) / std(r)`), the term that
//! enters its GRPO objective (eq. 3).
//!
//! With [`EstimatorOptions::batch_norm`] the advantages are then normalised over the whole
//! batch (REINFORCE++, [`batch_normalise`]): `reinforce` + `batch_norm` is REINFORCE++ and
//! `dr_grpo` + `batch_norm` is "REINFORCE++-baseline" (Hu 2025, sec. 3).
//!
//! Singleton groups (`N = 1`) follow verl: its GRPO sets the group mean to 0 and the std to 1
//! and its RLOO sets the mean to 0, so a lone sample keeps its reward as its advantage (TRLOO's
//! `N = 1` rule, `A = G`). Groups whose rewards are all equal get exactly 0 under GRPO,
//! Dr. GRPO and RLOO (their mean is taken as the common value, so no rounding leaks through).
//!
//! RAE and plain REINFORCE for self-play games (per-role baselines) are in
//! [`crate::objectives::rae`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The config names of the estimators, in the order of [`Estimator`]'s variants.
pub const ESTIMATORS: &[&str] = &["reinforce", "grpo", "dr_grpo", "rloo", "trloo"];

/// Which advantage estimator (its config name in quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Estimator {
    /// `"reinforce"`: no baseline, `A = r` (Williams 1992; REINFORCE's baseline set to 0).
    Reinforce,
    /// `"grpo"`: group mean and std normalisation ([`grpo`]).
    Grpo,
    /// `"dr_grpo"`: group mean only ([`dr_grpo`]).
    DrGrpo,
    /// `"rloo"`: leave-one-out mean of the other samples of the group ([`rloo`]).
    Rloo,
    /// `"trloo"`: leave-one-out on turn returns grouped by `(prompt, turn)` ([`trloo`]).
    Trloo,
}

impl Estimator {
    /// All estimators, in the order of [`ESTIMATORS`].
    pub const ALL: [Estimator; 5] = [
        Estimator::Reinforce,
        Estimator::Grpo,
        Estimator::DrGrpo,
        Estimator::Rloo,
        Estimator::Trloo,
    ];

    /// The config name (`"dr_grpo"` for [`Estimator::DrGrpo`]).
    pub fn name(self) -> &'static str {
        match self {
            Estimator::Reinforce => "reinforce",
            Estimator::Grpo => "grpo",
            Estimator::DrGrpo => "dr_grpo",
            Estimator::Rloo => "rloo",
            Estimator::Trloo => "trloo",
        }
    }
}

impl fmt::Display for Estimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Estimator {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Estimator::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown advantage estimator {s:?}; valid estimators: {}",
                    ESTIMATORS.join(", ")
                ))
            })
    }
}

/// Options of [`advantages`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EstimatorOptions {
    /// GRPO's epsilon in the denominator `std + eps`, and REINFORCE++'s in
    /// [`batch_normalise`]; default `1e-6` (verl's `compute_grpo_outcome_advantage`).
    pub eps: f64,
    /// GRPO's std: `true` (default) divides by `N - 1` like `torch.std` in verl's GRPO,
    /// `false` by `N` (population std).
    pub unbiased_std: bool,
    /// REINFORCE++: normalise the final advantages over the whole batch ([`batch_normalise`]);
    /// default `false`.
    pub batch_norm: bool,
}

impl Default for EstimatorOptions {
    fn default() -> Self {
        EstimatorOptions {
            eps: 1e-6,
            unbiased_std: true,
            batch_norm: false,
        }
    }
}

/// Advantages of `rewards[i]` under `estimator`, grouped by `keys[i]` (the prompt id for GRPO,
/// Dr. GRPO and RLOO, the hop class for HRPO, `(prompt, turn)` for TRLOO, whose `rewards` are
/// the turn returns of [`turn_returns`]); `keys` is ignored by `reinforce` but must still have
/// one entry per reward. With `options.batch_norm` the result is then normalised over the
/// batch ([`batch_normalise`], REINFORCE++).
///
/// Errors when `rewards` and `keys` differ in length, a reward is not finite, or `eps` is
/// negative or not finite.
pub fn advantages<K: Ord>(
    estimator: Estimator,
    rewards: &[f64],
    keys: &[K],
    options: &EstimatorOptions,
) -> Result<Vec<f64>> {
    check_inputs(estimator.name(), rewards, keys.len(), options.eps)?;
    let adv = match estimator {
        // A_i = r_i: REINFORCE without a baseline (Williams 1992; section not confirmed).
        Estimator::Reinforce => rewards.to_vec(),
        Estimator::Grpo => grpo(rewards, keys, options.eps, options.unbiased_std),
        Estimator::DrGrpo => dr_grpo(rewards, keys),
        Estimator::Rloo => rloo(rewards, keys),
        Estimator::Trloo => trloo(rewards, keys),
    };
    Ok(if options.batch_norm {
        batch_normalise(&adv, options.eps)
    } else {
        adv
    })
}

/// The checks of [`advantages`], shared with the trait's implementations
/// ([`crate::objectives::advantages`]): one key per reward, finite rewards, a finite `eps >= 0`.
pub(crate) fn check_inputs(name: &str, rewards: &[f64], keys: usize, eps: f64) -> Result<()> {
    if rewards.len() != keys {
        return Err(Error::Invalid(format!(
            "advantage estimator {name}: {} rewards but {keys} group keys (one key per reward)",
            rewards.len(),
        )));
    }
    if let Some((i, r)) = rewards.iter().enumerate().find(|(_, r)| !r.is_finite()) {
        return Err(Error::Invalid(format!(
            "advantage estimator {name}: reward {i} is {r}, not a finite number"
        )));
    }
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(Error::Invalid(format!(
            "advantage estimator {name}: eps = {eps} must be a finite number >= 0"
        )));
    }
    Ok(())
}

/// Indices of the samples of each group, groups in key order.
fn groups<K: Ord>(keys: &[K]) -> BTreeMap<&K, Vec<usize>> {
    let mut out: BTreeMap<&K, Vec<usize>> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        out.entry(k).or_default().push(i);
    }
    out
}

fn check_lengths(what: &str, rewards: usize, keys: usize) {
    assert_eq!(
        rewards, keys,
        "{what}: {rewards} rewards but {keys} group keys (one key per reward)"
    );
}

/// The mean of `values`, exactly the common value when they are all equal (so that
/// `r - mean` is exactly 0 in a degenerate group).
fn mean(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let mut it = values.clone();
    let Some(first) = it.next() else {
        return 0.0;
    };
    if it.all(|v| v == first) {
        return first;
    }
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n as f64
}

/// GRPO with outcome supervision (Shao et al. 2024, DeepSeekMath, sec. 4.1.2:
/// `A_i = (r_i - mean(r)) / std(r)` over the `G` answers to one prompt), as verl's
/// `compute_grpo_outcome_advantage` (`verl/trainer/ppo/core_algos.py`):
/// `A_i = (r_i - mean_g) / (std_g + eps)` with `std_g` = `torch.std` (unbiased, `N - 1`) or,
/// with `unbiased_std = false`, the population std (`N`).
///
/// A group of one sample gets verl's `mean = 0, std = 1`, so `A = r / (1 + eps)` (≈ `r`).
/// A group whose rewards are all equal gets `A = 0`. HRPO (Dr. Zero, `grpo_batch` with
/// `index = data_source`) is this function with the hop class as the key.
///
/// # Panics
/// If `rewards` and `keys` differ in length.
pub fn grpo<K: Ord>(rewards: &[f64], keys: &[K], eps: f64, unbiased_std: bool) -> Vec<f64> {
    check_lengths("grpo", rewards.len(), keys.len());
    let mut out = vec![0.0; rewards.len()];
    for idx in groups(keys).into_values() {
        let n = idx.len();
        if n == 1 {
            // verl's singleton rule (mean 0, std 1): A = r / (1 + eps).
            out[idx[0]] = rewards[idx[0]] / (1.0 + eps);
            continue;
        }
        // mean(r) and std(r) over the group's G answers (DeepSeekMath, sec. 4.1.2; the formula
        // is inline there, unnumbered).
        let m = mean(idx.iter().map(|&i| rewards[i]));
        let ss: f64 = idx.iter().map(|&i| (rewards[i] - m).powi(2)).sum();
        let denom = if unbiased_std { n - 1 } else { n };
        let std = (ss / denom as f64).sqrt();
        for &i in &idx {
            let d = rewards[i] - m;
            // A_i = (r_i - mean(r)) / (std(r) + eps) (DeepSeekMath, sec. 4.1.2, inline; eps as
            // verl). d = 0 exactly in a degenerate group: keep 0 even when eps = 0.
            out[i] = if d == 0.0 { 0.0 } else { d / (std + eps) };
        }
    }
    out
}

/// Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training: A Critical Perspective",
/// sec. 3.1 and Fig. 1, equation number not confirmed): GRPO without the std,
/// `A_i = r_i - mean_g`
/// (verl's `compute_grpo_outcome_advantage` with `norm_adv_by_std_in_grpo = False`; the
/// per-response length normaliser becomes a constant in the loss, not here).
///
/// A group of one sample gets verl's `mean = 0`, so `A = r`, the same rule as [`grpo`].
///
/// # Panics
/// If `rewards` and `keys` differ in length.
pub fn dr_grpo<K: Ord>(rewards: &[f64], keys: &[K]) -> Vec<f64> {
    check_lengths("dr_grpo", rewards.len(), keys.len());
    let mut out = vec![0.0; rewards.len()];
    for idx in groups(keys).into_values() {
        let m = if idx.len() == 1 {
            0.0
        } else {
            mean(idx.iter().map(|&i| rewards[i]))
        };
        for &i in &idx {
            // A_i = R(q, o_i) - mean_j R(q, o_j) (Dr. GRPO, Liu et al. 2025, sec. 3.1 and
            // Fig. 1; equation number not confirmed).
            out[i] = rewards[i] - m;
        }
    }
    out
}

/// RLOO (Kool et al. 2019, "Buy 4 REINFORCE Samples, Get a Baseline for Free!", the
/// leave-one-out baseline; Ahmadian et al. 2024, "Back to Basics", the RLOO estimator of
/// sec. 3; equation numbers not confirmed): the baseline of sample `i` is the mean of the other samples of its group,
/// `A_i = r_i - (1/(N-1)) sum_{j != i} r_j = N/(N-1) (r_i - mean_g)` (the second form is how
/// verl's `compute_rloo_outcome_advantage` computes it, and this function too).
///
/// A group of one sample has no other sample: `A = r` (verl's RLOO and TRLOO's `N = 1` rule).
///
/// # Panics
/// If `rewards` and `keys` differ in length.
pub fn rloo<K: Ord>(rewards: &[f64], keys: &[K]) -> Vec<f64> {
    check_lengths("rloo", rewards.len(), keys.len());
    leave_one_out(rewards, keys)
}

fn leave_one_out<K: Ord>(values: &[f64], keys: &[K]) -> Vec<f64> {
    let mut out = vec![0.0; values.len()];
    for idx in groups(keys).into_values() {
        let n = idx.len();
        if n == 1 {
            out[idx[0]] = values[idx[0]];
            continue;
        }
        let m = mean(idx.iter().map(|&i| values[i]));
        let scale = n as f64 / (n - 1) as f64;
        for &i in &idx {
            // A_i = r_i - (1/(N-1)) sum_{j != i} r_j = N/(N-1) (r_i - mean) (RLOO: Kool et al.
            // 2019; Ahmadian et al. 2024, sec. 3; TRLOO: Dr. Kernel, on G_{i,t}; equation
            // numbers not confirmed).
            out[i] = scale * (values[i] - m);
        }
    }
    out
}

/// Discounted turn returns of one episode (Dr. Kernel, TRLOO: `G_t = sum_{t' >= t}
/// gamma^{t'-t} r_{t'}`, with `gamma = 1` in the paper; KernelGYM
/// `compute_multi_turn_rloo_outcome_advantage`), computed backwards as
/// `G_t = r_t + gamma G_{t+1}`. `turn_rewards[t]` is the scalar reward of turn `t`.
pub fn turn_returns(turn_rewards: &[f64], gamma: f64) -> Vec<f64> {
    let mut out = vec![0.0; turn_rewards.len()];
    let mut g = 0.0;
    for (t, &r) in turn_rewards.iter().enumerate().rev() {
        // G_t = r_t + gamma G_{t+1} (Dr. Kernel's turn return; KernelGYM code, no equation
        // number).
        g = r + gamma * g;
        out[t] = g;
    }
    out
}

/// TRLOO, turn-level RLOO (Dr. Kernel; KernelGYM `drkernel/verl_patch/trainer/code/ppo/
/// core_algos.py::compute_multi_turn_rloo_outcome_advantage`): with `returns[i]` the turn
/// return `G_{i,t}` ([`turn_returns`]) of one valid turn and `keys[i]` its `(prompt, turn)`,
/// `A_{i,t} = G_{i,t} - (1/(N-1)) sum_{j != i} G_{j,t} = N/(N-1) (G_{i,t} - mean_j G_{j,t})`,
/// no std normalisation; `N = 1` gives `A = G`. The advantage is broadcast to every token of
/// that turn by the caller. Numerically the same as [`rloo`] with `(prompt, turn)` keys.
///
/// # Panics
/// If `returns` and `keys` differ in length.
pub fn trloo<K: Ord>(returns: &[f64], keys: &[K]) -> Vec<f64> {
    check_lengths("trloo", returns.len(), keys.len());
    leave_one_out(returns, keys)
}

/// REINFORCE++'s global advantage normalisation (Hu 2025, "REINFORCE++", sec. 3:
/// `A_norm = (A - mean_batch(A)) / std_batch(A)`; earlier docs gave it as eq. 10, a number
/// not confirmed against the current arXiv version): `(a - mean) / (std + eps)` with the
/// **population** std (divide by `N`) over the whole batch, as OpenRLHF's experience maker
/// (`mean = sum(A m)/sum(m)`, `var = sum((A - mean)^2 m)/sum(m)`). OpenRLHF normalises over
/// tokens and multiplies by `rsqrt(max(var, 1e-8))`; here there is one value per sample (weight
/// samples by repeating them to match token weighting) and `eps` is added to the std, as in
/// GRPO. A batch whose values are all equal (or a single value) gives zeros.
pub fn batch_normalise(advantages: &[f64], eps: f64) -> Vec<f64> {
    if advantages.is_empty() {
        return Vec::new();
    }
    // mean_batch(A) and the population std_batch(A) (REINFORCE++, sec. 3; OpenRLHF).
    let m = mean(advantages.iter().copied());
    let var = advantages.iter().map(|a| (a - m).powi(2)).sum::<f64>() / advantages.len() as f64;
    let std = var.sqrt();
    advantages
        .iter()
        .map(|a| {
            // A_norm = (A - mean_batch) / (std_batch + eps) (REINFORCE++, sec. 3).
            let d = a - m;
            if d == 0.0 {
                0.0
            } else {
                d / (std + eps)
            }
        })
        .collect()
}

/// The mean reward of each sample's group (`r_q` of NFT, Chen et al. 2025, "Bridging
/// Supervised Learning and Reinforcement Learning in Math Reasoning"; NVlabs/NFT `dp_actor.py`:
/// the correct rate of question `q`; NFT's clamp to `[0.02, 0.98]` is the caller's). A singleton group's mean is
/// its own reward (not GRPO's convention of 0).
///
/// # Panics
/// If `rewards` and `keys` differ in length.
pub fn group_means<K: Ord>(rewards: &[f64], keys: &[K]) -> Vec<f64> {
    check_lengths("group_means", rewards.len(), keys.len());
    let mut out = vec![0.0; rewards.len()];
    for idx in groups(keys).into_values() {
        let m = mean(idx.iter().map(|&i| rewards[i]));
        for &i in &idx {
            out[i] = m;
        }
    }
    out
}

/// The size of each sample's group (how many samples share its key).
pub fn group_sizes<K: Ord>(keys: &[K]) -> Vec<usize> {
    let mut out = vec![0; keys.len()];
    for idx in groups(keys).into_values() {
        for &i in &idx {
            out[i] = idx.len();
        }
    }
    out
}

/// The fraction of groups with at least two samples whose rewards are all equal, over all
/// groups: the groups GRPO, Dr. GRPO and RLOO give zero advantage (the "zero_std" groups that
/// DAPO's dynamic sampling drops, Yu et al. 2025, sec. 3.2). Like verl's DAPO filter
/// (`recipe/dapo/dapo_ray_trainer.py`: keep `if std > 0 or len(vals) == 1`), a singleton group
/// is not degenerate (its advantage is its reward); it still counts in the denominator.
/// An empty batch gives 0.
///
/// # Panics
/// If `rewards` and `keys` differ in length.
pub fn degenerate_group_fraction<K: Ord>(rewards: &[f64], keys: &[K]) -> f64 {
    check_lengths("degenerate_group_fraction", rewards.len(), keys.len());
    let by_key = groups(keys);
    if by_key.is_empty() {
        return 0.0;
    }
    let degenerate = by_key
        .values()
        .filter(|idx| idx.len() > 1 && idx.iter().all(|&i| rewards[i] == rewards[idx[0]]))
        .count();
    degenerate as f64 / by_key.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < tol, "{a:?} vs {b:?}");
        }
    }

    const R: [f64; 4] = [1.0, 0.0, 0.0, 1.0];
    const ONE_GROUP: [u32; 4] = [7, 7, 7, 7];

    #[test]
    fn grpo_hand_computed() {
        // mean 0.5; unbiased std sqrt(4 * 0.25 / 3) = sqrt(1/3).
        let std = (1.0f64 / 3.0).sqrt();
        let a = 0.5 / (std + 1e-6);
        assert!((a - 0.866_025).abs() < 1e-5);
        close(&grpo(&R, &ONE_GROUP, 1e-6, true), &[a, -a, -a, a], 1e-12);
        // Population std 0.5: A = 0.5 / (0.5 + eps) ≈ ±1.
        let p = 0.5 / (0.5 + 1e-6);
        close(&grpo(&R, &ONE_GROUP, 1e-6, false), &[p, -p, -p, p], 1e-12);
        // eps = 0 gives the exact textbook values.
        close(
            &grpo(&R, &ONE_GROUP, 0.0, true),
            &[
                3f64.sqrt() / 2.0,
                -(3f64.sqrt()) / 2.0,
                -(3f64.sqrt()) / 2.0,
                3f64.sqrt() / 2.0,
            ],
            1e-12,
        );
    }

    #[test]
    fn dr_grpo_and_rloo_hand_computed() {
        close(&dr_grpo(&R, &ONE_GROUP), &[0.5, -0.5, -0.5, 0.5], 1e-12);
        // RLOO: 1 - (0+0+1)/3 = 2/3; 0 - (1+0+1)/3 = -2/3.
        let t = 2.0 / 3.0;
        close(&rloo(&R, &ONE_GROUP), &[t, -t, -t, t], 1e-12);
    }

    #[test]
    fn rloo_is_n_over_n_minus_1_times_dr_grpo() {
        let r = [0.3, 1.7, -2.0, 0.25, 4.0];
        let k = ["a"; 5];
        let n = r.len() as f64;
        let scaled: Vec<f64> = dr_grpo(&r, &k).iter().map(|a| n / (n - 1.0) * a).collect();
        close(&rloo(&r, &k), &scaled, 1e-12);
        // The literal leave-one-out definition.
        let direct: Vec<f64> = (0..r.len())
            .map(|i| {
                let others: f64 = r
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, v)| v)
                    .sum();
                r[i] - others / (n - 1.0)
            })
            .collect();
        close(&rloo(&r, &k), &direct, 1e-12);
        let sum_rloo: f64 = rloo(&r, &k).iter().sum();
        let sum_dr: f64 = dr_grpo(&r, &k).iter().sum();
        assert!((sum_rloo - n / (n - 1.0) * sum_dr).abs() < 1e-12);
    }

    #[test]
    fn interleaved_string_groups() {
        // Group "p" = [1, 0, 1] (indices 0, 2, 4); group "q" = [2, 4] (indices 1, 3).
        let r = [1.0, 2.0, 0.0, 4.0, 1.0];
        let k = ["p", "q", "p", "q", "p"];
        // p: mean 2/3, unbiased std sqrt(((1/3)^2*2 + (2/3)^2)/2) = sqrt(1/3).
        // q: mean 3, unbiased std sqrt((1 + 1)/1) = sqrt(2).
        let sp = (1.0f64 / 3.0).sqrt();
        let sq = 2f64.sqrt();
        close(
            &grpo(&r, &k, 0.0, true),
            &[
                (1.0 / 3.0) / sp,
                -1.0 / sq,
                (-2.0 / 3.0) / sp,
                1.0 / sq,
                (1.0 / 3.0) / sp,
            ],
            1e-12,
        );
        close(
            &dr_grpo(&r, &k),
            &[1.0 / 3.0, -1.0, -2.0 / 3.0, 1.0, 1.0 / 3.0],
            1e-12,
        );
        // p: 1 - 1/2, 2 - 4, 0 - 1, 4 - 2, 1 - 1/2.
        close(&rloo(&r, &k), &[0.5, -2.0, -1.0, 2.0, 0.5], 1e-12);
        close(
            &group_means(&r, &k),
            &[2.0 / 3.0, 3.0, 2.0 / 3.0, 3.0, 2.0 / 3.0],
            1e-12,
        );
        assert_eq!(group_sizes(&k), vec![3, 2, 3, 2, 3]);
        // Owned String keys work too.
        let owned: Vec<String> = k.iter().map(|s| s.to_string()).collect();
        assert_eq!(rloo(&r, &owned), rloo(&r, &k));
    }

    #[test]
    fn hrpo_groups_by_hop_class() {
        // One proposal per prompt; hop classes 1, 2, 1, 2, 1, 3.
        let r = [0.5, 1.0, 1.5, 0.0, 1.0, 0.7];
        let hops = [1u32, 2, 1, 2, 1, 3];
        let a = advantages(Estimator::Grpo, &r, &hops, &EstimatorOptions::default()).unwrap();
        // Hop 1: [0.5, 1.5, 1.0], mean 1, unbiased std 0.5 -> -1, 1, 0.
        // Hop 2: [1.0, 0.0], mean 0.5, unbiased std sqrt(0.5) -> ±0.5/sqrt(0.5) = ±sqrt(0.5).
        // Hop 3: singleton, verl's mean 0, std 1 -> 0.7 / (1 + eps).
        let e = 1e-6;
        let h2 = 0.5 / (0.5f64.sqrt() + e);
        close(
            &a,
            &[
                -0.5 / (0.5 + e),
                h2,
                0.5 / (0.5 + e),
                -h2,
                0.0,
                0.7 / (1.0 + e),
            ],
            1e-12,
        );
        assert_eq!(a[4], 0.0);
    }

    #[test]
    fn trloo_two_episodes_two_turns() {
        // Episode A turn rewards [1, 2], episode B [0, 4]; gamma 0.5.
        let ga = turn_returns(&[1.0, 2.0], 0.5);
        let gb = turn_returns(&[0.0, 4.0], 0.5);
        assert_eq!(ga, vec![2.0, 2.0]); // 1 + 0.5*2, 2
        assert_eq!(gb, vec![2.0, 4.0]); // 0 + 0.5*4, 4
        assert_eq!(turn_returns(&[1.0, 1.0, 1.0], 1.0), vec![3.0, 2.0, 1.0]);
        assert!(turn_returns(&[], 0.9).is_empty());
        let returns = [ga[0], ga[1], gb[0], gb[1]];
        let keys = [("q", 0usize), ("q", 1), ("q", 0), ("q", 1)];
        // Turn 0: [2, 2] -> 0, 0. Turn 1: [2, 4] -> 2 - 4 = -2, 4 - 2 = 2.
        let a = trloo(&returns, &keys);
        assert_eq!(a, vec![0.0, -2.0, 0.0, 2.0]);
        let via = advantages(
            Estimator::Trloo,
            &returns,
            &keys,
            &EstimatorOptions::default(),
        );
        assert_eq!(via.unwrap(), a);
        // A third episode that only played turn 0 (G = 5): turn 0 has N = 3, turn 1 still 2.
        let returns = [2.0, 2.0, 2.0, 4.0, 5.0];
        let keys = [("q", 0usize), ("q", 1), ("q", 0), ("q", 1), ("q", 0)];
        // Turn 0: 2 - (2+5)/2 = -1.5, 2 - 3.5 = -1.5, 5 - 2 = 3.
        close(
            &trloo(&returns, &keys),
            &[-1.5, -2.0, -1.5, 2.0, 3.0],
            1e-12,
        );
    }

    #[test]
    fn batch_normalise_hand_computed() {
        // [1, 2, 3, 6]: mean 3, population var (4 + 1 + 0 + 9)/4 = 3.5.
        let s = 3.5f64.sqrt();
        close(
            &batch_normalise(&[1.0, 2.0, 3.0, 6.0], 0.0),
            &[-2.0 / s, -1.0 / s, 0.0, 3.0 / s],
            1e-12,
        );
        let e = 1e-6;
        close(
            &batch_normalise(&[1.0, 2.0, 3.0, 6.0], e),
            &[-2.0 / (s + e), -1.0 / (s + e), 0.0, 3.0 / (s + e)],
            1e-12,
        );
        assert!(batch_normalise(&[], 1e-6).is_empty());
        assert_eq!(batch_normalise(&[0.1, 0.1, 0.1], 0.0), vec![0.0; 3]);
        assert_eq!(batch_normalise(&[5.0], 0.0), vec![0.0]);
        // REINFORCE++: reinforce + batch_norm.
        let opts = EstimatorOptions {
            eps: 0.0,
            batch_norm: true,
            ..Default::default()
        };
        let a = advantages(
            Estimator::Reinforce,
            &[1.0, 2.0, 3.0, 6.0],
            &[0, 1, 2, 3],
            &opts,
        );
        close(&a.unwrap(), &[-2.0 / s, -1.0 / s, 0.0, 3.0 / s], 1e-12);
        // REINFORCE++-baseline: Dr. GRPO's group mean, then the batch normalisation.
        let a = advantages(Estimator::DrGrpo, &R, &["a", "a", "b", "b"], &opts).unwrap();
        // Dr. GRPO gives [0.5, -0.5, -0.5, 0.5], mean 0, population std 0.5 -> ±1.
        close(&a, &[1.0, -1.0, -1.0, 1.0], 1e-12);
    }

    #[test]
    fn singleton_groups_keep_their_reward() {
        let r = [0.8, -0.3];
        let k = [1, 2];
        close(
            &grpo(&r, &k, 1e-6, true),
            &[0.8 / (1.0 + 1e-6), -0.3 / (1.0 + 1e-6)],
            1e-15,
        );
        assert_eq!(grpo(&r, &k, 0.0, false), vec![0.8, -0.3]);
        assert_eq!(dr_grpo(&r, &k), vec![0.8, -0.3]);
        assert_eq!(rloo(&r, &k), vec![0.8, -0.3]);
        assert_eq!(trloo(&r, &k), vec![0.8, -0.3]);
        assert_eq!(group_means(&r, &k), vec![0.8, -0.3]);
        assert_eq!(degenerate_group_fraction(&r, &k), 0.0);
    }

    #[test]
    fn degenerate_groups_give_exact_zeros() {
        // 0.1 * 3 / 3 != 0.1 in floating point; the exact mean keeps these at 0.
        let r = [0.1, 0.1, 0.1, 1.0, 0.0];
        let k = ["a", "a", "a", "b", "b"];
        for est in Estimator::ALL
            .into_iter()
            .filter(|e| *e != Estimator::Reinforce)
        {
            let opts = EstimatorOptions {
                eps: 0.0,
                ..Default::default()
            };
            let a = advantages(est, &r, &k, &opts).unwrap();
            assert_eq!(&a[..3], &[0.0; 3], "{est}");
            assert!(a.iter().all(|x| x.is_finite()), "{est}: {a:?}");
        }
        // Groups: a (degenerate), b (not), c (singleton, not degenerate), d (all 1, degenerate).
        let r = [0.1, 0.1, 0.1, 1.0, 0.0, 1.0, 1.0, 1.0];
        let k = ["a", "a", "a", "b", "b", "c", "d", "d"];
        assert_eq!(degenerate_group_fraction(&r, &k), 0.5);
        assert_eq!(degenerate_group_fraction::<u8>(&[], &[]), 0.0);
    }

    #[test]
    fn advantages_dispatch_and_errors() {
        let opts = EstimatorOptions::default();
        assert_eq!(opts.eps, 1e-6);
        assert!(opts.unbiased_std);
        assert!(!opts.batch_norm);
        assert_eq!(
            advantages(Estimator::Reinforce, &R, &ONE_GROUP, &opts).unwrap(),
            R.to_vec()
        );
        assert_eq!(
            advantages(Estimator::Grpo, &R, &ONE_GROUP, &opts).unwrap(),
            grpo(&R, &ONE_GROUP, 1e-6, true)
        );
        assert_eq!(
            advantages(Estimator::Rloo, &R, &ONE_GROUP, &opts).unwrap(),
            rloo(&R, &ONE_GROUP)
        );
        let err = advantages(Estimator::Grpo, &R, &[1, 2, 3], &opts).unwrap_err();
        assert!(
            err.to_string().contains("4 rewards but 3 group keys"),
            "{err}"
        );
        let err = advantages(Estimator::Rloo, &[1.0, f64::NAN], &[1, 1], &opts).unwrap_err();
        assert!(err.to_string().contains("reward 1 is NaN"), "{err}");
        let err = advantages(Estimator::Rloo, &[f64::INFINITY], &[1], &opts).unwrap_err();
        assert!(err.to_string().contains("not a finite number"), "{err}");
        let bad = EstimatorOptions { eps: -1.0, ..opts };
        assert!(advantages(Estimator::Grpo, &R, &ONE_GROUP, &bad).is_err());
        assert!(advantages::<u8>(Estimator::Grpo, &[], &[], &opts)
            .unwrap()
            .is_empty());
    }

    #[test]
    #[should_panic(expected = "2 rewards but 1 group keys")]
    fn direct_functions_panic_on_mismatched_lengths() {
        rloo(&[1.0, 2.0], &[0]);
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(ESTIMATORS.len(), Estimator::ALL.len());
        for (e, name) in Estimator::ALL.into_iter().zip(ESTIMATORS) {
            assert_eq!(e.to_string(), *name);
            assert_eq!(name.parse::<Estimator>().unwrap(), e);
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Estimator>(&json).unwrap(), e);
        }
        let err = "ppo".parse::<Estimator>().unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Invalid(_)));
        assert!(msg.contains("\"ppo\""), "{msg}");
        assert!(
            msg.contains("reinforce, grpo, dr_grpo, rloo, trloo"),
            "{msg}"
        );
    }
}
