//! `spar lm ...`: language models (the logic lives in `spar_lm::cli`).

use std::path::PathBuf;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use spar_lm::bench::{self, BenchShape, CONFIG_A, CONFIG_B};
use spar_lm::cli::{self as lm, FinetuneArgs, PretrainArgs, SampleArgs};
use spar_lm::device::default_device;
use spar_lm::load::{load_model, load_model_with_lora, GgufMode};
use spar_lm::lora::LoraConfig;
use spar_lm::sample::SamplingParams;
use spar_lm::score::next_token_logits;
use spar_lm::train::FinetuneMode;
use spar_lm::train::PretrainConfig;

use crate::report::print_json;

/// Arguments of `spar lm`.
#[derive(Debug, clap::Args)]
pub struct LmArgs {
    #[command(subcommand)]
    command: LmCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LmCommand {
    /// Continue a prompt with a model (a checkpoint directory or a .gguf file).
    #[command(after_help = crate::examples::LM_SAMPLE)]
    Sample(SampleCli),
    /// Train a small byte-level model on a text file (next-token prediction).
    #[command(after_help = crate::examples::LM_PRETRAIN)]
    Pretrain(PretrainCli),
    /// Fine-tune a model on a text file (next-token prediction), in full or with a LoRA adapter.
    #[command(after_help = crate::examples::LM_FINETUNE)]
    Finetune(FinetuneCli),
    /// Describe a model: architecture, size, tokenizer, chat template.
    #[command(after_help = crate::examples::LM_INFO)]
    Info(InfoCli),
    /// Next-token logits after a prompt, as JSON (for comparisons with other implementations).
    #[command(after_help = crate::examples::LM_LOGITS)]
    Logits(LogitsCli),
    /// Dequantise a .gguf file into a Hugging Face checkpoint directory.
    #[command(after_help = crate::examples::LM_EXPORT)]
    Export(ExportCli),
    /// Fold a LoRA adapter into its base model and write a plain checkpoint.
    #[command(after_help = crate::examples::LM_MERGE)]
    Merge(MergeCli),
    /// Time a training step and KV-cache sampling (configs A and B of docs/lm.md).
    #[command(after_help = crate::examples::LM_BENCH)]
    Bench(BenchCli),
    /// Generate a data set: `spar lm data reversal --out DIR` (synthetic facts, JSONL).
    #[command(after_help = crate::examples::LM_DATA)]
    Data(crate::reversal::DataCli),
    /// Train one arm of the reversal suite (causal, masked, spt, concept) on synthetic facts
    /// and print forward and reverse accuracy per split as JSON (docs/reversal.md).
    #[command(after_help = crate::examples::LM_REVERSAL)]
    Reversal(crate::reversal::ReversalCli),
    /// Semantic-aware permutation of a text given as lines of units ("A | B | C"), for
    /// pretraining (SPT).
    #[command(after_help = crate::examples::LM_SPT)]
    Spt(crate::reversal::SptCli),
    /// Fill the [MASK] blank of a text with a masked (bidirectional) model.
    #[command(after_help = crate::examples::LM_INFILL)]
    Infill(crate::reversal::InfillCli),
}

#[derive(Debug, clap::Args)]
struct ModelFlags {
    /// A checkpoint directory (config.json, model.safetensors, tokenizer.json) or a .gguf file.
    #[arg(long)]
    model: PathBuf,
    /// Load a .gguf file dequantised to f32 (the trainable model) instead of quantised.
    #[arg(long)]
    dequantize: bool,
    /// A LoRA adapter directory (PEFT layout: adapter_config.json, adapter_model.safetensors)
    /// to apply on top of the model.
    #[arg(long)]
    lora: Option<PathBuf>,
}

impl ModelFlags {
    fn mode(&self) -> GgufMode {
        if self.dequantize {
            GgufMode::Dequantized
        } else {
            GgufMode::Quantized
        }
    }
}

#[derive(Debug, clap::Args)]
struct SampleCli {
    #[command(flatten)]
    model: ModelFlags,
    /// The prompt (raw text, or the user's message with --chat).
    #[arg(long)]
    prompt: String,
    /// Wrap the prompt in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// Prepend the tokenizer's beginning-of-sequence token.
    #[arg(long)]
    bos: bool,
    /// Most new tokens.
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Nucleus sampling threshold (1 keeps all tokens).
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Keep only the k most likely tokens (0 keeps all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Stop when the completion contains this text (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print JSON (prompt and completion token ids, text, log-probabilities).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct PretrainCli {
    /// The training text file.
    #[arg(long)]
    data: PathBuf,
    /// The checkpoint directory to write.
    #[arg(long)]
    out: PathBuf,
    /// Optimiser steps.
    #[arg(long, default_value_t = 500)]
    steps: usize,
    /// Residual width of the model.
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Decoder layers.
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// Attention heads.
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Tokens per training window.
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    /// Windows per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Seed of the initial weights and the windows.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Debug, clap::Args)]
struct FinetuneCli {
    /// The base model: a checkpoint directory or a .gguf file (dequantised to f32).
    #[arg(long)]
    model: PathBuf,
    /// The training text file.
    #[arg(long)]
    data: PathBuf,
    /// The directory to write: a checkpoint, or with --lora-rank an adapter (PEFT layout).
    #[arg(long)]
    out: PathBuf,
    /// Train a LoRA adapter of this rank over the frozen base instead of every weight.
    #[arg(long)]
    lora_rank: Option<usize>,
    /// LoRA scale numerator (the update is scaled by alpha / rank).
    #[arg(long, default_value_t = 16.0)]
    lora_alpha: f64,
    /// Projections the adapter targets (comma-separated), or all-linear.
    #[arg(long, value_delimiter = ',', default_value = "q_proj,v_proj", value_parser = crate::choices::lora_target())]
    lora_targets: Vec<String>,
    /// Optimiser steps.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Tokens per training window.
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    /// Windows per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// Seed of the adapter's initial weights and of the windows.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Debug, clap::Args)]
struct InfoCli {
    /// A checkpoint directory or a .gguf file.
    #[arg(long)]
    model: PathBuf,
}

#[derive(Debug, clap::Args)]
struct LogitsCli {
    #[command(flatten)]
    model: ModelFlags,
    /// The prompt text (raw).
    #[arg(long, conflicts_with = "ids")]
    prompt: Option<String>,
    /// The prompt as comma-separated token ids.
    #[arg(long, value_delimiter = ',')]
    ids: Vec<u32>,
}

#[derive(Debug, clap::Args)]
struct ExportCli {
    /// The .gguf file.
    #[arg(long)]
    gguf: PathBuf,
    /// The checkpoint directory to write.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct MergeCli {
    /// The base model: a checkpoint directory or a .gguf file (dequantised).
    #[arg(long)]
    model: PathBuf,
    /// The LoRA adapter directory.
    #[arg(long)]
    lora: PathBuf,
    /// The checkpoint directory to write.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct BenchCli {
    /// Training steps timed per config (after 3 warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Also time greedy sampling of this model (checkpoint directory or .gguf).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Prompt for --model.
    #[arg(long, default_value = "The capital of France is")]
    prompt: String,
    /// Which parts to run: train, sample, model (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "train,sample", value_parser = crate::choices::bench_part())]
    parts: Vec<String>,
}

/// Sets `RAYON_NUM_THREADS` to the number of CPUs unless the user set it: candle asks the OS
/// for the CPU count on every matmul otherwise (`docs/candle.md`).
pub fn set_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}

/// Runs `spar lm ...`.
pub fn run(args: &LmArgs) -> anyhow::Result<()> {
    set_threads();
    let device = default_device();
    match &args.command {
        LmCommand::Sample(a) => {
            let out = lm::sample(
                &SampleArgs {
                    model: a.model.model.clone(),
                    prompt: a.prompt.clone(),
                    chat: a.chat,
                    mode: a.model.mode(),
                    lora: a.model.lora.clone(),
                    add_bos: a.bos,
                    params: SamplingParams {
                        temperature: a.temperature,
                        top_p: a.top_p,
                        top_k: a.top_k,
                        max_tokens: a.max_tokens,
                        stop: a.stop.clone(),
                        seed: a.seed,
                    },
                },
                &device,
            )
            .with_context(|| format!("sampling from {}", a.model.model.display()))?;
            if a.json {
                print_json(&out)?;
            } else {
                println!("{}", out.text);
            }
        }
        LmCommand::Pretrain(a) => {
            let config = PretrainConfig {
                hidden_size: a.hidden,
                num_layers: a.layers,
                num_heads: a.heads,
                seq_len: a.seq_len,
                batch_size: a.batch,
                steps: a.steps,
                learning_rate: a.lr,
                seed: a.seed,
                ..PretrainConfig::default()
            };
            let bar = step_bar(a.steps);
            let args = PretrainArgs {
                data: a.data.clone(),
                out: a.out.clone(),
                config,
            };
            let losses = lm::pretrain(&args, &device, |_, loss| {
                bar.set_message(format!("loss {loss:.4}"));
                bar.inc(1);
            })?;
            bar.finish();
            print_curve(&losses);
            eprintln!("wrote {}", a.out.display());
        }
        LmCommand::Finetune(a) => {
            let mode = match a.lora_rank {
                Some(r) => {
                    let targets: Vec<&str> = a.lora_targets.iter().map(String::as_str).collect();
                    FinetuneMode::Lora(LoraConfig::new(r, a.lora_alpha, &targets))
                }
                None => FinetuneMode::Full,
            };
            let config = PretrainConfig {
                seq_len: a.seq_len,
                batch_size: a.batch,
                steps: a.steps,
                learning_rate: a.lr,
                seed: a.seed,
                weight_decay: 0.0,
                ..PretrainConfig::default()
            };
            let bar = step_bar(a.steps);
            let args = FinetuneArgs {
                model: a.model.clone(),
                data: a.data.clone(),
                out: a.out.clone(),
                mode,
                config,
            };
            let losses = lm::finetune(&args, &device, |_, loss| {
                bar.set_message(format!("loss {loss:.4}"));
                bar.inc(1);
            })?;
            bar.finish();
            print_curve(&losses);
            eprintln!("wrote {}", a.out.display());
        }
        LmCommand::Info(a) => print!("{}", lm::info(&a.model)?),
        LmCommand::Logits(a) => {
            let loaded = load_model_with_lora(
                &a.model.model,
                a.model.mode(),
                a.model.lora.as_deref(),
                &device,
            )?;
            let ids = match &a.prompt {
                Some(p) => loaded.tokenizer.encode(p)?,
                None => a.ids.clone(),
            };
            anyhow::ensure!(!ids.is_empty(), crate::UsageError("empty prompt".into()));
            let logits = next_token_logits(&loaded.model, &ids)?;
            print_json(&serde_json::json!({ "ids": ids, "logits": logits }))?;
        }
        LmCommand::Export(a) => {
            let ckpt = lm::export_gguf(&a.gguf, &a.out, &device)?;
            eprintln!(
                "wrote {} ({} parameters)",
                a.out.display(),
                ckpt.config.num_parameters()
            );
        }
        LmCommand::Merge(a) => {
            let ckpt = lm::merge_lora(&a.model, &a.lora, &a.out, &device)?;
            eprintln!(
                "wrote {} ({} parameters)",
                a.out.display(),
                ckpt.config.num_parameters()
            );
        }
        LmCommand::Bench(a) => bench_cmd(a, &device)?,
        LmCommand::Data(a) => crate::reversal::data(a)?,
        LmCommand::Reversal(a) => crate::reversal::reversal(a)?,
        LmCommand::Spt(a) => crate::reversal::spt(a)?,
        LmCommand::Infill(a) => crate::reversal::infill(a)?,
    }
    Ok(())
}

fn step_bar(steps: usize) -> ProgressBar {
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps, {msg} [{elapsed}<{eta}]")
            .expect("valid template"),
    );
    bar
}

/// The loss curve, ten points, on stdout (every step is in the run's loss.csv).
fn print_curve(losses: &[f32]) {
    let every = (losses.len() / 10).max(1);
    for (i, l) in losses.iter().enumerate() {
        if i % every == 0 || i + 1 == losses.len() {
            println!("step {i:>6}  loss {l:.4}");
        }
    }
}

fn bench_cmd(a: &BenchCli, device: &candle_core::Device) -> anyhow::Result<()> {
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_default();
    let mut report = serde_json::json!({ "threads": threads });
    let wants = |p: &str| a.parts.iter().any(|x| x == p);
    if wants("train") {
        for (name, shape) in [("A", CONFIG_A), ("B", CONFIG_B)] {
            let t = bench::train_step(&shape, 3, a.steps, device)?;
            eprintln!("train step config {name}: {:.1} ms", t.median_ms);
            report[format!("train_{name}")] = serde_json::to_value(&t)?;
        }
    }
    if wants("sample") {
        let shape = BenchShape { ..CONFIG_A };
        let (tps, t) = bench::sampling(&shape, 16, 64, 5, device)?;
        eprintln!("sampling config A, batch 32, 64 new tokens: {tps:.0} tokens/s");
        report["sample_A_tokens_per_s"] = tps.into();
        report["sample_A"] = serde_json::to_value(&t)?;
    }
    if let (true, Some(path)) = (wants("model"), &a.model) {
        let loaded = load_model(path, GgufMode::Quantized, device)?;
        let ids = loaded.tokenizer.encode(&a.prompt)?;
        let (tps, t) = bench::model_sampling(&loaded.model, &loaded.tokenizer, &ids, 64, 5)?;
        eprintln!("greedy sampling of {}: {tps:.1} tokens/s", path.display());
        report["model_tokens_per_s"] = tps.into();
        report["model"] = serde_json::to_value(&t)?;
    }
    print_json(&report)?;
    Ok(())
}
