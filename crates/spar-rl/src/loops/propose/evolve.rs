//! C2-Evo's data-model evolution (Chen et al. 2025, "C2-Evo: Co-Evolving Multimodal Data and
//! Model for Self-Improving Reasoning", arXiv 2507.16518, sec. 3.2), on arithmetic
//! (`propose.source = "evolve"`; `docs/curriculum.md`): the solver's problems come from a
//! pool kept near its frontier. After each step, every problem is judged by the share of the
//! solver's answers that were right:
//!
//! * inside the band `[band_low, band_high]`: it fits the model, and stays in the pool for
//!   another step (at most `max_uses` steps in all);
//! * above it (too easy): it is evolved up, composed with one more sub-problem
//!   (`e` becomes `e op b`, one more operation, `op` and `b` drawn), as C2-Evo composes
//!   sub-problems into harder ones;
//! * below it (too hard): it is evolved down, its last operation dropped (`e op b` becomes
//!   `e`), or, with one operation left, replaced by a fresh problem of one operation.
//!
//! Evolved problems join the pool; the pool's problems are the next step's first ones, fresh
//! problems of the task (hop counts drawn by `propose.hop_weights`) fill the rest. Every
//! evolved expression is read back by the proposer's own rules ([`parse_proposal`]), so its
//! answer is computed by construction.

use rand::Rng;
use serde::{Deserialize, Serialize};
use spar_games::tasks::{parse_proposal, Proposal, ProposalRules, MAX_TERMS};

/// A problem of the pool: its expression and the steps it has been used in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolItem {
    /// The canonical expression (`3+4*2`).
    pub expression: String,
    /// Steps the solver has answered it in.
    pub uses: usize,
}

/// Where a problem's solve rate puts it against the band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Solved more often than `band_high`.
    TooEasy,
    /// Within the band.
    InBand,
    /// Solved less often than `band_low`.
    TooHard,
}

/// The fit of a problem `k` of whose `n` answers were right.
pub fn fit(k: usize, n: usize, low: f64, high: f64) -> Fit {
    let rate = k as f64 / n.max(1) as f64;
    if rate > high {
        Fit::TooEasy
    } else if rate < low {
        Fit::TooHard
    } else {
        Fit::InBand
    }
}

/// `expression` with one more operation: `op` drawn from the rules' operators and an operand
/// of 1 to `max_digits` digits (no leading zero) appended. `None` when it already has the
/// most operations a problem may have, or the result breaks the rules.
pub fn evolve_up(expression: &str, rules: &ProposalRules, rng: &mut impl Rng) -> Option<Proposal> {
    let current = parse_proposal(expression, rules).ok()?;
    if current.hops as usize + 1 >= MAX_TERMS || rules.ops.is_empty() {
        return None;
    }
    let op = rules.ops[rng.gen_range(0..rules.ops.len())];
    let digits = rng.gen_range(1..=rules.max_digits.max(1));
    let low = if digits == 1 {
        0
    } else {
        10u64.pow(digits - 1)
    };
    let operand = rng.gen_range(low..10u64.pow(digits));
    parse_proposal(&format!("{}{op}{operand}", current.expression), rules).ok()
}

/// `expression` without its last operation and operand. `None` with one operation (nothing
/// smaller is a problem).
pub fn evolve_down(expression: &str, rules: &ProposalRules) -> Option<Proposal> {
    let current = parse_proposal(expression, rules).ok()?;
    if current.hops < 2 {
        return None;
    }
    let cut = current.expression.rfind(|c| "+-*".contains(c))?;
    parse_proposal(&current.expression[..cut], rules).ok()
}

/// Counts of one step's evolution (`propose/evolve/*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvolveCounts {
    /// Problems answered from the pool this step.
    pub from_pool: usize,
    /// Problems inside the band.
    pub in_band: usize,
    /// Problems evolved up (too easy).
    pub up: usize,
    /// Problems evolved down (too hard).
    pub down: usize,
    /// The pool's size after the step.
    pub pool: usize,
}

