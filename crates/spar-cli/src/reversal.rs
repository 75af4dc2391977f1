//! `spar lm data reversal`, `spar lm reversal`, `spar lm spt` and `spar lm infill`: the
//! reversal suite (`docs/reversal.md`; the logic lives in `spar_lm::reversal` and
//! `spar_lm::mlm`).

use std::path::PathBuf;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use spar_lm::device::default_device;
use spar_lm::load::{load_model, GgufMode};
use spar_lm::mlm::infill_text;
use spar_lm::reversal::data::{Corpus, CorpusConfig};
use spar_lm::reversal::spt::{transform_text, SptConfig};
use spar_lm::reversal::train::{run, Progress};
use spar_lm::reversal::{Arm, ReversalConfig};

use crate::report::print_json;
use crate::UsageError;

/// Arguments of `spar lm data`.
#[derive(Debug, clap::Args)]
pub struct DataCli {
    #[command(subcommand)]
    kind: DataKind,
}

#[derive(Debug, clap::Subcommand)]
enum DataKind {
    /// Synthetic facts for the reversal suite, as JSONL (docs/reversal.md).
    #[command(after_help = crate::examples::LM_DATA)]
    Reversal(DataReversalCli),
}

#[derive(Debug, clap::Args)]
struct DataReversalCli {
    /// The directory to write (corpus.json, entities/facts/train/queries .jsonl, train.txt,
    /// train-units.txt).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the names and of the facts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One-to-one facts (mentor/student) per split.
    #[arg(long, default_value_t = CorpusConfig::default().pairs)]
    pairs: usize,
    /// Fathers per split (many-to-one: father/child).
    #[arg(long, default_value_t = CorpusConfig::default().fathers)]
    fathers: usize,
    /// Children of each father.
    #[arg(long, default_value_t = CorpusConfig::default().children)]
    children: usize,
}

/// Arguments of `spar lm reversal`.
#[derive(Debug, clap::Args)]
pub struct ReversalCli {
    /// A config (configs/reversal/<arm>.toml); without it, the defaults of --arm.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The arm: causal, masked, spt or concept (overrides the config's).
    #[arg(long, value_parser = crate::choices::reversal_arm())]
    arm: Option<String>,
    /// Seed of the run and of its corpus (overrides both of the config's).
    #[arg(long)]
    seed: Option<u64>,
    /// Optimiser steps (overrides the config's train.steps).
    #[arg(long)]
    steps: Option<usize>,
    /// The run directory (default runs/reversal/<arm>-seed<seed>).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Arguments of `spar lm spt`.
#[derive(Debug, clap::Args)]
pub struct SptCli {
    /// Lines of semantic units separated by " | " (e.g. train-units.txt of spar lm data
    /// reversal).
    #[arg(long)]
    data: PathBuf,
    /// The text file to write: each line `copies` times, each copy permuted.
    #[arg(long)]
    out: PathBuf,
    /// Permuted copies of each line.
    #[arg(long, default_value_t = 3)]
    copies: usize,
    /// Seed of the orders.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Weight of the original order.
    #[arg(long, default_value_t = SptConfig::default().p_original)]
    p_original: f64,
    /// Weight of the reversed order.
    #[arg(long, default_value_t = SptConfig::default().p_reversed)]
    p_reversed: f64,
    /// Weight of a random permutation.
    #[arg(long, default_value_t = SptConfig::default().p_permuted)]
    p_permuted: f64,
}

/// Arguments of `spar lm infill`.
#[derive(Debug, clap::Args)]
pub struct InfillCli {
    /// A masked model's checkpoint directory (config.json with "is_causal": false).
    #[arg(long)]
    model: PathBuf,
    /// The text with one [MASK] blank: "The father of [MASK] is Amelt."
    #[arg(long)]
    text: String,
    /// A file of candidate fillings, one per line (ranked by log-probability); without it the
    /// blank is filled token by token.
    #[arg(long)]
    candidates: Option<PathBuf>,
    /// Without candidates: try blanks of 1 to this many tokens.
    #[arg(long, default_value_t = 12)]
    max_len: usize,
}

/// `spar lm data reversal`.
pub fn data(args: &DataCli) -> anyhow::Result<()> {
    let DataKind::Reversal(a) = &args.kind;
    let corpus = Corpus::generate(&CorpusConfig {
        seed: a.seed,
        pairs: a.pairs,
        fathers: a.fathers,
        children: a.children,
    })?;
    let files = corpus.write_jsonl(&a.out)?;
    print_json(&serde_json::json!({
        "out": a.out,
        "entities": corpus.entities.len(),
        "facts": corpus.facts.len(),
        "training_sentences": corpus.training_sentences().len(),
        "files": files,
    }))?;
    Ok(())
}

/// The resolved config of `spar lm reversal` (validated, nothing written).
fn resolve(a: &ReversalCli) -> anyhow::Result<ReversalConfig> {
    let mut cfg = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
            toml::from_str::<ReversalConfig>(&text)
                .map_err(|e| UsageError(format!("{}: {e}", path.display())))?
        }
        None => {
            let arm = a.arm.as_deref().ok_or_else(|| {
                UsageError("give --config FILE or --arm (causal, masked, spt, concept)".into())
            })?;
            ReversalConfig::new(Arm::from_name(arm)?)
        }
    };
    if let Some(arm) = &a.arm {
        cfg.arm = Arm::from_name(arm)?;
    }
    if let Some(seed) = a.seed {
        cfg.seed = seed;
        cfg.corpus.seed = seed;
    }
    if let Some(steps) = a.steps {
        cfg.train.steps = steps;
    }
    cfg.validate()?;
    Ok(cfg)
}

