//! Advantage estimators behind one trait: [`AdvantageEstimator`] sets `Sample::advantage`
//! for a batch of samples, and [`estimator`] builds the one a config names, for either loop.
//!
//! | config name | type | advantage of a unit in group `g` | source |
//! |---|---|---|---|
//! | `rae` | [`Rae`] | `R - b_g`, `b_g` an EMA of the group's rewards, read before it moves | SPIRAL, sec. 3.3 |
//! | `reinforce` | [`Reinforce`] | `R` | Williams 1992 |
//! | `grpo` | [`Grpo`] | `(R - mean_g) / (std_g + eps)` | Shao et al. 2024, sec. 4.1.2 |
//! | `dr_grpo` | [`DrGrpo`] | `R - mean_g` | Liu et al. 2025, sec. 3.1 |
//! | `rloo` | [`Rloo`] | `R - mean of the others of g` | Kool et al. 2019; Ahmadian et al. 2024, sec. 3 |
//! | `trloo` | [`Trloo`] | `rloo` on turn returns, grouped by `(g, turn)` | Dr. Kernel |
//! | `batch_norm = true` | [`BatchNormalised`] | any of the above, then `(A - mean) / (std + eps)` over the batch | Hu 2025 (REINFORCE++), sec. 3 |
//!
//! The formulas, with their citations on the lines that compute them, are the pure functions
//! of [`crate::objectives::estimators`] and [`crate::objectives::rae`]; the types here call
//! them.
//!
//! # What an estimator reads: [`Groups`]
//!
//! A loop says what its groups are. [`Groups::keys`] gives each sample its group key;
//! [`Groups::outcomes`] gives, per episode, the reward of every group that took part in it,
//! whether or not it left a sample (in self-play a seat whose opponent's first move was
//! invalid has a return but no turn, and RAE still moves its baseline). A **unit** is one
//! episode of one group: the samples with that `episode` and key share its reward and get its
//! one advantage. [`Trloo`] alone works on turns: its unit is `(episode, key, turn)`, its
//! group `(key, turn)`, its value the sample's `reward` read as the turn return `G_{i,t}`.
//!
//! * **Self-play** ([`Groups::by_role`]): a sample's group is its role (`Role::key`,
//!   `kuhn/player0`; the game is part of the key, so several games never mix), and the
//!   outcomes are the batch's returns. A group is then every game the role played in the step,
//!   so GRPO's group mean is the role's mean return over the step's games (as RAE's
//!   `batch_mean` rule, but of this batch only, not an average over past ones), RLOO's baseline
//!   is the mean of the role's other games, and TRLOO compares the role's `t`-th turns across
//!   the games that reached turn `t` (returns are paid at the end, so `G_t` = the return).
//! * **Tasks** ([`Groups::per_sample`]): every answer is an episode with one turn and the loop
//!   picks the key (`algorithm.group_by`: the prompt, as GRPO, the difficulty, as HRPO, or the
//!   whole batch; RAE's baselines are per role, `solver`, or per difficulty).
//!
//! # State
//!
//! RAE's baselines are the only state; the caller owns it ([`EstimatorState`], in the loop's
//! checkpointed state) and passes it to every call, so the kernel checkpoints it with the
//! rest of `state.json` as exact bit patterns and a resumed run continues from the very same
//! values. The other estimators leave it untouched.
//!
//! # Which loop takes which
//!
//! [`check_fits`] is the one rule, run when a config is checked (before anything is written):
//! an estimator that compares the units of a group ([`EstimatorKind::compares_within_groups`])
//! needs groups of at least two (self-play: `rollout.episodes >= 2`, and against an opponent
//! two games per seat, `rollout.episodes / players >= 2`; tasks grouped by prompt:
//! `rollout.group_size >= 2`). `rae` and `reinforce` fit every batch.

use std::collections::BTreeMap;
use std::fmt;

use crate::objectives::estimators::{self, check_inputs, Estimator};
use crate::objectives::rae::{RaeUpdate, RoleBaselines};
use crate::rollout::Sample;
use crate::{Error, Result};

