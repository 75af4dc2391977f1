//! CoSC on the command line: `spar train` on a config with `selfcorrect.method = "cosc"`
//! (progress, one line per step, the report) and `spar eval --task T --cosc` (the staged
//! held-out evaluation; `docs/self-correction.md`).

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;
use spar_rl::config::selfcorrect::SelfCorrectConfig;
use spar_rl::loops::selfcorrect::cosc::{evaluate_cosc, CoscEvaluation, CoscLoop, CoscSetup};
use spar_rl::loops::selfcorrect::EvalSampling;
use spar_rl::trainer::Line;
use spar_rl::PromptStyle;

use crate::report::print_json;
use crate::task_eval::TaskEvalSettings;
use crate::train::{loop_error, number, show_step, step_bar};

/// `spar train` on a CoSC config: phase 1 (the warm start), then phase 2's steps.
pub fn train(
    config: &SelfCorrectConfig,
    config_path: &Path,
    out: &Path,
    resume: bool,
) -> anyhow::Result<()> {
    // The loop is built (the task and its program kind checked) before the run directory is
    // made.
    let mut lp = CoscLoop::new(config).map_err(|e| loop_error(config_path, e))?;
    let bar = step_bar(config.run.steps, out);
    let on_line = &mut |m: &Line| {
        let mut line = format!(
            "step {:>4}  train acc {:.3} stages {:.2} revised {:.2} invalid {:.2} kept {}  \
             loss {:+.4}",
            m.step,
            number(m, "selfcorrect/accuracy"),
            number(m, "selfcorrect/mean_stages"),
            number(m, "selfcorrect/revision_rate"),
            number(m, "selfcorrect/invalid_rate"),
            number(m, "selfcorrect/kept_episodes"),
            number(m, "learner/loss")
        );
        for (task, _) in m.between("eval/", "mean_stages") {
            line.push_str(&format!(
                "  | eval acc {:.3} first {:.3} stages {:.2} invalid {:.2}",
                number(m, &format!("eval/{task}/accuracy")),
                number(m, &format!("eval/{task}/first_program_accuracy")),
                number(m, &format!("eval/{task}/mean_stages")),
                number(m, &format!("eval/{task}/invalid_rate"))
            ));
        }
        show_step(&bar, m.step, line);
    };
    let history = spar_rl::trainer::run(&mut lp, out, resume, on_line)
        .with_context(|| format!("training in {}", out.display()))?;
    bar.finish_and_clear();
    crate::train::report_and_last_line(&history, out)
}

/// What `spar eval --task T --cosc` prints with `--json`.
#[derive(Debug, Serialize)]
struct CoscReport {
    model: String,
    task: String,
    temperature: f64,
    seed: u64,
    #[serde(flatten)]
    evaluation: CoscEvaluation,
    seconds: f64,
}

/// `spar eval --task T --cosc`: `--k` staged episodes at each of `--problems` test problems.
pub fn evaluate(
    s: &TaskEvalSettings<'_>,
    loaded: &spar_lm::load::LoadedModel,
    setup: &CoscSetup,
    style: PromptStyle,
    sampling: &EvalSampling,
    start: Instant,
) -> anyhow::Result<()> {
    if !(1..=8).contains(&setup.stages) {
        return Err(crate::UsageError(format!(
            "--stages {}: the stage limit must be between 1 and 8",
            setup.stages
        ))
        .into());
    }
    spar_games::tasks::ProgramKind::of(setup.task.as_ref())
        .map_err(|e| crate::UsageError(format!("--cosc: {e}")))?;
    if !s.json {
        eprintln!(
            "playing {} CoSC episodes of at most {} stages on each of {} test problems of {} ...",
            s.samples,
            setup.stages,
            s.problems,
            setup.task.name()
        );
    }
    let evaluation = evaluate_cosc(&loaded.model, &loaded.tokenizer, setup, style, sampling)?;
    let report = CoscReport {
        model: s.model.display().to_string(),
        task: setup.task.name(),
        temperature: s.temperature,
        seed: s.seed,
        evaluation,
        seconds: start.elapsed().as_secs_f64(),
    };
    if s.json {
        return print_json(&report);
    }
    let e = &report.evaluation;
    let st = &e.stats;
    let pm = |ci: Option<f64>| ci.map_or(String::new(), |h| format!(" ± {h:.4}"));
    let rate = |r: Option<f64>| r.map_or("n/a".to_string(), |r| format!("{r:.4}"));
    println!(
        "{} on {} ({} test problems, {} episodes each, at most {} stages, {:.1} s)",
        report.model, report.task, e.problems, e.samples, e.stages, report.seconds
    );
    println!(
        "accuracy                  {:.4}{}  (95% over problems)",
        st.accuracy,
        pm(e.accuracy_ci95)
    );
    println!(
        "first program's accuracy  {:.4}{}",
        st.first_program_accuracy,
        pm(e.first_program_accuracy_ci95)
    );
    println!("mean stages               {:.3}", st.mean_stages);
    println!("revised after a wrong output    {}", rate(st.revision_rate));
    println!(
        "continued after a right output  {}",
        rate(st.continue_after_right_rate)
    );
    println!("wrong first program, right answer  {:.4}", st.fixed_rate);
    println!("right first program, wrong answer  {:.4}", st.broken_rate);
    println!("invalid episodes          {:.4}", st.invalid_rate);
    println!("difficulty  episodes  accuracy  mean stages");
    for l in &st.levels {
        println!(
            "{:>10}  {:>8}  {:>8.4}  {:>11.3}",
            l.level, l.episodes, l.accuracy, l.mean_stages
        );
    }
    Ok(())
}