/// The pool after a step: `answered` the step's problems (expression, uses before this step,
/// right answers `k` of `n`), in order; `left` the pool's items the step did not use (kept
/// first, in order). In-band problems stay (until `max_uses`), too easy ones are evolved up,
/// too hard ones down (a one-operation problem too hard is dropped: the fresh problems
/// replace it); the pool is cut to `pool_size`.
#[allow(clippy::too_many_arguments)]
pub fn next_pool(
    left: Vec<PoolItem>,
    answered: &[(String, usize, usize, usize)],
    band: (f64, f64),
    max_uses: usize,
    pool_size: usize,
    rules: &ProposalRules,
    rng: &mut impl Rng,
    counts: &mut EvolveCounts,
) -> Vec<PoolItem> {
    let mut pool = left;
    for (expression, uses, k, n) in answered {
        let evolved = match fit(*k, *n, band.0, band.1) {
            Fit::InBand => {
                counts.in_band += 1;
                if uses + 1 < max_uses {
                    pool.push(PoolItem {
                        expression: expression.clone(),
                        uses: uses + 1,
                    });
                }
                continue;
            }
            Fit::TooEasy => {
                counts.up += 1;
                evolve_up(expression, rules, rng)
            }
            Fit::TooHard => {
                counts.down += 1;
                evolve_down(expression, rules)
            }
        };
        if let Some(p) = evolved {
            pool.push(PoolItem {
                expression: p.expression,
                uses: 0,
            });
        }
    }
    pool.truncate(pool_size);
    counts.pool = pool.len();
    pool
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn rules() -> ProposalRules {
        ProposalRules {
            max_digits: 1,
            ops: vec!['+', '-', '*'],
        }
    }

    #[test]
    fn the_band_splits_solve_rates() {
        // 5 answers, band [0.2, 0.8]: 5/5 and 0/5 are out, 1/5 .. 4/5 in.
        assert_eq!(fit(5, 5, 0.2, 0.8), Fit::TooEasy);
        assert_eq!(fit(4, 5, 0.2, 0.8), Fit::InBand);
        assert_eq!(fit(1, 5, 0.2, 0.8), Fit::InBand);
        assert_eq!(fit(0, 5, 0.2, 0.8), Fit::TooHard);
    }

    #[test]
    fn evolving_adds_or_drops_one_operation_with_its_value() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            let up = evolve_up("3+4*2", &rules(), &mut rng).unwrap();
            assert_eq!(up.hops, 3);
            assert!(up.expression.starts_with("3+4*2"), "{}", up.expression);
            // The value is the expression's, by the usual precedence.
            let (op, b) = (
                up.expression.as_bytes()[5] as char,
                i64::from(up.expression.as_bytes()[6] - b'0'),
            );
            let want = match op {
                '+' => 11 + b,
                '-' => 11 - b,
                _ => 3 + 8 * b,
            };
            assert_eq!(up.value, want, "{}", up.expression);
        }
        let down = evolve_down("3+4*2-7", &rules()).unwrap();
        assert_eq!(
            (down.expression.as_str(), down.hops, down.value),
            ("3+4*2", 2, 11)
        );
        assert!(evolve_down("3+4", &rules()).is_none());
        // Five operations is the most: nothing above it.
        assert!(evolve_up("1+2+3+4+5+6", &rules(), &mut rng).is_none());
    }

    #[test]
    fn the_pool_keeps_the_band_and_evolves_the_rest() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut counts = EvolveCounts::default();
        let left = vec![PoolItem {
            expression: "9-1".into(),
            uses: 0,
        }];
        let answered = [
            ("1+2".to_string(), 0, 3, 5),   // in band: stays, used once
            ("2+2".to_string(), 1, 2, 5),   // in band, but its second use: leaves
            ("5*5".to_string(), 0, 5, 5),   // too easy: one more operation
            ("7*8-9".to_string(), 0, 0, 5), // too hard: its last operation dropped
            ("6*7".to_string(), 0, 0, 5),   // too hard with one operation: dropped
        ];
        let pool = next_pool(
            left,
            &answered,
            (0.2, 0.8),
            2,
            10,
            &rules(),
            &mut rng,
            &mut counts,
        );
        let expressions: Vec<&str> = pool.iter().map(|p| p.expression.as_str()).collect();
        assert_eq!(expressions[..2], ["9-1", "1+2"]);
        assert_eq!(pool[1].uses, 1);
        assert!(expressions[2].starts_with("5*5") && expressions[2].len() == 5);
        assert_eq!(expressions[3], "7*8");
        assert_eq!(pool.len(), 4);
        assert_eq!(
            counts,
            EvolveCounts {
                from_pool: 0,
                in_band: 2,
                up: 1,
                down: 2,
                pool: 4
            }
        );
        // The cut keeps the oldest.
        let mut counts = EvolveCounts::default();
        let pool = next_pool(
            Vec::new(),
            &answered,
            (0.2, 0.8),
            2,
            1,
            &rules(),
            &mut rng,
            &mut counts,
        );
        assert_eq!(pool.len(), 1);
        assert_eq!(pool[0].expression, "1+2");
    }
}
