//! Masked language modelling (Devlin et al. 2019, BERT, section 3.1 "Task #1: Masked LM") on
//! spar's Llama blocks with bidirectional attention ([`crate::Config::is_causal`] `false`):
//! masking, the loss, and answering by filling blanks.
//!
//! * [`mask_tokens`]: choose about `rate` of the positions (or of the words, with
//!   `whole_words`: every byte of a chosen word, BERT's whole-word-masking release); of the
//!   chosen positions 80% become [`MASK_TOKEN`], 10% a random byte and 10% stay (BERT, section
//!   3.1). At least one word is chosen per sequence, because spar's sequences are short
//!   sentences (a departure from BERT, whose 512-token windows always have several).
//! * [`weighted_cross_entropy`]: the loss, mean cross-entropy over the chosen positions.
//! * [`infill_scores`]: the log-probability of each candidate filling a blank of as many
//!   [`MASK_TOKEN`]s as it has tokens (all masks filled at once, as a masked model reads them);
//!   this is how a masked model answers "The father of [MASK] is Amelt." and ranks every
//!   candidate entity. [`infill_greedy`] fills a blank without candidates, one token at a time,
//!   the most confident position first.

use crate::error::{LmError, Result};
use crate::model::{KvCache, Llama};
use crate::tokenizer::TextTokenizer;
use crate::train::BYTE_SPECIAL_TOKENS;
use candle_core::{DType, Device, Tensor, D};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The mask token of spar's byte-level masked models (id 259, after [`BYTE_SPECIAL_TOKENS`]).
pub const MASK_TOKEN: &str = "<|mask|>";

/// The special tokens of a byte-level masked model: [`BYTE_SPECIAL_TOKENS`] then
/// [`MASK_TOKEN`].
pub fn masked_special_tokens() -> [&'static str; 4] {
    let [a, b, c] = BYTE_SPECIAL_TOKENS;
    [a, b, c, MASK_TOKEN]
}

/// How [`mask_tokens`] chooses and corrupts positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskingConfig {
    /// Fraction of positions (or words) chosen for prediction; BERT: 0.15.
    pub rate: f64,
    /// Choose whole words (maximal runs of ASCII letters and digits) instead of single tokens.
    pub whole_words: bool,
    /// Of the chosen positions, the fraction replaced by the mask token; BERT: 0.8.
    pub replace_mask: f64,
    /// Of the chosen positions, the fraction replaced by a random byte; BERT: 0.1 (the rest,
    /// 0.1, stay unchanged).
    pub replace_random: f64,
}

impl Default for MaskingConfig {
    fn default() -> Self {
        MaskingConfig {
            rate: 0.15,
            whole_words: true,
            replace_mask: 0.8,
            replace_random: 0.1,
        }
    }
}

impl MaskingConfig {
    /// Checks that the fractions are in `[0, 1]` (`rate` in `(0, 1]`).
    pub fn validate(&self) -> Result<()> {
        let ok = |p: f64| (0.0..=1.0).contains(&p);
        let valid = self.rate > 0.0
            && ok(self.rate)
            && ok(self.replace_mask)
            && ok(self.replace_random)
            && self.replace_mask + self.replace_random <= 1.0;
        if !valid {
            return Err(LmError::InvalidArgument(format!(
                "masking: rate {} must be in (0, 1], replace_mask {} and replace_random {} in \
                 [0, 1] with a sum of at most 1",
                self.rate, self.replace_mask, self.replace_random
            )));
        }
        Ok(())
    }
}

/// A sequence prepared for the masked-LM loss.
#[derive(Debug, Clone, PartialEq)]
pub struct Masked {
    /// The corrupted input.
    pub input: Vec<u32>,
    /// The original tokens (what every position should predict).
    pub targets: Vec<u32>,
    /// 1 at the chosen positions (the loss counts them), 0 elsewhere.
    pub weights: Vec<f32>,
}

