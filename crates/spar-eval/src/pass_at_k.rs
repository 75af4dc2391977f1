//! Sampling-based accuracy of answer generators: unbiased pass@k, majority and weighted votes
//! (self-consistency), AUROC and pass@1 per difficulty level.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code",
/// sec. 2.1, eq. 1): with `n` samples of which `c` are correct,
/// `pass@k = 1 - C(n-c, k) / C(n, k)`, the probability that at least one of `k` samples drawn
/// without replacement from the `n` is correct. Computed with the paper's numerically stable
/// product (Figure 3): `1 - prod_{i = n-c+1}^{n} (1 - k/i)`, and 1 when `n - c < k`.
///
/// Errors when `k = 0`, `k > n` or `c > n`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Result<f64> {
    if k == 0 || k > n {
        return Err(Error::BadInput(format!(
            "pass@k needs 1 <= k <= n; got k = {k} with n = {n} samples"
        )));
    }
    if c > n {
        return Err(Error::BadInput(format!(
            "pass@k: c = {c} correct samples out of n = {n}; c must be at most n"
        )));
    }
    if n - c < k {
        return Ok(1.0);
    }
    let k = k as f64;
    let prod: f64 = (n - c + 1..=n).map(|i| 1.0 - k / i as f64).product();
    Ok(1.0 - prod)
}

/// The mean of [`pass_at_k`] over problems, each given as `(n, c)` (Chen et al. 2021: the
/// estimate for a benchmark is the average over its problems).
///
/// Errors when `counts` is empty or any problem fails [`pass_at_k`]'s checks (the message
/// names the problem's index).
pub fn mean_pass_at_k(counts: &[(usize, usize)], k: usize) -> Result<f64> {
    if counts.is_empty() {
        return Err(Error::BadInput(format!(
            "pass@{k}: no problems to average over"
        )));
    }
    let mut sum = 0.0;
    for (i, &(n, c)) in counts.iter().enumerate() {
        sum += pass_at_k(n, c, k).map_err(|e| Error::BadInput(format!("problem {i}: {e}")))?;
    }
    Ok(sum / counts.len() as f64)
}

/// Majority vote over sampled answers (self-consistency, Wang et al. 2023, "Self-Consistency
/// Improves Chain of Thought Reasoning in Language Models", sec. 2: `argmax_a sum_i 1(a_i = a)`):
/// the most frequent `Some` answer, compared as exact strings (normalise before calling).
/// A tie goes to the answer that appears first; `None` (no parsable answer) never wins, and
/// all `None` (or no answers) gives `None`.
pub fn majority_vote(answers: &[Option<String>]) -> Option<String> {
    let weighted: Vec<(Option<&str>, f64)> = answers.iter().map(|a| (a.as_deref(), 1.0)).collect();
    weighted_vote(&weighted)
}

/// Weighted vote: `argmax_a sum_i w_i 1(a_i = a)`, the answer with the largest total weight
/// (ReVISE's confidence-aware decoding weighs each sampled answer by the model's confidence
/// in it; Lee et al. 2025, arXiv 2502.14565). A tie goes to the answer that appears first;
/// `None` never wins; all `None` gives `None`. [`majority_vote`] is every weight 1.
pub fn weighted_vote(answers: &[(Option<&str>, f64)]) -> Option<String> {
    // answer -> (total weight, first index)
    let mut totals: HashMap<&str, (f64, usize)> = HashMap::new();
    for (i, (a, w)) in answers.iter().enumerate() {
        if let Some(a) = a {
            totals.entry(a).or_insert((0.0, i)).0 += w;
        }
    }
    totals
        .into_iter()
        .max_by(|(_, (wa, ia)), (_, (wb, ib))| wa.total_cmp(wb).then(ib.cmp(ia)))
        .map(|(a, _)| a.to_string())
}

/// The area under the ROC curve of `scores` as a predictor of `positive`: the probability
/// that a random positive scores above a random negative, ties counting one half (the
/// Mann-Whitney statistic `U / (n_pos n_neg)`; Hanley & McNeil 1982, "The Meaning and Use of
/// the Area under a ROC Curve"). `None` without a positive or a negative.
pub fn auroc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let pos: Vec<f64> = scores
        .iter()
        .zip(positive)
        .filter(|(_, &p)| p)
        .map(|(s, _)| *s)
        .collect();
    let neg: Vec<f64> = scores
        .iter()
        .zip(positive)
        .filter(|(_, &p)| !p)
        .map(|(s, _)| *s)
        .collect();
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let mut u = 0.0;
    for p in &pos {
        for n in &neg {
            u += match p.total_cmp(n) {
                std::cmp::Ordering::Greater => 1.0,
                std::cmp::Ordering::Equal => 0.5,
                std::cmp::Ordering::Less => 0.0,
            };
        }
    }
    Some(u / (pos.len() * neg.len()) as f64)
}

