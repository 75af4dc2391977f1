//! Next-token pretraining of a small model on a text, with the byte-level tokenizer.

use crate::checkpoint::{varmap_tensors, Checkpoint};
use crate::config::Config;
use crate::error::{LmError, Result};
use crate::lora::{Lora, LoraConfig};
use crate::model::init_weights;
use crate::model::Llama;
use crate::tokenizer::TextTokenizer;
use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Hyperparameters of [`pretrain`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainConfig {
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Number of attention heads.
    pub num_heads: usize,
    /// Tokens per training window.
    pub seq_len: usize,
    /// Windows per step.
    pub batch_size: usize,
    /// Optimiser steps.
    pub steps: usize,
    /// AdamW learning rate (Loshchilov and Hutter 2019).
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Standard deviation of the initial weights.
    pub init_std: f64,
    /// Seed of the initial weights and of the window positions.
    pub seed: u64,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            hidden_size: 128,
            num_layers: 4,
            num_heads: 4,
            seq_len: 128,
            batch_size: 32,
            steps: 500,
            learning_rate: 3e-3,
            weight_decay: 0.01,
            init_std: 0.02,
            seed: 0,
        }
    }
}

/// The special tokens of spar's byte-level models (ids 256, 257, 258).
pub const BYTE_SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Trains a fresh byte-level model on `text` and returns the checkpoint and the loss of every
/// step (mean next-token cross-entropy in nats). `on_step(step, loss)` runs after each step.
pub fn pretrain(
    text: &str,
    cfg: &PretrainConfig,
    device: &Device,
    mut on_step: impl FnMut(usize, f32),
) -> Result<(Checkpoint, Vec<f32>)> {
    let tokenizer = TextTokenizer::byte_level(&BYTE_SPECIAL_TOKENS)?;
    let tokens = tokenizer.encode(text)?;
    if tokens.len() <= cfg.seq_len + 1 {
        return Err(LmError::InvalidArgument(format!(
            "text has {} tokens; training windows need more than seq_len + 1 = {}",
            tokens.len(),
            cfg.seq_len + 1
        )));
    }
    let context = Config::tiny(1, 2, 1, 1)
        .max_position_embeddings
        .max(cfg.seq_len);
    let fresh = fresh_byte_model(tokenizer, cfg, context, true, device)?;
    let (model, varmap) = fresh.trainable()?;
    let losses = train_windows(
        &model,
        varmap.all_vars(),
        &tokens,
        cfg,
        device,
        &mut on_step,
    )?;
    let trained = Checkpoint {
        tensors: varmap_tensors(&varmap),
        ..fresh
    };
    Ok((trained, losses))
}

/// A freshly initialised model for `tokenizer` (byte-level: end of sequence 256) of `cfg`'s
/// shape (`Config::tiny`; weights from `cfg.init_std` and `cfg.seed`), with `context`
/// positions and causal or bidirectional attention.
pub fn fresh_byte_model(
    tokenizer: TextTokenizer,
    cfg: &PretrainConfig,
    context: usize,
    causal: bool,
    device: &Device,
) -> Result<Checkpoint> {
    let mut config = Config::tiny(
        tokenizer.vocab_size(),
        cfg.hidden_size,
        cfg.num_layers,
        cfg.num_heads,
    );
    config.max_position_embeddings = context;
    config.eos_token_id = Some(256);
    config.is_causal = causal;
    config.validate()?;
    Ok(Checkpoint {
        tensors: init_weights(&config, cfg.init_std, cfg.seed, device)?,
        config,
        tokenizer: Some(tokenizer),
    })
}

