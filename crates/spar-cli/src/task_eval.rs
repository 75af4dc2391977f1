//! `spar eval --task T`: pass@k, majority vote and accuracy per difficulty of a language model
//! on a verifiable task's held-out split (the prompts of `spar train` on that task).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;
use spar_rl::loops::tasks::{evaluate_task, TaskEvaluation, TaskPrompting};
use spar_rl::PromptStyle;

use crate::report::print_json;
use crate::UsageError;

/// What `spar eval --task` prints with `--json`.
#[derive(Debug, Serialize)]
struct TaskReport {
    model: String,
    task: String,
    temperature: f64,
    seed: u64,
    #[serde(flatten)]
    evaluation: TaskEvaluation,
    seconds: f64,
}

/// The k reported by default (also the Python package's): 1, 2, 4, ... and `samples`.
pub use spar_rl::loops::tasks::default_pass_at;

/// The settings of a task evaluation.
#[derive(Debug)]
pub struct TaskEvalSettings<'a> {
    /// The model (checkpoint directory or .gguf file).
    pub model: &'a Path,
    /// The task spec (default: the checkpoint's task.json).
    pub task: Option<&'a str>,
    /// Samples per problem.
    pub samples: usize,
    /// Test problems.
    pub problems: usize,
    /// The k of pass@k (default: [`default_pass_at`]).
    pub pass_at: Option<Vec<usize>>,
    /// Sampling temperature.
    pub temperature: f64,
    /// Most tokens per answer (default: task.json, else 64).
    pub max_tokens: Option<usize>,
    /// Prompt style (default: task.json, else auto).
    pub prompt_style: Option<&'a str>,
    /// Seed of the sampling.
    pub seed: u64,
    /// Print JSON.
    pub json: bool,
    /// Attempts per episode (default: task.json, else 1).
    pub attempts: Option<usize>,
    /// What follows each attempt (default: task.json, else none).
    pub feedback: Option<&'a str>,
    /// Self-verification, SPOC's episodes (default: task.json, else false).
    pub self_verify: Option<bool>,
    /// Role reversal, D-HUMOR's critique from the asker's side between attempts (default:
    /// task.json, else false).
    pub role_reversal: Option<bool>,
    /// ReVISE's confidence-aware decoding: answers split at the refine marker, votes
    /// weighted by `P(end)` against `P([refine])`.
    pub refine_vote: bool,
    /// The refine marker of `refine_vote`.
    pub refine_marker: &'a str,
    /// CoSC's staged episodes (default: on when the checkpoint has a cosc.json).
    pub cosc: bool,
    /// CoSC's stage limit (default: cosc.json, else 3).
    pub stages: Option<usize>,
}

/// What `spar eval --task T --refine-vote` prints with `--json`.
#[derive(Debug, Serialize)]
struct RefineReport {
    model: String,
    task: String,
    temperature: f64,
    seed: u64,
    #[serde(flatten)]
    evaluation: spar_rl::loops::selfcorrect::AttemptsEvaluation,
    #[serde(flatten)]
    vote: spar_rl::loops::selfcorrect::RefineVote,
    seconds: f64,
}

/// What `spar eval --task T --attempts N` prints with `--json`.
#[derive(Debug, Serialize)]
struct AttemptsReport {
    model: String,
    task: String,
    attempts: usize,
    feedback: &'static str,
    self_verify: bool,
    role_reversal: bool,
    temperature: f64,
    seed: u64,
    #[serde(flatten)]
    evaluation: spar_rl::loops::selfcorrect::AttemptsEvaluation,
    seconds: f64,
}

