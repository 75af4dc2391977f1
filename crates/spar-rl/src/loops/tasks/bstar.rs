//! B-STaR (Zeng et al., ICLR 2025, "B-STaR: Monitoring and Balancing Exploration and
//! Exploitation in Self-Taught Reasoners", arXiv 2412.17256, sec. 4; code `hkust-nlp/B-STaR`,
//! `train_code/determine_hyper.py`): every step, the sampling temperature, the number of
//! answers per prompt and the selection threshold tau are chosen by the balance score on a
//! probe of the step's prompts; `docs/curriculum.md` has the method, its departures from the
//! paper and every key.
//!
//! The pure parts are here: an answer's score, the selection at a threshold, the balance
//! score, the threshold sweep, the grid choice and the exploration/exploitation monitors.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use spar_games::tasks::TaskEnv;
use spar_lm::Llama;

use super::TaskLoop;
use crate::config::bstar::BStarConfig;
use crate::error::Result;
use crate::rollout::Sample;
use crate::trainer::Learner;

/// One sampled answer as B-STaR reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The verifier said it is right.
    pub correct: bool,
    /// The model's confidence in it, in `[0, 1]`: the smallest probability (at temperature
    /// 1) it gave any token of the answer, spar's stand-in for the paper's `min_step PRM`.
    pub confidence: f64,
    /// Its text (the unit of deduplication).
    pub text: String,
}

impl Answer {
    /// Its score `s = 1[correct] + w * c` (the paper's `s = min_step(PRM) / 5 + 1[answer ==
    /// gold]`, `determine_hyper.py`'s `final_score`, with the model's confidence `c` for the
    /// PRM and `w` for its 1/5).
    pub fn score(&self, weight: f64) -> f64 {
        f64::from(u8::from(self.correct)) + weight * self.confidence
    }
}

/// The model's confidence in an answer from its token log-probabilities at temperature 1:
/// `exp(min_t log p_t)`, the probability of its least likely token (0 for an empty answer).
pub fn confidence(token_logprobs: &[f32]) -> f64 {
    token_logprobs
        .iter()
        .map(|&l| f64::from(l))
        .reduce(f64::min)
        .map_or(0.0, f64::exp)
}

/// The answers of one query kept at threshold `tau`: those scoring above it, highest score
/// first (ties in sampling order), with `dedup` only the first of each distinct text
/// (`determine_hyper.py`'s `get_unique_trn_json`). Indices into `answers`.
pub fn select(answers: &[Answer], tau: f64, weight: f64, dedup: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..answers.len())
        .filter(|&i| answers[i].score(weight) > tau)
        .collect();
    order.sort_by(|&a, &b| {
        answers[b]
            .score(weight)
            .total_cmp(&answers[a].score(weight))
    });
    let mut seen = BTreeSet::new();
    order.retain(|&i| !dedup || seen.insert(answers[i].text.as_str()));
    order
}

/// One query's balance score from `selected` answers of which `correct` are right:
/// `bs_i = min(n'_i / n*, 1) * n'_i / n_i` (B-STaR eq. 3; `cal_modi_acc_soft`), 0 when
/// nothing is selected.
pub fn query_balance(selected: usize, correct: usize, target: usize) -> f64 {
    if selected == 0 {
        return 0.0;
    }
    let (n, c) = (selected as f64, correct as f64);
    (c / target as f64).min(1.0) * (c / n)
}

/// The balance score of `queries` (each one's answers) at threshold `tau`: the mean of
/// [`query_balance`] over every query.
pub fn balance_score(queries: &[Vec<Answer>], tau: f64, config: &BStarConfig) -> f64 {
    if queries.is_empty() {
        return 0.0;
    }
    let total: f64 = queries
        .iter()
        .map(|answers| {
            let kept = select(answers, tau, config.confidence_weight, config.dedup);
            let correct = kept.iter().filter(|&&i| answers[i].correct).count();
            query_balance(kept.len(), correct, config.target_correct)
        })
        .sum();
    total / queries.len() as f64
}

/// The threshold of `config.taus()` with the highest balance score on `queries`, and that
/// score; among equal scores the highest threshold (the one that keeps fewest wrong answers).
pub fn best_tau(queries: &[Vec<Answer>], config: &BStarConfig) -> (f64, f64) {
    let mut best = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for tau in config.taus() {
        let score = balance_score(queries, tau, config);
        if score >= best.1 {
            best = (tau, score);
        }
    }
    best
}

/// What B-STaR chose for one step: the temperature and answer count to sample at, the
/// threshold to select with, and the balance score that won.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BStarChoice {
    /// The step it was chosen for.
    pub step: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// Answers per prompt.
    pub count: usize,
    /// Selection threshold: answers scoring above it are learnt from.
    pub tau: f64,
    /// The balance score of this choice on the probe.
    pub balance: f64,
}