/// Next-token training of `vars` (the model's trainable tensors) on random windows of
/// `tokens`: AdamW, `cfg.steps` steps of `cfg.batch_size` windows of `cfg.seq_len + 1` tokens.
/// Returns the loss of every step.
pub fn train_windows(
    model: &Llama,
    vars: Vec<Var>,
    tokens: &[u32],
    cfg: &PretrainConfig,
    device: &Device,
    on_step: &mut dyn FnMut(usize, f32),
) -> Result<Vec<f32>> {
    let window = cfg.seq_len + 1;
    if tokens.len() < window {
        return Err(LmError::InvalidArgument(format!(
            "text has {} tokens; training windows need at least seq_len + 1 = {window}",
            tokens.len()
        )));
    }
    let params = ParamsAdamW {
        lr: cfg.learning_rate,
        weight_decay: cfg.weight_decay,
        ..ParamsAdamW::default()
    };
    let mut optimizer = AdamW::new(vars, params)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed);
    let mut losses = Vec::with_capacity(cfg.steps);
    for step in 0..cfg.steps {
        let mut batch = Vec::with_capacity(cfg.batch_size * window);
        for _ in 0..cfg.batch_size {
            let at = rng.gen_range(0..=tokens.len() - window);
            batch.extend_from_slice(&tokens[at..at + window]);
        }
        let batch = Tensor::from_vec(batch, (cfg.batch_size, window), device)?;
        let input = batch.narrow(1, 0, cfg.seq_len)?;
        let target = batch.narrow(1, 1, cfg.seq_len)?;
        let logits = model.forward(&input, &mut model.new_cache())?;
        let loss = candle_nn::loss::cross_entropy(&logits.flatten_to(1)?, &target.flatten_all()?)?;
        optimizer.backward_step(&loss)?;
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() {
            return Err(LmError::InvalidArgument(format!(
                "loss became {value} at step {step}: lower the learning rate ({})",
                cfg.learning_rate
            )));
        }
        losses.push(value);
        on_step(step, value);
    }
    Ok(losses)
}

/// What [`finetune`] trains.
#[derive(Debug, Clone)]
pub enum FinetuneMode {
    /// Every weight.
    Full,
    /// A fresh LoRA adapter over the frozen base.
    Lora(LoraConfig),
}

/// What [`finetune`] produced.
#[derive(Debug)]
pub enum Finetuned {
    /// The whole model.
    Full(Box<Checkpoint>),
    /// The adapter (the base is unchanged).
    Lora(Lora),
}

/// Next-token fine-tuning of the model in `base` on `text` (its own tokenizer), in full or with
/// a LoRA adapter. `cfg`'s architecture fields are ignored; its optimiser and window fields
/// apply.
pub fn finetune(
    base: &Checkpoint,
    text: &str,
    mode: &FinetuneMode,
    cfg: &PretrainConfig,
    device: &Device,
    mut on_step: impl FnMut(usize, f32),
) -> Result<(Finetuned, Vec<f32>)> {
    let tokenizer = base.tokenizer.as_ref().ok_or_else(|| {
        LmError::Tokenizer("the base model has no tokenizer to encode the text with".into())
    })?;
    let tokens = tokenizer.encode(text)?;
    match mode {
        FinetuneMode::Full => {
            let (model, varmap) = base.trainable()?;
            let losses = train_windows(
                &model,
                varmap.all_vars(),
                &tokens,
                cfg,
                device,
                &mut on_step,
            )?;
            let trained = Checkpoint {
                tensors: varmap_tensors(&varmap),
                ..base.clone()
            };
            Ok((Finetuned::Full(Box::new(trained)), losses))
        }
        FinetuneMode::Lora(lora_cfg) => {
            let mut model = base.frozen()?;
            let lora = Lora::init(&mut model, lora_cfg.clone(), cfg.seed)?;
            let losses = train_windows(&model, lora.vars(), &tokens, cfg, device, &mut on_step)?;
            Ok((Finetuned::Lora(lora), losses))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{generate_text, SamplingParams};

    #[test]
    fn tiny_model_learns_a_repetitive_text() {
        let text = "the quick brown fox jumps over the lazy dog. ".repeat(40);
        let cfg = PretrainConfig {
            hidden_size: 32,
            num_layers: 2,
            num_heads: 2,
            seq_len: 48,
            batch_size: 8,
            steps: 300,
            learning_rate: 1e-2,
            ..PretrainConfig::default()
        };
        let (ckpt, losses) = pretrain(&text, &cfg, &Device::Cpu, |_, _| {}).unwrap();
        // Untrained: about ln(259) = 5.56 nats. The text has period 45, so a model that has
        // learnt it predicts almost every byte; 0.3 nats is far below any bigram model of it.
        assert!((losses[0] - 5.56).abs() < 0.3, "first loss {}", losses[0]);
        let tail = losses[losses.len() - 10..].iter().sum::<f32>() / 10.0;
        assert!(tail < 0.3, "mean loss of the last 10 steps {tail}");
        // The trained model continues the text greedily.
        let model = ckpt.frozen().unwrap();
        let tok = ckpt.tokenizer.as_ref().unwrap();
        let out = generate_text(
            &model,
            tok,
            &["the quick brown fox "],
            false,
            &SamplingParams::greedy(15),
        )
        .unwrap();
        assert_eq!(out[0].text, "jumps over the ");
    }
}
