//! Batched, seeded sampling with a KV cache.
//!
//! Prompts of different lengths share one batch by left padding (see [`KvCache`]). Each
//! sequence draws from its own random stream (`seed`, stream = its index in the batch), so a
//! fixed seed reproduces the same completions.

use crate::error::{LmError, Result};
use crate::model::{KvCache, Llama};
use crate::tokenizer::TextTokenizer;
use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How to pick each next token.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; 0 picks the most likely token (greedy).
    pub temperature: f64,
    /// Nucleus sampling (Holtzman et al. 2020): keep the smallest set of most likely tokens
    /// whose probability reaches `top_p`; 1 keeps all.
    pub top_p: f64,
    /// Keep only the `top_k` most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Most new tokens per sequence.
    pub max_tokens: usize,
    /// Texts that end a completion (the completion's text stops before them).
    pub stop: Vec<String>,
    /// Seed of the random streams.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            max_tokens: 64,
            stop: Vec::new(),
            seed: 0,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding of at most `max_tokens` tokens.
    pub fn greedy(max_tokens: usize) -> SamplingParams {
        SamplingParams {
            temperature: 0.0,
            max_tokens,
            ..SamplingParams::default()
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(LmError::InvalidArgument(m));
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad(format!("temperature {} (must be >= 0)", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p {} (must be in (0, 1])", self.top_p));
        }
        Ok(())
    }
}

/// Why a completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-sequence token or a stop string.
    Stop,
    /// `max_tokens` was reached.
    Length,
}

/// One sampled completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The sampled token ids, the end-of-sequence token included when one ended it.
    pub token_ids: Vec<u32>,
    /// The decoded text (special tokens skipped), cut before a stop string.
    pub text: String,
    /// Log-probability of each sampled token under the distribution it was drawn from (after
    /// temperature, top-k and top-p; for greedy decoding, the model's own distribution).
    pub logprobs: Vec<f32>,
    /// Why it ended.
    pub finish_reason: FinishReason,
}

/// Picks a token from `logits` and returns it with its log-probability (see
/// [`Completion::logprobs`]).
pub fn pick_token(logits: &[f32], params: &SamplingParams, rng: &mut impl Rng) -> (u32, f32) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if params.temperature <= 0.0 {
        let best = logits
            .iter()
            .enumerate()
            .fold(0, |best, (i, &v)| if v > logits[best] { i } else { best });
        let log_z = max + logits.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
        return (best as u32, logits[best] - log_z);
    }
    let inv_t = 1.0 / params.temperature as f32;
    let mut probs: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as u32, ((v - max) * inv_t).exp()))
        .collect();
    let truncate = params.top_k > 0 || params.top_p < 1.0;
    if truncate {
        probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if params.top_k > 0 {
            probs.truncate(params.top_k.max(1));
        }
        if params.top_p < 1.0 {
            let total: f32 = probs.iter().map(|p| p.1).sum();
            let mut cumulative = 0.0;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                cumulative += p.1 / total;
                if cumulative >= params.top_p as f32 {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
        }
    }
    let total: f32 = probs.iter().map(|p| p.1).sum();
    let mut u = rng.gen::<f32>() * total;
    let mut chosen = probs[probs.len() - 1];
    for &p in &probs {
        if u < p.1 {
            chosen = p;
            break;
        }
        u -= p.1;
    }
    (chosen.0, (chosen.1 / total).ln())
}

/// Samples a completion of every prompt (token ids), in one batch. Sequence `i` draws from
/// random stream `i` of `params.seed`.
pub fn generate(
    model: &Llama,
    tokenizer: &TextTokenizer,
    prompts: &[Vec<u32>],
    params: &SamplingParams,
) -> Result<Vec<Completion>> {
    let streams: Vec<(u64, u64)> = (0..prompts.len() as u64)
        .map(|i| (params.seed, i))
        .collect();
    generate_streams(
        model,
        tokenizer,
        prompts,
        params,
        &streams,
        &mut |_, _, _| {},
    )
}