/// The state an estimator carries between steps: RAE's baselines (empty for every other
/// estimator), serialised as exact bit patterns for the checkpoint.
pub type EstimatorState = RoleBaselines;

/// A batch's groups as an estimator sees them (the module doc says what each loop puts here).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Groups {
    /// `keys[i]`: the group of the batch's sample `i`.
    pub keys: Vec<String>,
    /// `outcomes[e][k]`: the reward of group `k` in episode `e`, for every group that took part
    /// in the episode; every `(sample.episode, keys[i])` is one of them.
    pub outcomes: Vec<BTreeMap<String, f64>>,
}

impl Groups {
    /// Self-play's groups: a sample's group is its role (`Role::key`); the outcomes are the
    /// batch's returns (`returns[e][role]`).
    pub fn by_role(samples: &[Sample], returns: &[BTreeMap<String, f64>]) -> Groups {
        Groups {
            keys: samples.iter().map(|s| s.role.key()).collect(),
            outcomes: returns.to_vec(),
        }
    }

    /// Groups keyed by the caller (`keys[i]` for sample `i`), every outcome read from the
    /// samples' rewards (tasks: one answer per episode). Errors when `keys` and `samples`
    /// differ in length, or two samples of one episode and group disagree on the reward.
    pub fn per_sample(samples: &[Sample], keys: Vec<String>) -> Result<Groups> {
        if keys.len() != samples.len() {
            return Err(Error::Invalid(format!(
                "advantages: {} samples but {} group keys",
                samples.len(),
                keys.len()
            )));
        }
        let episodes = samples.iter().map(|s| s.episode + 1).max().unwrap_or(0);
        let mut outcomes = vec![BTreeMap::new(); episodes];
        for (s, key) in samples.iter().zip(&keys) {
            if let Some(r) = outcomes[s.episode].insert(key.clone(), s.reward) {
                if r.to_bits() != s.reward.to_bits() {
                    return Err(Error::Invalid(format!(
                        "advantages: episode {} of group {key:?} has rewards {r} and {}",
                        s.episode, s.reward
                    )));
                }
            }
        }
        Ok(Groups { keys, outcomes })
    }

    /// Every unit `(episode, key, reward)`, episodes in order and keys in order within one.
    fn units(&self) -> Vec<(usize, &str, f64)> {
        self.outcomes
            .iter()
            .enumerate()
            .flat_map(|(e, o)| o.iter().map(move |(k, &r)| (e, k.as_str(), r)))
            .collect()
    }
}

/// An advantage estimator: sets `Sample::advantage` of every sample of a batch.
///
/// Contract:
/// * `groups.keys` has one key per sample and every `(sample.episode, key)` is in
///   `groups.outcomes` (otherwise an error, and no advantage is set);
/// * every sample of one unit (module doc) gets the same advantage; the samples' order does
///   not change the result, and nothing but `advantage` (and `state`) is written;
/// * `state` is read and updated only by estimators with a memory ([`Rae`]); the same state
///   and batch give the same advantages and the same new state, bit for bit (resume);
/// * errors on a reward that is not finite.
///
/// Callers: `loops::selfplay` and `loops::tasks` (`Loop::advantages`), built by
/// [`estimator`]; a new loop builds [`Groups`] for its samples and calls the same trait.
pub trait AdvantageEstimator: fmt::Debug + Send + Sync {
    /// The config name (`grpo`; `grpo+batch_norm` for a normalised one).
    fn name(&self) -> String;

    /// Sets `advantage` of every sample of `samples`, grouped by `groups`.
    fn estimate(
        &self,
        samples: &mut [Sample],
        groups: &Groups,
        state: &mut EstimatorState,
    ) -> Result<()>;
}

/// One group key per sample.
fn check_keys(samples: &[Sample], groups: &Groups) -> Result<()> {
    if groups.keys.len() != samples.len() {
        return Err(Error::Invalid(format!(
            "advantages: {} samples but {} group keys",
            samples.len(),
            groups.keys.len()
        )));
    }
    Ok(())
}

