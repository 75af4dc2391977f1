//! Timings for `spar lm bench`, on the workloads of `scripts/lm/bench_torch.py` (the same
//! models in PyTorch): a training step (forward, backward, AdamW) and KV-cache sampling.

use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::error::Result;
use crate::model::{init_weights, Llama};
use crate::sample::{generate, SamplingParams};
use crate::tokenizer::TextTokenizer;
use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::time::Instant;

/// A benchmark model and batch shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BenchShape {
    /// Decoder layers.
    pub layers: usize,
    /// Residual width.
    pub hidden: usize,
    /// Attention heads.
    pub heads: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Sequences per batch.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
}

/// Config A of the issue: 4 layers, width 128, 4 heads, vocab 256, batch 32, sequence 128.
pub const CONFIG_A: BenchShape = BenchShape {
    layers: 4,
    hidden: 128,
    heads: 4,
    vocab: 256,
    batch: 32,
    seq_len: 128,
};

/// Config B of the issue: 6 layers, width 256, 8 heads, vocab 256, batch 16, sequence 256.
pub const CONFIG_B: BenchShape = BenchShape {
    layers: 6,
    hidden: 256,
    heads: 8,
    vocab: 256,
    batch: 16,
    seq_len: 256,
};

/// Median and all samples of a timing, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Median.
    pub median_ms: f64,
    /// Every measured sample (warm-up excluded).
    pub samples_ms: Vec<f64>,
}

fn median(mut v: Vec<f64>) -> Timing {
    let samples = v.clone();
    v.sort_by(f64::total_cmp);
    Timing {
        median_ms: v[v.len() / 2],
        samples_ms: samples,
    }
}

fn model_config(shape: &BenchShape) -> Config {
    let mut cfg = Config::tiny(shape.vocab, shape.hidden, shape.layers, shape.heads);
    cfg.max_position_embeddings = 1024;
    cfg
}

/// Milliseconds per training step (forward, cross-entropy, backward, AdamW) on random tokens:
/// `warmup` untimed steps, then the median of `steps`.
pub fn train_step(
    shape: &BenchShape,
    warmup: usize,
    steps: usize,
    device: &Device,
) -> Result<Timing> {
    let cfg = model_config(shape);
    let ckpt = Checkpoint {
        tensors: init_weights(&cfg, 0.02, 0, device)?,
        config: cfg,
        tokenizer: None,
    };
    let (model, varmap) = ckpt.trainable()?;
    let mut opt = AdamW::new(varmap.all_vars(), ParamsAdamW::default())?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut times = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        let n = shape.batch * (shape.seq_len + 1);
        let tokens: Vec<u32> = (0..n)
            .map(|_| rng.gen_range(0..shape.vocab as u32))
            .collect();
        let batch = Tensor::from_vec(tokens, (shape.batch, shape.seq_len + 1), device)?;
        let start = Instant::now();
        let logits = model.forward(&batch.narrow(1, 0, shape.seq_len)?, &mut model.new_cache())?;
        let loss = candle_nn::loss::cross_entropy(
            &logits.flatten_to(1)?,
            &batch.narrow(1, 1, shape.seq_len)?.flatten_all()?,
        )?;
        opt.backward_step(&loss)?;
        loss.to_scalar::<f32>()?;
        if i >= warmup {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(median(times))
}

/// New tokens per second of KV-cache sampling (temperature 1) on a random model of `shape`:
/// `shape.batch` prompts of `prompt_len` tokens, `new_tokens` each (no early stop). Returns
/// (tokens per second, timing of whole runs).
pub fn sampling(
    shape: &BenchShape,
    prompt_len: usize,
    new_tokens: usize,
    runs: usize,
    device: &Device,
) -> Result<(f64, Timing)> {
    let cfg = model_config(shape);
    let weights = init_weights(&cfg, 0.02, 0, device)?;
    let vb = candle_nn::VarBuilder::from_tensors(weights, candle_core::DType::F32, device);
    let model = Llama::new(&cfg, &vb)?;
    // No end-of-sequence token, so every sequence runs the full length.
    let tokenizer = TextTokenizer::byte_level(&[])?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let prompts: Vec<Vec<u32>> = (0..shape.batch)
        .map(|_| (0..prompt_len).map(|_| rng.gen_range(0..256)).collect())
        .collect();
    let params = SamplingParams {
        max_tokens: new_tokens,
        ..SamplingParams::default()
    };
    generate(&model, &tokenizer, &prompts, &params)?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        generate(&model, &tokenizer, &prompts, &params)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let timing = median(times);
    let tokens = (shape.batch * new_tokens) as f64;
    Ok((tokens / (timing.median_ms / 1e3), timing))
}

/// New tokens per second of greedy sampling from a loaded model (one prompt, `new_tokens`
/// tokens, prompt processing included, as llama-cpp-python's timing in the same script).
pub fn model_sampling(
    model: &Llama,
    tokenizer: &TextTokenizer,
    prompt: &[u32],
    new_tokens: usize,
    runs: usize,
) -> Result<(f64, Timing)> {
    let params = SamplingParams::greedy(new_tokens);
    let mut times = Vec::with_capacity(runs);
    let mut produced = 0;
    generate(model, tokenizer, &[prompt.to_vec()], &params)?;
    for _ in 0..runs {
        let start = Instant::now();
        let out = generate(model, tokenizer, &[prompt.to_vec()], &params)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        produced = out[0].token_ids.len();
    }
    let timing = median(times);
    Ok((produced as f64 / (timing.median_ms / 1e3), timing))
}
