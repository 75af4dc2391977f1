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
//!
//! eva's creator (Ye et al. 2024, "Evolving Alignment via Asymmetric Self-Play", arXiv
//! 2411.00062, sec. 3-4; `propose.source = "eva"`, [`eva_pool`]) uses the same pool
//! differently: after each step it scores every problem's informativeness from the solver's
//! rewards, draws a fraction of them weighted by it, and evolves each drawn problem into
//! several variants ([`mutate`]) that make the next step's pool.

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

/// `expression` mutated once, the operator drawn among those that apply: one more operation
/// ([`evolve_up`]), one fewer ([`evolve_down`]), or one operand replaced by another number of
/// at most `max_digits` digits (eva's in-breadth evolution; its in-depth is the first).
pub fn mutate(expression: &str, rules: &ProposalRules, rng: &mut impl Rng) -> Option<Proposal> {
    let current = parse_proposal(expression, rules).ok()?;
    let mut order = [0usize, 1, 2];
    for i in (1..order.len()).rev() {
        order.swap(i, rng.gen_range(0..=i));
    }
    for kind in order {
        let mutated = match kind {
            0 => evolve_up(&current.expression, rules, rng),
            1 => evolve_down(&current.expression, rules),
            _ => {
                let terms: Vec<&str> = current.expression.split(|c| "+-*".contains(c)).collect();
                let ops: Vec<char> = current
                    .expression
                    .chars()
                    .filter(|c| "+-*".contains(*c))
                    .collect();
                let which = rng.gen_range(0..terms.len());
                let digits = rng.gen_range(1..=rules.max_digits.max(1));
                let low = if digits == 1 {
                    0
                } else {
                    10u64.pow(digits - 1)
                };
                let operand = rng.gen_range(low..10u64.pow(digits)).to_string();
                let mut text = String::new();
                for (i, term) in terms.iter().enumerate() {
                    if i > 0 {
                        text.push(ops[i - 1]);
                    }
                    text.push_str(if i == which { &operand } else { term });
                }
                parse_proposal(&text, rules).ok()
            }
        };
        if mutated.is_some() {
            return mutated;
        }
    }
    None
}

/// eva's informativeness of a problem `k` of whose `n` binary rewards were 1: the variance of
/// its rewards, `p (1 - p)` with `p = k / n` (the `reward_var` proxy of eva's sampling
/// script; its default `max - min` is 1 for every mixed group when rewards are binary).
pub fn informativeness(k: usize, n: usize) -> f64 {
    let p = k as f64 / n.max(1) as f64;
    p * (1.0 - p)
}

/// eva's sampling weights: `info` min-max normalised and divided by their sum
/// (`importance_weighted`); uniform when every value is the same, or when `uniform` (the
/// baseline that evolves without informativeness).
pub fn eva_weights(info: &[f64], uniform: bool) -> Vec<f64> {
    let (lo, hi) = info
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    if uniform || hi <= lo || hi.is_nan() {
        return vec![1.0 / info.len().max(1) as f64; info.len()];
    }
    let norm: Vec<f64> = info.iter().map(|x| (x - lo) / (hi - lo)).collect();
    let total: f64 = norm.iter().sum();
    norm.iter().map(|x| x / total).collect()
}

/// `count` distinct indices drawn without replacement with probabilities proportional to
/// `weights` (those of weight 0 only once every positive one is drawn).
pub fn draw_without_replacement(weights: &[f64], count: usize, rng: &mut impl Rng) -> Vec<usize> {
    let mut left: Vec<usize> = (0..weights.len()).collect();
    let mut out = Vec::with_capacity(count.min(weights.len()));
    while out.len() < count && !left.is_empty() {
        let total: f64 = left.iter().map(|&i| weights[i]).sum();
        let pick = if total > 0.0 {
            let mut x = rng.gen::<f64>() * total;
            let mut chosen = left.len() - 1;
            for (j, &i) in left.iter().enumerate() {
                if x < weights[i] {
                    chosen = j;
                    break;
                }
                x -= weights[i];
            }
            chosen
        } else {
            rng.gen_range(0..left.len())
        };
        out.push(left.remove(pick));
    }
    out
}

/// eva's numbers for one step (`propose/eva/*`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EvaCounts {
    /// Problems drawn to evolve.
    pub selected: usize,
    /// Mean informativeness of the step's problems.
    pub info: f64,
    /// Mean informativeness of the drawn ones.
    pub selected_info: f64,
}

