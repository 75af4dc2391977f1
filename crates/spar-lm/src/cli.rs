//! The logic behind `spar lm ...`: typed arguments in, results out. The binary only parses
//! flags and prints.

use crate::checkpoint::Checkpoint;
use crate::error::{LmError, Result};
use crate::gguf::Gguf;
use crate::lora::Lora;
use crate::model::Llama;
use crate::sample::{generate, Completion, SamplingParams};
use crate::tokenizer::{Message, TextTokenizer};
use crate::train::{pretrain as train_loop, FinetuneMode, Finetuned, PretrainConfig};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The device spar computes on: the first CUDA GPU when built with the `cuda` feature and one
/// is present, the CPU otherwise.
pub fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(device) = Device::new_cuda(0) {
        return device;
    }
    Device::Cpu
}

/// How a GGUF file is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GgufMode {
    /// Quantised projections (fast sampling).
    #[default]
    Quantized,
    /// Every weight dequantised to f32 (the trainable model).
    Dequantized,
}

/// A model with its tokenizer, from a checkpoint directory or a GGUF file.
#[derive(Debug)]
pub struct LoadedModel {
    /// The model.
    pub model: Llama,
    /// Its tokenizer.
    pub tokenizer: TextTokenizer,
}

/// Loads `path` (see [`load_model`]) and puts the LoRA adapter in directory `lora` on it.
pub fn load_model_with_lora(
    path: &Path,
    mode: GgufMode,
    lora: Option<&Path>,
    device: &Device,
) -> Result<LoadedModel> {
    let mut loaded = match lora {
        // A LoRA checkpoint's own adapter is merged so that the extra one does not replace it.
        Some(_) if is_lora_checkpoint(path) => {
            let ckpt = load_checkpoint(path, device)?;
            let tokenizer = ckpt.tokenizer.clone().ok_or_else(|| {
                LmError::Tokenizer(format!("{} has no tokenizer.json", path.display()))
            })?;
            LoadedModel {
                model: ckpt.frozen()?,
                tokenizer,
            }
        }
        _ => load_model(path, mode, device)?,
    };
    if let Some(dir) = lora {
        Lora::load(dir, device)?.attach(&mut loaded.model)?;
    }
    Ok(loaded)
}

/// The weights of `path` as a checkpoint: a Hugging Face directory, a `.gguf` file
/// dequantised, or a LoRA checkpoint directory (see [`is_lora_checkpoint`]) with its adapter
/// merged into its base (`W + s B A`).
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<Checkpoint> {
    load_checkpoint_at_depth(path, device, 0)
}

fn load_checkpoint_at_depth(path: &Path, device: &Device, depth: usize) -> Result<Checkpoint> {
    if path.extension().is_some_and(|e| e == "gguf") {
        Gguf::open(path)?.dequantized(device)
    } else if is_lora_checkpoint(path) {
        let base = lora_base_at_depth(path, depth)?;
        let base = load_checkpoint_at_depth(&base, device, depth + 1)?;
        Lora::load(path, device)?.merge_into(&base)
    } else {
        check_not_bare_adapter(path)?;
        Checkpoint::load(path, device)
    }
}

/// The file of a LoRA checkpoint directory that names its base model (`spar train` with
/// `[model.lora]` writes it next to `adapter_config.json` and `adapter_model.safetensors`).
pub const BASE_JSON: &str = "base.json";

/// How many LoRA checkpoints may stand on each other's bases (a cycle of `base.json` files
/// stops here with an error instead of recursing forever).
const MAX_BASE_DEPTH: usize = 8;

/// `base.json`: the base model a LoRA checkpoint's adapter goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseRef {
    /// A checkpoint directory or a `.gguf` file; a relative path is taken from the directory
    /// holding `base.json`.
    pub base: PathBuf,
}

/// Whether `dir` is a LoRA checkpoint directory: a PEFT adapter (`adapter_config.json`,
/// `adapter_model.safetensors`) plus [`BASE_JSON`] naming its base model. [`load_model`] and
/// [`load_checkpoint`] load such a directory as base plus adapter.
pub fn is_lora_checkpoint(dir: &Path) -> bool {
    dir.join("adapter_config.json").is_file() && dir.join(BASE_JSON).is_file()
}

/// Writes `dir/base.json` naming `base` (atomically).
pub fn write_lora_base(dir: &Path, base: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(&BaseRef {
        base: base.to_path_buf(),
    })
    .expect("base.json serialises");
    crate::checkpoint::write_atomic(&dir.join(BASE_JSON), json.as_bytes())
}

