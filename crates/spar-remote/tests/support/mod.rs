//! What the server tests share: a scratch directory and a tiny saved model.

use std::path::{Path, PathBuf};

use candle_core::Device;
use spar_lm::model::init_weights;
use spar_lm::tokenizer::ChatTemplate;
use spar_lm::train::BYTE_SPECIAL_TOKENS;
use spar_lm::{Checkpoint, Config, TextTokenizer};

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-serve-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tiny byte-level model with a ChatML template, saved in `dir`.
pub fn tiny_model(dir: &Path, seed: u64) -> Checkpoint {
    let tokenizer = TextTokenizer::byte_level(&BYTE_SPECIAL_TOKENS)
        .unwrap()
        .with_chat_template(ChatTemplate::ChatMl {
            default_system: None,
        });
    let mut cfg = Config::tiny(tokenizer.vocab_size(), 32, 2, 4);
    cfg.eos_token_id = Some(256);
    cfg.max_position_embeddings = 256;
    let ckpt = Checkpoint {
        tensors: init_weights(&cfg, 0.3, seed, &Device::Cpu).unwrap(),
        config: cfg,
        tokenizer: Some(tokenizer),
    };
    ckpt.save(dir).unwrap();
    ckpt
}