/// Accuracy of one difficulty level ([`per_difficulty`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelAccuracy {
    /// The difficulty level.
    pub difficulty: u32,
    /// Problems at this level.
    pub problems: usize,
    /// Samples over those problems (sum of `n`).
    pub samples: usize,
    /// Correct samples (sum of `c`).
    pub correct: usize,
    /// pass@1: the mean over problems of `c / n` (problems with `n = 0` are counted in
    /// `problems` but left out of the mean; a level without any sample has 0).
    pub pass_at_1: f64,
}

/// Accuracy per difficulty level from per-problem results `(difficulty, n, c)`: pass@1 is the
/// unbiased estimate `c / n` ([`pass_at_k`] with `k = 1`) averaged over the level's problems,
/// so every problem weighs the same whatever its `n`. Levels come sorted by difficulty.
///
/// # Panics
/// If some problem has `c > n`.
pub fn per_difficulty(results: &[(u32, usize, usize)]) -> Vec<LevelAccuracy> {
    // difficulty -> (level, sum of c/n, problems with n > 0)
    let mut levels: BTreeMap<u32, (LevelAccuracy, f64, usize)> = BTreeMap::new();
    for (i, &(difficulty, n, c)) in results.iter().enumerate() {
        assert!(
            c <= n,
            "per_difficulty: problem {i} has c = {c} correct out of n = {n} samples"
        );
        let (level, sum, sampled) = levels.entry(difficulty).or_insert_with(|| {
            (
                LevelAccuracy {
                    difficulty,
                    problems: 0,
                    samples: 0,
                    correct: 0,
                    pass_at_1: 0.0,
                },
                0.0,
                0,
            )
        });
        level.problems += 1;
        level.samples += n;
        level.correct += c;
        if n > 0 {
            *sum += c as f64 / n as f64;
            *sampled += 1;
        }
    }
    levels
        .into_values()
        .map(|(mut level, sum, sampled)| {
            if sampled > 0 {
                level.pass_at_1 = sum / sampled as f64;
            }
            level
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() < tol, "{a} vs {b}");
    }

    /// C(n, k) exactly (fits in u128 for the sizes used here).
    fn binomial(n: u128, k: u128) -> u128 {
        let mut c = 1u128;
        for i in 1..=k {
            c = c * (n - k + i) / i;
        }
        c
    }

    fn ln_binomial(n: usize, k: usize) -> f64 {
        (1..=k).map(|i| ((n - k + i) as f64 / i as f64).ln()).sum()
    }

    #[test]
    fn pass_at_k_hand_values() {
        close(pass_at_k(5, 2, 1).unwrap(), 0.4, 1e-15);
        // 1 - C(3,2)/C(5,2) = 1 - 3/10.
        close(pass_at_k(5, 2, 2).unwrap(), 0.7, 1e-15);
        assert_eq!(pass_at_k(16, 0, 1).unwrap(), 0.0);
        assert_eq!(pass_at_k(16, 0, 16).unwrap(), 0.0);
        assert_eq!(pass_at_k(16, 16, 1).unwrap(), 1.0);
        assert_eq!(pass_at_k(16, 16, 8).unwrap(), 1.0);
        // n - c = 2 < k = 3: every draw of 3 contains a correct sample.
        assert_eq!(pass_at_k(5, 3, 3).unwrap(), 1.0);
        // k = n: 1 as soon as one sample is correct.
        assert_eq!(pass_at_k(4, 1, 4).unwrap(), 1.0);
        // pass@1 = c/n.
        close(pass_at_k(200, 37, 1).unwrap(), 37.0 / 200.0, 1e-15);
    }

    #[test]
    fn pass_at_k_large_matches_exact_binomials() {
        let (n, c, k) = (200usize, 37usize, 16usize);
        let got = pass_at_k(n, c, k).unwrap();
        let exact = 1.0
            - binomial((n - c) as u128, k as u128) as f64 / binomial(n as u128, k as u128) as f64;
        close(got, exact, 1e-12);
        let via_logs = 1.0 - (ln_binomial(n - c, k) - ln_binomial(n, k)).exp();
        close(got, via_logs, 1e-12);
        assert!(got > 0.9 && got < 1.0, "{got}");
    }

    #[test]
    fn pass_at_k_errors() {
        let err = pass_at_k(5, 2, 6).unwrap_err();
        assert!(matches!(err, Error::BadInput(_)));
        assert!(err.to_string().contains("k = 6 with n = 5"), "{err}");
        assert!(pass_at_k(5, 2, 0).is_err());
        assert!(pass_at_k(0, 0, 1).is_err());
        assert!(pass_at_k(5, 6, 1).is_err());
    }

    #[test]
    fn mean_pass_at_k_averages_problems() {
        // (0.4 + 0.7 + 0) / 3 for k = 2: pass@2 of (5, 1) is 1 - C(4,2)/C(5,2) = 0.4.
        close(
            mean_pass_at_k(&[(5, 1), (5, 2), (5, 0)], 2).unwrap(),
            (0.4 + 0.7) / 3.0,
            1e-15,
        );
        assert!(mean_pass_at_k(&[], 1).is_err());
        let err = mean_pass_at_k(&[(5, 1), (1, 1)], 2).unwrap_err();
        assert!(err.to_string().starts_with("problem 1:"), "{err}");
    }

    fn answers(xs: &[Option<&str>]) -> Vec<Option<String>> {
        xs.iter().map(|x| x.map(str::to_string)).collect()
    }

    #[test]
    fn majority_vote_counts_ties_and_nones() {
        let a = answers(&[Some("3"), Some("4"), Some("4"), None, Some("3"), Some("4")]);
        assert_eq!(majority_vote(&a).as_deref(), Some("4"));
        // Tie 2-2: "7" appears first.
        let a = answers(&[None, Some("7"), Some("5"), Some("5"), Some("7")]);
        assert_eq!(majority_vote(&a).as_deref(), Some("7"));
        let a = answers(&[Some("5"), Some("7"), Some("7"), Some("5")]);
        assert_eq!(majority_vote(&a).as_deref(), Some("5"));
        // Nones never win, even when they are the most frequent.
        let a = answers(&[None, None, None, Some("1")]);
        assert_eq!(majority_vote(&a).as_deref(), Some("1"));
        assert_eq!(majority_vote(&answers(&[None, None])), None);
        assert_eq!(majority_vote(&[]), None);
    }

    #[test]
    fn weighted_vote_sums_weights() {
        // "4" twice (0.2 + 0.3 = 0.5) against "3" once (0.9): "3" wins by weight although
        // "4" wins the plain vote.
        let a = [
            (Some("4"), 0.2),
            (Some("3"), 0.9),
            (None, 5.0),
            (Some("4"), 0.3),
        ];
        assert_eq!(weighted_vote(&a).as_deref(), Some("3"));
        // Equal totals: the first to appear.
        let a = [(Some("5"), 0.5), (Some("7"), 0.25), (Some("7"), 0.25)];
        assert_eq!(weighted_vote(&a).as_deref(), Some("5"));
        assert_eq!(weighted_vote(&[(None, 1.0)]), None);
    }

    #[test]
    fn auroc_by_hand() {
        // Positives 0.9, 0.4; negatives 0.5, 0.1, 0.4. Pairs (pos > neg): 0.9 beats all 3;
        // 0.4 beats 0.1, ties 0.4 (1/2), loses to 0.5: U = 3 + 1.5 = 4.5 of 6 pairs.
        let scores = [0.9, 0.5, 0.1, 0.4, 0.4];
        let positive = [true, false, false, true, false];
        assert_eq!(auroc(&scores, &positive), Some(0.75));
        // A perfect ranking is 1, the reversed one 0.
        assert_eq!(auroc(&[0.9, 0.1], &[true, false]), Some(1.0));
        assert_eq!(auroc(&[0.1, 0.9], &[true, false]), Some(0.0));
        assert_eq!(auroc(&[0.1, 0.9], &[true, true]), None);
    }

    #[test]
    fn per_difficulty_levels() {
        let levels = per_difficulty(&[(2, 4, 1), (1, 4, 4), (2, 2, 2), (1, 8, 2), (3, 0, 0)]);
        assert_eq!(
            levels,
            vec![
                LevelAccuracy {
                    difficulty: 1,
                    problems: 2,
                    samples: 12,
                    correct: 6,
                    pass_at_1: (1.0 + 0.25) / 2.0,
                },
                LevelAccuracy {
                    difficulty: 2,
                    problems: 2,
                    samples: 6,
                    correct: 3,
                    pass_at_1: (0.25 + 1.0) / 2.0,
                },
                LevelAccuracy {
                    difficulty: 3,
                    problems: 1,
                    samples: 0,
                    correct: 0,
                    pass_at_1: 0.0,
                },
            ]
        );
        let json = serde_json::to_string(&levels[0]).unwrap();
        assert_eq!(
            serde_json::from_str::<LevelAccuracy>(&json).unwrap(),
            levels[0]
        );
        assert!(per_difficulty(&[]).is_empty());
    }
}
