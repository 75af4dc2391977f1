//! RLSP's decoupled exploration reward (Ye et al. 2025, "On the Emergence of Thinking in LLMs
//! I: Searching for the Right Intuition", arXiv 2502.06773; `docs/tasks.md`, "Exploration
//! reward (RLSP)"): the reward an answer is trained on is
//!
//! `R(q, o) = alpha * 1[verifier(o) correct] + (1 - alpha) * R_explore(o)`
//!
//! with `alpha = algorithm.explore_alpha`. RLSP's simplest `R_explore` rewards more
//! intermediate steps; spar's proxy for it is the answer's length in tokens over
//! `rollout.max_tokens` (in [0, 1]), which rewards length whatever the tokens are. The
//! verifier's verdict stays what `tasks/train_accuracy` measures.

use crate::rollout::Sample;

/// `R_explore(o)`: the answer's length in tokens (the end-of-sequence token included when one
/// ended it) over `max_tokens`, at most 1.
pub fn explore_reward(tokens: usize, max_tokens: usize) -> f64 {
    (tokens as f64 / max_tokens.max(1) as f64).min(1.0)
}

/// RLSP's reward: `alpha * correct + (1 - alpha) * explore` (arXiv 2502.06773, the reward of
/// its exploration stage).
pub(super) fn mixed_reward(alpha: f64, correct: f64, explore: f64) -> f64 {
    alpha * correct + (1.0 - alpha) * explore
}

/// The means over one step's answers of the exploration term and the mixed reward
/// (`tasks/explore_reward`, `tasks/mixed_reward`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExploreMeans {
    /// Mean `R_explore`.
    pub explore: f64,
    /// Mean mixed reward.
    pub mixed: f64,
}

/// Replaces each sample's verifier reward (1 right, 0 wrong) by the mixed reward of `alpha`;
/// their means.
pub(super) fn mix_rewards(samples: &mut [Sample], alpha: f64, max_tokens: usize) -> ExploreMeans {
    let mut means = ExploreMeans::default();
    for s in samples.iter_mut() {
        let explore = explore_reward(s.completion.len(), max_tokens);
        s.reward = mixed_reward(alpha, s.reward, explore);
        means.explore += explore;
        means.mixed += s.reward;
    }
    let n = samples.len().max(1) as f64;
    ExploreMeans {
        explore: means.explore / n,
        mixed: means.mixed / n,
    }
}

#[cfg(test)]
mod tests {
    use spar_core::Role;

    use super::*;

    #[test]
    fn the_mixed_reward_weighs_the_verifier_by_alpha_and_length_by_one_minus_alpha() {
        assert_eq!(explore_reward(2, 8), 0.25);
        assert_eq!(explore_reward(8, 8), 1.0);
        assert_eq!(explore_reward(9, 8), 1.0);
        assert_eq!(explore_reward(0, 8), 0.0);
        // alpha = 1: the verifier alone; alpha = 0: length alone.
        assert_eq!(mixed_reward(1.0, 1.0, 0.75), 1.0);
        assert_eq!(mixed_reward(1.0, 0.0, 0.75), 0.0);
        assert_eq!(mixed_reward(0.0, 1.0, 0.75), 0.75);
        // alpha = 0.5: a right 2-token answer (0.5 + 0.5 * 0.25 = 0.625) scores below a wrong
        // 8-token one only when length pays more than correctness: here 0.5 * 1 = 0.5 < 0.625.
        assert_eq!(mixed_reward(0.5, 1.0, 0.25), 0.625);
        assert_eq!(mixed_reward(0.5, 0.0, 1.0), 0.5);
        // alpha = 0.75 (exact in binary): 0.75 + 0.25 * 0.5 = 0.875.
        assert_eq!(mixed_reward(0.75, 1.0, 0.5), 0.875);
    }

    #[test]
    fn mixing_a_batch_replaces_rewards_and_averages_both_terms() {
        let mut samples: Vec<Sample> = [(1.0, 2), (0.0, 8), (1.0, 4), (0.0, 0)]
            .iter()
            .map(|&(reward, tokens)| {
                let mut s = Sample::new(Role::new("arithmetic", 0, "solver"), vec![1], vec![]);
                s.completion = vec![7; tokens];
                s.reward = reward;
                s
            })
            .collect();
        let means = mix_rewards(&mut samples, 0.5, 8);
        // explore = 0.25, 1, 0.5, 0; mixed = 0.625, 0.5, 0.75, 0.
        let rewards: Vec<f64> = samples.iter().map(|s| s.reward).collect();
        assert_eq!(rewards, vec![0.625, 0.5, 0.75, 0.0]);
        assert_eq!(
            means,
            ExploreMeans {
                explore: 1.75 / 4.0,
                mixed: 1.875 / 4.0
            }
        );
    }
}
