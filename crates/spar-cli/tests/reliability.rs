//! Reliability under faults (issue 23, `docs/reliability.md`): a damaged checkpoint is skipped
//! on resume and the run still ends bit for bit as an uninterrupted one; a damaged model file
//! exits 2 naming it wherever it is loaded; SIGKILL at random moments loses nothing; a full
//! disk stops the run with exit 2 and the last checkpoint intact; non-finite updates are
//! skipped and counted, and too many in a row stop the run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_usage_error, spar, temp_path};
use rand::{Rng, SeedableRng};
use serde_json::Value;

fn kuhn_config() -> &'static str {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/kuhn-spiral-tiny.toml"
    )
}

fn task_config() -> &'static str {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/tasks/arithmetic-grpo-tiny.toml"
    )
}

/// Overrides that make a Kuhn self-play step take well under a second: a checkpoint every
/// step, an evaluation every other step (exploitability and games against CFR+).
const KUHN: &[&str] = &[
    "model.hidden=16",
    "model.layers=1",
    "model.heads=2",
    "warm_start.steps=2",
    "warm_start.episodes=2",
    "rollout.episodes=4",
    "rollout.max_tokens=8",
    "run.checkpoint_every=1",
    "eval.every=2",
    "eval.games_vs_random=2",
    "eval.games_vs_cfr=2",
    "eval.cfr_iterations=20",
];

/// Overrides that make an arithmetic GRPO step take well under a second.
const TASK: &[&str] = &[
    "model.hidden=16",
    "model.layers=1",
    "model.heads=2",
    "warm_start.steps=3",
    "warm_start.problems=16",
    "warm_start.batch_size=8",
    "rollout.prompts=2",
    "rollout.group_size=4",
    "rollout.max_tokens=8",
    "algorithm.minibatch_size=4",
    "eval.every=2",
    "eval.problems=2",
    "eval.samples=2",
    "eval.pass_at=[1,2]",
    "run.checkpoint_every=1",
];

/// `spar train CONFIG --out OUT --set ...` as arguments.
fn train_args(config: &str, out: &Path, sets: &[&str], extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "train".to_string(),
        config.to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    for s in sets.iter().chain(extra) {
        args.push("--set".into());
        args.push((*s).to_string());
    }
    args
}

fn run_spar(args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spar(&args)
}

fn fresh(name: &str) -> PathBuf {
    let dir = temp_path(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The run's metrics lines without their wall-clock seconds.
fn metrics(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("time/seconds");
            v
        })
        .collect()
}