/// Runs the evaluation and prints it.
pub fn run(s: &TaskEvalSettings<'_>) -> anyhow::Result<()> {
    if s.samples == 0 || s.problems == 0 {
        return Err(UsageError("--k and --problems must be at least 1".into()).into());
    }
    let saved = if s.model.is_dir() {
        TaskPrompting::load(s.model)?
    } else {
        None
    };
    let task_spec = s
        .task
        .map(str::to_string)
        .or(saved.as_ref().map(|p| p.task.clone()))
        .ok_or_else(|| {
            UsageError(format!(
                "{} has no task.json naming its task: pass --task (e.g. --task arithmetic)",
                s.model.display()
            ))
        })?;
    let task: Arc<dyn spar_games::tasks::Task> = Arc::from(
        spar_games::tasks::task_from_spec(&task_spec)
            .map_err(|e| UsageError(format!("--task: {e}")))?,
    );
    let pass_at = s
        .pass_at
        .clone()
        .unwrap_or_else(|| default_pass_at(s.samples));
    if let Some(&k) = pass_at.iter().find(|&&k| k == 0 || k > s.samples) {
        return Err(UsageError(format!(
            "--pass-at {k}: each k must be between 1 and --k ({})",
            s.samples
        ))
        .into());
    }
    let style: PromptStyle = s
        .prompt_style
        .map(str::to_string)
        .or(saved.as_ref().map(|p| p.prompt_style.clone()))
        .unwrap_or_else(|| "auto".into())
        .parse()
        .map_err(|e: spar_rl::Error| UsageError(e.to_string()))?;
    let max_tokens = s
        .max_tokens
        .or(saved.as_ref().map(|p| p.max_tokens))
        .unwrap_or(64);
    // The problems a checkpoint was trained on come from its own generator seed.
    let task_seed = saved.as_ref().map_or(0, |p| p.task_seed);
    if s.refine_marker.trim().is_empty() {
        return Err(UsageError(format!(
            "--refine-marker {:?}: the marker must have a visible character (the default is \
             \"[refine]\")",
            s.refine_marker
        ))
        .into());
    }
    if s.refine_vote
        && (s.attempts.is_some_and(|a| a != 1)
            || s.self_verify == Some(true)
            || s.role_reversal == Some(true))
    {
        return Err(UsageError(
            "--refine-vote samples one answer per episode (refined within itself after the \
             [refine] marker): leave out --attempts, --self-verify and --role-reversal"
                .into(),
        )
        .into());
    }
    // Checked before the model is loaded: a bad flag costs nothing.
    let multi = attempts_setup(s, saved.as_ref(), &task, task_seed)?;
    crate::lm::set_threads();
    let device = spar_lm::device::default_device();
    let loaded = spar_lm::load::load_model(s.model, spar_lm::load::GgufMode::Quantized, &device)
        .with_context(|| format!("loading the model {}", s.model.display()))?;
    let start = Instant::now();
    let sampling = spar_rl::loops::selfcorrect::EvalSampling {
        problems: s.problems,
        samples: s.samples,
        temperature: s.temperature,
        max_tokens,
        seed: s.seed,
    };
    let saved_cosc = match s.model.is_dir() {
        true => spar_rl::loops::selfcorrect::cosc::CoscPrompting::load(s.model)?,
        false => None,
    };
    let plain = s.attempts.is_some() || s.self_verify.is_some() || s.refine_vote;
    if s.cosc || s.stages.is_some() || saved_cosc.is_some() && !plain {
        let stages = s.stages.or(saved_cosc.map(|c| c.stages)).unwrap_or(3);
        let setup = spar_rl::loops::selfcorrect::cosc::CoscSetup {
            task: task.clone(),
            task_seed,
            stages,
        };
        return crate::cosc::evaluate(s, &loaded, &setup, style, &sampling, start);
    }
    if s.refine_vote {
        let setup = spar_rl::loops::selfcorrect::AttemptsSetup {
            task: task.clone(),
            task_seed,
            attempts: 1,
            feedback: spar_games::tasks::Feedback::None,
            instruction: String::new(),
            verify: false,
            critique: false,
        };
        if !s.json {
            eprintln!(
                "sampling {} answers to each of {} test problems of {} ...",
                s.samples,
                s.problems,
                task.name()
            );
        }
        let (evaluation, vote) = spar_rl::loops::selfcorrect::evaluate_refine(
            &loaded.model,
            &loaded.tokenizer,
            &setup,
            style,
            &sampling,
            s.refine_marker,
        )?;
        let report = RefineReport {
            model: s.model.display().to_string(),
            task: task.name(),
            temperature: s.temperature,
            seed: s.seed,
            evaluation,
            vote,
            seconds: start.elapsed().as_secs_f64(),
        };
        return print_refine(&report, s.json);
    }
    if let Some(setup) = multi {
        let attempts = setup.attempts;
        if !s.json {
            eprintln!(
                "playing {} episodes of {attempts} attempts on each of {} test problems of {} ...",
                s.samples,
                s.problems,
                task.name()
            );
        }
        let evaluation = spar_rl::loops::selfcorrect::evaluate_attempts(
            &loaded.model,
            &loaded.tokenizer,
            &setup,
            style,
            &sampling,
        )?;
        let report = AttemptsReport {
            model: s.model.display().to_string(),
            task: task.name(),
            attempts,
            feedback: setup.feedback.name(),
            self_verify: setup.verify,
            role_reversal: setup.critique,
            temperature: s.temperature,
            seed: s.seed,
            evaluation,
            seconds: start.elapsed().as_secs_f64(),
        };
        if s.json {
            return print_json(&report);
        }
        let e = &report.evaluation;
        println!(
            "{} on {} ({} test problems, {} episodes each, {attempts} attempts, feedback {}, {:.1} s)",
            report.model, report.task, e.problems, e.samples, report.feedback, report.seconds
        );
        for (k, a) in e.stats.accuracy.iter().enumerate() {
            let flips = match k {
                0 => String::new(),
                _ => format!(
                    "  (from attempt {k}: wrong -> right {:.4}, right -> wrong {:.4})",
                    e.stats.round_i_to_c[k - 1],
                    e.stats.round_c_to_i[k - 1]
                ),
            };
            println!("accuracy at attempt {}  {a:.4}{flips}", k + 1);
        }
        let st = &e.stats;
        let pm = |ci: Option<f64>| ci.map_or(String::new(), |h| format!(" ± {h:.4}"));
        println!(
            "Acc@t1 {:.4}{}  Acc@t{attempts} {:.4}{}  (95% over problems)",
            st.accuracy_t1,
            pm(e.accuracy_t1_ci95),
            st.accuracy_t2,
            pm(e.accuracy_t2_ci95)
        );
        println!(
            "delta(t1, t{attempts})          {:+.4}{}",
            st.delta,
            pm(e.delta_ci95)
        );
        println!("wrong -> right (i->c)     {:.4}", st.delta_i_to_c);
        println!("right -> wrong (c->i)     {:.4}", st.delta_c_to_i);
        println!("last answer == first      {:.4}", st.identical_rate);
        println!("unparsable answers        {:.4}", e.unparsable_rate);
        if let Some(v) = &e.verify {
            println!("verifier accuracy         {:.4}", v.accuracy);
            println!("false yes (wrong judged right) {:.4}", v.false_yes_rate);
            println!("false no (right judged wrong)  {:.4}", v.false_no_rate);
            println!(
                "precision / recall of no  {:.4} / {:.4}",
                v.precision_wrong, v.recall_wrong
            );
            println!("attempts per episode      {:.3}", v.mean_attempts);
        }
        return Ok(());
    }
    if !s.json {
        eprintln!(
            "sampling {} answers to each of {} test problems of {} ...",
            s.samples,
            s.problems,
            task.name()
        );
    }
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
    let report = TaskReport {
        model: s.model.display().to_string(),
        task: task.name(),
        temperature: s.temperature,
        seed: s.seed,
        evaluation,
        seconds: start.elapsed().as_secs_f64(),
    };
    if s.json {
        return print_json(&report);
    }
    let e = &report.evaluation;
    println!(
        "{} on {} ({} test problems, {} samples each, temperature {}, {:.1} s)",
        report.model, report.task, e.problems, e.samples, report.temperature, report.seconds
    );
    let mut ks: Vec<(usize, f64)> = e
        .pass_at
        .iter()
        .filter_map(|(k, v)| k.parse::<usize>().ok().map(|k| (k, *v)))
        .collect();
    ks.sort_by_key(|(k, _)| *k);
    for (k, v) in ks {
        println!("pass@{k:<4} {v:.4}");
    }
    println!("majority vote accuracy {:.4}", e.majority_accuracy);
    println!("unparsable answers     {:.4}", e.unparsable_rate);
    println!(
        "distinct correct       {:.2} per problem",
        e.distinct_correct
    );
    println!("difficulty  pass@1");
    for (level, acc) in &e.accuracy_by_difficulty {
        println!("{level:>10}  {acc:.4}");
    }
    Ok(())
}

