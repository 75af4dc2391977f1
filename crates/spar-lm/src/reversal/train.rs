//! Training one arm of the reversal suite and writing its run directory (`spar lm reversal`).
//!
//! Every arm of a seed trains on the same corpus with the same sequence of batches (sentence
//! indices drawn from their own seeded stream), so arms differ only in the model and the
//! objective. The token arms share the tokenizer (bytes, three special tokens and the mask
//! token) and the model shape; the concept arm splits the same number of layers between its
//! two stacks.
//!
//! The run directory:
//!
//! ```text
//! config.toml      the resolved ReversalConfig, written before step 0
//! data/            the corpus (reversal::data::Corpus::write_jsonl)
//! metrics.jsonl    {"step", "learner/loss", "learner/tokens", "time/seconds"} every log_every
//!                  steps, then the evaluation line (reversal::eval::summarize, plus
//!                  "parameters", "time/seconds" at the end)
//! metrics.json     the evaluation alone, pretty-printed
//! queries.jsonl    every query's outcome (rank, greedy answer right or not)
//! checkpoint/      the model: a Hugging Face checkpoint (token arms) or the concept model
//! ```

use super::concept::ConceptModel;
use super::data::{Corpus, Sentence};
use super::eval::{evaluate, summarize, Answerer};
use super::spt::permute_sentence;
use super::{Arm, ReversalConfig};
use crate::checkpoint::{varmap_tensors, Checkpoint};
use crate::error::{LmError, Result};
use crate::mlm::{
    left_padded, mask_tokens, masked_special_tokens, weighted_cross_entropy, MASK_TOKEN,
};
use crate::model::{KvCache, Llama};
use crate::tokenizer::TextTokenizer;
use crate::train::{fresh_byte_model, PretrainConfig};
use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spar_core::atomic::write_atomic;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The evaluation ([`summarize`]), with `parameters` and `learner/tokens`.
    pub metrics: BTreeMap<String, f64>,
    /// The loss of every step.
    pub losses: Vec<f32>,
}

/// Progress callbacks of [`run`].
pub trait Progress {
    /// After each optimiser step.
    fn step(&mut self, step: usize, loss: f32);
    /// When evaluation starts, with the number of queries.
    fn eval_start(&mut self, queries: usize);
    /// After each query.
    fn query(&mut self);
}

/// A trainable token model of the run's shape (`causal` false: bidirectional).
fn token_model(
    cfg: &ReversalConfig,
    causal: bool,
    device: &Device,
) -> Result<(Checkpoint, Llama, candle_nn::VarMap)> {
    let tokenizer = TextTokenizer::byte_level(&masked_special_tokens())?;
    let m = &cfg.model;
    let shape = PretrainConfig {
        hidden_size: m.hidden_size,
        num_layers: m.num_layers,
        num_heads: m.num_heads,
        init_std: m.init_std,
        seed: cfg.seed,
        ..PretrainConfig::default()
    };
    let fresh = fresh_byte_model(tokenizer, &shape, 128, causal, device)?;
    let (model, varmap) = fresh.trainable()?;
    Ok((fresh, model, varmap))
}

/// Token ids of a training text: its bytes, then the end-of-sequence token.
fn sentence_ids(tok: &TextTokenizer, text: &str) -> Result<Vec<u32>> {
    let mut ids = tok.encode(text)?;
    ids.push(256);
    Ok(ids)
}

/// Next-token loss of a left-padded batch (pads neither predict nor are predicted).
fn causal_loss(model: &Llama, rows: &[Vec<u32>], device: &Device) -> Result<(Tensor, usize)> {
    let (ids, pads) = left_padded(rows, device)?;
    let len = ids.dim(1)?;
    let input = ids.narrow(1, 0, len - 1)?.contiguous()?;
    let targets = ids.narrow(1, 1, len - 1)?.contiguous()?;
    let weights: Vec<f32> = pads
        .iter()
        .flat_map(|&p| (0..len - 1).map(move |j| if j >= p { 1f32 } else { 0.0 }))
        .collect();
    let weights = Tensor::from_vec(weights, (rows.len(), len - 1), device)?;
    let mut cache = KvCache::with_left_padding(model.config().num_hidden_layers, pads);
    let logits = model.forward(&input, &mut cache)?;
    let tokens = rows.iter().map(Vec::len).sum();
    Ok((weighted_cross_entropy(&logits, &targets, &weights)?, tokens))
}