/// The two runs have the same metrics (seconds aside) and the same bytes in every file of
/// their last checkpoint (`step`), manifest included.
fn assert_same_run(a: &Path, b: &Path, step: usize) {
    assert_eq!(metrics(a), metrics(b), "metrics differ");
    let ckpt = |d: &Path| d.join(format!("checkpoints/step-{step:06}"));
    let mut names: Vec<String> = std::fs::read_dir(ckpt(a))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.iter().any(|n| n == "manifest.json") && names.len() >= 5,
        "{names:?}"
    );
    for name in names {
        assert_eq!(
            std::fs::read(ckpt(a).join(&name)).unwrap(),
            std::fs::read(ckpt(b).join(&name)).unwrap(),
            "{name} of step {step} differs"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Flips one byte in the middle of `path` (its size unchanged).
fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path, keep: usize) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..keep.min(bytes.len())]).unwrap();
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Resume after damaging the latest checkpoints: step 3's weights truncated and one byte of
/// step 2's optimiser moments flipped (same size: only the checksum sees it). The resume
/// names both files, moves both checkpoints aside, continues from step 1 and ends bit for bit
/// as the uninterrupted run. Then damaged models exit 2 naming the file, wherever loaded.
#[test]
fn a_damaged_checkpoint_is_skipped_and_a_damaged_model_exits_2_naming_it() {
    let straight = fresh("damaged-straight");
    let run = run_spar(&train_args(
        kuhn_config(),
        &straight,
        KUHN,
        &["run.steps=3"],
    ));
    assert!(run.status.success(), "{}", stderr(&run));

    let damaged = fresh("damaged-resumed");
    copy_dir(&straight, &damaged);
    let step = |s: usize| damaged.join(format!("checkpoints/step-{s:06}"));
    truncate(&step(3).join("model.safetensors"), 100);
    flip_a_byte(&step(2).join("optimizer.safetensors"));
    let resumed = spar(&["train", "--resume", damaged.to_str().unwrap()]);
    let err = stderr(&resumed);
    assert!(resumed.status.success(), "{err}");
    for (s, file, what) in [
        (3, "model.safetensors", "100 bytes"),
        (2, "optimizer.safetensors", "SHA-256"),
    ] {
        let named = format!(
            "warning: skipping checkpoint {}: {}: {what}",
            step(s).display(),
            step(s).join(file).display()
        );
        assert!(err.contains(&named), "stderr lacks {named:?}: {err}");
        let aside = damaged.join(format!("checkpoints/corrupt-step-{s:06}"));
        assert!(aside.join(file).exists(), "{} kept", aside.display());
    }
    assert_same_run(&straight, &damaged, 3);

    // A checkpoint written before manifests existed resumes, unverified, with a note.
    std::fs::remove_file(step(3).join("manifest.json")).unwrap();
    let again = spar(&["train", "--resume", damaged.to_str().unwrap()]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("has no manifest.json"),
        "{}",
        stderr(&again)
    );

    // A truncated model file exits 2 naming it, wherever it is loaded: with its manifest (the
    // size is checked) and without (the safetensors header does not parse).
    let model = fresh("damaged-model");
    copy_dir(&straight.join("checkpoints/step-000001"), &model);
    let weights = model.join("model.safetensors");
    truncate(&weights, 100);
    let m = model.to_str().unwrap();
    let player = format!("model:{m}");
    let loaders: [&[&str]; 4] = [
        &["eval", "--model", m, "--vs", "random", "--games", "1"],
        &["exploitability", "--game", "kuhn", "--policy", &player],
        &[
            "lm",
            "sample",
            "--model",
            m,
            "--prompt",
            "a",
            "--max-tokens",
            "1",
        ],
        &["serve", "--model", m, "--port", "0"],
    ];
    for with_manifest in [true, false] {
        if !with_manifest {
            std::fs::remove_file(model.join("manifest.json")).unwrap();
        }
        let mention = if with_manifest {
            "100 bytes, but"
        } else {
            "not a readable safetensors file"
        };
        for args in loaders {
            let output = spar(args);
            assert_usage_error(&output, &[&weights.display().to_string(), mention]);
        }
    }
    for dir in [&straight, &damaged, &model] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// A run killed with SIGKILL at pseudo-random moments (start-up, rollouts, updates,
/// evaluations, checkpoint and metrics writes) and resumed each time ends bit for bit as an
/// uninterrupted run: the short version of `scripts/reliability/kill_resume.sh`. Each start
/// is killed after a delay drawn over half the uninterrupted run's duration; a run that ends
/// before its kill is checked against the uninterrupted one and started again; once three
/// kills have landed, the last resume runs to its end and is checked.
#[test]
fn a_task_run_killed_at_random_moments_ends_as_an_uninterrupted_one() {
    let steps = ["run.steps=4"];
    let straight = fresh("kill-straight");
    let started = Instant::now();
    let run = run_spar(&train_args(task_config(), &straight, TASK, &steps));
    assert!(run.status.success(), "{}", stderr(&run));
    let duration = started.elapsed();

    let killed = fresh("kill-killed");
    let first = train_args(task_config(), &killed, TASK, &steps);
    let resume: Vec<String> = vec![
        "train".into(),
        "--resume".into(),
        killed.display().to_string(),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    let (mut landed, mut finished) = (0, 0);
    for _ in 0..40 {
        // A resume, or a first start (also when a kill came before config.toml was written).
        let args = if killed.join("config.toml").exists() {
            &resume
        } else {
            &first
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_spar"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Once three kills have landed, the next start runs to its end: on a loaded machine a
        // resume's start-up alone can outlast every drawn delay, so a run that is always killed
        // would never be checked.
        let delay = if landed < 3 {
            duration.mul_f64(rng.gen_range(0.0..0.5))
        } else {
            Duration::MAX
        };
        let spawned = Instant::now();
        while spawned.elapsed() < delay && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL on Unix
            child.wait().unwrap();
            landed += 1;
            continue;
        }
        assert!(child.wait().unwrap().success(), "a resume failed");
        if landed > 0 {
            assert_same_run(&straight, &killed, 4);
            finished += 1;
        }
        std::fs::remove_dir_all(&killed).unwrap();
        if landed >= 3 {
            break;
        }
    }
    assert!(
        landed >= 3 && finished >= 1,
        "{landed} kills landed, {finished} runs finished"
    );
    std::fs::remove_dir_all(&straight).unwrap();
}

/// `spar` under a shell that limits the size of any file it writes to `kib` KiB (RLIMIT_FSIZE,
/// with SIGXFSZ ignored so that the write fails with EFBIG): a full disk that works without
/// privileges, also as root, where a read-only directory does not stop writes.
fn spar_with_file_limit(kib: u64, args: &[&str]) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_spar"))
        .args(args)
        .output()
        .unwrap()
}

/// A checkpoint or a metrics line that cannot be written (a full disk) stops the run with
/// exit code 2 and a message naming the file; the last checkpoint stays intact (its manifest
/// verifies), no partial checkpoint is left, and the run resumes afterwards. A run directory
/// under a regular file (unwritable, even for root) is refused before anything is written.
#[test]
fn a_full_disk_stops_the_run_with_exit_2_and_the_last_checkpoint_intact() {
    let out = fresh("full-disk");
    let run = run_spar(&train_args(kuhn_config(), &out, KUHN, &["run.steps=1"]));
    assert!(run.status.success(), "{}", stderr(&run));
    let ckpt = out.join("checkpoints");
    let model_bytes = std::fs::metadata(ckpt.join("step-000001/model.safetensors"))
        .unwrap()
        .len();
    let listing = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let out_s = out.to_str().unwrap();

    // The checkpoint of step 2 does not fit: its model file is larger than the limit, which
    // leaves room for metrics.jsonl.
    let limit = model_bytes / 1024 / 2;
    let metrics_bytes = std::fs::metadata(out.join("metrics.jsonl")).unwrap().len();
    assert!(metrics_bytes * 3 < limit * 1024, "{metrics_bytes} {limit}");
    let full = spar_with_file_limit(limit, &["train", "--resume", out_s, "--set", "run.steps=2"]);
    assert_usage_error(
        &full,
        &[
            &format!("cannot write {}", ckpt.join("step-000002").display()),
            "model.safetensors",
            "File too large",
            "--resume",
        ],
    );
    assert_eq!(listing(&ckpt), ["step-000000", "step-000001"]);
    spar_lm::manifest::verify(&ckpt.join("step-000001")).unwrap();

    // The metrics line of step 2 does not fit: the file may not grow past its size at step 1
    // (what the resume cuts it back to, rounded up to a KiB); a line is longer than the
    // rounding leaves.
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "step 2's line was written before its checkpoint failed"
    );
    let kept_bytes: u64 = lines[..2].iter().map(|l| l.len() as u64 + 1).sum();
    let limit = kept_bytes.div_ceil(1024);
    assert!(kept_bytes + lines[2].len() as u64 > limit * 1024);
    let full = spar_with_file_limit(limit, &["train", "--resume", out_s, "--set", "run.steps=2"]);
    assert_usage_error(
        &full,
        &[
            &out.join("metrics.jsonl").display().to_string(),
            "File too large",
        ],
    );
    assert_eq!(listing(&ckpt), ["step-000000", "step-000001"]);
    spar_lm::manifest::verify(&ckpt.join("step-000001")).unwrap();

    // With room again, the run goes on from step 1.
    let resumed = spar(&["train", "--resume", out_s, "--set", "run.steps=2"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(metrics(&out).len(), 3);

    // A run directory that cannot be created (its parent is a regular file).
    let file = temp_path("full-disk-a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let under = file.join("run");
    let refused = run_spar(&train_args(kuhn_config(), &under, KUHN, &["run.steps=1"]));
    assert_usage_error(&refused, &[&under.display().to_string()]);
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
    std::fs::remove_file(&file).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
}

/// NaN injected into a loss and into a gradient (the test-only `SPAR_TEST_INJECT_NAN` of
/// debug builds): each poisoned optimiser step is skipped and counted in
/// `learner/skipped_updates`, and the run goes on to its last step. Every step poisoned:
/// after `run.max_consecutive_skips` skips in a row the run stops, exit 2, naming the key, and
/// its last checkpoint (step 0) is intact.
#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "SPAR_TEST_INJECT_NAN is read by builds with debug assertions only"
)]
fn non_finite_updates_are_skipped_counted_and_stop_the_run_when_they_persist() {
    let out = fresh("nan-skipped");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spar"));
    cmd.args(train_args(task_config(), &out, TASK, &["run.steps=2"]))
        .env("SPAR_TEST_INJECT_NAN", "loss@1,grad@2");
    let run = cmd.output().unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let lines = metrics(&out);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["learner/skipped_updates"], 2, "{}", lines[2]);
    let clean = fresh("nan-clean");
    let run = run_spar(&train_args(task_config(), &clean, TASK, &["run.steps=2"]));
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(metrics(&clean)[2]["learner/skipped_updates"], 0);
    // The skipped steps changed nothing else the run reports: its samples are the same.
    assert_eq!(
        lines[1]["learner/samples"],
        metrics(&clean)[1]["learner/samples"],
        "{}",
        lines[1]
    );

    let stopped = fresh("nan-stopped");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spar"));
    cmd.args(train_args(
        task_config(),
        &stopped,
        TASK,
        &["run.steps=4", "run.max_consecutive_skips=3"],
    ))
    .env("SPAR_TEST_INJECT_NAN", "grad@1-");
    let output = cmd.output().unwrap();
    assert_usage_error(
        &output,
        &[
            "optimiser steps were all skipped for a non-finite loss or gradient",
            "run.max_consecutive_skips = 3",
        ],
    );
    // Two optimiser steps a policy step: step 1 skips two (checkpointed), step 2 two more,
    // the third and fourth in a row; the run stops at the end of step 2, without its
    // checkpoint.
    assert!(
        stderr(&output).contains("step 2: the last 4 optimiser steps"),
        "{}",
        stderr(&output)
    );
    let mut checkpoints: Vec<String> = std::fs::read_dir(stopped.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    checkpoints.sort();
    assert_eq!(checkpoints, ["step-000000", "step-000001"]);
    let last = stopped.join("checkpoints/step-000001");
    assert_eq!(
        spar_lm::manifest::verify(&last).unwrap(),
        spar_lm::manifest::Verification::Verified(std::fs::read_dir(&last).unwrap().count() - 1)
    );
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(last.join("state.json")).unwrap()).unwrap();
    assert_eq!(
        (&state["skipped_updates"], &state["consecutive_skips"]),
        (&Value::from(2), &Value::from(2))
    );
    assert_eq!(metrics(&stopped)[2]["learner/skipped_updates"], 4);
    for dir in [&out, &clean, &stopped] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// A malformed config: how it is given (a `--set` on a shipped config, or a config file's
/// whole text), and what the error must name (the key, and the fix or the accepted values).
struct Malformed {
    /// The shipped config the `--set`s apply to (`None`: `text` is the whole config).
    base: Option<&'static str>,
    sets: &'static [&'static str],
    text: &'static str,
    mentions: &'static [&'static str],
}