/// Prints ReVISE's confidence-aware decoding: the accuracy of the first and the final
/// attempts, the plain and the confidence-weighted vote side by side, and the AUROC.
fn print_refine(report: &RefineReport, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(report);
    }
    let (e, v) = (&report.evaluation, &report.vote);
    println!(
        "{} on {} ({} test problems, {} answers each, temperature {}, {:.1} s)",
        report.model, report.task, e.problems, e.samples, report.temperature, report.seconds
    );
    let pm = |ci: Option<f64>| ci.map_or(String::new(), |h| format!(" ± {h:.4}"));
    println!(
        "first attempt accuracy    {:.4}{}",
        e.stats.accuracy_t1,
        pm(e.accuracy_t1_ci95)
    );
    println!(
        "final answer accuracy     {:.4}{}",
        e.stats.accuracy_t2,
        pm(e.accuracy_t2_ci95)
    );
    println!("answers that refined      {:.4}", v.refine_rate);
    println!("mean p_refine             {:.3e}", v.p_refine);
    println!(
        "majority vote {:.4}   confidence-weighted vote {:.4}",
        v.majority_accuracy, v.weighted_accuracy
    );
    match v.auroc {
        Some(a) => println!("AUROC of P([refine]) for a wrong answer  {a:.4}"),
        None => println!("AUROC of P([refine]) for a wrong answer  n/a (all right or all wrong)"),
    }
    println!("unparsable attempts       {:.4}", e.unparsable_rate);
    Ok(())
}

