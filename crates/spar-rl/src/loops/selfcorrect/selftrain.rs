//! Self-training from the model's own accepted answers, and turn returns for TRLOO.
//!
//! * **Re-ReST** (Dou et al. 2024, "Re-ReST: Reflection-Reinforced Self-Training for
//!   Language Agents", sec. 3): the agent samples answers, the environment checks them; each
//!   failure goes, with the environment's feedback, to a reflector (here the same model in the
//!   later attempts' roles, reading `selfcorrect.feedback`), and only the corrections that
//!   pass the check are kept. The agent is trained on its own successes and the accepted
//!   corrections (as answers to the original prompt); the reflector on its accepted
//!   corrections (`rerest_reflector`). Both by supervised fine-tuning: here the policy loss
//!   with advantage 1 on each kept answer, whose gradient is the NLL's.
//! * **STaR-style self-training** (Zelikman et al. 2022, "STaR", sec. 3.1, without
//!   rationalisation), Re-ReST's baseline: the correct first attempts only.
//! * **TRLOO on multi-attempt episodes** (Dr. Kernel, KernelGYM's
//!   `compute_multi_turn_rloo_outcome_advantage`): turn returns `G_{i,t} = sum_{t' >= t}
//!   gamma^{t' - t} r_{i,t'}` with `gamma = 1` over an episode's attempts, so a leave-one-out
//!   baseline per `(problem, attempt)` compares what each attempt led to, not only its own
//!   verdict.

use std::collections::BTreeMap;

use crate::rollout::Sample;

/// The accepted answers of a step's played samples (raw rewards: 1 correct), each with
/// advantage 1 and reward 1, and how many of each kind (`first`, `corrections`):
/// * every correct first attempt (seat 0), on its own prompt;
/// * with `corrections` (Re-ReST), for each episode whose first attempt is wrong, its first
///   correct later attempt as an answer to the first attempt's prompt, and with `reflector`
///   also on its own prompt (the reflector's accepted correction).
///
/// Failed calls are never kept.
pub(super) fn accepted(
    played: &[Sample],
    corrections: bool,
    reflector: bool,
) -> (Vec<Sample>, [(&'static str, usize); 2]) {
    let mut episodes: BTreeMap<usize, Vec<&Sample>> = BTreeMap::new();
    for x in played {
        episodes.entry(x.episode).or_default().push(x);
    }
    let keep = |x: &Sample| {
        let mut k = x.clone();
        (k.reward, k.advantage) = (1.0, 1.0);
        k
    };
    let (mut out, mut first_right, mut fixed) = (Vec::new(), 0, 0);
    for mut samples in episodes.into_values() {
        samples.sort_by_key(|x| x.role.seat);
        let Some(first) = samples.first().filter(|x| x.role.seat == 0 && !x.failed) else {
            continue;
        };
        if first.reward > 0.0 {
            out.push(keep(first));
            first_right += 1;
            continue;
        }
        if !corrections {
            continue;
        }
        let fix = samples[1..]
            .iter()
            .find(|x| x.role.name.starts_with("attempt") && !x.failed && x.reward > 0.0);
        if let Some(fix) = fix {
            let mut solver = Sample::new(
                first.role.clone(),
                first.prompt.clone(),
                fix.completion.clone(),
            );
            (solver.episode, solver.group, solver.turn) = (first.episode, first.group, first.turn);
            solver.text = fix.text.clone();
            (solver.reward, solver.advantage) = (1.0, 1.0);
            out.push(solver);
            if reflector {
                out.push(keep(fix));
            }
            fixed += 1;
        }
    }
    (out, [("first", first_right), ("corrections", fixed)])
}

/// TRLOO's turn returns: each sample's `reward` replaced by the sum of its episode's rewards
/// from its seat on (`gamma = 1`; Dr. Kernel's `G_{i,t}`), over the samples given (the ones
/// the method learns from, with their shaped rewards).
pub(super) fn turn_returns(samples: &mut [Sample]) {
    let mut by_episode: BTreeMap<usize, Vec<(usize, f64)>> = BTreeMap::new();
    for s in samples.iter() {
        by_episode
            .entry(s.episode)
            .or_default()
            .push((s.role.seat, s.reward));
    }
    for s in samples.iter_mut() {
        // G_{i,t} = sum_{t' >= t} r_{i,t'} (Dr. Kernel, gamma = 1).
        s.reward = by_episode[&s.episode]
            .iter()
            .filter(|(seat, _)| *seat >= s.role.seat)
            .map(|(_, r)| r)
            .sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(episode: usize, seat: usize, reward: f64) -> Sample {
        let mut x = Sample::new(
            spar_core::Role::new("arithmetic", seat, format!("attempt{}", seat + 1)),
            vec![10 * episode as u32 + seat as u32],
            vec![100 + 10 * episode as u32 + seat as u32],
        );
        (x.episode, x.reward, x.group) = (episode, reward, 0);
        x
    }

    #[test]
    fn rerest_keeps_successes_and_accepted_corrections_star_only_successes() {
        // Episode 0: right first. 1: wrong, wrong, right (fixed at attempt 3). 2: all wrong.
        let played = [
            sample(0, 0, 1.0),
            sample(0, 1, 0.0),
            sample(1, 0, 0.0),
            sample(1, 1, 0.0),
            sample(1, 2, 1.0),
            sample(2, 0, 0.0),
            sample(2, 1, 0.0),
        ];
        let (kept, counts) = accepted(&played, true, true);
        assert_eq!(counts, [("first", 1), ("corrections", 1)]);
        let pc: Vec<(Vec<u32>, Vec<u32>, &str)> = kept
            .iter()
            .map(|x| (x.prompt.clone(), x.completion.clone(), x.role.name.as_str()))
            .collect();
        assert_eq!(
            pc,
            [
                (vec![0], vec![100], "attempt1"),
                // The correction as an answer to the first prompt, then on its own.
                (vec![10], vec![112], "attempt1"),
                (vec![12], vec![112], "attempt3"),
            ]
        );
        assert!(kept.iter().all(|x| x.advantage == 1.0 && x.reward == 1.0));
        let (no_reflector, _) = accepted(&played, true, false);
        assert_eq!(no_reflector.len(), 2);
        let (star, counts) = accepted(&played, false, false);
        assert_eq!(counts, [("first", 1), ("corrections", 0)]);
        assert_eq!(star.len(), 1);
        assert_eq!(star[0].prompt, vec![0]);
    }

    #[test]
    fn turn_returns_sum_the_rest_of_the_episode() {
        let mut s = [
            sample(0, 0, 0.0),
            sample(0, 1, 1.0),
            sample(1, 0, 1.0),
            sample(1, 1, 1.0),
        ];
        turn_returns(&mut s);
        let g: Vec<f64> = s.iter().map(|x| x.reward).collect();
        assert_eq!(g, [1.0, 1.0, 2.0, 1.0]);
        // TRLOO over (problem, attempt 1): 1 - 2 = -1 and 2 - 1 = 1; attempt 2: 0, 0.
        let keys = ["a1", "a2", "a1", "a2"];
        let adv = crate::objectives::estimators::trloo(&g, &keys);
        assert_eq!(adv, [-1.0, 0.0, 1.0, 0.0]);
    }
}
