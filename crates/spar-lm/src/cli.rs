//! The logic behind `spar lm ...`: typed arguments in, results out. The binary only parses
//! flags and prints.
//!
//! Loading models and choosing a device are not commands: they live in [`crate::load`],
//! [`crate::device`] and [`crate::score::next_token_logits`], and are re-exported here under
//! their old paths (`spar_lm::cli::load_model`, ...) for callers not yet moved to the new
//! ones.

use crate::checkpoint::Checkpoint;
use crate::error::{LmError, Result};
use crate::gguf::Gguf;
use crate::load::lora_base_at_depth;
use crate::lora::Lora;
use crate::sample::{generate, Completion, SamplingParams};
use crate::tokenizer::{Message, TextTokenizer};
use crate::train::{pretrain as train_loop, FinetuneMode, Finetuned, PretrainConfig};
use candle_core::Device;
use serde::Serialize;
use spar_core::atomic::write_atomic;
use std::path::{Path, PathBuf};

pub use crate::device::default_device;
pub use crate::load::{
    is_lora_checkpoint, load_checkpoint, load_model, load_model_with_lora, lora_base,
    write_lora_base, BaseRef, GgufMode, LoadedModel, BASE_JSON,
};
pub use crate::score::next_token_logits;

/// `spar lm merge`: folds the adapter in `lora` into the base model `base` and writes a
/// checkpoint that needs no adapter to `out`.
pub fn merge_lora(base: &Path, lora: &Path, out: &Path, device: &Device) -> Result<Checkpoint> {
    let ckpt = load_checkpoint(base, device)?;
    let merged = Lora::load(lora, device)?.merge_into(&ckpt)?;
    merged.save(out)?;
    Ok(merged)
}

/// Arguments of `spar lm sample`.
#[derive(Debug, Clone)]
pub struct SampleArgs {
    /// A checkpoint directory or a `.gguf` file.
    pub model: PathBuf,
    /// The prompt: raw text, or the user message when `chat`.
    pub prompt: String,
    /// Wrap the prompt in the model's chat template (as the user's message).
    pub chat: bool,
    /// How to load a GGUF file.
    pub mode: GgufMode,
    /// A LoRA adapter directory (PEFT layout) to apply.
    pub lora: Option<PathBuf>,
    /// Prepend the tokenizer's BOS token (when it has one).
    pub add_bos: bool,
    /// Sampling parameters.
    pub params: SamplingParams,
}

/// What `spar lm sample` produced.
#[derive(Debug, Clone, Serialize)]
pub struct SampleOutput {
    /// The prompt's token ids, as fed to the model.
    pub prompt_ids: Vec<u32>,
    /// The completion's token ids.
    pub token_ids: Vec<u32>,
    /// The completion's text.
    pub text: String,
    /// Log-probability of each sampled token.
    pub logprobs: Vec<f32>,
    /// `stop` or `length`.
    pub finish_reason: String,
}

/// The token ids of a prompt (chat template applied when asked).
pub fn prompt_ids(
    tokenizer: &TextTokenizer,
    prompt: &str,
    chat: bool,
    add_bos: bool,
) -> Result<Vec<u32>> {
    let text = if chat {
        if !tokenizer.has_chat_template() {
            return Err(LmError::InvalidArgument(
                "--chat: the model has no chat template".into(),
            ));
        }
        tokenizer.render_chat(&[Message::new("user", prompt)], true)?
    } else {
        prompt.to_string()
    };
    let mut ids: Vec<u32> = match (add_bos, tokenizer.bos_id()) {
        (true, Some(bos)) => vec![bos],
        _ => Vec::new(),
    };
    ids.extend(tokenizer.encode(&text)?);
    Ok(ids)
}

/// `spar lm sample`: one completion of the prompt.
pub fn sample(args: &SampleArgs, device: &Device) -> Result<SampleOutput> {
    let loaded = load_model_with_lora(&args.model, args.mode, args.lora.as_deref(), device)?;
    let ids = prompt_ids(&loaded.tokenizer, &args.prompt, args.chat, args.add_bos)?;
    let completion: Completion = generate(
        &loaded.model,
        &loaded.tokenizer,
        std::slice::from_ref(&ids),
        &args.params,
    )?
    .remove(0);
    Ok(SampleOutput {
        prompt_ids: ids,
        token_ids: completion.token_ids,
        text: completion.text,
        logprobs: completion.logprobs,
        finish_reason: format!("{:?}", completion.finish_reason).to_lowercase(),
    })
}