struct Bars {
    bar: ProgressBar,
}

impl Progress for Bars {
    fn step(&mut self, _step: usize, loss: f32) {
        self.bar.set_message(format!("loss {loss:.4}"));
        self.bar.inc(1);
    }
    fn eval_start(&mut self, queries: usize) {
        self.bar.finish();
        self.bar = ProgressBar::new(queries as u64);
        self.bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} queries [{elapsed}<{eta}]")
                .expect("valid template"),
        );
    }
    fn query(&mut self) {
        self.bar.inc(1);
    }
}

/// Nests flat `a/b/c` names into JSON objects.
fn nested(metrics: &std::collections::BTreeMap<String, f64>) -> serde_json::Value {
    let mut root = serde_json::Map::new();
    for (name, value) in metrics {
        let parts: Vec<&str> = name.split('/').collect();
        let mut node = &mut root;
        for part in &parts[..parts.len() - 1] {
            node = node
                .entry(part.to_string())
                .or_insert_with(|| serde_json::Value::Object(Default::default()))
                .as_object_mut()
                .expect("a name is never both a value and a group");
        }
        node.insert(parts[parts.len() - 1].to_string(), (*value).into());
    }
    serde_json::Value::Object(root)
}

/// `spar lm reversal`: trains one arm and prints its evaluation as JSON.
pub fn reversal(a: &ReversalCli) -> anyhow::Result<()> {
    let cfg = resolve(a)?;
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!("runs/reversal/{}-seed{}", cfg.arm.name(), cfg.seed))
    });
    let bar = ProgressBar::new(cfg.train.steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps, {msg} [{elapsed}<{eta}]")
            .expect("valid template"),
    );
    let mut bars = Bars { bar };
    let summary = run(&cfg, &out, &default_device(), &mut bars)
        .with_context(|| format!("training the {} arm into {}", cfg.arm.name(), out.display()))?;
    bars.bar.finish();
    eprintln!("wrote {}", out.display());
    let mut report = nested(&summary.metrics);
    report["arm"] = cfg.arm.name().into();
    report["seed"] = cfg.seed.into();
    report["run"] = out.display().to_string().into();
    print_json(&report)?;
    Ok(())
}

/// `spar lm spt`.
pub fn spt(a: &SptCli) -> anyhow::Result<()> {
    let cfg = SptConfig {
        p_original: a.p_original,
        p_reversed: a.p_reversed,
        p_permuted: a.p_permuted,
    };
    let text = std::fs::read_to_string(&a.data)
        .map_err(|e| UsageError(format!("{}: {e}", a.data.display())))?;
    let out = transform_text(&text, &cfg, a.copies, a.seed)?;
    spar_core::atomic::write_atomic(&a.out, out.as_bytes())?;
    eprintln!("wrote {} ({} lines)", a.out.display(), out.lines().count());
    Ok(())
}

/// `spar lm infill`.
pub fn infill(a: &InfillCli) -> anyhow::Result<()> {
    let device = default_device();
    let loaded = load_model(&a.model, GgufMode::Dequantized, &device)?;
    let candidates: Vec<String> = match &a.candidates {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("{}: {e}", path.display())))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        None => Vec::new(),
    };
    let result = infill_text(
        &loaded.model,
        &loaded.tokenizer,
        &a.text,
        &candidates,
        a.max_len,
    )?;
    print_json(&result)?;
    Ok(())
}
