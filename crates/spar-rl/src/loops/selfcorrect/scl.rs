//! SCL's preference pairs (He et al. 2024, "Self-Correction is More than Refinement: A
//! Learning Framework for Visual and Language Reasoning Tasks", arXiv 2410.04055: the
//! SelfCorSet construction, `SCL/data_construction.py` of the authors' code): a two-attempt
//! episode whose answers flipped becomes one DPO pair on the *first attempt's* prompt, so the
//! model learns to answer right at once rather than to correct.

use crate::config::selfcorrect::SclPairs;
use crate::objectives::preference::PreferencePair;
use crate::rollout::Sample;

/// How an episode's answers flipped between the initial and the refined attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flip {
    /// Initial right, refined wrong (SCL's "1 -> 0").
    CToI,
    /// Initial wrong, refined right (SCL's "0 -> 1").
    IToC,
}

impl Flip {
    /// The metric name of its pairs' count (`pairs/c_to_i`, `pairs/i_to_c`).
    pub(super) fn name(self) -> &'static str {
        match self {
            Flip::CToI => "c_to_i",
            Flip::IToC => "i_to_c",
        }
    }
}

/// The pair of one episode's initial answer `first` and refined answer `second` (each
/// graded against the reference: reward 1 right, 0 otherwise), both as completions of
/// `first`'s prompt (SCL's SelfCorSet rules):
/// * initial right and refined wrong: chosen = initial, rejected = refined;
/// * initial wrong and refined right: chosen = refined, rejected = initial (the only kind
///   kept with [`SclPairs::IToC`], the paper's "0 -> 1 only" ablation);
/// * both right or both wrong: no pair (discarded).
///
/// A failed call (no answer) makes no pair. The chosen sequence carries no NLL term (plain
/// DPO).
pub(super) fn scl_pair(
    first: &Sample,
    second: &Sample,
    which: SclPairs,
) -> Option<(PreferencePair, Flip)> {
    if first.failed || second.failed {
        return None;
    }
    let (right1, right2) = (first.reward > 0.5, second.reward > 0.5);
    let (chosen, rejected, flip) = match (right1, right2) {
        (true, false) if which == SclPairs::Both => (first, second, Flip::CToI),
        (false, true) => (second, first, Flip::IToC),
        _ => return None,
    };
    let pair = PreferencePair {
        prompt: first.prompt.clone(),
        chosen: chosen.completion.clone(),
        rejected: rejected.completion.clone(),
        nll_from: chosen.completion.len(),
    };
    Some((pair, flip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seat: usize, prompt: u32, completion: u32, reward: f64) -> Sample {
        let role = spar_core::Role::new("arithmetic", seat, format!("attempt{}", seat + 1));
        let mut s = Sample::new(role, vec![prompt], vec![completion, 0]);
        s.reward = reward;
        s
    }

    #[test]
    fn flipped_episodes_make_pairs_on_the_first_prompt_as_the_paper_defines() {
        // Prompt 1 for attempt 1 (answer 11), prompt 2 for attempt 2 (answer 22).
        let (right1, wrong1) = (sample(0, 1, 11, 1.0), sample(0, 1, 11, 0.0));
        let (right2, wrong2) = (sample(1, 2, 22, 1.0), sample(1, 2, 22, 0.0));
        // 1 -> 0: chosen = the initial answer, rejected = the refined one, prompt x1.
        let (p, flip) = scl_pair(&right1, &wrong2, SclPairs::Both).unwrap();
        assert_eq!(flip, Flip::CToI);
        assert_eq!(
            (p.prompt, p.chosen, p.rejected, p.nll_from),
            (vec![1], vec![11, 0], vec![22, 0], 2)
        );
        // 0 -> 1: chosen = the refined answer, rejected = the initial one, prompt x1.
        let (p, flip) = scl_pair(&wrong1, &right2, SclPairs::Both).unwrap();
        assert_eq!(flip, Flip::IToC);
        assert_eq!(
            (p.prompt, p.chosen, p.rejected),
            (vec![1], vec![22, 0], vec![11, 0])
        );
        // No flip: discarded.
        assert!(scl_pair(&right1, &right2, SclPairs::Both).is_none());
        assert!(scl_pair(&wrong1, &wrong2, SclPairs::Both).is_none());
        // 0 -> 1 only: the 1 -> 0 pair is dropped, the 0 -> 1 pair kept.
        assert!(scl_pair(&right1, &wrong2, SclPairs::IToC).is_none());
        assert_eq!(
            scl_pair(&wrong1, &right2, SclPairs::IToC).unwrap().1,
            Flip::IToC
        );
        // A failed call makes no pair.
        let mut failed = right2.clone();
        failed.failed = true;
        assert!(scl_pair(&wrong1, &failed, SclPairs::Both).is_none());
    }
}