/// Masked-LM loss of a batch ([`mask_tokens`] on each row).
fn masked_loss(
    model: &Llama,
    rows: &[Vec<u32>],
    cfg: &ReversalConfig,
    mask_id: u32,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<(Tensor, usize)> {
    let masked: Vec<_> = rows
        .iter()
        .map(|r| mask_tokens(r, &cfg.masking, mask_id, rng))
        .collect();
    let inputs: Vec<Vec<u32>> = masked.iter().map(|m| m.input.clone()).collect();
    let (input, pads) = left_padded(&inputs, device)?;
    let len = input.dim(1)?;
    let mut targets = Vec::with_capacity(rows.len() * len);
    let mut weights = Vec::with_capacity(rows.len() * len);
    for (m, &p) in masked.iter().zip(&pads) {
        targets.extend(std::iter::repeat_n(0u32, p));
        targets.extend_from_slice(&m.targets);
        weights.extend(std::iter::repeat_n(0f32, p));
        weights.extend_from_slice(&m.weights);
    }
    let targets = Tensor::from_vec(targets, (rows.len(), len), device)?;
    let weights = Tensor::from_vec(weights, (rows.len(), len), device)?;
    let mut cache = KvCache::with_left_padding(model.config().num_hidden_layers, pads);
    let logits = model.forward(&input, &mut cache)?;
    let tokens = rows.iter().map(Vec::len).sum();
    Ok((weighted_cross_entropy(&logits, &targets, &weights)?, tokens))
}

/// Appends one JSON line to `metrics.jsonl`.
fn append_line(path: &Path, line: &serde_json::Value) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| LmError::io(path, e))?;
    writeln!(file, "{line}").map_err(|e| LmError::io(path, e))
}

