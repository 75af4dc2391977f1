//! End-to-end tests of `spar lm` (pretraining, a LoRA fine-tune, merging, sampling) and of a
//! language model evaluated exactly as a policy (`spar exploitability --policy model:DIR`).

mod common;

use common::{assert_usage_error, json, spar, temp_path};

/// `spar lm`: pretrain a tiny model, fine-tune a LoRA adapter on it, merge the adapter, and
/// check that the adapter and the merged checkpoint sample the same greedy text.
#[test]
fn lm_pretrain_lora_finetune_merge_and_sample() {
    let data = temp_path("lm-data.txt");
    std::fs::write(&data, "one two three four. ".repeat(60)).unwrap();
    let text = data.to_str().unwrap();
    let base = temp_path("lm-base");
    let base_s = base.to_str().unwrap();
    let out = spar(&[
        "lm",
        "pretrain",
        "--data",
        text,
        "--out",
        base_s,
        "--steps",
        "40",
        "--hidden",
        "32",
        "--layers",
        "1",
        "--heads",
        "2",
        "--seq-len",
        "32",
        "--batch",
        "8",
        "--lr",
        "1e-2",
    ]);
    assert!(out.status.success(), "{out:?}");
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "loss.csv",
    ] {
        assert!(base.join(file).exists(), "pretrain wrote no {file}");
    }
    let adapter = temp_path("lm-adapter");
    let adapter_s = adapter.to_str().unwrap();
    let out = spar(&[
        "lm",
        "finetune",
        "--model",
        base_s,
        "--data",
        text,
        "--out",
        adapter_s,
        "--lora-rank",
        "4",
        "--lora-targets",
        "all-linear",
        "--steps",
        "20",
        "--seq-len",
        "32",
        "--lr",
        "1e-2",
    ]);
    assert!(out.status.success(), "{out:?}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(adapter.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 4);
    let merged = temp_path("lm-merged");
    let merged_s = merged.to_str().unwrap();
    let out = spar(&[
        "lm", "merge", "--model", base_s, "--lora", adapter_s, "--out", merged_s,
    ]);
    assert!(out.status.success(), "{out:?}");
    let sample = |extra: &[&str]| {
        let mut args = vec![
            "lm",
            "sample",
            "--prompt",
            "one two",
            "--max-tokens",
            "12",
            "--json",
        ];
        args.extend_from_slice(extra);
        json(&spar(&args))
    };
    let with_adapter = sample(&["--model", base_s, "--lora", adapter_s]);
    let with_merged = sample(&["--model", merged_s]);
    assert_eq!(with_adapter["token_ids"], with_merged["token_ids"]);
    assert_eq!(with_adapter["token_ids"].as_array().unwrap().len(), 12);
    // Seeded sampling at temperature 1 repeats itself.
    let hot = |seed: &str| {
        sample(&["--model", base_s, "--temperature", "1", "--seed", seed])["token_ids"].clone()
    };
    assert_eq!(hot("3"), hot("3"));

    // Bad input: exit code 2 with the path named.
    let out = spar(&[
        "lm", "sample", "--model", base_s, "--lora", text, "--prompt", "x",
    ]);
    assert_usage_error(&out, &["adapter_config.json"]);
    let missing = temp_path("no-such-model");
    let out = spar(&["lm", "info", "--model", missing.to_str().unwrap()]);
    assert_usage_error(&out, &["no-such-model"]);
}

/// `spar exploitability --policy model:DIR`: a language model evaluated exactly on Kuhn Poker.
#[test]
fn exploitability_of_a_language_model_policy() {
    let data = temp_path("kuhn-lm-data.txt");
    std::fs::write(&data, "\\boxed{bet}\n".repeat(80)).unwrap();
    let model = temp_path("kuhn-lm");
    let out = spar(&[
        "lm",
        "pretrain",
        "--data",
        data.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--steps",
        "5",
        "--hidden",
        "16",
        "--layers",
        "1",
        "--heads",
        "2",
        "--seq-len",
        "32",
        "--batch",
        "4",
    ]);
    assert!(out.status.success(), "{out:?}");
    let policy_file = temp_path("kuhn-lm-policy.json");
    let spec = format!("model:{}", model.display());
    let report = json(&spar(&[
        "exploitability",
        "--game",
        "kuhn",
        "--policy",
        &spec,
        "--json",
        "--save-policy",
        policy_file.to_str().unwrap(),
    ]));
    let m = &report["model"];
    assert_eq!(m["information_sets"], 12);
    let outside = m["outside_mass_mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&outside));
    // The saved table is an ordinary policy file: evaluating it gives the same NashConv.
    let again = json(&spar(&[
        "exploitability",
        "--game",
        "kuhn",
        "--policy",
        policy_file.to_str().unwrap(),
        "--json",
    ]));
    let a = report["nash_conv"].as_f64().unwrap();
    let b = again["nash_conv"].as_f64().unwrap();
    assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    assert!(a > 0.0 && a <= 4.0);
    // A bad temperature is a usage error.
    let out = spar(&[
        "exploitability",
        "--game",
        "kuhn",
        "--policy",
        &spec,
        "--temperature",
        "0",
    ]);
    assert_usage_error(&out, &["--temperature"]);
}
