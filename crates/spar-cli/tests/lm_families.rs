//! `spar lm` on checkpoints of other families: a Qwen2 checkpoint runs (its biases used), an
//! unknown `model_type` or a tensor the model would not use is refused with exit code 2 and
//! a message naming it.

mod common;

use common::{assert_usage_error, json, spar, temp_path};
use spar_lm::checkpoint::Checkpoint;
use spar_lm::config::Config;
use spar_lm::model::init_weights;
use spar_lm::TextTokenizer;

/// A tiny byte-level checkpoint of `model_type` in `dir`.
fn write_checkpoint(dir: &std::path::Path, model_type: &str) -> Checkpoint {
    let tokenizer = TextTokenizer::byte_level(&["<|endoftext|>"]).unwrap();
    let mut config = Config::tiny(tokenizer.vocab_size(), 16, 1, 2);
    config.model_type = model_type.into();
    let ckpt = Checkpoint {
        tensors: init_weights(&config, 0.3, 3, &candle_core::Device::Cpu).unwrap(),
        config,
        tokenizer: Some(tokenizer),
    };
    ckpt.save(dir).unwrap();
    ckpt
}

fn logits(dir: &std::path::Path) -> std::process::Output {
    spar(&[
        "lm",
        "logits",
        "--model",
        dir.to_str().unwrap(),
        "--ids",
        "1,2,3",
    ])
}

#[test]
fn qwen2_runs_and_unknown_types_or_tensors_are_refused_by_name() {
    let dir = temp_path("qwen2-ckpt");
    let mut ckpt = write_checkpoint(&dir, "qwen2");
    let zero = json(&logits(&dir));
    let info = spar(&["lm", "info", "--model", dir.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&info.stdout).contains("model type: qwen2"));
    // Biases of 5.0 change what spar computes (issue 22: they used to be ignored).
    let bias = "model.layers.0.self_attn.k_proj.bias";
    let filled = (ckpt.tensors[bias].ones_like().unwrap() * 5.0).unwrap();
    ckpt.tensors.insert(bias.into(), filled);
    ckpt.save(&dir).unwrap();
    assert_ne!(json(&logits(&dir))["logits"], zero["logits"]);

    // The same file labelled llama: the biases would be ignored, so it is refused.
    let mut relabelled = ckpt.config.clone();
    relabelled.model_type = "llama".into();
    std::fs::write(dir.join("config.json"), relabelled.to_json()).unwrap();
    assert_usage_error(
        &logits(&dir),
        &[
            "does not use",
            "model.layers.0.self_attn.q_proj.bias",
            bias,
            "attention_bias",
        ],
    );

    // An architecture spar does not run.
    relabelled.model_type = "phi3".into();
    std::fs::write(dir.join("config.json"), relabelled.to_json()).unwrap();
    assert_usage_error(
        &logits(&dir),
        &["model_type \"phi3\"", "llama, qwen2, qwen3", "config.json"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