const fn set(
    base: &'static str,
    sets: &'static [&'static str],
    mentions: &'static [&'static str],
) -> Malformed {
    Malformed {
        base: Some(base),
        sets,
        text: "",
        mentions,
    }
}

const fn file(text: &'static str, mentions: &'static [&'static str]) -> Malformed {
    Malformed {
        base: None,
        sets: &[],
        text,
        mentions,
    }
}

const K: &str = "configs/kuhn-spiral-tiny.toml";
const T: &str = "configs/tasks/arithmetic-grpo-tiny.toml";

/// At least 30 distinct malformed configs: wrong types, unknown keys and values,
/// out-of-range numbers, missing files, contradictory options.
const MALFORMED: &[Malformed] = &[
    // Wrong types.
    set(
        K,
        &["run.steps=\"ten\""],
        &["run.steps", "expected a whole number >= 0"],
    ),
    set(K, &["ppo.clip=true"], &["ppo.clip", "expected a number"]),
    set(
        K,
        &["model.hidden=1.5"],
        &["model.hidden", "expected a whole number >= 0"],
    ),
    set(
        K,
        &["eval.every=[1]"],
        &["eval.every", "expected a whole number >= 0"],
    ),
    set(
        T,
        &["rollout.temperature=\"hot\""],
        &["rollout.temperature", "expected a number"],
    ),
    file("[run]\nseed = -1\n", &["run.seed", "invalid value"]),
    file("[game]\nname = 3\n", &["game.name", "string"]),
    file("run = 3\n", &["run", "struct RunConfig"]),
    // Not TOML, or not KEY=VALUE.
    file("[run\nsteps = 1\n", &["TOML", "line 1"]),
    set(
        K,
        &["run.steps"],
        &["--set", "run.steps", "section.key=value"],
    ),
    // Unknown keys.
    file("[ppo]\nclipp = 0.1\n", &["unknown field `clipp`", "clip"]),
    file("[runn]\nsteps = 1\n", &["unknown field `runn`", "run"]),
    set(K, &["rollout.episods=4"], &["episods", "episodes"]),
    file("[model.lora]\nrank = 4\n", &["unknown field `rank`", "r"]),
    set(
        T,
        &["algorithm.clip=0.2"],
        &["unknown field `clip`", "clip_low"],
    ),
    // Unknown values.
    set(K, &["game.name=\"kuhnn\""], &["game.name", "kuhn, leduc"]),
    set(
        K,
        &["ppo.lr_schedule=\"step\""],
        &["ppo.lr_schedule", "constant, linear, cosine"],
    ),
    set(
        K,
        &["model.prompt_style=\"fancy\""],
        &["model.prompt_style", "auto, chat, template, raw"],
    ),
    set(
        T,
        &["algorithm.loss_aggregation=\"mean\""],
        &["algorithm.loss_aggregation", "token_mean"],
    ),
    set(
        T,
        &["task.name=\"arithmetic(digits=x)\""],
        &["task.name", "digits"],
    ),
    // Out-of-range numbers.
    set(
        K,
        &["run.checkpoint_every=0"],
        &["run.checkpoint_every", ">= 1"],
    ),
    set(
        K,
        &["run.max_consecutive_skips=0"],
        &["run.max_consecutive_skips", ">= 1"],
    ),
    set(
        T,
        &["run.max_consecutive_skips=0"],
        &["run.max_consecutive_skips", ">= 1"],
    ),
    set(
        K,
        &["ppo.learning_rate=0"],
        &["ppo.learning_rate", "positive"],
    ),
    set(K, &["ppo.clip=-0.1"], &["ppo.clip"]),
    set(K, &["rollout.temperature=-1"], &["rollout.temperature"]),
    set(K, &["rollout.episodes=0"], &["rollout.episodes", ">= 1"]),
    set(K, &["ppo.epochs=0"], &["ppo.epochs", ">= 1"]),
    set(
        K,
        &["model.heads=3"],
        &["model.heads = 3", "multiple of 2 x model.heads"],
    ),
    set(K, &["model.hidden=0"], &["model.hidden", ">= 1"]),
    set(
        T,
        &["rollout.group_size=0"],
        &["rollout.group_size", ">= 1"],
    ),
    set(
        T,
        &["algorithm.learning_rate=-1"],
        &["algorithm.learning_rate", "positive"],
    ),
    set(
        T,
        &["eval.pass_at=[1,32]"],
        &["eval.pass_at", "32", "eval.samples"],
    ),
    // Missing files.
    set(
        K,
        &["model.init=\"/no/such/model\""],
        &["model.init", "/no/such/model", "does not exist"],
    ),
    set(
        T,
        &["model.init=\"/no/such/model.gguf\""],
        &["model.init", "/no/such/model.gguf"],
    ),
    set(
        T,
        &["task.name=\"jsonl(path=/no/such/file.jsonl)\""],
        &["task.name", "/no/such/file.jsonl"],
    ),
    // Contradictory options.
    set(
        T,
        &[
            "algorithm.loss=\"dpo\"",
            "algorithm.kl=\"k3\"",
            "algorithm.kl_coef=0.1",
        ],
        &["algorithm.kl", "algorithm.loss", "\"none\""],
    ),
    set(
        T,
        &["algorithm.kl=\"k3\""],
        &["algorithm.kl", "kl_coef", "set both"],
    ),
    set(
        K,
        &["advantage.estimator=\"grpo\"", "rollout.episodes=1"],
        &["advantage.estimator", "rollout.episodes"],
    ),
    set(
        T,
        &["warm_start.steps=5", "warm_start.problems=0"],
        &["warm_start.problems", ">= 1"],
    ),
];

/// `spar ARGS` when it ends within `limit`; `None` (and the process killed) when it is still
/// running then.
fn refused_within(args: &[String], limit: Duration) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spar"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Some(child.wait_with_output().unwrap())
}