/// The base model named by `dir/base.json` (a relative path resolved against `dir`), checked
/// to exist.
pub fn lora_base(dir: &Path) -> Result<PathBuf> {
    lora_base_at_depth(dir, 0)
}

fn lora_base_at_depth(dir: &Path, depth: usize) -> Result<PathBuf> {
    let path = dir.join(BASE_JSON);
    let text = std::fs::read_to_string(&path).map_err(|e| LmError::io(&path, e))?;
    let base: BaseRef = serde_json::from_str(&text).map_err(|source| LmError::Json {
        path: path.clone(),
        source,
    })?;
    let resolved = if base.base.is_absolute() {
        base.base
    } else {
        dir.join(base.base)
    };
    if !resolved.exists() {
        return Err(LmError::Config(format!(
            "{} names the base model {}, which does not exist: put the base model (a \
             checkpoint directory or .gguf file) there, or edit the \"base\" field of {}",
            path.display(),
            resolved.display(),
            path.display()
        )));
    }
    if depth >= MAX_BASE_DEPTH {
        return Err(LmError::Config(format!(
            "{}: more than {MAX_BASE_DEPTH} LoRA checkpoints stand on each other's bases (a \
             cycle of base.json files?); point \"base\" at a full checkpoint or .gguf file",
            path.display()
        )));
    }
    Ok(resolved)
}

