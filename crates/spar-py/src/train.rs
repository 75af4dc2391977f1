//! `spar.train` and `spar.eval` for Python: the loops `spar train` runs and the held-out
//! task evaluation `spar eval --task` runs (`crates/spar-cli/src/train.rs`,
//! `crates/spar-cli/src/task_eval.rs`), with the same config handling: the config's shape
//! picks the loop (a `[selfcorrect]` table, a `[task]` table, or self-play), overrides are
//! `--set`'s `KEY=VALUE`, and the loop is built (every key checked) before the run directory
//! is made. The GIL is released while a loop runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use pyo3::prelude::*;
use serde::Serialize;
use spar_rl::config::selfcorrect::SelfCorrectConfig;
use spar_rl::config::tasks::TaskTrainConfig;
use spar_rl::loops::tasks::{default_pass_at, evaluate_task, TaskEvaluation, TaskPrompting};
use spar_rl::trainer::Line;
use spar_rl::{PromptStyle, TrainConfig};

use crate::error::{input, Failure, Result};

/// Trains from the TOML text `config` with `overrides` into `out` (or continues the run
/// there when `resume`); the JSON list of every `metrics.jsonl` line of the run.
/// `config_name` prefixes config errors, as the CLI prefixes the config's path. With
/// `progress`, one line per step goes to stderr.
#[pyfunction]
#[pyo3(signature = (config, overrides, out, resume=false, config_name="config", progress=true))]
pub fn train(
    py: Python<'_>,
    config: &str,
    overrides: Vec<String>,
    out: PathBuf,
    resume: bool,
    config_name: &str,
    progress: bool,
) -> PyResult<String> {
    if !resume && out.join("checkpoints").exists() {
        return Err(input(format!(
            "{} already holds a run; continue it with resume=True or choose another out",
            out.display()
        ))
        .into());
    }
    let named = |e: spar_rl::Error| match e {
        spar_rl::Error::Invalid(message) => input(format!("{config_name}: {message}")),
        other => Failure::from(other),
    };
    let history = py.detach(|| -> Result<Vec<Line>> {
        let mut on_line = |m: &Line| {
            if progress {
                eprintln!("{}", progress_line(m));
            }
        };
        if SelfCorrectConfig::is_selfcorrect_config(config) {
            let config = SelfCorrectConfig::parse(config, &overrides).map_err(named)?;
            let mut lp =
                spar_rl::loops::selfcorrect::SelfCorrectLoop::new(&config).map_err(named)?;
            return Ok(spar_rl::trainer::run(&mut lp, &out, resume, &mut on_line)?);
        }
        if TaskTrainConfig::is_task_config(config) {
            let config = TaskTrainConfig::parse(config, &overrides).map_err(named)?;
            let mut lp = spar_rl::loops::tasks::TaskLoop::new(&config).map_err(named)?;
            return Ok(spar_rl::trainer::run(&mut lp, &out, resume, &mut on_line)?);
        }
        let config = TrainConfig::parse(config, &overrides).map_err(named)?;
        let mut lp = spar_rl::loops::selfplay::SelfPlay::new(&config).map_err(named)?;
        Ok(spar_rl::trainer::run(&mut lp, &out, resume, &mut on_line)?)
    })?;
    // The report (plots, summary.md) as `spar train` writes it at the end of a run; a run
    // whose report cannot be drawn has still trained, so that is a note, not an error.
    if let Err(e) = spar_report::report::write_report(&out) {
        eprintln!("report not written: {e}");
    }
    Ok(serde_json::to_string(&history).map_err(Failure::from)?)
}

/// A step's progress line: the step, the update's loss and every evaluation number.
fn progress_line(m: &Line) -> String {
    let mut line = format!("step {:>4}", m.step);
    if let Some(loss) = m.number("learner/loss") {
        line.push_str(&format!("  loss {loss:+.4}"));
    }
    for (key, value) in m.values() {
        if let (true, Some(v)) = (key.starts_with("eval/"), value.as_f64()) {
            line.push_str(&format!("  {key} {v:.4}"));
        }
    }
    line
}

