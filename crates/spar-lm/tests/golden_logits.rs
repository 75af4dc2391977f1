//! Golden logits of a tiny seeded model, computed by Hugging Face `transformers`
//! (`LlamaForCausalLM`, float32) on the checkpoint this test writes: an independent
//! implementation of the same architecture (GQA, untied head, rope_theta 10000).
//!
//! To regenerate: `SPAR_LM_GOLDEN_DIR=/tmp/golden cargo test -p spar-lm --test golden_logits`
//! writes the checkpoint there; `scripts/lm/golden_logits.py /tmp/golden` prints the values.

use candle_core::{Device, Tensor};
use spar_lm::checkpoint::Checkpoint;
use spar_lm::config::Config;
use spar_lm::model::init_weights;

fn golden_model() -> Checkpoint {
    let mut config = Config::tiny(48, 32, 2, 4);
    config.num_key_value_heads = Some(2);
    config.intermediate_size = 40;
    config.tie_word_embeddings = false;
    config.max_position_embeddings = 64;
    Checkpoint {
        tensors: init_weights(&config, 0.3, 2024, &Device::Cpu).unwrap(),
        config,
        tokenizer: None,
    }
}

const IDS: [u32; 7] = [3, 14, 15, 9, 26, 5, 35];

/// `transformers` 5.24.0 / torch 2.15.0 CPU, float32: logits at the last position.
const LAST: [f64; 48] = [
    5.0188017,
    0.7143653,
    -0.95027912,
    -0.33029068,
    -0.39684677,
    -1.1544158,
    0.68667561,
    -0.74009895,
    0.69076288,
    0.16349661,
    4.2890973,
    -1.8332005,
    -1.2436905,
    -0.95380872,
    -1.0528736,
    -1.6230869,
    1.971266,
    0.57654297,
    0.41824096,
    -0.59209311,
    -0.70614052,
    -2.2417648,
    -0.56734127,
    1.1568075,
    -1.5409251,
    -0.56890744,
    3.5494349,
    3.6890991,
    0.82921088,
    0.49275625,
    -2.1776443,
    -0.20628715,
    2.3479455,
    -2.0326338,
    1.2671701,
    0.4686867,
    -0.00046175718,
    -0.49616334,
    -2.3347392,
    -1.7308458,
    0.52579236,
    2.0123847,
    -0.46375215,
    -1.3191267,
    4.485918,
    2.9909832,
    0.68785566,
    -1.3369105,
];
/// The sum of all 7 x 48 logits.
const SUM: f64 = 12.2840366;

#[test]
fn tiny_model_logits_match_transformers() {
    let ckpt = golden_model();
    if let Some(dir) = std::env::var_os("SPAR_LM_GOLDEN_DIR") {
        ckpt.save(std::path::Path::new(&dir)).unwrap();
    }
    let model = ckpt.frozen().unwrap();
    let ids = Tensor::new(&IDS, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let logits = model.forward(&ids, &mut model.new_cache()).unwrap();
    let all: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
    let last = &all[all.len() - 48..];
    for (i, (a, b)) in last.iter().zip(LAST.iter()).enumerate() {
        assert!(
            (f64::from(*a) - b).abs() < 1e-4,
            "logit {i}: spar {a}, transformers {b}"
        );
    }
    assert_eq!(LAST.len(), 48);
    let sum: f64 = all.iter().map(|&v| f64::from(v)).sum();
    assert!(
        (sum - SUM).abs() < 1e-3,
        "sum of logits: spar {sum}, transformers {SUM}"
    );
}
