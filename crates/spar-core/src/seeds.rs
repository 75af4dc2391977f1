//! Seeds: the one place where spar derives one seed from another.
//!
//! Every random draw of spar is a pure function of a user's seed (`run.seed`, `--seed`) and
//! counters (a step, an episode, a seat), so a run resumed from a checkpoint, or a tournament
//! replayed, draws exactly the same numbers. Counters are mixed in with SplitMix64's output
//! function (Steele, Lea and Flood 2014, "Fast splittable pseudorandom number generators",
//! OOPSLA; the finaliser is Stafford's "Mix13"), a bijection of 64-bit words whose outputs
//! for consecutive inputs look independent; the draws themselves come from ChaCha8 streams
//! seeded with the result.
//!
//! The named derivations below are the streams of spar's loops; adding a stream means adding
//! a name here, so two streams never collide by accident.

/// The golden-ratio increment of SplitMix64 (`2^64 / phi`, odd).
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective mixer of 64-bit words.
pub fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The first output of a SplitMix64 generator seeded with `x`.
pub fn splitmix64(x: u64) -> u64 {
    finalize(x.wrapping_add(GOLDEN_GAMMA))
}

/// The seed of counter `index` under `seed`: `finalize(seed ^ index * GOLDEN_GAMMA)`, the
/// `index`-th SplitMix64 state of `seed` mixed. Distinct indices give unrelated seeds.
pub fn mix(seed: u64, index: u64) -> u64 {
    finalize(seed ^ index.wrapping_mul(GOLDEN_GAMMA))
}

/// Game `index` of a seeded tournament or evaluation: [`mix`] of `index + 1` (so that game
/// 0 does not reuse `seed`'s own mixing).
pub fn game(seed: u64, index: u64) -> u64 {
    mix(seed, index.wrapping_add(1))
}

/// The draws of policy step `step` of a task run (problems are counters of their own; this
/// seeds the sampling of the answers and the minibatch order).
pub fn task_step(run_seed: u64, step: u64) -> u64 {
    mix(run_seed, step)
}

/// The games of evaluation step `step` of a self-play run against one kind of opponent
/// (`salt` names the opponent and the game of a multi-game run): fresh deals at every
/// evaluation step; the same deals in every seat of one step.
pub fn evaluation_games(run_seed: u64, salt: u64, step: u64) -> u64 {
    mix(run_seed ^ salt, step)
}

/// The scripted seats' and action-level draws of episode `episode` of a rollout batch seeded
/// `seed` (one stream per episode, so an episode's play does not depend on the rest of the
/// batch).
pub fn rollout_episode(seed: u64, episode: u64) -> u64 {
    mix(seed ^ 0x7a4d_0000, episode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_generator() {
        // SplitMix64 seeded with 1234567 (Vigna's splitmix64.c): its first output.
        assert_eq!(splitmix64(1_234_567), 6_457_827_717_110_365_317);
        // Seeded with 0: the first output of the reference implementation.
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn mix_separates_counters_and_is_deterministic() {
        assert_eq!(mix(7, 3), mix(7, 3));
        assert_ne!(mix(7, 3), mix(7, 4));
        assert_ne!(mix(7, 3), mix(8, 3));
        assert_eq!(game(7, 0), mix(7, 1));
        // Index 0 is the plain finaliser of the seed.
        assert_eq!(mix(42, 0), finalize(42));
    }
}