/// What `eval_task` returns: `spar eval --task --json`'s report.
#[derive(Serialize)]
struct TaskReport {
    model: String,
    task: String,
    temperature: f64,
    seed: u64,
    #[serde(flatten)]
    evaluation: TaskEvaluation,
    seconds: f64,
}

/// Held-out evaluation of the model at `model` (a checkpoint directory or a .gguf file) on
/// a task's test split: unbiased pass@k, majority vote, accuracy per difficulty (JSON).
/// `task`, `max_tokens` and `prompt_style` default to the checkpoint's `task.json`, as in
/// `spar eval --task`.
#[pyfunction]
#[pyo3(signature = (model, task=None, problems=100, samples=16, pass_at=None, temperature=1.0, max_tokens=None, prompt_style=None, seed=0))]
#[allow(clippy::too_many_arguments)]
pub fn eval_task(
    py: Python<'_>,
    model: PathBuf,
    task: Option<String>,
    problems: usize,
    samples: usize,
    pass_at: Option<Vec<usize>>,
    temperature: f64,
    max_tokens: Option<usize>,
    prompt_style: Option<String>,
    seed: u64,
) -> PyResult<String> {
    let settings = EvalSettings {
        model: &model,
        task,
        problems,
        samples,
        pass_at,
        temperature,
        max_tokens,
        prompt_style,
        seed,
    };
    Ok(py.detach(|| evaluate(&settings))?)
}

/// The arguments of [`eval_task`].
struct EvalSettings<'a> {
    model: &'a Path,
    task: Option<String>,
    problems: usize,
    samples: usize,
    pass_at: Option<Vec<usize>>,
    temperature: f64,
    max_tokens: Option<usize>,
    prompt_style: Option<String>,
    seed: u64,
}

fn evaluate(s: &EvalSettings<'_>) -> Result<String> {
    if s.samples == 0 || s.problems == 0 {
        return Err(input("samples and problems must be at least 1"));
    }
    let saved = if s.model.is_dir() {
        TaskPrompting::load(s.model)?
    } else {
        None
    };
    let spec = s
        .task
        .clone()
        .or(saved.as_ref().map(|p| p.task.clone()))
        .ok_or_else(|| {
            input(format!(
                "{} has no task.json naming its task: pass task= (e.g. task=\"arithmetic\")",
                s.model.display()
            ))
        })?;
    let task: Arc<dyn spar_games::tasks::Task> = Arc::from(
        spar_games::tasks::task_from_spec(&spec).map_err(|e| input(format!("task: {e}")))?,
    );
    let pass_at = s
        .pass_at
        .clone()
        .unwrap_or_else(|| default_pass_at(s.samples));
    if let Some(&k) = pass_at.iter().find(|&&k| k == 0 || k > s.samples) {
        return Err(input(format!(
            "pass_at {k}: each k must be between 1 and samples ({})",
            s.samples
        )));
    }
    let style: PromptStyle = s
        .prompt_style
        .clone()
        .or(saved.as_ref().map(|p| p.prompt_style.clone()))
        .unwrap_or_else(|| "auto".into())
        .parse()?;
    let max_tokens = s
        .max_tokens
        .or(saved.as_ref().map(|p| p.max_tokens))
        .unwrap_or(64);
    // The problems a checkpoint was trained on come from its own generator seed.
    let task_seed = saved.as_ref().map_or(0, |p| p.task_seed);
    let device = spar_lm::device::default_device();
    let loaded = spar_lm::load::load_model(s.model, spar_lm::load::GgufMode::Quantized, &device)?;
    let start = Instant::now();
    let evaluation = evaluate_task(
        &loaded.model,
        &loaded.tokenizer,
        &task,
        task_seed,
        style,
        s.problems,
        s.samples,
        &pass_at,
        s.temperature,
        max_tokens,
        s.seed,
    )?;
    Ok(serde_json::to_string(&TaskReport {
        model: s.model.display().to_string(),
        task: task.name(),
        temperature: s.temperature,
        seed: s.seed,
        evaluation,
        seconds: start.elapsed().as_secs_f64(),
    })?)
}