/// The words of a byte-level sequence: `(start, end)` of each maximal run of ASCII letters and
/// digits.
pub fn word_spans(tokens: &[u32]) -> Vec<(usize, usize)> {
    let is_word = |t: u32| t < 128 && (t as u8).is_ascii_alphanumeric();
    let mut spans = Vec::new();
    let mut start = None;
    for (i, &t) in tokens.iter().enumerate() {
        match (is_word(t), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, tokens.len()));
    }
    spans
}

/// Chooses and corrupts positions of `tokens` (module docs). Byte tokens only are chosen
/// (special tokens such as the end of sequence stay as they are); random replacements are
/// bytes.
pub fn mask_tokens(
    tokens: &[u32],
    cfg: &MaskingConfig,
    mask_id: u32,
    rng: &mut impl Rng,
) -> Masked {
    let groups: Vec<(usize, usize)> = if cfg.whole_words {
        word_spans(tokens)
    } else {
        (0..tokens.len())
            .filter(|&i| tokens[i] < 256)
            .map(|i| (i, i + 1))
            .collect()
    };
    let mut input = tokens.to_vec();
    let mut weights = vec![0f32; tokens.len()];
    let count = ((cfg.rate * groups.len() as f64).round() as usize)
        .max(1)
        .min(groups.len());
    for &(start, end) in groups.choose_multiple(rng, count) {
        for i in start..end {
            weights[i] = 1.0;
            let u: f64 = rng.gen();
            if u < cfg.replace_mask {
                input[i] = mask_id;
            } else if u < cfg.replace_mask + cfg.replace_random {
                input[i] = rng.gen_range(0..256);
            }
        }
    }
    Masked {
        input,
        targets: tokens.to_vec(),
        weights,
    }
}

/// `sum_i w_i * -log softmax(logits_i)[target_i] / sum_i w_i`: the mean cross-entropy over the
/// positions with weight 1 (BERT, section 3.1: "the final hidden vectors corresponding to the
/// mask tokens are fed into an output softmax ... standard LM"; the causal loss on a padded
/// batch is the same with the real positions weighted). `logits` `(batch, seq, vocab)`,
/// `targets` `(batch, seq)` u32, `weights` `(batch, seq)` f32. Differentiable in `logits`.
pub fn weighted_cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    weights: &Tensor,
) -> candle_core::Result<Tensor> {
    let log_probs = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = log_probs
        .gather(&targets.unsqueeze(D::Minus1)?.contiguous()?, D::Minus1)?
        .squeeze(D::Minus1)?;
    let weights = weights.to_dtype(picked.dtype())?;
    let total = weights.sum_all()?.to_scalar::<f32>()?;
    if total <= 0.0 {
        candle_core::bail!("weighted_cross_entropy: every weight is 0")
    }
    (picked * weights)?.sum_all()? / (-(total as f64))
}

/// Left-pads `rows` with token 0 into one `(batch, longest)` tensor; returns it with the pad
/// count of each row (for [`KvCache::with_left_padding`]).
pub fn left_padded(rows: &[Vec<u32>], device: &Device) -> Result<(Tensor, Vec<usize>)> {
    let longest = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(rows.len() * longest);
    let mut pads = Vec::with_capacity(rows.len());
    for row in rows {
        pads.push(longest - row.len());
        ids.extend(std::iter::repeat_n(0, longest - row.len()));
        ids.extend_from_slice(row);
    }
    Ok((Tensor::from_vec(ids, (rows.len(), longest), device)?, pads))
}