/// eva's pool after a step: `answered` as in [`next_pool`]; `ceil(sample_frac * len)` of them
/// drawn by [`eva_weights`] of their [`informativeness`], each evolved into `evolutions`
/// variants by [`mutate`]; the variants first, then `left` (the buffer of earlier problems),
/// cut to `pool_size`.
#[allow(clippy::too_many_arguments)]
pub fn eva_pool(
    left: Vec<PoolItem>,
    answered: &[(String, usize, usize, usize)],
    sample_frac: f64,
    evolutions: usize,
    uniform: bool,
    pool_size: usize,
    rules: &ProposalRules,
    rng: &mut impl Rng,
    counts: &mut EvolveCounts,
) -> Vec<PoolItem> {
    let info: Vec<f64> = answered
        .iter()
        .map(|(_, _, k, n)| informativeness(*k, *n))
        .collect();
    let weights = eva_weights(&info, uniform);
    let count = (sample_frac * answered.len() as f64).ceil() as usize;
    let drawn = draw_without_replacement(&weights, count, rng);
    let mean = |v: &mut dyn Iterator<Item = f64>, n: usize| v.sum::<f64>() / n.max(1) as f64;
    counts.eva = Some(EvaCounts {
        selected: drawn.len(),
        info: mean(&mut info.iter().copied(), info.len()),
        selected_info: mean(&mut drawn.iter().map(|&i| info[i]), drawn.len()),
    });
    let mut pool = Vec::with_capacity(pool_size);
    for &i in &drawn {
        for _ in 0..evolutions {
            if let Some(p) = mutate(&answered[i].0, rules, rng) {
                pool.push(PoolItem {
                    expression: p.expression,
                    uses: 0,
                });
            }
        }
    }
    pool.extend(left);
    pool.truncate(pool_size);
    counts.pool = pool.len();
    pool
}

/// Counts of one step's evolution (`propose/evolve/*`, `propose/eva/*`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
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
    /// `source = "eva"`: its selection.
    pub eva: Option<EvaCounts>,
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
                pool: 4,
                eva: None,
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

    #[test]
    fn eva_draws_by_informativeness_and_evolves_the_drawn() {
        // p (1 - p): 0 for 0/4 and 4/4, 3/16 for 1/4 and 3/4, 1/4 for 2/4.
        assert_eq!(informativeness(0, 4), 0.0);
        assert_eq!(informativeness(1, 4), 0.1875);
        assert_eq!(informativeness(2, 4), 0.25);
        // Min-max normalised, then summed to 1: [0, 0.75, 1] / 1.75.
        let w = eva_weights(&[0.0, 0.1875, 0.25], false);
        assert!((w[1] - 0.75 / 1.75).abs() < 1e-12 && (w[2] - 1.0 / 1.75).abs() < 1e-12);
        assert_eq!(w[0], 0.0);
        assert_eq!(eva_weights(&[0.2, 0.2], false), vec![0.5, 0.5]);
        assert_eq!(eva_weights(&[0.0, 0.25], true), vec![0.5, 0.5]);
        // A weight-0 problem is drawn only after every positive one.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..20 {
            let mut d = draw_without_replacement(&w, 2, &mut rng);
            d.sort_unstable();
            assert_eq!(d, vec![1, 2]);
        }
        // The frequency of a draw follows its weight: 3:1.
        let (mut first, trials) = (0, 4000);
        for _ in 0..trials {
            first += usize::from(draw_without_replacement(&[0.75, 0.25], 1, &mut rng)[0] == 0);
        }
        assert!(
            (first as f64 / trials as f64 - 0.75).abs() < 0.03,
            "{first}"
        );
        // The pool: ceil(0.5 * 3) = 2 drawn (the two informative ones), 2 variants each,
        // then the buffer.
        let answered = [
            ("1+2".to_string(), 0, 0, 4),
            ("3+4".to_string(), 0, 1, 4),
            ("5-6".to_string(), 0, 2, 4),
        ];
        let left = vec![PoolItem {
            expression: "9-9".into(),
            uses: 0,
        }];
        let mut counts = EvolveCounts::default();
        let pool = eva_pool(
            left,
            &answered,
            0.5,
            2,
            false,
            10,
            &rules(),
            &mut rng,
            &mut counts,
        );
        assert_eq!(pool.len(), 5);
        assert_eq!(pool[4].expression, "9-9");
        let eva = counts.eva.unwrap();
        assert_eq!(eva.selected, 2);
        assert!((eva.selected_info - (0.1875 + 0.25) / 2.0).abs() < 1e-12);
        assert!((eva.info - (0.1875 + 0.25) / 3.0).abs() < 1e-12);
        for item in &pool[..4] {
            let p = parse_proposal(&item.expression, &rules()).unwrap();
            assert!((1..=2).contains(&p.hops), "{}", item.expression);
        }
    }

    #[test]
    fn a_mutation_changes_one_thing() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for _ in 0..100 {
            let m = mutate("3+4*2", &rules(), &mut rng).unwrap();
            match m.hops {
                3 => assert!(m.expression.starts_with("3+4*2")),
                1 => assert_eq!(m.expression, "3+4"),
                2 => {
                    // One operand replaced, the operators kept.
                    let ops: String = m
                        .expression
                        .chars()
                        .filter(|c| "+-*".contains(*c))
                        .collect();
                    assert_eq!(ops, "+*", "{}", m.expression);
                }
                h => panic!("{h} operations: {}", m.expression),
            }
        }
    }
}