/// A PEFT adapter directory without [`BASE_JSON`] and without weights of its own cannot be
/// loaded alone: say so, and how to fix it, instead of reporting a missing `config.json`.
fn check_not_bare_adapter(dir: &Path) -> Result<()> {
    if dir.join("adapter_config.json").is_file() && !dir.join("model.safetensors").exists() {
        return Err(LmError::Config(format!(
            "{} is a LoRA adapter without {BASE_JSON}: load its base model and pass the \
             adapter with --lora {}, or write {}/{BASE_JSON} as {{\"base\": \"PATH OF THE BASE \
             MODEL\"}}",
            dir.display(),
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// `spar lm merge`: folds the adapter in `lora` into the base model `base` and writes a
/// checkpoint that needs no adapter to `out`.
pub fn merge_lora(base: &Path, lora: &Path, out: &Path, device: &Device) -> Result<Checkpoint> {
    let ckpt = load_checkpoint(base, device)?;
    let merged = Lora::load(lora, device)?.merge_into(&ckpt)?;
    merged.save(out)?;
    Ok(merged)
}

/// Loads `path`: a `.gguf` file (in `mode`), a Hugging Face checkpoint directory, or a LoRA
/// checkpoint directory ([`is_lora_checkpoint`]: the base named by `base.json`, loaded by
/// these same rules, with the adapter attached; the tokenizer is the base's).
pub fn load_model(path: &Path, mode: GgufMode, device: &Device) -> Result<LoadedModel> {
    if is_lora_checkpoint(path) {
        let base = lora_base(path)?;
        let mut loaded = if is_lora_checkpoint(&base) {
            // An adapter on an adapted base: the base's adapter is merged first (a model
            // holds one adapter per projection).
            let ckpt = load_checkpoint_at_depth(&base, device, 1)?;
            let tokenizer = ckpt.tokenizer.clone().ok_or_else(|| {
                LmError::Tokenizer(format!("{} has no tokenizer.json", base.display()))
            })?;
            LoadedModel {
                model: ckpt.frozen()?,
                tokenizer,
            }
        } else {
            load_model(&base, mode, device)?
        };
        Lora::load(path, device)?.attach(&mut loaded.model)?;
        return Ok(loaded);
    }
    let is_gguf = path.extension().is_some_and(|e| e == "gguf");
    if is_gguf {
        let gguf = Gguf::open(path)?;
        let model = match mode {
            GgufMode::Quantized => gguf.quantized(device)?,
            GgufMode::Dequantized => gguf.dequantized(device)?.frozen()?,
        };
        return Ok(LoadedModel {
            model,
            tokenizer: gguf.tokenizer()?,
        });
    }
    check_not_bare_adapter(path)?;
    let ckpt = Checkpoint::load(path, device)?;
    let tokenizer = ckpt
        .tokenizer
        .clone()
        .ok_or_else(|| LmError::Tokenizer(format!("{} has no tokenizer.json", path.display())))?;
    Ok(LoadedModel {
        model: ckpt.frozen()?,
        tokenizer,
    })
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
        let template = tokenizer.chat_template().ok_or_else(|| {
            LmError::InvalidArgument("--chat: the model has no chat template".into())
        })?;
        template.render(&[Message::new("user", prompt)], true)
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

/// `spar lm logits`: the next-token logits after `ids` (for comparisons with other
/// implementations).
pub fn next_token_logits(model: &Llama, ids: &[u32]) -> Result<Vec<f32>> {
    let input = Tensor::new(ids, model.device())?.unsqueeze(0)?;
    let logits = model.forward(&input, &mut model.new_cache())?;
    Ok(logits.get(0)?.get(ids.len() - 1)?.to_vec1()?)
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
        "parameters: {}\nlayers: {}, hidden: {}, intermediate: {}, heads: {} (key/value {}), head width: {}\nvocab: {}, context: {}, rope theta: {}, tied embeddings: {}\n",
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
    crate::checkpoint::write_atomic(&args.out.join("pretrain.json"), resolved.as_bytes())?;
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
    crate::checkpoint::write_atomic(
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
    crate::checkpoint::write_atomic(&out.join("loss.csv"), csv.as_bytes())
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
    use crate::config::Config;
    use crate::lora::LoraConfig;
    use crate::model::init_weights;
    use crate::train::BYTE_SPECIAL_TOKENS;

    /// A tiny byte-level base saved in `dir/base`, and a LoRA checkpoint of it in `dir/step`
    /// (B set to non-zero values so that the adapter changes the logits).
    fn lora_checkpoint(dir: &Path) -> (PathBuf, Vec<f32>) {
        let tokenizer = TextTokenizer::byte_level(&BYTE_SPECIAL_TOKENS).unwrap();
        let config = Config::tiny(tokenizer.vocab_size(), 16, 1, 2);
        let base = Checkpoint {
            tensors: init_weights(&config, 0.2, 5, &Device::Cpu).unwrap(),
            config,
            tokenizer: Some(tokenizer),
        };
        base.save(&dir.join("base")).unwrap();
        let mut model = base.frozen().unwrap();
        let lora = Lora::init(
            &mut model,
            LoraConfig::new(2, 4.0, &["q_proj", "up_proj"]),
            1,
        )
        .unwrap();
        for var in lora.vars() {
            var.set(&var.as_tensor().ones_like().unwrap()).unwrap();
        }
        let step = dir.join("step");
        lora.save(&step).unwrap();
        write_lora_base(&step, Path::new("../base")).unwrap();
        (step, next_token_logits(&model, &[1, 2, 3]).unwrap())
    }

    #[test]
    fn lora_checkpoints_load_as_base_plus_adapter_and_errors_say_how_to_fix_them() {
        let dir = std::env::temp_dir().join(format!("spar-lm-lora-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (step, expected) = lora_checkpoint(&dir);
        assert!(is_lora_checkpoint(&step) && !is_lora_checkpoint(&dir.join("base")));
        // A relative base is taken from the checkpoint directory.
        assert_eq!(lora_base(&step).unwrap(), step.join("../base"));
        let loaded = load_model(&step, GgufMode::Quantized, &Device::Cpu).unwrap();
        assert_eq!(
            next_token_logits(&loaded.model, &[1, 2, 3]).unwrap(),
            expected
        );
        let text = info(&step).unwrap();
        assert!(
            text.contains("LoRA checkpoint (adapter rank 2") && text.contains("layers: 1"),
            "{text}"
        );
        let base = load_model(&dir.join("base"), GgufMode::Quantized, &Device::Cpu).unwrap();
        assert_ne!(
            next_token_logits(&base.model, &[1, 2, 3]).unwrap(),
            expected
        );
        let merged = load_checkpoint(&step, &Device::Cpu)
            .unwrap()
            .frozen()
            .unwrap();
        let merged = next_token_logits(&merged, &[1, 2, 3]).unwrap();
        let gap = merged
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(gap < 1e-4, "merged logits differ by {gap}");

        // A base that is not there: both paths named, and how to fix it.
        write_lora_base(&step, &dir.join("gone")).unwrap();
        let err = load_model(&step, GgufMode::Quantized, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gone") && err.contains("base.json") && err.contains("does not exist"),
            "{err}"
        );
        // A cycle of base.json files stops with an error.
        write_lora_base(&step, Path::new(".")).unwrap();
        let err = load_checkpoint(&step, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cycle"), "{err}");
        assert!(info(&step).unwrap_err().to_string().contains("cycle"));
        // An adapter without base.json: say to pass it with --lora or to write base.json.
        std::fs::remove_file(step.join(BASE_JSON)).unwrap();
        let err = load_model(&step, GgufMode::Quantized, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--lora") && err.contains("base.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
