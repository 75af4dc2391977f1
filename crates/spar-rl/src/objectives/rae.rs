//! Advantages of self-play samples.
//!
//! RAE, role-conditioned advantage estimation (SPIRAL, Liu et al. 2025, sec. 3.3, whose
//! equation numbers are not confirmed here; code
//! `spiral-rl/spiral@a02d0ed:train_spiral.py`, `prepare_trajectories`): one exponential moving
//! average baseline per (game, role), `b <- a b + (1 - a) R` with decay `a` = 0.95, starting at
//! 0 and read **before** it is updated; the advantage of every token of every turn a role played
//! in a game is `A = R - b`. SPIRAL's oat code updates once per finished game; its Tinker code
//! updates once per batch with the batch's mean return per role. Samples with `A = 0` may be
//! dropped (`filter_zero_adv`). REINFORCE without a baseline (`A = R`) is the ablation.
//!
//! These are the functions of the math; loops reach them through
//! [`crate::objectives::advantages::Rae`] and [`crate::objectives::advantages::Reinforce`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The RAE baselines, keyed by role (`kuhn/player0`, [`spar_core::Role::key`]). Part of a
/// checkpoint: serialised as a map from key to the exact bit pattern of the `f64` (so a
/// resumed run reads back the very same baselines).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoleBaselines {
    /// Current baseline per role key (absent = 0, SPIRAL's initial value).
    #[serde(with = "exact_bits")]
    pub values: BTreeMap<String, f64>,
}

/// `f64` values as their IEEE-754 bit patterns (`u64`), losslessly through JSON.
mod exact_bits {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        values: &BTreeMap<String, f64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(values.iter().map(|(k, v)| (k, v.to_bits())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, f64>, D::Error> {
        let bits = BTreeMap::<String, u64>::deserialize(deserializer)?;
        Ok(bits
            .into_iter()
            .map(|(k, b)| (k, f64::from_bits(b)))
            .collect())
    }
}

/// How RAE updates its baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaeUpdate {
    /// One update per finished game, in the order games finished.
    PerGame,
    /// One update per batch, with the mean return of the role over the batch.
    BatchMean,
}

impl RoleBaselines {
    /// The baseline of `role` (0 before its first update).
    pub fn get(&self, role: &str) -> f64 {
        self.values.get(role).copied().unwrap_or(0.0)
    }

    fn update(&mut self, role: &str, value: f64, decay: f64) {
        let b = self.get(role);
        // b <- a b + (1 - a) R (SPIRAL, sec. 3.3, the EMA of the role's return).
        self.values
            .insert(role.to_string(), decay * b + (1.0 - decay) * value);
    }

    /// RAE advantages for one batch of games. `games[g]` lists, per role, the return that
    /// role got in game `g` (in the order games finished). Returns `advantages[g][role]`.
    pub fn advantages(
        &mut self,
        games: &[BTreeMap<String, f64>],
        decay: f64,
        rule: RaeUpdate,
    ) -> Vec<BTreeMap<String, f64>> {
        match rule {
            RaeUpdate::PerGame => games
                .iter()
                .map(|game| {
                    game.iter()
                        .map(|(role, &r)| {
                            let b = self.get(role); // read before the update
                            self.update(role, r, decay);
                            // A = R - b (SPIRAL, sec. 3.3).
                            (role.clone(), r - b)
                        })
                        .collect()
                })
                .collect(),
            RaeUpdate::BatchMean => {
                let out: Vec<BTreeMap<String, f64>> = games
                    .iter()
                    .map(|game| {
                        game.iter()
                            // A = R - b with the batch's one baseline (SPIRAL, sec. 3.3;
                            // its Tinker code's per-batch update).
                            .map(|(role, &r)| (role.clone(), r - self.get(role)))
                            .collect()
                    })
                    .collect();
                let mut sums: BTreeMap<&String, (f64, usize)> = BTreeMap::new();
                for game in games {
                    for (role, &r) in game {
                        let e = sums.entry(role).or_insert((0.0, 0));
                        e.0 += r;
                        e.1 += 1;
                    }
                }
                for (role, (sum, n)) in sums {
                    // b <- a b + (1 - a) mean_batch(R) (SPIRAL's Tinker code).
                    self.update(role, sum / n as f64, decay);
                }
                out
            }
        }
    }
}

/// REINFORCE without a baseline: the advantage is the return.
pub fn reinforce(games: &[BTreeMap<String, f64>]) -> Vec<BTreeMap<String, f64>> {
    // A = R (Williams 1992, REINFORCE with baseline 0; SPIRAL's no-RAE ablation, sec. 3.3).
    games.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn game(r0: f64, r1: f64) -> BTreeMap<String, f64> {
        BTreeMap::from([("kuhn/player0".into(), r0), ("kuhn/player1".into(), r1)])
    }

    #[test]
    fn per_game_rae_reads_the_baseline_before_updating_it() {
        let mut b = RoleBaselines::default();
        let adv = b.advantages(
            &[game(1.0, -1.0), game(2.0, -2.0)],
            0.95,
            RaeUpdate::PerGame,
        );
        // Game 1: baselines are 0, so A = R; then b0 = 0.05, b1 = -0.05.
        assert_eq!(adv[0]["kuhn/player0"], 1.0);
        assert_eq!(adv[0]["kuhn/player1"], -1.0);
        // Game 2: A = 2 - 0.05 = 1.95 and -2 + 0.05 = -1.95; then b0 = 0.95*0.05 + 0.05*2.
        assert!((adv[1]["kuhn/player0"] - 1.95).abs() < 1e-12);
        assert!((adv[1]["kuhn/player1"] + 1.95).abs() < 1e-12);
        assert!((b.get("kuhn/player0") - 0.1475).abs() < 1e-12);
        assert!((b.get("kuhn/player1") + 0.1475).abs() < 1e-12);
    }

    #[test]
    fn batch_mean_rae_uses_one_baseline_for_the_whole_batch() {
        let mut b = RoleBaselines::default();
        b.values.insert("kuhn/player0".into(), 0.5);
        let adv = b.advantages(
            &[game(1.0, -1.0), game(-1.0, 1.0), game(1.0, -1.0)],
            0.9,
            RaeUpdate::BatchMean,
        );
        assert_eq!(adv[0]["kuhn/player0"], 0.5);
        assert_eq!(adv[1]["kuhn/player0"], -1.5);
        assert_eq!(adv[1]["kuhn/player1"], 1.0);
        // Mean returns 1/3 and -1/3: b0 = 0.9*0.5 + 0.1/3, b1 = -0.1/3.
        assert!((b.get("kuhn/player0") - (0.45 + 0.1 / 3.0)).abs() < 1e-12);
        assert!((b.get("kuhn/player1") + 0.1 / 3.0).abs() < 1e-12);
        assert_eq!(reinforce(&[game(1.0, -1.0)])[0]["kuhn/player1"], -1.0);
    }
}
