//! SPT, semantic-aware permutation training (Guo et al. 2024, "Mitigating reversal curse in
//! large language models via semantic-aware permutation training", arXiv 2403.00758): a
//! sentence is cut into semantic units (entities and phrases, never split), and a causal model
//! trains on the units in their original order, reversed, or randomly permuted, so that it
//! also learns to predict what came *before* a unit.
//!
//! The paper segments sentences with an assistant language model; spar's synthetic corpora
//! know their units by construction ([`crate::reversal::data::Sentence::units`]), and any other
//! text can be given as lines of units separated by [`UNIT_SEPARATOR`] (`spar lm spt` writes
//! the permuted text for `spar lm pretrain`). The mixing probabilities are hyperparameters
//! ([`SptConfig`]); the paper's exact values are not known to us, so the default is uniform.

use crate::error::{LmError, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Separates the units of a line in a units file: `The father of | Zorvin | is | Amelt.`
pub const UNIT_SEPARATOR: &str = " | ";

/// The probabilities of each order (they need not sum to one; they are normalised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SptConfig {
    /// Weight of the original order.
    pub p_original: f64,
    /// Weight of the reversed order (last unit first).
    pub p_reversed: f64,
    /// Weight of a uniformly random permutation of the units.
    pub p_permuted: f64,
}

impl Default for SptConfig {
    fn default() -> Self {
        SptConfig {
            p_original: 1.0 / 3.0,
            p_reversed: 1.0 / 3.0,
            p_permuted: 1.0 / 3.0,
        }
    }
}

/// The order a sentence's units are put in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// As written.
    Original,
    /// Last unit first.
    Reversed,
    /// A uniformly random permutation.
    Permuted,
}

impl SptConfig {
    /// Checks that the weights are finite, non-negative and not all zero.
    pub fn validate(&self) -> Result<()> {
        let w = [self.p_original, self.p_reversed, self.p_permuted];
        if w.iter().any(|p| !p.is_finite() || *p < 0.0) || w.iter().sum::<f64>() <= 0.0 {
            return Err(LmError::InvalidArgument(format!(
                "spt: p_original, p_reversed, p_permuted must be non-negative and not all 0, \
                 got {w:?}"
            )));
        }
        Ok(())
    }

    /// Draws an order: `o ~ Cat(p_orig, p_rev, p_perm)` (Guo et al. 2024, section 3).
    pub fn sample_order(&self, rng: &mut impl Rng) -> Order {
        let total = self.p_original + self.p_reversed + self.p_permuted;
        let u = rng.gen::<f64>() * total;
        if u < self.p_original {
            Order::Original
        } else if u < self.p_original + self.p_reversed {
            Order::Reversed
        } else {
            Order::Permuted
        }
    }
}

/// The units in `order` (each unit kept whole).
pub fn reorder<T: Clone>(units: &[T], order: Order, rng: &mut impl Rng) -> Vec<T> {
    let mut out = units.to_vec();
    match order {
        Order::Original => {}
        Order::Reversed => out.reverse(),
        Order::Permuted => out.shuffle(rng),
    }
    out
}

/// One SPT sample of a sentence given as units: an order drawn from `cfg`, the units joined by
/// spaces. A full stop, question or exclamation mark at the end of the last unit stays at the
/// end of the sentence.
pub fn permute_sentence(units: &[String], cfg: &SptConfig, rng: &mut impl Rng) -> String {
    let mut units = units.to_vec();
    let mut end = "";
    if let Some(last) = units.last_mut() {
        for mark in [".", "?", "!"] {
            if last.len() > 1 && last.ends_with(mark) {
                last.truncate(last.len() - 1);
                end = mark;
                break;
            }
        }
    }
    let order = cfg.sample_order(rng);
    format!("{}{end}", reorder(&units, order, rng).join(" "))
}

/// The units of a line of a units file (split on [`UNIT_SEPARATOR`], trimmed, empty units
/// dropped).
pub fn parse_units(line: &str) -> Vec<String> {
    line.split(UNIT_SEPARATOR.trim())
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect()
}

/// `spar lm spt`: every non-empty line of `text` (units separated by [`UNIT_SEPARATOR`])
/// rewritten `copies` times, each copy in an order drawn from `cfg` (seeded), one sentence per
/// line: the permuted corpus a plain pretraining run then reads.
pub fn transform_text(text: &str, cfg: &SptConfig, copies: usize, seed: u64) -> Result<String> {
    cfg.validate()?;
    if copies == 0 {
        return Err(LmError::InvalidArgument(
            "spt: copies must be at least 1".into(),
        ));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5a7_0001);
    let mut out = String::new();
    for line in text.lines() {
        let units = parse_units(line);
        if units.is_empty() {
            continue;
        }
        for _ in 0..copies {
            out.push_str(&permute_sentence(&units, cfg, &mut rng));
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units() -> Vec<String> {
        ["The father of", "Zorvin Tal", "is", "Amelt"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn every_order_keeps_every_unit_intact() {
        let cfg = SptConfig::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let text = permute_sentence(&units(), &cfg, &mut rng);
            // Every unit appears as a whole; the text is exactly the units in some order.
            for u in units() {
                assert!(text.contains(&u), "{text} lost {u}");
            }
            assert_eq!(text.len(), units().join(" ").len());
            let all = units();
            let mut order: Vec<usize> = Vec::new();
            let mut rest = text.as_str();
            while !rest.is_empty() {
                let i = all
                    .iter()
                    .position(|u| rest.starts_with(u.as_str()))
                    .unwrap_or_else(|| panic!("{text}: no unit starts {rest:?}"));
                order.push(i);
                rest = rest[all[i].len()..].trim_start();
            }
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, vec![0, 1, 2, 3], "{text}");
            seen.insert(order);
        }
        // Original and reversed occur, and random permutations beyond them.
        assert!(seen.contains(&vec![0, 1, 2, 3]) && seen.contains(&vec![3, 2, 1, 0]));
        assert!(seen.len() > 6, "{seen:?}");
    }

    #[test]
    fn the_full_stop_stays_at_the_end_and_orders_follow_the_weights() {
        let cfg = SptConfig {
            p_original: 0.0,
            p_reversed: 1.0,
            p_permuted: 0.0,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let line = "The father of | Zorvin | is | Amelt.";
        assert_eq!(
            permute_sentence(&parse_units(line), &cfg, &mut rng),
            "Amelt is Zorvin The father of."
        );
        let out = transform_text(&format!("{line}\n\n{line}\n"), &cfg, 2, 0).unwrap();
        assert_eq!(out.lines().count(), 4);
        assert!(out.lines().all(|l| l == "Amelt is Zorvin The father of."));
        assert!(transform_text(line, &cfg, 0, 0).is_err());
        let bad = SptConfig {
            p_original: -1.0,
            ..cfg
        };
        assert!(bad.validate().is_err());
    }
}