/// The log-probability of each candidate (token ids) as the filling of the blank between
/// `left` and `right`: the blank gets as many mask tokens as the candidate has tokens, and the
/// score is `sum_i log p(candidate_i | masked sentence)` at the blank's positions. One forward
/// pass per distinct candidate length.
pub fn infill_scores(
    model: &Llama,
    left: &[u32],
    right: &[u32],
    candidates: &[Vec<u32>],
    mask_id: u32,
) -> Result<Vec<f32>> {
    if candidates.iter().any(Vec::is_empty) {
        return Err(LmError::InvalidArgument("an empty infill candidate".into()));
    }
    let mut lengths: Vec<usize> = candidates.iter().map(Vec::len).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let rows: Vec<Vec<u32>> = lengths
        .iter()
        .map(|&n| {
            let mut row = left.to_vec();
            row.extend(std::iter::repeat_n(mask_id, n));
            row.extend_from_slice(right);
            row
        })
        .collect();
    let (ids, pads) = left_padded(&rows, model.device())?;
    let mut cache = KvCache::with_left_padding(model.config().num_hidden_layers, pads.clone());
    let logits = model.forward(&ids, &mut cache)?;
    let log_probs: Vec<Vec<Vec<f32>>> = candle_nn::ops::log_softmax(&logits, D::Minus1)?
        .to_dtype(DType::F32)?
        .to_vec3()?;
    Ok(candidates
        .iter()
        .map(|c| {
            let row = lengths
                .binary_search(&c.len())
                .expect("every length has a row");
            let at = pads[row] + left.len();
            c.iter()
                .enumerate()
                .map(|(i, &t)| log_probs[row][at + i][t as usize])
                .sum()
        })
        .collect())
}

/// Fills every mask token of `ids`, one at a time: at each step the masked position whose most
/// likely byte is most likely gets that byte. Returns the filled sequence and the sum of the
/// chosen tokens' log-probabilities.
pub fn infill_greedy(model: &Llama, ids: &[u32], mask_id: u32) -> Result<(Vec<u32>, f32)> {
    let mut ids = ids.to_vec();
    let mut total = 0f32;
    while ids.contains(&mask_id) {
        let input = Tensor::new(ids.as_slice(), model.device())?.unsqueeze(0)?;
        let logits = model.forward(&input, &mut model.new_cache())?;
        let log_probs: Vec<Vec<f32>> = candle_nn::ops::log_softmax(&logits, D::Minus1)?
            .squeeze(0)?
            .to_dtype(DType::F32)?
            .to_vec2()?;
        let (pos, token, lp) = ids
            .iter()
            .enumerate()
            .filter(|(_, t)| **t == mask_id)
            .map(|(i, _)| {
                let (tok, lp) = log_probs[i][..256].iter().enumerate().fold(
                    (0, f32::NEG_INFINITY),
                    |best, (t, &v)| {
                        if v > best.1 {
                            (t, v)
                        } else {
                            best
                        }
                    },
                );
                (i, tok as u32, lp)
            })
            .fold((0, 0, f32::NEG_INFINITY), |best, c| {
                if c.2 > best.2 {
                    c
                } else {
                    best
                }
            });
        ids[pos] = token;
        total += lp;
    }
    Ok((ids, total))
}

/// What [`infill_text`] found for the blank.
#[derive(Debug, Clone, Serialize)]
pub struct Infill {
    /// The best filling of the blank.
    pub fill: String,
    /// The sentence with the blank filled.
    pub text: String,
    /// Every candidate with its log-probability, best first (with candidates), or the best
    /// greedy filling of each length tried with its mean per-token log-probability.
    pub ranking: Vec<(String, f32)>,
}