/// The multi-attempt episodes `spar eval --attempts N` plays (`None` for one attempt), from
/// the flags and the checkpoint's `task.json`, checked before anything is loaded.
fn attempts_setup(
    s: &TaskEvalSettings<'_>,
    saved: Option<&TaskPrompting>,
    task: &Arc<dyn spar_games::tasks::Task>,
    task_seed: u64,
) -> anyhow::Result<Option<spar_rl::loops::selfcorrect::AttemptsSetup>> {
    let saved = saved.and_then(|p| p.attempts.clone());
    let attempts = s
        .attempts
        .or(saved.as_ref().map(|a| a.attempts))
        .unwrap_or(1);
    if attempts == 0 {
        return Err(UsageError("--attempts must be at least 1".into()).into());
    }
    if attempts == 1 || s.refine_vote {
        return Ok(None);
    }
    let verify = s
        .self_verify
        .or(saved.as_ref().map(|a| a.verify))
        .unwrap_or(false);
    let critique = s
        .role_reversal
        .or(saved.as_ref().map(|a| a.critique))
        .unwrap_or(false);
    let feedback = match s.feedback {
        Some(f) => f
            .parse::<spar_games::tasks::Feedback>()
            .map_err(|e| UsageError(format!("--feedback: {e}")))?,
        None => saved.as_ref().map_or_else(Default::default, |a| a.feedback),
    };
    if verify && critique {
        return Err(UsageError(
            "--self-verify and --role-reversal: an attempt is followed by a verification or by \
             a critique, not both (set one of them to false)"
                .into(),
        )
        .into());
    }
    if (verify || critique) && feedback != spar_games::tasks::Feedback::None {
        let (what, flag) = match verify {
            true => (
                "self-verification: the model's own verification",
                "--self-verify",
            ),
            false => ("role reversal: the model's own critique", "--role-reversal"),
        };
        return Err(UsageError(format!(
            "--feedback {} with {what} is the feedback (use --feedback none, or {flag}=false)",
            feedback.name()
        ))
        .into());
    }
    Ok(Some(spar_rl::loops::selfcorrect::AttemptsSetup {
        task: task.clone(),
        task_seed,
        attempts,
        feedback,
        instruction: saved.map_or_else(
            || spar_games::tasks::DEFAULT_INSTRUCTION.to_string(),
            |a| a.instruction,
        ),
        verify,
        critique,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ks_are_powers_of_two_and_n() {
        assert_eq!(default_pass_at(16), vec![1, 2, 4, 8, 16]);
        assert_eq!(default_pass_at(10), vec![1, 2, 4, 8, 10]);
        assert_eq!(default_pass_at(1), vec![1]);
    }
}
