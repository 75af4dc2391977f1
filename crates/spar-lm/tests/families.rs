//! Checkpoints of the supported families (`llama`, `qwen2`, `qwen3`) written from Rust as
//! `transformers` lays them out, and the refusals: an unknown `model_type`, a tensor the
//! model would not use, a missing one. Also bf16 weights and sharded checkpoints
//! (`model.safetensors.index.json`). Agreement with `transformers` itself is checked by
//! `scripts/lm/compare_families.py` (recorded in `docs/lm.md`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use spar_lm::checkpoint::{safetensors_bytes, Checkpoint, SHARD_INDEX};
use spar_lm::config::Config;
use spar_lm::model::init_weights;
use spar_lm::score::next_token_logits;

const IDS: [u32; 6] = [3, 14, 15, 9, 26, 5];

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-lm-families-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tiny GQA configuration of `model_type` (untied head).
fn config(model_type: &str) -> Config {
    let mut cfg = Config::tiny(40, 16, 2, 4);
    cfg.num_key_value_heads = Some(2);
    cfg.intermediate_size = 24;
    cfg.tie_word_embeddings = false;
    cfg.max_position_embeddings = 64;
    cfg.model_type = model_type.into();
    cfg
}

/// Writes `config.json` and `model.safetensors` (tensors in their own dtype) into `dir`.
fn write(dir: &Path, cfg: &Config, tensors: &HashMap<String, Tensor>) {
    std::fs::write(dir.join("config.json"), cfg.to_json()).unwrap();
    std::fs::write(
        dir.join("model.safetensors"),
        safetensors_bytes(tensors).unwrap(),
    )
    .unwrap();
}

fn logits(dir: &Path) -> Vec<f32> {
    let ckpt = Checkpoint::load(dir, &Device::Cpu).unwrap();
    next_token_logits(&ckpt.frozen().unwrap(), &IDS).unwrap()
}

fn load_error(dir: &Path) -> String {
    Checkpoint::load(dir, &Device::Cpu).unwrap_err().to_string()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn set(tensors: &mut HashMap<String, Tensor>, name: &str, value: f64) {
    let t = tensors.get(name).unwrap_or_else(|| panic!("no {name}"));
    let filled = (t.ones_like().unwrap() * value).unwrap();
    tensors.insert(name.to_string(), filled);
}

#[test]
fn qwen2_biases_change_the_logits() {
    let dir = temp_dir("qwen2");
    let cfg = config("qwen2");
    let mut tensors = init_weights(&cfg, 0.3, 11, &Device::Cpu).unwrap();
    // Qwen2 has q/k/v biases (zero at initialisation) and none on o_proj or the MLP.
    for bias in ["q_proj", "k_proj", "v_proj"] {
        assert!(tensors.contains_key(&format!("model.layers.1.self_attn.{bias}.bias")));
    }
    assert!(!tensors.contains_key("model.layers.0.self_attn.o_proj.bias"));
    write(&dir, &cfg, &tensors);
    let zero = logits(&dir);
    // The same weights as a Llama (no biases) give the same logits while the biases are 0.
    let mut llama_tensors = tensors.clone();
    llama_tensors.retain(|name, _| !name.ends_with(".bias"));
    let llama_dir = temp_dir("qwen2-as-llama");
    write(&llama_dir, &config("llama"), &llama_tensors);
    assert!(max_diff(&zero, &logits(&llama_dir)) < 1e-6);

    // The case of issue 22: biases set to 5.0 must move the logits.
    for layer in 0..2 {
        for proj in ["q_proj", "k_proj", "v_proj"] {
            set(
                &mut tensors,
                &format!("model.layers.{layer}.self_attn.{proj}.bias"),
                5.0,
            );
        }
    }
    write(&dir, &cfg, &tensors);
    let biased = logits(&dir);
    assert!(
        max_diff(&zero, &biased) > 0.1,
        "biases of 5.0 moved the logits by only {}",
        max_diff(&zero, &biased)
    );
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&llama_dir).unwrap();
}