/// [`generate`] with a random stream of its own for each sequence (`(seed, stream)`, so that
/// requests batched together by a server sample exactly as they would alone) and a callback
/// `on_token(sequence, token, logprob)` called as each token is drawn (for streaming).
/// `params.seed` is ignored.
pub fn generate_streams(
    model: &Llama,
    tokenizer: &TextTokenizer,
    prompts: &[Vec<u32>],
    params: &SamplingParams,
    streams: &[(u64, u64)],
    on_token: &mut dyn FnMut(usize, u32, f32),
) -> Result<Vec<Completion>> {
    params.validate()?;
    if streams.len() != prompts.len() {
        return Err(LmError::InvalidArgument(format!(
            "{} random streams for {} prompts",
            streams.len(),
            prompts.len()
        )));
    }
    if prompts.iter().any(|p| p.is_empty()) {
        return Err(LmError::InvalidArgument("empty prompt".to_string()));
    }
    let b_sz = prompts.len();
    if b_sz == 0 {
        return Ok(Vec::new());
    }
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let pads: Vec<usize> = prompts.iter().map(|p| longest - p.len()).collect();
    let padded: Vec<u32> = prompts
        .iter()
        .zip(&pads)
        .flat_map(|(p, &pad)| std::iter::repeat_n(0, pad).chain(p.iter().copied()))
        .collect();
    let device = model.device();
    let mut cache = KvCache::with_left_padding(model.config().num_hidden_layers, pads);
    let mut rngs: Vec<ChaCha8Rng> = streams
        .iter()
        .map(|&(seed, stream)| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(stream);
            rng
        })
        .collect();
    let mut out: Vec<Completion> = (0..b_sz)
        .map(|_| Completion {
            token_ids: Vec::new(),
            text: String::new(),
            logprobs: Vec::new(),
            finish_reason: FinishReason::Length,
        })
        .collect();
    let mut done = vec![false; b_sz];
    let mut input = Tensor::from_vec(padded, (b_sz, longest), device)?;
    for step in 0..params.max_tokens {
        let hidden = model.forward_hidden(&input, &mut cache)?;
        let last = hidden.narrow(1, hidden.dim(1)? - 1, 1)?;
        let logits: Vec<Vec<f32>> = model.logits(&last)?.squeeze(1)?.to_vec2()?;
        let mut next = vec![0u32; b_sz];
        for i in 0..b_sz {
            if done[i] {
                next[i] = out[i].token_ids.last().copied().unwrap_or(0);
                continue;
            }
            let (token, logprob) = pick_token(&logits[i], params, &mut rngs[i]);
            next[i] = token;
            let c = &mut out[i];
            c.token_ids.push(token);
            c.logprobs.push(logprob);
            on_token(i, token, logprob);
            if tokenizer.eos_ids().contains(&token) {
                c.finish_reason = FinishReason::Stop;
                done[i] = true;
            } else if !params.stop.is_empty() {
                let text = tokenizer.decode(&c.token_ids, true)?;
                if params.stop.iter().any(|s| text.contains(s.as_str())) {
                    c.finish_reason = FinishReason::Stop;
                    done[i] = true;
                }
            }
        }
        if done.iter().all(|&d| d) || step + 1 == params.max_tokens {
            break;
        }
        input = Tensor::from_vec(next, (b_sz, 1), device)?;
    }
    for c in &mut out {
        let mut text = tokenizer.decode(&c.token_ids, true)?;
        if let Some(cut) = params
            .stop
            .iter()
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            text.truncate(cut);
        }
        c.text = text;
    }
    Ok(out)
}

/// Samples completions of text prompts (encoded with `tokenizer`, a BOS token prepended when
/// the tokenizer has one and `add_bos`).
pub fn generate_text(
    model: &Llama,
    tokenizer: &TextTokenizer,
    prompts: &[&str],
    add_bos: bool,
    params: &SamplingParams,
) -> Result<Vec<Completion>> {
    let ids = prompts
        .iter()
        .map(|p| {
            let mut ids: Vec<u32> = match (add_bos, tokenizer.bos_id()) {
                (true, Some(bos)) => vec![bos],
                _ => Vec::new(),
            };
            ids.extend(tokenizer.encode(p)?);
            Ok(ids)
        })
        .collect::<Result<Vec<_>>>()?;
    generate(model, tokenizer, &ids, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_picks_argmax_with_its_model_logprob() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (t, lp) = pick_token(&[0.0, 2.0, 1.0], &SamplingParams::greedy(1), &mut rng);
        assert_eq!(t, 1);
        // log(e^2 / (1 + e^2 + e)) = 2 - ln(1 + e + e^2) = -0.407606
        assert!((lp - (-0.407_606)).abs() < 1e-5, "{lp}");
    }

    #[test]
    fn top_k_and_top_p_restrict_the_support() {
        let logits = [0.0, 3.0, 2.0, 1.0];
        let top1 = SamplingParams {
            top_k: 1,
            ..SamplingParams::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..50 {
            assert_eq!(pick_token(&logits, &top1, &mut rng), (1, 0.0));
        }
        // Probabilities are e^[0,3,2,1]/Z = [0.032, 0.644, 0.237, 0.087]: top_p 0.8 keeps
        // tokens 1 and 2, renormalised to 0.731 and 0.269.
        let nucleus = SamplingParams {
            top_p: 0.8,
            ..SamplingParams::default()
        };
        let mut seen = [0usize; 4];
        for _ in 0..2000 {
            let (t, lp) = pick_token(&logits, &nucleus, &mut rng);
            seen[t as usize] += 1;
            let expected = if t == 1 { 0.731_059 } else { 0.268_941 };
            assert!((lp.exp() - expected).abs() < 1e-4);
        }
        assert_eq!((seen[0], seen[3]), (0, 0));
        let share = seen[1] as f64 / 2000.0;
        assert!((share - 0.731).abs() < 0.04, "{share}");
    }

    #[test]
    fn temperature_sampling_matches_the_softmax() {
        // Temperature 2 on logits [0, ln 9]: probabilities e^[0, ln 3] / 4 = [0.25, 0.75].
        let params = SamplingParams {
            temperature: 2.0,
            ..SamplingParams::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let ones = (0..4000)
            .filter(|_| pick_token(&[0.0, 9f32.ln()], &params, &mut rng).0 == 1)
            .count();
        // Standard deviation of the count: sqrt(4000 * 0.75 * 0.25) = 27.
        assert!((ones as i64 - 3000).abs() < 110, "{ones}");
    }
}