/// Trains the arm of `cfg`, evaluates it on every query and writes the run directory `out`
/// (module docs). The configuration is validated before anything is written.
pub fn run(
    cfg: &ReversalConfig,
    out: &Path,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<RunSummary> {
    cfg.validate()?;
    let corpus = Corpus::generate(&cfg.corpus)?;
    std::fs::create_dir_all(out).map_err(|e| LmError::io(out, e))?;
    let resolved =
        toml::to_string(cfg).map_err(|e| LmError::InvalidArgument(format!("config: {e}")))?;
    write_atomic(&out.join("config.toml"), resolved.as_bytes())?;
    corpus.write_jsonl(&out.join("data"))?;
    let metrics_path = out.join("metrics.jsonl");
    if metrics_path.exists() {
        std::fs::remove_file(&metrics_path).map_err(|e| LmError::io(&metrics_path, e))?;
    }
    let sentences: Vec<Sentence> = corpus.training_sentences();
    let mut batches = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x0ba7_c4e5);
    let mut augment = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xa0_9e27);
    let params = ParamsAdamW {
        lr: cfg.train.learning_rate,
        weight_decay: cfg.train.weight_decay,
        ..ParamsAdamW::default()
    };
    let mut losses = Vec::with_capacity(cfg.train.steps);
    let mut tokens = 0usize;
    let started = std::time::Instant::now();
    let log = |step: usize, loss: f32, tokens: usize| -> Result<()> {
        if step.is_multiple_of(cfg.train.log_every) || step + 1 == cfg.train.steps {
            append_line(
                &metrics_path,
                &serde_json::json!({
                    "step": step, "learner/loss": loss, "learner/tokens": tokens,
                    "time/seconds": started.elapsed().as_secs_f64(),
                }),
            )?;
        }
        Ok(())
    };
    let check = |loss: f32, step: usize| -> Result<f32> {
        if loss.is_finite() {
            Ok(loss)
        } else {
            Err(LmError::InvalidArgument(format!(
                "loss became {loss} at step {step}: lower the learning rate ({})",
                cfg.train.learning_rate
            )))
        }
    };
    let (results, parameters) = match cfg.arm {
        Arm::Concept => {
            let model = ConceptModel::new(
                &cfg.concept,
                cfg.model.hidden_size,
                cfg.model.num_heads,
                cfg.model.init_std,
                cfg.seed,
                device,
            )?;
            let mut optimizer = AdamW::new(model.vars(), params)?;
            for step in 0..cfg.train.steps {
                let batch: Vec<Vec<String>> = (0..cfg.train.batch_size)
                    .map(|_| {
                        sentences[batches.gen_range(0..sentences.len())]
                            .units
                            .clone()
                    })
                    .collect();
                tokens += batch.iter().flatten().map(String::len).sum::<usize>();
                let loss = model.loss(&batch)?;
                optimizer.backward_step(&loss)?;
                let value = check(loss.to_scalar::<f32>()?, step)?;
                losses.push(value);
                log(step, value, tokens)?;
                progress.step(step, value);
            }
            model.save(&out.join("checkpoint"))?;
            progress.eval_start(corpus.facts.len() * 2);
            let results = evaluate(&Answerer::Concept(&model), &corpus, None, &mut || {
                progress.query()
            })?;
            (results, model.num_parameters())
        }
        arm => {
            let (fresh, model, varmap) = token_model(cfg, arm != Arm::Masked, device)?;
            let tok = fresh
                .tokenizer
                .clone()
                .expect("a fresh model has a tokenizer");
            let mask_id = tok
                .token_to_id(MASK_TOKEN)
                .expect("the mask token is special");
            let mut optimizer = AdamW::new(varmap.all_vars(), params)?;
            for step in 0..cfg.train.steps {
                let rows = (0..cfg.train.batch_size)
                    .map(|_| {
                        let s = &sentences[batches.gen_range(0..sentences.len())];
                        let text = match arm {
                            Arm::Spt => {
                                format!("{}.", permute_sentence(&s.units, &cfg.spt, &mut augment))
                            }
                            _ => s.text(),
                        };
                        sentence_ids(&tok, &text)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let (loss, n) = match arm {
                    Arm::Masked => masked_loss(&model, &rows, cfg, mask_id, &mut augment, device)?,
                    _ => causal_loss(&model, &rows, device)?,
                };
                tokens += n;
                optimizer.backward_step(&loss)?;
                let value = check(loss.to_scalar::<f32>()?, step)?;
                losses.push(value);
                log(step, value, tokens)?;
                progress.step(step, value);
            }
            let trained = Checkpoint {
                tensors: varmap_tensors(&varmap),
                ..fresh
            };
            trained.save(&out.join("checkpoint"))?;
            let frozen = trained.frozen()?;
            let answerer = if arm == Arm::Masked {
                Answerer::Masked(&frozen, &tok)
            } else {
                Answerer::Causal(&frozen, &tok)
            };
            let per_fact = super::eval::directions(&answerer).len();
            progress.eval_start(corpus.facts.len() * per_fact);
            let results = evaluate(&answerer, &corpus, None, &mut || progress.query())?;
            (results, trained.config.num_parameters())
        }
    };
    let mut metrics = summarize(&results, corpus.entities.len());
    metrics.insert("parameters".into(), parameters as f64);
    metrics.insert("learner/tokens".into(), tokens as f64);
    metrics.insert("time/seconds".into(), started.elapsed().as_secs_f64());
    let mut line = serde_json::Map::new();
    line.insert("step".into(), cfg.train.steps.into());
    for (k, v) in &metrics {
        line.insert(k.clone(), (*v).into());
    }
    append_line(&metrics_path, &serde_json::Value::Object(line))?;
    write_atomic(
        &out.join("metrics.json"),
        serde_json::to_string_pretty(&metrics)
            .expect("json")
            .as_bytes(),
    )?;
    let queries: String = results
        .iter()
        .map(|r| format!("{}\n", serde_json::to_string(r).expect("json")))
        .collect();
    write_atomic(&out.join("queries.jsonl"), queries.as_bytes())?;
    Ok(RunSummary { metrics, losses })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reversal::data::CorpusConfig;

    struct Quiet;
    impl Progress for Quiet {
        fn step(&mut self, _: usize, _: f32) {}
        fn eval_start(&mut self, _: usize) {}
        fn query(&mut self) {}
    }

    fn tiny(arm: Arm) -> ReversalConfig {
        let mut cfg = ReversalConfig::new(arm);
        cfg.corpus = CorpusConfig {
            seed: 1,
            pairs: 3,
            fathers: 1,
            children: 2,
        };
        cfg.model.hidden_size = 16;
        cfg.model.num_layers = 2;
        cfg.model.num_heads = 2;
        cfg.concept.wernicke_layers = 1;
        cfg.concept.broca_layers = 1;
        cfg.train.steps = 3;
        cfg.train.batch_size = 4;
        cfg.train.log_every = 1;
        cfg
    }

    #[test]
    fn every_arm_writes_its_run_directory() {
        for arm in Arm::ALL {
            let dir = std::env::temp_dir().join(format!(
                "spar-reversal-{}-{}",
                arm.name(),
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let summary = run(&tiny(arm), &dir, &Device::Cpu, &mut Quiet).unwrap();
            assert_eq!(summary.losses.len(), 3);
            for f in [
                "config.toml",
                "metrics.jsonl",
                "metrics.json",
                "queries.jsonl",
                "data/train.jsonl",
            ] {
                assert!(dir.join(f).exists(), "{arm:?}: {f}");
            }
            // Every (split, direction) of the arm is evaluated: 3 splits x 2 or 3 directions.
            let n: f64 = summary
                .metrics
                .iter()
                .filter(|(k, _)| k.ends_with("/n"))
                .map(|(_, v)| v)
                .sum();
            let per_fact = if arm == Arm::Concept { 2.0 } else { 3.0 };
            assert_eq!(n, per_fact * 3.0 * 5.0, "{arm:?}");
            let back: ReversalConfig =
                toml::from_str(&std::fs::read_to_string(dir.join("config.toml")).unwrap()).unwrap();
            assert_eq!(back, tiny(arm));
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn a_bad_config_writes_nothing() {
        let mut cfg = tiny(Arm::Causal);
        cfg.train.steps = 0;
        let dir = std::env::temp_dir().join(format!("spar-reversal-bad-{}", std::process::id()));
        assert!(run(&cfg, &dir, &Device::Cpu, &mut Quiet).is_err());
        assert!(!dir.exists());
    }
}