/// The grid point with the highest best-tau balance score: `probes` holds, per temperature of
/// `config.temperatures` (in order), each probe query's `config.max_count()` answers; count
/// `n` reads each query's first `n`. The first point in (temperature, count) order wins a tie
/// (`determine_hyper.py` takes the first maximum).
pub fn choose(step: usize, probes: &[Vec<Vec<Answer>>], config: &BStarConfig) -> BStarChoice {
    let mut best: Option<BStarChoice> = None;
    for (&temperature, queries) in config.temperatures.iter().zip(probes) {
        for &count in &config.counts {
            let first: Vec<Vec<Answer>> = queries
                .iter()
                .map(|a| a[..count.min(a.len())].to_vec())
                .collect();
            let (tau, balance) = best_tau(&first, config);
            if best.is_none_or(|b| balance > b.balance) {
                best = Some(BStarChoice {
                    step,
                    temperature,
                    count,
                    tau,
                    balance,
                });
            }
        }
    }
    best.expect("a validated grid has a point")
}

/// The paper's exploration and exploitation monitors on one step's batch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Monitors {
    /// Share of the prompts with at least one right answer (pass@n, n the answers per prompt).
    pub pass_at_n: f64,
    /// Distinct right answer texts per prompt (diversity of the correct answers).
    pub distinct_correct: f64,
    /// Answers selected for the update.
    pub selected: usize,
    /// Share of the selected answers that are right (0 with none selected).
    pub precision: f64,
    /// Share of the prompts whose most confident answer is right (Best-of-n by the
    /// confidence alone: how well the stand-in reward ranks answers).
    pub best_of_n: f64,
    /// The batch's own balance score at the chosen threshold.
    pub balance: f64,
}

/// The monitors of a batch: `queries` with their answers, `selected` the indices kept per
/// query, `target` B-STaR's `n*`.
pub fn monitors(queries: &[Vec<Answer>], selected: &[Vec<usize>], target: usize) -> Monitors {
    let q = queries.len().max(1) as f64;
    let mut m = Monitors::default();
    let (mut kept_right, mut balance) = (0usize, 0.0);
    for (answers, kept) in queries.iter().zip(selected) {
        let right: BTreeSet<&str> = answers
            .iter()
            .filter(|a| a.correct)
            .map(|a| a.text.as_str())
            .collect();
        m.pass_at_n += f64::from(u8::from(!right.is_empty()));
        m.distinct_correct += right.len() as f64;
        let best = answers
            .iter()
            .reduce(|a, b| if b.confidence > a.confidence { b } else { a });
        m.best_of_n += f64::from(u8::from(best.is_some_and(|a| a.correct)));
        let correct = kept.iter().filter(|&&i| answers[i].correct).count();
        m.selected += kept.len();
        kept_right += correct;
        balance += query_balance(kept.len(), correct, target);
    }
    m.pass_at_n /= q;
    m.distinct_correct /= q;
    m.best_of_n /= q;
    m.balance = balance / q;
    m.precision = if m.selected == 0 {
        0.0
    } else {
        kept_right as f64 / m.selected as f64
    };
    m
}

impl TaskLoop {
    /// B-STaR's choice for step `step`: `config.max_count()` answers to each of the first
    /// `probe_prompts` problems of `envs` at every temperature of the grid (temperature `t`
    /// from stream `mix(seed, 0xb5a0 + t)`), scored and chosen by [`choose`].
    pub(super) fn choose_bstar(
        &self,
        config: &BStarConfig,
        learner: &Learner,
        envs: &[TaskEnv],
        step: usize,
        seed: u64,
    ) -> Result<BStarChoice> {
        let probe = &envs[..config.probe_prompts.min(envs.len())];
        let mut probes = Vec::with_capacity(config.temperatures.len());
        for (t, &temperature) in config.temperatures.iter().enumerate() {
            let stream = spar_core::seeds::mix(seed, 0xb5a0 + t as u64);
            let (samples, _) =
                self.sample_groups(learner, probe, config.max_count(), temperature, stream)?;
            let confidence = confidences(&learner.model, &samples)?;
            probes.push(by_prompt(&samples, &confidence, probe.len()).0);
        }
        Ok(choose(step, &probes, config))
    }

    /// The step's answers kept at the chosen threshold (one flag per sample) and the
    /// monitors of the batch.
    pub(super) fn select_bstar(
        &self,
        config: &BStarConfig,
        learner: &Learner,
        samples: &[Sample],
        choice: &BStarChoice,
    ) -> Result<(Vec<bool>, Monitors)> {
        let confidence = confidences(&learner.model, samples)?;
        let (queries, index) = by_prompt(samples, &confidence, self.problems.len());
        let kept: Vec<Vec<usize>> = queries
            .iter()
            .map(|a| select(a, choice.tau, config.confidence_weight, config.dedup))
            .collect();
        let mut selected = vec![false; samples.len()];
        for (q, k) in kept.iter().enumerate() {
            for &i in k {
                selected[index[q][i]] = true;
            }
        }
        Ok((selected, monitors(&queries, &kept, config.target_correct)))
    }
}

