//! CoSC's episode metrics: accuracy, stages used (per difficulty level: CoSC's claim that
//! harder items take more stages), how often a wrong output is revised, and invalid episodes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One finished episode, as the metrics read it ([`super::CoscEnv::episode`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoscEpisode {
    /// The problem's difficulty level.
    pub difficulty: u32,
    /// Per executed stage, whether concluding from its program would have been right.
    pub stages: Vec<bool>,
    /// Per executed stage, whether the model continued to another stage after it.
    pub continued: Vec<bool>,
    /// The stage limit.
    pub limit: usize,
    /// Whether the final answer is right.
    pub correct: bool,
    /// Whether the episode ended with an invalid move (no answer).
    pub invalid: bool,
}

/// Accuracy and stages of one difficulty level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelStats {
    /// The level.
    pub level: u32,
    /// Episodes at it.
    pub episodes: usize,
    /// Their final-answer accuracy.
    pub accuracy: f64,
    /// Their mean number of executed stages.
    pub mean_stages: f64,
}

/// The metrics of a set of CoSC episodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoscStats {
    /// Episodes counted.
    pub episodes: usize,
    /// Fraction whose final answer is right.
    pub accuracy: f64,
    /// Fraction whose first program's output would have answered right: what trusting
    /// stage 1 (single-stage program of thought) would score on the same episodes.
    pub first_program_accuracy: f64,
    /// Mean executed stages per episode.
    pub mean_stages: f64,
    /// Of the stages whose output was wrong and that had a stage left after them, the
    /// fraction the model revised (continued to another program); `None` without such
    /// stages.
    pub revision_rate: Option<f64>,
    /// Of the stages whose output was right and that had a stage left, the fraction the model
    /// continued anyway; `None` without such stages.
    pub continue_after_right_rate: Option<f64>,
    /// Fraction whose first program was wrong and final answer right (a correction).
    pub fixed_rate: f64,
    /// Fraction whose first program was right and final answer wrong.
    pub broken_rate: f64,
    /// Fraction that ended with an invalid move (no answer).
    pub invalid_rate: f64,
    /// Per difficulty level, in increasing order.
    pub levels: Vec<LevelStats>,
}

impl CoscStats {
    /// The metrics of `episodes` (all zero and `None` for none).
    pub fn of(episodes: &[CoscEpisode]) -> CoscStats {
        let n = episodes.len();
        if n == 0 {
            return CoscStats::default();
        }
        let share = |f: &dyn Fn(&CoscEpisode) -> bool| {
            episodes.iter().filter(|e| f(e)).count() as f64 / n as f64
        };
        let first = |e: &CoscEpisode| e.stages.first().copied().unwrap_or(false);
        // (continued, counted) over the stages with a stage left after them, by whether
        // their output was right.
        let mut after = [(0usize, 0usize); 2];
        for e in episodes {
            for (k, (&right, &continued)) in e.stages.iter().zip(&e.continued).enumerate() {
                if k + 1 < e.limit {
                    let slot = &mut after[usize::from(right)];
                    slot.0 += usize::from(continued);
                    slot.1 += 1;
                }
            }
        }
        let rate = |(c, total): (usize, usize)| (total > 0).then(|| c as f64 / total as f64);
        let mut by_level: BTreeMap<u32, (usize, usize, usize)> = BTreeMap::new();
        for e in episodes {
            let entry = by_level.entry(e.difficulty).or_default();
            entry.0 += 1;
            entry.1 += usize::from(e.correct);
            entry.2 += e.stages.len();
        }
        CoscStats {
            episodes: n,
            accuracy: share(&|e| e.correct),
            first_program_accuracy: share(&first),
            mean_stages: episodes.iter().map(|e| e.stages.len()).sum::<usize>() as f64 / n as f64,
            revision_rate: rate(after[0]),
            continue_after_right_rate: rate(after[1]),
            fixed_rate: share(&|e| !first(e) && e.correct),
            broken_rate: share(&|e| first(e) && !e.correct),
            invalid_rate: share(&|e| e.invalid),
            levels: by_level
                .into_iter()
                .map(|(level, (count, correct, stages))| LevelStats {
                    level,
                    episodes: count,
                    accuracy: correct as f64 / count as f64,
                    mean_stages: stages as f64 / count as f64,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(difficulty: u32, stages: &[bool], continued: &[bool], correct: bool) -> CoscEpisode {
        CoscEpisode {
            difficulty,
            stages: stages.to_vec(),
            continued: continued.to_vec(),
            limit: 2,
            correct,
            invalid: false,
        }
    }

    #[test]
    fn metrics_on_hand_counted_episodes() {
        let episodes = vec![
            // Wrong output, revised, right: a correction (level 1, 2 stages).
            episode(1, &[false, true], &[true, false], true),
            // Right at once (level 1, 1 stage).
            episode(1, &[true], &[false], true),
            // Wrong output, not revised, wrong answer (level 2, 1 stage).
            episode(2, &[false], &[false], false),
            // Right output, continued anyway, then a wrong one answered (level 2, 2 stages).
            episode(2, &[true, false], &[true, false], false),
            // Invalid at its first message (no stage).
            CoscEpisode {
                invalid: true,
                ..episode(2, &[], &[], false)
            },
        ];
        let s = CoscStats::of(&episodes);
        assert_eq!(s.episodes, 5);
        assert_eq!(s.accuracy, 2.0 / 5.0);
        assert_eq!(s.first_program_accuracy, 2.0 / 5.0);
        assert_eq!(s.mean_stages, 6.0 / 5.0);
        // Stage 2 of a limit-2 episode has no stage after it: only stage 1 counts. Wrong
        // stage-1 outputs: episodes 1 (revised) and 3 (not); right: 2 (not) and 4 (continued).
        assert_eq!(s.revision_rate, Some(0.5));
        assert_eq!(s.continue_after_right_rate, Some(0.5));
        assert_eq!(s.fixed_rate, 1.0 / 5.0);
        assert_eq!(s.broken_rate, 1.0 / 5.0);
        assert_eq!(s.invalid_rate, 1.0 / 5.0);
        assert_eq!(
            s.levels,
            vec![
                LevelStats {
                    level: 1,
                    episodes: 2,
                    accuracy: 1.0,
                    mean_stages: 1.5
                },
                LevelStats {
                    level: 2,
                    episodes: 3,
                    accuracy: 0.0,
                    mean_stages: 1.0
                },
            ]
        );
        assert_eq!(CoscStats::of(&[]), CoscStats::default());
        // With a single stage allowed nothing can be revised.
        let single = CoscEpisode {
            limit: 1,
            ..episode(1, &[false], &[false], false)
        };
        assert_eq!(CoscStats::of(&[single]).revision_rate, None);
    }
}