/// Writes each unit's advantage to its samples.
fn assign(
    samples: &mut [Sample],
    groups: &Groups,
    advantage: impl Fn(usize, &str) -> Option<f64>,
) -> Result<()> {
    check_keys(samples, groups)?;
    let values = samples
        .iter()
        .zip(&groups.keys)
        .map(|(s, k)| {
            advantage(s.episode, k).ok_or_else(|| {
                Error::Invalid(format!(
                    "advantages: sample of episode {} and group {k:?} has no outcome",
                    s.episode
                ))
            })
        })
        .collect::<Result<Vec<f64>>>()?;
    for (s, a) in samples.iter_mut().zip(values) {
        s.advantage = a;
    }
    Ok(())
}

/// A group-relative estimator over the episode-level units: `f(rewards, keys)` gives one
/// advantage per unit.
fn per_unit(
    name: &str,
    samples: &mut [Sample],
    groups: &Groups,
    eps: f64,
    f: impl Fn(&[f64], &[&str]) -> Vec<f64>,
) -> Result<()> {
    let units = groups.units();
    let rewards: Vec<f64> = units.iter().map(|u| u.2).collect();
    let keys: Vec<&str> = units.iter().map(|u| u.1).collect();
    check_inputs(name, &rewards, keys.len(), eps)?;
    let values = f(&rewards, &keys);
    let by_unit: BTreeMap<(usize, &str), f64> = units
        .iter()
        .zip(values)
        .map(|(&(e, k, _), a)| ((e, k), a))
        .collect();
    assign(samples, groups, |e, k| by_unit.get(&(e, k)).copied())
}

/// `reinforce`: no baseline, `A = R` ([`Estimator::Reinforce`]; Williams 1992).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Reinforce;

impl AdvantageEstimator for Reinforce {
    fn name(&self) -> String {
        "reinforce".into()
    }

    fn estimate(
        &self,
        samples: &mut [Sample],
        groups: &Groups,
        _: &mut EstimatorState,
    ) -> Result<()> {
        per_unit("reinforce", samples, groups, 0.0, |r, _| r.to_vec())
    }
}

/// `grpo`: the group's mean and std ([`estimators::grpo`]; Shao et al. 2024, sec. 4.1.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grpo {
    /// The `eps` of `std + eps`.
    pub eps: f64,
    /// `torch.std`'s `N - 1` (verl) rather than the population std.
    pub unbiased_std: bool,
}

impl AdvantageEstimator for Grpo {
    fn name(&self) -> String {
        "grpo".into()
    }

    fn estimate(
        &self,
        samples: &mut [Sample],
        groups: &Groups,
        _: &mut EstimatorState,
    ) -> Result<()> {
        let (eps, unbiased) = (self.eps, self.unbiased_std);
        per_unit("grpo", samples, groups, eps, |r, k| {
            estimators::grpo(r, k, eps, unbiased)
        })
    }
}

/// `dr_grpo`: the group's mean only ([`estimators::dr_grpo`]; Liu et al. 2025, sec. 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DrGrpo;

impl AdvantageEstimator for DrGrpo {
    fn name(&self) -> String {
        "dr_grpo".into()
    }

    fn estimate(
        &self,
        samples: &mut [Sample],
        groups: &Groups,
        _: &mut EstimatorState,
    ) -> Result<()> {
        per_unit("dr_grpo", samples, groups, 0.0, |r, k| {
            estimators::dr_grpo(r, k)
        })
    }
}

/// `rloo`: the mean of the group's other units ([`estimators::rloo`]; Ahmadian et al. 2024).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rloo;

impl AdvantageEstimator for Rloo {
    fn name(&self) -> String {
        "rloo".into()
    }

    fn estimate(
        &self,
        samples: &mut [Sample],
        groups: &Groups,
        _: &mut EstimatorState,
    ) -> Result<()> {
        per_unit("rloo", samples, groups, 0.0, |r, k| estimators::rloo(r, k))
    }
}

/// `trloo`: leave-one-out over the turn returns of one turn index of one group
/// ([`estimators::trloo`]; Dr. Kernel). Its units are `(episode, key, turn)`, its groups
/// `(key, turn)`, and a unit's value is its samples' `reward`, the turn return `G_{i,t}` (games
/// pay at the end, so with `gamma = 1` it is the episode's return; a task answer is one turn).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Trloo;