/// `spar lm info`: a readable summary of a model file or directory.
pub fn info(path: &Path) -> Result<String> {
    info_at_depth(path, 0)
}

fn info_at_depth(path: &Path, depth: usize) -> Result<String> {
    if is_lora_checkpoint(path) {
        let lora = Lora::load(path, &Device::Cpu)?;
        let base = lora_base_at_depth(path, depth)?;
        return Ok(format!(
            "format: LoRA checkpoint (adapter rank {}, alpha {}, targets {}; {} parameters) over \
             the base {}\n{}",
            lora.config.r,
            lora.config.lora_alpha,
            lora.config.targets()?.join(","),
            lora.num_parameters(),
            base.display(),
            info_at_depth(&base, depth + 1)?
        ));
    }
    let mut out = String::new();
    let is_gguf = path.extension().is_some_and(|e| e == "gguf");
    let (config, tokenizer) = if is_gguf {
        let gguf = Gguf::open(path)?;
        let mut types: Vec<String> = gguf.tensor_types().into_iter().map(|(_, t)| t).collect();
        types.sort();
        types.dedup();
        out.push_str(&format!(
            "format: GGUF ({} tensors; types {})\n",
            gguf.tensor_types().len(),
            types.join(", ")
        ));
        if let Some(name) = gguf.metadata().get("general.name") {
            out.push_str(&format!("name: {}\n", name.to_string()?));
        }
        (gguf.config()?, Some(gguf.tokenizer()?))
    } else {
        let config = crate::config::Config::from_file(&path.join("config.json"))?;
        let tokenizer = if path.join("tokenizer.json").exists() {
            Some(TextTokenizer::from_hf(path)?)
        } else {
            None
        };
        out.push_str("format: Hugging Face checkpoint directory\n");
        (config, tokenizer)
    };
    out.push_str(&format!(
        "model type: {}\nparameters: {}\nlayers: {}, hidden: {}, intermediate: {}, heads: {} (key/value {}), head width: {}\nvocab: {}, context: {}, rope theta: {}, tied embeddings: {}\n",
        config.model_type,
        config.num_parameters(),
        config.num_hidden_layers,
        config.hidden_size,
        config.intermediate_size,
        config.num_attention_heads,
        config.kv_heads(),
        config.head_width(),
        config.vocab_size,
        config.max_position_embeddings,
        config.rope_theta,
        config.tie_word_embeddings,
    ));
    if let Some(tok) = tokenizer {
        let names: Vec<String> = tok
            .eos_ids()
            .iter()
            .filter_map(|&id| tok.inner().id_to_token(id))
            .collect();
        out.push_str(&format!(
            "tokenizer: {} tokens, end of sequence {:?}, chat template: {}\n",
            tok.vocab_size(),
            names,
            match tok.chat_template() {
                Some(t) => format!("{t:?}"),
                None => "none".to_string(),
            }
        ));
    }
    Ok(out)
}

/// Arguments of `spar lm pretrain`.
#[derive(Debug, Clone)]
pub struct PretrainArgs {
    /// The training text.
    pub data: PathBuf,
    /// The checkpoint directory to write.
    pub out: PathBuf,
    /// Hyperparameters.
    pub config: PretrainConfig,
}

/// `spar lm pretrain`: trains a byte-level model on a text file, writes the checkpoint,
/// `pretrain.json` (the resolved hyperparameters) and `loss.csv` (the loss curve) to `out`, and
/// returns the losses. `on_step(step, loss)` reports progress.
pub fn pretrain(
    args: &PretrainArgs,
    device: &Device,
    on_step: impl FnMut(usize, f32),
) -> Result<Vec<f32>> {
    let text = std::fs::read_to_string(&args.data).map_err(|e| LmError::io(&args.data, e))?;
    std::fs::create_dir_all(&args.out).map_err(|e| LmError::io(&args.out, e))?;
    let resolved = serde_json::to_string_pretty(&args.config).expect("config serialises");
    write_atomic(&args.out.join("pretrain.json"), resolved.as_bytes())?;
    let (ckpt, losses) = train_loop(&text, &args.config, device, on_step)?;
    ckpt.save(&args.out)?;
    write_loss_csv(&args.out, &losses)?;
    Ok(losses)
}

