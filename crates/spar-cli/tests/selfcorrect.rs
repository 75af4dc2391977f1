//! `spar train` on every shipped self-correction config, and `spar eval --attempts` (and its
//! variants) on the checkpoints: the CLI reproduces the loops' own held-out numbers.

use std::path::PathBuf;

mod support;
use support::*;

/// Overrides that make a self-correction config train for one step in seconds.
const SELFCORRECT_SMALL: &[&str] = &[
    "run.steps=1",
    "run.seed=0",
    "warm_start.steps=3",
    "warm_start.problems=16",
    "warm_start.batch_size=8",
    "rollout.prompts=2",
    "rollout.group_size=2",
    "eval.problems=3",
    "eval.samples=2",
];

#[test]
fn every_selfcorrect_config_trains_and_its_checkpoint_evaluates_its_attempts() {
    let dir = root().join("configs/selfcorrect");
    let mut configs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        // Agent-R's config (an [agent_r] table) has a test of its own (tests/agent_r.rs).
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            spar_rl::config::selfcorrect::SelfCorrectConfig::is_selfcorrect_config(&text)
        })
        .collect();
    configs.sort();
    assert!(!configs.is_empty(), "no configs/selfcorrect/*.toml");
    for config in configs {
        let name = config.file_stem().unwrap().to_string_lossy().into_owned();
        let out = temp_dir(&format!("selfcorrect-{name}"));
        let mut args = vec![
            "train".to_string(),
            config.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        for s in SELFCORRECT_SMALL {
            args.extend(["--set".to_string(), s.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        succeeded(&spar(&args), &name);
        let lines = metrics(&out);
        assert_eq!(lines.len(), 2, "{name}");
        let last = &lines[1];
        if name == "cosc" {
            // CoSC's episodes are stages, not attempts: its own test (tests/cosc.rs) checks
            // `spar eval --cosc` against the loop's evaluation.
            assert!(last["selfcorrect/mean_stages"].is_number(), "{last}");
            let held_out =
                last.as_object().unwrap().keys().any(|k| {
                    k.starts_with("eval/") && k.ends_with("/accuracy") && last[k].is_number()
                });
            assert!(held_out, "{last}");
            let _ = std::fs::remove_dir_all(&out);
            continue;
        }
        assert!(
            last["selfcorrect/accuracy_t2"].is_number(),
            "{name}: {last}"
        );
        // `spar eval --attempts` on the checkpoint with the loop's evaluation settings gives
        // the loop's numbers exactly (the same problems and random numbers).
        // The loop evaluates with seed run.seed ^ 0xe7a1 (run.seed = 0 here).
        let seed = 0xe7a1u64;
        let checkpoint = out.join("checkpoints/step-000001");
        // `spar eval` of the checkpoint with the loop's evaluation settings and `mode`.
        let eval_json = |mode: &[&str], what: &str| {
            let seed = seed.to_string();
            let mut args = vec!["eval", "--model", checkpoint.to_str().unwrap()];
            args.extend(mode);
            args.extend(["--k", "2", "--problems", "3", "--seed", &seed, "--json"]);
            json(&spar(&args), what)
        };
        if name == "revise" {
            // ReVISE's loop evaluates with the confidence-aware vote: `spar eval --refine-vote`
            // gives its numbers exactly.
            let report = eval_json(&["--refine-vote"], "revise: spar eval --refine-vote");
            for (key, metric) in [
                ("accuracy_t1", "accuracy_t1"),
                ("accuracy_t2", "accuracy_t2"),
                ("majority_accuracy", "refine/majority_accuracy"),
                ("weighted_accuracy", "refine/weighted_accuracy"),
                ("p_refine", "refine/p_refine"),
                ("refine_rate", "refine/refine_rate"),
            ] {
                assert_eq!(
                    report[key],
                    last[format!("eval/arithmetic/{metric}")],
                    "revise: {key}: {report} vs {last}"
                );
            }
            let bad = spar(&[
                "eval",
                "--model",
                checkpoint.to_str().unwrap(),
                "--refine-vote",
                "--attempts",
                "2",
            ]);
            assert_usage_error(&bad, &["--refine-vote", "--attempts"]);
            let bad = spar(&[
                "eval",
                "--model",
                checkpoint.to_str().unwrap(),
                "--refine-vote",
                "--refine-marker",
                " ",
            ]);
            assert_usage_error(&bad, &["--refine-marker", "visible character"]);
            let _ = std::fs::remove_dir_all(&out);
            continue;
        }
        let report = eval_json(
            &["--attempts", "2"],
            &format!("{name}: spar eval --attempts"),
        );
        let task = report["task"]
            .as_str()
            .unwrap()
            .split('(')
            .next()
            .unwrap()
            .to_string();
        for key in [
            "accuracy_t1",
            "accuracy_t2",
            "delta",
            "delta_i_to_c",
            "delta_c_to_i",
            "identical_rate",
            "unparsable_rate",
            "delta_ci95",
        ] {
            assert_eq!(
                report[key],
                last[format!("eval/{task}/{key}")],
                "{name}: {key}: {report} vs {last}"
            );
        }
        assert_eq!(report["attempts"], 2);
        // A SPOC checkpoint's episodes verify themselves, as in training.
        let spoc = name == "spoc";
        assert_eq!(report["self_verify"], spoc, "{name}");
        // A role-reversal checkpoint's episodes critique themselves, as in training.
        let reversal = name == "role_reversal";
        assert_eq!(report["role_reversal"], reversal, "{name}");
        if spoc {
            for key in [
                "accuracy",
                "false_yes_rate",
                "false_no_rate",
                "mean_attempts",
            ] {
                assert_eq!(
                    report["verify"][key],
                    last[format!("eval/{task}/verify/{key}")],
                    "{name}: verify/{key}: {report} vs {last}"
                );
            }
        }
        // Bad values exit 2 naming what was wrong, and a bad config creates nothing.
        let with_feedback = |feedback: &str| {
            let model = checkpoint.to_str().unwrap();
            spar(&[
                "eval",
                "--model",
                model,
                "--attempts",
                "2",
                "--feedback",
                feedback,
            ])
        };
        if spoc {
            let bad = with_feedback("text");
            assert_usage_error(&bad, &["--feedback text", "self-verification"]);
        }
        if reversal {
            let bad = with_feedback("text");
            assert_usage_error(&bad, &["--feedback text", "role reversal"]);
            let model = checkpoint.to_str().unwrap();
            let both = spar(&["eval", "--model", model, "--attempts", "2", "--self-verify"]);
            assert_usage_error(&both, &["--self-verify", "--role-reversal"]);
        }
        assert_usage_error(
            &with_feedback("loud"),
            &["--feedback", "none, verdict, text"],
        );
        let nowhere = temp_dir(&format!("selfcorrect-{name}-bad"));
        let bad = spar(&[
            "train",
            config.to_str().unwrap(),
            "--out",
            nowhere.to_str().unwrap(),
            "--set",
            "selfcorrect.method=magic",
        ]);
        assert_usage_error(&bad, &["selfcorrect.method", "score, naive, single"]);
        assert!(!nowhere.exists());
        let _ = std::fs::remove_dir_all(&out);
    }
}