#[test]
fn unknown_model_types_and_unused_tensors_are_refused_by_name() {
    let dir = temp_dir("refuse");
    let cfg = config("llama");
    let mut tensors = init_weights(&cfg, 0.3, 12, &Device::Cpu).unwrap();
    write(&dir, &cfg, &tensors);
    logits(&dir);

    // A Qwen2 checkpoint relabelled llama: its biases would be ignored.
    tensors.insert(
        "model.layers.0.self_attn.q_proj.bias".into(),
        Tensor::ones(32, DType::F32, &Device::Cpu).unwrap(),
    );
    tensors.insert(
        "model.layers.0.mlp.experts.0.weight".into(),
        Tensor::ones((2, 2), DType::F32, &Device::Cpu).unwrap(),
    );
    write(&dir, &cfg, &tensors);
    let err = load_error(&dir);
    for needle in [
        "2 tensor(s)",
        "model.layers.0.self_attn.q_proj.bias",
        "model.layers.0.mlp.experts.0.weight",
        "llama",
        "attention_bias",
        dir.to_str().unwrap(),
    ] {
        assert!(err.contains(needle), "lacks {needle:?}: {err}");
    }

    // An architecture spar does not run.
    let mut other = cfg.clone();
    other.model_type = "gpt_neox".into();
    std::fs::write(dir.join("config.json"), other.to_json()).unwrap();
    let err = load_error(&dir);
    assert!(
        err.contains("model_type \"gpt_neox\"")
            && err.contains("llama, qwen2, qwen3")
            && err.contains("config.json"),
        "{err}"
    );

    // Older checkpoints' rotary tables are not weights: they load.
    tensors.retain(|name, _| name.ends_with(".weight") && !name.contains("experts"));
    tensors.insert(
        "model.layers.0.self_attn.rotary_emb.inv_freq".into(),
        Tensor::ones(2, DType::F32, &Device::Cpu).unwrap(),
    );
    write(&dir, &cfg, &tensors);
    logits(&dir);

    // Qwen3 needs its head norms: a missing one is named.
    let qwen3 = config("qwen3");
    let mut q3 = init_weights(&qwen3, 0.3, 13, &Device::Cpu).unwrap();
    q3.remove("model.layers.1.self_attn.k_norm.weight");
    write(&dir, &qwen3, &q3);
    let err = load_error(&dir);
    assert!(
        err.contains("model.layers.1.self_attn.k_norm.weight is missing"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn qwen3_head_norms_and_llama3_rope_scaling_take_effect() {
    let dir = temp_dir("qwen3");
    let cfg = config("qwen3");
    let mut tensors = init_weights(&cfg, 0.3, 14, &Device::Cpu).unwrap();
    write(&dir, &cfg, &tensors);
    let ones = logits(&dir);
    // Norm weights at one: a Qwen3 block differs from a Llama block only by the head norms,
    // so the logits differ from the same weights run as a Llama.
    let llama_dir = temp_dir("qwen3-as-llama");
    let mut llama = tensors.clone();
    llama.retain(|name, _| !name.contains("_norm.weight") || name.contains("layernorm"));
    write(&llama_dir, &config("llama"), &llama);
    assert!(max_diff(&ones, &logits(&llama_dir)) > 1e-3);
    // Scaling a head norm weight by 2 doubles q (or k), which scales the attention scores.
    set(&mut tensors, "model.layers.0.self_attn.q_norm.weight", 2.0);
    write(&dir, &cfg, &tensors);
    assert!(max_diff(&ones, &logits(&dir)) > 1e-3);

    // Llama 3 scaling changes low frequencies only: with factor 8 and an original context of
    // 16 positions, head_dim 4 has frequencies 1 and 0.01 (wavelengths 6.3 and 628): the
    // second is beyond 16 / low_freq_factor and divided by 8, the first is between
    // 16 / high_freq_factor and 16 and smoothed, so the logits move.
    let mut scaled = config("llama");
    scaled.rope_theta = 10_000.0;
    let base_tensors = init_weights(&scaled, 0.3, 15, &Device::Cpu).unwrap();
    write(&llama_dir, &scaled, &base_tensors);
    let plain = logits(&llama_dir);
    scaled.rope_scaling = Some(serde_json::json!({
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 16
    }));
    write(&llama_dir, &scaled, &base_tensors);
    assert!(max_diff(&plain, &logits(&llama_dir)) > 1e-4);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&llama_dir).unwrap();
}

#[test]
fn bf16_weights_and_sharded_checkpoints_load() {
    let dir = temp_dir("bf16");
    let cfg = config("qwen2");
    let mut tensors = init_weights(&cfg, 0.3, 16, &Device::Cpu).unwrap();
    set(&mut tensors, "model.layers.0.self_attn.k_proj.bias", 0.5);
    // bf16 on disk; the f32 reference holds the same bf16-rounded values.
    let bf16: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, v)| (k.clone(), v.to_dtype(DType::BF16).unwrap()))
        .collect();
    let rounded: HashMap<String, Tensor> = bf16
        .iter()
        .map(|(k, v)| (k.clone(), v.to_dtype(DType::F32).unwrap()))
        .collect();
    write(&dir, &cfg, &bf16);
    let from_bf16 = logits(&dir);
    let f32_dir = temp_dir("f32");
    write(&f32_dir, &cfg, &rounded);
    assert_eq!(from_bf16, logits(&f32_dir));

    // The same f32 tensors in two shards with an index, as save_pretrained writes them.
    let sharded = temp_dir("sharded");
    std::fs::write(sharded.join("config.json"), cfg.to_json()).unwrap();
    let mut names: Vec<&String> = rounded.keys().collect();
    names.sort();
    let mut weight_map = serde_json::Map::new();
    let (first, second) = names.split_at(names.len() / 2);
    for (file, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        let shard: HashMap<String, Tensor> = part
            .iter()
            .map(|n| ((*n).clone(), rounded[*n].clone()))
            .collect();
        std::fs::write(sharded.join(file), safetensors_bytes(&shard).unwrap()).unwrap();
        for n in part {
            weight_map.insert((*n).clone(), file.into());
        }
    }
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": weight_map});
    std::fs::write(sharded.join(SHARD_INDEX), index.to_string()).unwrap();
    assert_eq!(logits(&sharded), from_bf16);

    // A shard that is gone, and an index naming a tensor its shard lacks, are named.
    let second_shard = sharded.join("model-00002-of-00002.safetensors");
    let bytes = std::fs::read(&second_shard).unwrap();
    std::fs::remove_file(&second_shard).unwrap();
    let err = load_error(&sharded);
    assert!(
        err.contains("model-00002-of-00002.safetensors") && err.contains("missing"),
        "{err}"
    );
    std::fs::write(&second_shard, bytes).unwrap();
    let mut index = index;
    index["weight_map"]["model.extra.weight"] = "model-00001-of-00002.safetensors".into();
    std::fs::write(sharded.join(SHARD_INDEX), index.to_string()).unwrap();
    let err = load_error(&sharded);
    assert!(
        err.contains("model.extra.weight (in model-00001-of-00002.safetensors)"),
        "{err}"
    );
    for d in [dir, f32_dir, sharded] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
