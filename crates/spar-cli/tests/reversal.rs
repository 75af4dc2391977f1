//! End-to-end tests of the reversal suite's commands: `spar lm data reversal`, `spar lm
//! reversal`, `spar lm spt` and `spar lm infill`, and the configs in `configs/reversal/`.

mod common;

use common::{assert_usage_error, json, spar, temp_path};
use spar_lm::reversal::ReversalConfig;

#[test]
fn data_reversal_writes_the_same_corpus_for_the_same_seed() {
    let (a, b) = (temp_path("rev-data-a"), temp_path("rev-data-b"));
    let args = |dir: &std::path::Path| {
        let out = spar(&[
            "lm",
            "data",
            "reversal",
            "--out",
            dir.to_str().unwrap(),
            "--seed",
            "7",
            "--pairs",
            "3",
            "--fathers",
            "2",
            "--children",
            "3",
        ]);
        json(&out)
    };
    let summary = args(&a);
    // Per split: 3 pairs (6 entities) + 2 fathers with 3 children (8 entities); 9 facts.
    assert_eq!(summary["entities"], 3 * 14);
    assert_eq!(summary["facts"], 27);
    // Both: 9 facts x 2 sentences; one-way: 9 x 1.
    assert_eq!(summary["training_sentences"], 27);
    args(&b);
    for file in [
        "train.jsonl",
        "queries.jsonl",
        "facts.jsonl",
        "train-units.txt",
    ] {
        let x = std::fs::read(a.join(file)).unwrap();
        assert!(!x.is_empty(), "{file}");
        assert_eq!(x, std::fs::read(b.join(file)).unwrap(), "{file}");
    }
    // spar lm spt keeps every line's units and writes `copies` lines per line.
    let permuted = temp_path("rev-spt.txt");
    let out = spar(&[
        "lm",
        "spt",
        "--data",
        a.join("train-units.txt").to_str().unwrap(),
        "--out",
        permuted.to_str().unwrap(),
        "--copies",
        "2",
    ]);
    assert!(out.status.success(), "{out:?}");
    let units = std::fs::read_to_string(a.join("train-units.txt")).unwrap();
    let text = std::fs::read_to_string(&permuted).unwrap();
    assert_eq!(text.lines().count(), 2 * units.lines().count());
    for (line, pair) in units
        .lines()
        .zip(text.lines().collect::<Vec<_>>().chunks(2))
    {
        for copy in pair {
            for unit in line.split(" | ") {
                assert!(copy.contains(unit), "{copy:?} lost {unit:?}");
            }
        }
    }
}

#[test]
fn every_reversal_config_parses_and_validates() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/reversal");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let cfg: ReversalConfig =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        cfg.validate().unwrap();
        seen += 1;
    }
    assert!(seen >= 4, "{seen} configs");
}

#[test]
fn reversal_refuses_bad_input_before_writing() {
    let out_dir = temp_path("rev-bad");
    let out = spar(&[
        "lm",
        "reversal",
        "--arm",
        "recurrent",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_usage_error(&out, &["recurrent", "causal, masked, spt, concept"]);
    let config = temp_path("rev-bad.toml");
    let with_config = |text: &str| {
        std::fs::write(&config, text).unwrap();
        let (config, out) = (config.to_str().unwrap(), out_dir.to_str().unwrap());
        spar(&["lm", "reversal", "--config", config, "--out", out])
    };
    let out = with_config("arm = \"causal\"\n[train]\nsteps = 0\n");
    assert_usage_error(&out, &["steps 0"]);
    let out = with_config("arm = \"causal\"\n[train]\nstep = 10\n");
    assert_usage_error(&out, &["unknown field"]);
    assert!(!out_dir.exists());
}

#[test]
fn a_masked_arm_trains_reports_every_split_and_fills_blanks() {
    let config = temp_path("rev-masked.toml");
    std::fs::write(
        &config,
        "arm = \"masked\"\n[corpus]\npairs = 2\nfathers = 1\nchildren = 2\n\
         [model]\nhidden_size = 16\nnum_layers = 1\nnum_heads = 2\n[train]\nsteps = 3\n",
    )
    .unwrap();
    let dir = temp_path("rev-masked-run");
    let report = json(&spar(&[
        "lm",
        "reversal",
        "--config",
        config.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--seed",
        "3",
    ]));
    assert_eq!(report["arm"], "masked");
    for split in ["both", "one_way", "held_out"] {
        for direction in ["forward", "reverse", "reverse_infill"] {
            let m = &report["eval"][split][direction];
            // 2 pairs + 1 father's 2 children per split: 4 questions.
            assert_eq!(m["n"], 4.0, "{split} {direction}");
            let top1 = m["top1"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&top1));
            assert!(m["mean_rank"].as_f64().unwrap() >= 1.0);
        }
    }
    let written: ReversalConfig =
        toml::from_str(&std::fs::read_to_string(dir.join("config.toml")).unwrap()).unwrap();
    assert_eq!(written.seed, 3);
    assert_eq!(written.corpus.seed, 3);
    // The checkpoint is a masked model: spar lm infill ranks every candidate.
    let candidates = temp_path("rev-candidates.txt");
    std::fs::write(&candidates, "Zorvin\nAmelt\nBo\n").unwrap();
    let infill = json(&spar(&[
        "lm",
        "infill",
        "--model",
        dir.join("checkpoint").to_str().unwrap(),
        "--text",
        "The father of [MASK] is Amelt.",
        "--candidates",
        candidates.to_str().unwrap(),
    ]));
    assert_eq!(infill["ranking"].as_array().unwrap().len(), 3);
    let fill = infill["fill"].as_str().unwrap();
    assert_eq!(infill["text"], format!("The father of {fill} is Amelt."));
    // Without candidates it fills blanks of 1 to 3 bytes.
    let free = json(&spar(&[
        "lm",
        "infill",
        "--model",
        dir.join("checkpoint").to_str().unwrap(),
        "--text",
        "The father of [MASK] is Amelt.",
        "--max-len",
        "3",
    ]));
    assert_eq!(free["ranking"].as_array().unwrap().len(), 3);
    // Two blanks is an input error.
    let out = spar(&[
        "lm",
        "infill",
        "--model",
        dir.join("checkpoint").to_str().unwrap(),
        "--text",
        "[MASK] and [MASK]",
    ]);
    assert_usage_error(&out, &["exactly once"]);
}
