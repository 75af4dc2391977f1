//! The opponent pool (`rollout.opponent = "pool"`): past checkpoints of the run, and how one
//! is picked each step.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::PoolSampling;

/// The learner's games and wins against one member of the opponent pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct PoolRecord {
    pub(super) games: u64,
    pub(super) wins: u64,
}

/// Picks the pool member (a checkpoint step) the learner plays this step.
///
/// * `latest`: the newest checkpoint (self-play against the last snapshot);
/// * `uniform`: every member alike (fictitious self-play over snapshots);
/// * `prioritised`: prioritised fictitious self-play (Vinyals et al. 2019, "Grandmaster level
///   in StarCraft II", PFSP with f(x) = (1 - x)^2): weight `(1 - p)^2` where `p` is the
///   learner's win rate against the member, `(wins + 1) / (games + 2)` so unseen members
///   count as even.
pub(super) fn pick_pool_member(
    members: &[usize],
    records: &BTreeMap<usize, PoolRecord>,
    rule: PoolSampling,
    rng: &mut impl rand::Rng,
) -> usize {
    match rule {
        PoolSampling::Latest => *members.last().expect("a non-empty pool"),
        PoolSampling::Prioritised => {
            let weights: Vec<f64> = members
                .iter()
                .map(|m| {
                    let r = records.get(m).copied().unwrap_or_default();
                    let p = (r.wins as f64 + 1.0) / (r.games as f64 + 2.0);
                    (1.0 - p).powi(2) + 1e-6
                })
                .collect();
            let total: f64 = weights.iter().sum();
            let mut u = rng.gen::<f64>() * total;
            for (m, w) in members.iter().zip(&weights) {
                if u < *w {
                    return *m;
                }
                u -= w;
            }
            *members.last().expect("a non-empty pool")
        }
        PoolSampling::Uniform => members[rng.gen_range(0..members.len())],
    }
}

/// The pool's records keyed by checkpoint step, as a JSON object with decimal keys (`"12"`),
/// read back through the kernel's flattened `state.json` (where keys arrive as strings).
pub(super) mod by_step {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::PoolRecord;

    pub(crate) fn serialize<S: Serializer>(
        records: &BTreeMap<usize, PoolRecord>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(records.iter().map(|(k, v)| (k.to_string(), v)))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<usize, PoolRecord>, D::Error> {
        BTreeMap::<String, PoolRecord>::deserialize(deserializer)?
            .into_iter()
            .map(|(k, v)| {
                k.parse::<usize>().map(|step| (step, v)).map_err(|_| {
                    serde::de::Error::custom(format!("pool step {k:?} is not a number"))
                })
            })
            .collect()
    }
}