/// Every malformed config exits with code 2, names the key (and the fix or the accepted
/// values), and creates nothing: no run directory.
#[test]
fn every_malformed_config_exits_2_naming_the_key_and_creates_nothing() {
    assert!(MALFORMED.len() >= 30, "{} cases", MALFORMED.len());
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let scratch = fresh("malformed");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut failures = Vec::new();
    for (i, case) in MALFORMED.iter().enumerate() {
        let out = scratch.join(format!("run-{i}"));
        let config = match case.base {
            Some(base) => root.join(base),
            None => {
                let path = scratch.join(format!("case-{i}.toml"));
                std::fs::write(&path, case.text).unwrap();
                path
            }
        };
        let mut args = vec![
            "train".to_string(),
            config.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        for s in case.sets {
            args.extend(["--set".to_string(), s.to_string()]);
        }
        let what = format!("case {i} ({:?}{:?})", case.sets, case.text);
        let Some(output) = refused_within(&args, Duration::from_secs(60)) else {
            failures.push(format!("{what}: still running after 60 s (accepted)"));
            let _ = std::fs::remove_dir_all(&out);
            continue;
        };
        let err = stderr(&output);
        if output.status.code() != Some(2) {
            failures.push(format!("{what}: exit {:?}: {err}", output.status.code()));
        }
        for needle in case.mentions {
            if !err.contains(needle) {
                failures.push(format!("{what}: stderr lacks {needle:?}: {err}"));
            }
        }
        if out.exists() {
            failures.push(format!("{what}: wrote {}", out.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A config file that does not exist.
    let missing = scratch.join("no-such-config.toml");
    let output = spar(&[
        "train",
        missing.to_str().unwrap(),
        "--out",
        scratch.join("run-missing").to_str().unwrap(),
    ]);
    assert_usage_error(
        &output,
        &["cannot read config", &missing.display().to_string()],
    );
    assert!(!scratch.join("run-missing").exists());
    std::fs::remove_dir_all(&scratch).unwrap();
}