impl AdvantageEstimator for Trloo {
    fn name(&self) -> String {
        "trloo".into()
    }

    fn estimate(
        &self,
        samples: &mut [Sample],
        groups: &Groups,
        _: &mut EstimatorState,
    ) -> Result<()> {
        check_keys(samples, groups)?;
        // Units in (episode, key, turn) order: one value each.
        let mut units: BTreeMap<(usize, &str, usize), f64> = BTreeMap::new();
        for (s, k) in samples.iter().zip(&groups.keys) {
            units
                .entry((s.episode, k.as_str(), s.turn))
                .or_insert(s.reward);
        }
        let returns: Vec<f64> = units.values().copied().collect();
        let keys: Vec<(&str, usize)> = units.keys().map(|&(_, k, t)| (k, t)).collect();
        check_inputs("trloo", &returns, keys.len(), 0.0)?;
        let by_unit: BTreeMap<(usize, &str, usize), f64> = units
            .keys()
            .copied()
            .zip(estimators::trloo(&returns, &keys))
            .collect();
        let values: Vec<f64> = samples
            .iter()
            .zip(&groups.keys)
            .map(|(s, k)| by_unit[&(s.episode, k.as_str(), s.turn)])
            .collect();
        for (s, a) in samples.iter_mut().zip(values) {
            s.advantage = a;
        }
        Ok(())
    }
}

/// `rae`: SPIRAL's role-conditioned advantage ([`RoleBaselines::advantages`], sec. 3.3): one
/// EMA baseline per group key, over every outcome of the batch (episodes in order, keys in
/// order within one), read before it moves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rae {
    /// The EMA decay `a` of `b <- a b + (1 - a) R` (SPIRAL: 0.95).
    pub decay: f64,
    /// One update per episode or one per batch with the batch mean.
    pub update: RaeUpdate,
}

impl AdvantageEstimator for Rae {
    fn name(&self) -> String {
        "rae".into()
    }

    fn estimate(
        &self,
        samples: &mut [Sample],
        groups: &Groups,
        state: &mut EstimatorState,
    ) -> Result<()> {
        let rewards: Vec<f64> = groups.units().iter().map(|u| u.2).collect();
        check_inputs("rae", &rewards, rewards.len(), 0.0)?;
        check_keys(samples, groups)?;
        // Checked before the baselines move, so an error leaves the state as it was.
        if let Some((s, k)) = samples.iter().zip(&groups.keys).find(|(s, k)| {
            !groups
                .outcomes
                .get(s.episode)
                .is_some_and(|o| o.contains_key(*k))
        }) {
            return Err(Error::Invalid(format!(
                "advantages: sample of episode {} and group {k:?} has no outcome",
                s.episode
            )));
        }
        let advantages = state.advantages(&groups.outcomes, self.decay, self.update);
        assign(samples, groups, |e, k| advantages[e].get(k).copied())
    }
}

/// REINFORCE++'s batch normalisation on top of any estimator (Hu 2025, sec. 3;
/// [`estimators::batch_normalise`]): the inner estimator's advantages, then
/// `(A - mean) / (std + eps)` over the batch's samples (population std; OpenRLHF normalises
/// over tokens, here each sample counts once). `reinforce` inside is REINFORCE++, `dr_grpo`
/// inside "REINFORCE++-baseline".
#[derive(Debug)]
pub struct BatchNormalised {
    /// The estimator whose advantages are normalised.
    pub inner: Box<dyn AdvantageEstimator>,
    /// The `eps` of `std + eps`.
    pub eps: f64,
}

impl AdvantageEstimator for BatchNormalised {
    fn name(&self) -> String {
        format!("{}+batch_norm", self.inner.name())
    }

    fn estimate(
        &self,
        samples: &mut [Sample],
        groups: &Groups,
        state: &mut EstimatorState,
    ) -> Result<()> {
        self.inner.estimate(samples, groups, state)?;
        let advantages: Vec<f64> = samples.iter().map(|s| s.advantage).collect();
        for (s, a) in samples
            .iter_mut()
            .zip(estimators::batch_normalise(&advantages, self.eps))
        {
            s.advantage = a;
        }
        Ok(())
    }
}