/// The answers to each of `prompts` prompts in sampling (episode) order, and each one's index
/// in `samples`.
fn by_prompt(
    samples: &[Sample],
    confidence: &[f64],
    prompts: usize,
) -> (Vec<Vec<Answer>>, Vec<Vec<usize>>) {
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_by_key(|&i| samples[i].episode);
    let mut queries = vec![Vec::new(); prompts];
    let mut index = vec![Vec::new(); prompts];
    for i in order {
        let s = &samples[i];
        let q = s.group as usize;
        queries[q].push(Answer {
            correct: s.reward > 0.5,
            confidence: confidence[i],
            text: s.text.clone(),
        });
        index[q].push(i);
    }
    (queries, index)
}

/// Every sample's [`confidence`] under `model` (detached) at temperature 1.
fn confidences(model: &Llama, samples: &[Sample]) -> Result<Vec<f64>> {
    let inference = model.detached();
    let mut out = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(super::CHUNK) {
        let pairs: Vec<(Vec<u32>, Vec<u32>)> = chunk
            .iter()
            .map(|s| (s.prompt.clone(), s.completion.clone()))
            .collect();
        let values = spar_lm::score::score_values_at_temperature(&inference, &pairs, 1.0)?;
        out.extend(values.iter().map(|v| confidence(v)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(correct: bool, confidence: f64, text: &str) -> Answer {
        Answer {
            correct,
            confidence,
            text: text.into(),
        }
    }

    #[test]
    fn the_balance_score_of_one_query_by_hand() {
        // 3 of 4 selected right, n* = 8: min(3/8, 1) * 3/4 = 9/32.
        assert_eq!(query_balance(4, 3, 8), 9.0 / 32.0);
        // 10 of 12 right: min(10/8, 1) * 10/12 = 5/6.
        assert_eq!(query_balance(12, 10, 8), 10.0 / 12.0);
        // Nothing selected counts 0; all wrong counts 0.
        assert_eq!(query_balance(0, 0, 8), 0.0);
        assert_eq!(query_balance(5, 0, 8), 0.0);
        // n* = 2: 2 of 2 right counts fully.
        assert_eq!(query_balance(2, 2, 2), 1.0);
    }

    #[test]
    fn confidence_is_the_least_likely_tokens_probability() {
        let c = confidence(&[-0.1, (0.25f64).ln() as f32, -0.5]);
        assert!((c - 0.25).abs() < 1e-7, "{c}");
        assert_eq!(confidence(&[]), 0.0);
    }

    /// Two queries, n* = 2, weight 1 (scores right: 1 + c, wrong: c):
    /// q0: right c=0.9 "4" (1.9), right c=0.3 "4" (1.3), wrong c=0.8 "5" (0.8), wrong c=0.2 (0.2);
    /// q1: right c=0.1 "7" (1.1), wrong c=0.95 "1" (0.95).
    fn two_queries() -> (Vec<Vec<Answer>>, BStarConfig) {
        let queries = vec![
            vec![
                a(true, 0.9, "4"),
                a(true, 0.3, "4 "),
                a(false, 0.8, "5"),
                a(false, 0.2, "6"),
            ],
            vec![a(true, 0.1, "7"), a(false, 0.95, "1")],
        ];
        let config = BStarConfig {
            target_correct: 2,
            confidence_weight: 1.0,
            dedup: false,
            ..BStarConfig::default()
        };
        (queries, config)
    }

    #[test]
    fn selection_and_the_tau_sweep_by_hand() {
        let (q, config) = two_queries();
        // tau = 0.5: q0 keeps 1.9, 1.3, 0.8 in score order; q1 keeps 1.1, 0.95.
        assert_eq!(select(&q[0], 0.5, 1.0, false), vec![0, 1, 2]);
        assert_eq!(select(&q[1], 0.5, 1.0, false), vec![0, 1]);
        // bs = (min(2/2,1) * 2/3 + min(1/2,1) * 1/2) / 2 = (2/3 + 1/4) / 2 = 11/24.
        let bs = balance_score(&q, 0.5, &config);
        assert!((bs - 11.0 / 24.0).abs() < 1e-12, "{bs}");
        // tau = 1.0: right answers only: (1 * 1 + 1/2 * 1) / 2 = 3/4, the best possible here
        // (every right answer kept, no wrong one); 0.95 <= tau < 1.1 all give it, and the sweep
        // keeps the highest such tau on the grid, 1.00 (the grid ends there).
        assert_eq!(balance_score(&q, 1.0, &config), 0.75);
        let (tau, best) = best_tau(&q, &config);
        assert_eq!(best, 0.75);
        assert!((tau - 1.0).abs() < 1e-9, "{tau}");
        // tau = 1.5: q0 keeps 1.9 only (1/2 * 1), q1 nothing: 1/4.
        assert_eq!(balance_score(&q, 1.5, &config), 0.25);
        // Below every score (tau = -1): everything, (2/2 * 2/4 + 1/2 * 1/2) / 2 = 3/8.
        assert_eq!(balance_score(&q, -1.0, &config), 0.375);
        // Deduplicated, "4" and "4 " are distinct texts; a repeat of "4" is dropped.
        let mut dup = q[0].clone();
        dup.push(a(true, 0.5, "4"));
        assert_eq!(select(&dup, 1.0, 1.0, true), vec![0, 1]);
        assert_eq!(select(&dup, 1.0, 1.0, false), vec![0, 4, 1]);
    }

    #[test]
    fn with_the_papers_weight_the_sweep_keeps_exactly_the_right_answers() {
        // w = 0.2: right answers score in [1, 1.2], wrong ones in [0, 0.2]; the highest tau of
        // the best score is 1.00, and a step where no answer is right keeps nothing (every tau
        // scores 0; the highest, 1.00, selects nothing), never the wrong answers.
        let (q, mut config) = two_queries();
        config.confidence_weight = 0.2;
        let (tau, best) = best_tau(&q, &config);
        assert_eq!(best, 0.75);
        assert!((tau - 1.0).abs() < 1e-9);
        let wrong = vec![vec![a(false, 0.9, "1"), a(false, 0.4, "2")]];
        let (tau, best) = best_tau(&wrong, &config);
        assert_eq!(best, 0.0);
        assert!(select(&wrong[0], tau, 0.2, false).is_empty(), "{tau}");
    }

    #[test]
    fn the_grid_choice_by_hand() {
        // Two temperatures x counts {1, 2}, one query each, n* = 2, weight 0 (scores 0 or 1:
        // the best tau keeps the right answers, bs = min(right/2, 1)).
        // T = 0.5: answers [right "3", right "3"]: n=1 -> 1/2; n=2 -> dedup keeps one -> 1/2.
        // T = 1.0: answers [wrong, right "3", ...]: n=1 -> 0; n=2 -> 1/2.
        // T = 1.5: [right "3", right "03"]: n=1 -> 1/2, n=2 -> two distinct right -> 1.
        let config = BStarConfig {
            temperatures: vec![0.5, 1.0, 1.5],
            counts: vec![1, 2],
            target_correct: 2,
            confidence_weight: 0.0,
            dedup: true,
            ..BStarConfig::default()
        };
        let probes = vec![
            vec![vec![a(true, 0.0, "3"), a(true, 0.0, "3")]],
            vec![vec![a(false, 0.0, "4"), a(true, 0.0, "3")]],
            vec![vec![a(true, 0.0, "3"), a(true, 0.0, "03")]],
        ];
        let c = choose(7, &probes, &config);
        assert_eq!(
            (c.step, c.temperature, c.count, c.balance),
            (7, 1.5, 2, 1.0)
        );
        // Without the last temperature every point ties at 1/2 or less: the first maximum,
        // (0.5, 1), wins.
        let c = choose(7, &probes[..2], &config);
        assert_eq!((c.temperature, c.count, c.balance), (0.5, 1, 0.5));
        // Without deduplication (0.5, 2) counts both copies: min(2/2, 1) * 1 = 1.
        let config = BStarConfig {
            dedup: false,
            ..config
        };
        let c = choose(7, &probes[..2], &config);
        assert_eq!((c.temperature, c.count, c.balance), (0.5, 2, 1.0));
    }

    #[test]
    fn the_monitors_by_hand() {
        let (q, config) = two_queries();
        let selected: Vec<Vec<usize>> = q
            .iter()
            .map(|answers| select(answers, 0.5, config.confidence_weight, false))
            .collect();
        let m = monitors(&q, &selected, 2);
        assert_eq!(m.pass_at_n, 1.0);
        // q0: "4" and "4 " (two texts), q1: "7".
        assert_eq!(m.distinct_correct, 1.5);
        // 5 selected, 3 right.
        assert_eq!(m.selected, 5);
        assert_eq!(m.precision, 0.6);
        // Most confident: q0's 0.9 (right), q1's 0.95 (wrong).
        assert_eq!(m.best_of_n, 0.5);
        assert!((m.balance - 11.0 / 24.0).abs() < 1e-12);
    }
}