/// Fills the one `[MASK]` of `text` with a masked model (`spar lm infill`): with
/// `candidates`, ranks them by [`infill_scores`]; without, fills blanks of 1 to `max_len`
/// tokens by [`infill_greedy`] and keeps the filling with the best mean log-probability per
/// token. The sequence ends with the tokenizer's end-of-sequence token, as training sentences
/// do.
pub fn infill_text(
    model: &Llama,
    tokenizer: &TextTokenizer,
    text: &str,
    candidates: &[String],
    max_len: usize,
) -> Result<Infill> {
    if model.config().is_causal {
        return Err(LmError::InvalidArgument(
            "infilling needs a masked model (config.json \"is_causal\": false); this one is \
             causal"
                .into(),
        ));
    }
    let mask_id = tokenizer.token_to_id(MASK_TOKEN).ok_or_else(|| {
        LmError::InvalidArgument(format!("the tokenizer has no {MASK_TOKEN} token"))
    })?;
    let blank = crate::reversal::data::MASK_TEXT;
    let parts: Vec<&str> = text.split(blank).collect();
    let [before, after] = parts.as_slice() else {
        return Err(LmError::InvalidArgument(format!(
            "the text must contain {blank} exactly once, got {text:?}"
        )));
    };
    let left = tokenizer.encode(before)?;
    let mut right = tokenizer.encode(after)?;
    right.extend(tokenizer.eos_ids().first());
    let mut ranking: Vec<(String, f32)> = if candidates.is_empty() {
        if max_len == 0 {
            return Err(LmError::InvalidArgument(
                "max_len must be at least 1".into(),
            ));
        }
        (1..=max_len)
            .map(|n| {
                let mut ids = left.clone();
                ids.extend(std::iter::repeat_n(mask_id, n));
                ids.extend_from_slice(&right);
                let (filled, lp) = infill_greedy(model, &ids, mask_id)?;
                let fill = tokenizer.decode(&filled[left.len()..left.len() + n], true)?;
                Ok((fill, lp / n as f32))
            })
            .collect::<Result<_>>()?
    } else {
        let ids = candidates
            .iter()
            .map(|c| tokenizer.encode(c))
            .collect::<Result<Vec<_>>>()?;
        let scores = infill_scores(model, &left, &right, &ids, mask_id)?;
        candidates.iter().cloned().zip(scores).collect()
    };
    ranking.sort_by(|a, b| b.1.total_cmp(&a.1));
    let fill = ranking[0].0.clone();
    Ok(Infill {
        text: format!("{before}{fill}{after}"),
        fill,
        ranking,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;
    use rand::SeedableRng;

    #[test]
    fn weighted_cross_entropy_hand_case() {
        // Two positions over a vocabulary of 2. Position 0: logits [0, ln 3], target 1:
        // p = 3/4, loss -ln(3/4) = 0.287682. Position 1: logits [0, 0], target 0: p = 1/2,
        // loss ln 2 = 0.693147, but weight 0. Mean over weighted positions: 0.287682.
        let logits = Tensor::new(&[[[0f32, 3f32.ln()], [0.0, 0.0]]], &Device::Cpu).unwrap();
        let targets = Tensor::new(&[[1u32, 0]], &Device::Cpu).unwrap();
        let weights = Tensor::new(&[[1f32, 0.0]], &Device::Cpu).unwrap();
        let loss: f32 = weighted_cross_entropy(&logits, &targets, &weights)
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!((loss - 0.287_682).abs() < 1e-5, "{loss}");
        // Both weighted: (0.287682 + 0.693147) / 2 = 0.490415.
        let both = Tensor::new(&[[1f32, 1.0]], &Device::Cpu).unwrap();
        let loss: f32 = weighted_cross_entropy(&logits, &targets, &both)
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!((loss - 0.490_415).abs() < 1e-5, "{loss}");
        let none = Tensor::new(&[[0f32, 0.0]], &Device::Cpu).unwrap();
        assert!(weighted_cross_entropy(&logits, &targets, &none).is_err());
    }

    #[test]
    fn weighted_cross_entropy_gradient_matches_finite_differences() {
        let logits = crate::ops::tests::randn(&[2, 3, 5], 11);
        let targets = Tensor::new(&[[1u32, 4, 0], [2, 2, 3]], &Device::Cpu).unwrap();
        let weights = Tensor::new(&[[1f32, 0.0, 1.0], [0.0, 1.0, 1.0]], &Device::Cpu).unwrap();
        crate::ops::tests::check_gradient(&logits, |x| {
            weighted_cross_entropy(x, &targets, &weights)
        });
        // The analytic gradient at a masked-out position is exactly zero.
        let var = Var::from_tensor(&logits).unwrap();
        let grads = weighted_cross_entropy(var.as_tensor(), &targets, &weights)
            .unwrap()
            .backward()
            .unwrap();
        let g: Vec<Vec<Vec<f32>>> = grads.get(var.as_tensor()).unwrap().to_vec3().unwrap();
        assert!(g[0][1].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn masking_chooses_whole_words_and_follows_the_80_10_10_rule() {
        let tok = TextTokenizer::byte_level(&masked_special_tokens()).unwrap();
        let mask_id = tok.token_to_id(MASK_TOKEN).unwrap();
        assert_eq!(mask_id, 259);
        let mut ids = tok.encode("The father of Zorvin is Amelt.").unwrap();
        ids.push(256);
        let spans = word_spans(&ids);
        assert_eq!(spans.len(), 6);
        assert_eq!(spans[3], (14, 20)); // "Zorvin"
        let cfg = MaskingConfig::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let (mut masked, mut random, mut kept) = (0, 0, 0);
        for _ in 0..2000 {
            let m = mask_tokens(&ids, &cfg, mask_id, &mut rng);
            assert_eq!(m.targets, ids);
            // round(0.15 * 6) = 1 word: exactly one word's bytes are weighted.
            let chosen: Vec<usize> = (0..ids.len()).filter(|&i| m.weights[i] > 0.0).collect();
            assert!(spans
                .iter()
                .any(|&(s, e)| chosen == (s..e).collect::<Vec<_>>()));
            for (i, &id) in ids.iter().enumerate() {
                if m.weights[i] == 0.0 {
                    assert_eq!(m.input[i], id);
                } else if m.input[i] == mask_id {
                    masked += 1;
                } else if m.input[i] == id {
                    kept += 1;
                } else {
                    random += 1;
                }
            }
        }
        let n = (masked + random + kept) as f64;
        assert!((masked as f64 / n - 0.8).abs() < 0.03, "{masked}/{n}");
        // A random byte equals the original 1 time in 256, so "kept" is slightly above 0.1.
        assert!((random as f64 / n - 0.1).abs() < 0.02, "{random}/{n}");
        assert!((kept as f64 / n - 0.1).abs() < 0.02, "{kept}/{n}");
    }

    #[test]
    fn infill_scores_add_the_log_probabilities_at_the_blank() {
        let mut cfg = crate::Config::tiny(260, 16, 1, 2);
        cfg.is_causal = false;
        let weights = crate::model::init_weights(&cfg, 0.3, 1, &Device::Cpu).unwrap();
        let vb = candle_nn::VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
        let model = Llama::new(&cfg, &vb).unwrap();
        let (left, right) = (vec![10u32, 11], vec![12u32]);
        let candidates = vec![vec![5u32, 6], vec![7u32], vec![8u32, 9]];
        let scores = infill_scores(&model, &left, &right, &candidates, 259).unwrap();
        // By hand: one unpadded forward pass of [10, 11, M, M, 12] for the two-token ones.
        let ids = Tensor::new(&[[10u32, 11, 259, 259, 12]], &Device::Cpu).unwrap();
        let lp: Vec<Vec<f32>> = candle_nn::ops::log_softmax(
            &model.forward(&ids, &mut model.new_cache()).unwrap(),
            D::Minus1,
        )
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2()
        .unwrap();
        assert!((scores[0] - (lp[2][5] + lp[3][6])).abs() < 1e-4);
        assert!((scores[2] - (lp[2][8] + lp[3][9])).abs() < 1e-4);
        let (filled, _) = infill_greedy(&model, &[10, 11, 259, 12], 259).unwrap();
        assert_ne!(filled[2], 259);
        assert_eq!((filled[0], filled[1], filled[3]), (10, 11, 12));
    }
}