/// Which estimator a config names (`advantage.estimator`, `algorithm.estimator`); both loops
/// accept every one ([`check_fits`] is the rule on group sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstimatorKind {
    /// A group-relative estimator or plain REINFORCE ([`Estimator`]: `reinforce`, `grpo`,
    /// `dr_grpo`, `rloo`, `trloo`).
    Group(Estimator),
    /// `rae`: SPIRAL's EMA baseline per role ([`Rae`]), kept in the run state.
    Rae,
}

impl EstimatorKind {
    /// Every estimator, in the order help and errors list them.
    pub const ALL: [EstimatorKind; Estimator::ALL.len() + 1] = {
        let mut all = [EstimatorKind::Rae; Estimator::ALL.len() + 1];
        let mut i = 0;
        while i < Estimator::ALL.len() {
            all[i] = EstimatorKind::Group(Estimator::ALL[i]);
            i += 1;
        }
        all
    };

    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            EstimatorKind::Group(e) => e.name(),
            EstimatorKind::Rae => "rae",
        }
    }

    /// Whether the estimator compares the units of one group (GRPO, Dr. GRPO, RLOO, TRLOO),
    /// and so needs groups of two or more.
    pub fn compares_within_groups(self) -> bool {
        !matches!(
            self,
            EstimatorKind::Rae | EstimatorKind::Group(Estimator::Reinforce)
        )
    }
}

/// Everything [`estimator`] reads, gathered from either loop's config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EstimatorSettings {
    /// The estimator.
    pub kind: EstimatorKind,
    /// GRPO's and the batch normalisation's `eps`.
    pub eps: f64,
    /// REINFORCE++'s normalisation over the batch on top ([`BatchNormalised`]).
    pub batch_norm: bool,
    /// RAE's EMA decay.
    pub rae_decay: f64,
    /// RAE's update rule.
    pub rae_update: RaeUpdate,
}

/// The estimator `settings` describe: the one constructor both loops use.
pub fn estimator(settings: &EstimatorSettings) -> Box<dyn AdvantageEstimator> {
    let inner: Box<dyn AdvantageEstimator> = match settings.kind {
        EstimatorKind::Rae => Box::new(Rae {
            decay: settings.rae_decay,
            update: settings.rae_update,
        }),
        EstimatorKind::Group(Estimator::Reinforce) => Box::new(Reinforce),
        EstimatorKind::Group(Estimator::Grpo) => Box::new(Grpo {
            eps: settings.eps,
            unbiased_std: true,
        }),
        EstimatorKind::Group(Estimator::DrGrpo) => Box::new(DrGrpo),
        EstimatorKind::Group(Estimator::Rloo) => Box::new(Rloo),
        EstimatorKind::Group(Estimator::Trloo) => Box::new(Trloo),
    };
    if settings.batch_norm {
        Box::new(BatchNormalised {
            inner,
            eps: settings.eps,
        })
    } else {
        inner
    }
}

/// The config rule of which estimator fits a loop's batches: one that compares the units of
/// a group needs groups of two or more. `key` is the estimator's config key, `group_size` the
/// smallest group the loop's batches can have and `why` the setting that makes it
/// (`rollout.episodes = 1`); the error names the key and the estimators that fit.
pub fn check_fits(kind: EstimatorKind, key: &str, group_size: usize, why: &str) -> Result<()> {
    if group_size >= 2 || !kind.compares_within_groups() {
        return Ok(());
    }
    let fits: Vec<&str> = EstimatorKind::ALL
        .iter()
        .filter(|k| !k.compares_within_groups())
        .map(|k| k.name())
        .collect();
    Err(Error::Invalid(format!(
        "config: {key}: {:?} compares the units of a group and needs groups of two or more, \
         but {why} makes groups of one; accepted here: {} (or larger groups)",
        kind.name(),
        fits.join(", ")
    )))
}

#[cfg(test)]
mod tests;