/// Arguments of `spar lm finetune`.
#[derive(Debug, Clone)]
pub struct FinetuneArgs {
    /// The base model: a checkpoint directory or a `.gguf` file (dequantised).
    pub model: PathBuf,
    /// The training text.
    pub data: PathBuf,
    /// The directory to write: a checkpoint (full fine-tuning) or an adapter (LoRA).
    pub out: PathBuf,
    /// Full fine-tuning or a LoRA adapter.
    pub mode: FinetuneMode,
    /// Optimiser and window settings (architecture fields are ignored).
    pub config: PretrainConfig,
}

/// `spar lm finetune`: next-token training of an existing model on a text file, in full or with
/// a LoRA adapter; writes the checkpoint or adapter, `finetune.json` and `loss.csv` to `out`.
pub fn finetune(
    args: &FinetuneArgs,
    device: &Device,
    on_step: impl FnMut(usize, f32),
) -> Result<Vec<f32>> {
    let text = std::fs::read_to_string(&args.data).map_err(|e| LmError::io(&args.data, e))?;
    let base = load_checkpoint(&args.model, device)?;
    std::fs::create_dir_all(&args.out).map_err(|e| LmError::io(&args.out, e))?;
    let resolved = serde_json::json!({
        "model": args.model,
        "data": args.data,
        "mode": match &args.mode {
            FinetuneMode::Full => serde_json::json!("full"),
            FinetuneMode::Lora(c) => serde_json::to_value(c).expect("config serialises"),
        },
        "steps": args.config.steps,
        "batch_size": args.config.batch_size,
        "seq_len": args.config.seq_len,
        "learning_rate": args.config.learning_rate,
        "weight_decay": args.config.weight_decay,
        "seed": args.config.seed,
    });
    write_atomic(
        &args.out.join("finetune.json"),
        serde_json::to_string_pretty(&resolved)
            .expect("json")
            .as_bytes(),
    )?;
    let (trained, losses) =
        crate::train::finetune(&base, &text, &args.mode, &args.config, device, on_step)?;
    match trained {
        Finetuned::Full(ckpt) => ckpt.save(&args.out)?,
        Finetuned::Lora(mut lora) => {
            lora.config.base_model_name_or_path = Some(args.model.display().to_string());
            lora.save(&args.out)?;
        }
    }
    write_loss_csv(&args.out, &losses)?;
    Ok(losses)
}

fn write_loss_csv(out: &Path, losses: &[f32]) -> Result<()> {
    let mut csv = String::from("step,loss\n");
    for (i, l) in losses.iter().enumerate() {
        csv.push_str(&format!("{i},{l}\n"));
    }
    write_atomic(&out.join("loss.csv"), csv.as_bytes())?;
    Ok(())
}

/// `spar lm export`: a GGUF file dequantised into a Hugging Face checkpoint directory.
pub fn export_gguf(gguf: &Path, out: &Path, device: &Device) -> Result<Checkpoint> {
    let ckpt = Gguf::open(gguf)?.dequantized(device)?;
    ckpt.save(out)?;
    Ok(ckpt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::tests::lora_checkpoint;
    use crate::load::write_lora_base;

    #[test]
    fn info_describes_a_lora_checkpoint_and_its_base() {
        let dir = std::env::temp_dir().join(format!("spar-lm-cli-info-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (step, _) = lora_checkpoint(&dir);
        let text = info(&step).unwrap();
        assert!(
            text.starts_with("format: LoRA checkpoint (adapter rank 2, alpha 4, targets "),
            "{text}"
        );
        assert!(
            text.contains("format: Hugging Face checkpoint directory\n")
                && text.contains("layers: 1"),
            "{text}"
        );
        // A cycle of base.json files stops with an error.
        write_lora_base(&step, Path::new(".")).unwrap();
        assert!(info(&step).unwrap_err().to_string().contains("cycle"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
