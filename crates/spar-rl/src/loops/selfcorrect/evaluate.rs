//! Held-out evaluation of self-correction: multi-attempt episodes on test problems and SCoRe's
//! metrics over them (`spar eval --task T --attempts N` and the loop's `eval/` values).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use spar_games::tasks::{AttemptStats, AttemptsEnv, Feedback, Split, Task, Verdict, VerifyStats};
use spar_lm::sample::SamplingParams;
use spar_lm::tokenizer::TextTokenizer;
use spar_lm::Llama;

use crate::error::Result;
use crate::rollout::prompt::PromptStyle;
use crate::rollout::{groups, Rollout};
use crate::trainer::Scope;

/// How episodes of several attempts are set up: the task, its generator seed, the attempts
/// and what the model reads between them.
#[derive(Debug, Clone)]
pub struct AttemptsSetup {
    /// The task.
    pub task: Arc<dyn Task>,
    /// Its generator seed.
    pub task_seed: u64,
    /// Attempts per episode.
    pub attempts: usize,
    /// What follows each attempt.
    pub feedback: Feedback,
    /// The instruction before every attempt after the first.
    pub instruction: String,
    /// Self-verification (SPOC): the model verifies each attempt, and a "yes" ends the
    /// episode; the external feedback is then not shown.
    pub verify: bool,
    /// Role reversal (D-HUMOR): the model critiques each attempt but the last from the
    /// asker's side; the external feedback is then not shown.
    pub critique: bool,
}

impl AttemptsSetup {
    /// An environment of `split`, not reset.
    fn bare(&self, split: Split) -> AttemptsEnv {
        let env = AttemptsEnv::new(
            self.task.clone(),
            split,
            self.task_seed,
            self.attempts,
            self.feedback,
            &self.instruction,
        );
        match (self.verify, self.critique) {
            (true, _) => env.with_self_verification(),
            (false, true) => env.with_role_reversal(),
            (false, false) => env,
        }
    }

    /// An environment of `split`, reset to problem `index`.
    pub fn env(&self, split: Split, index: u64) -> AttemptsEnv {
        let mut env = self.bare(split);
        spar_core::Env::reset(&mut env, index);
        env
    }

    /// Messages per episode at most: the attempts, and their verifications or critiques.
    pub fn max_messages(&self) -> usize {
        self.bare(Split::Test).max_messages()
    }
}

/// SCoRe's metrics on held-out problems, with how many episodes they count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptsEvaluation {
    /// Test problems evaluated.
    pub problems: usize,
    /// Episodes per problem.
    pub samples: usize,
    /// Accuracy per attempt and the transitions between the first and the last.
    #[serde(flatten)]
    pub stats: AttemptStats,
    /// 95% half-width of Acc@t1 (normal approximation over problems: each problem's mean
    /// over its episodes is one observation, since episodes of one problem are correlated);
    /// absent with one problem.
    pub accuracy_t1_ci95: Option<f64>,
    /// The same for Acc@t2 (the last attempt).
    pub accuracy_t2_ci95: Option<f64>,
    /// The same for Delta(t1, t2), paired within each episode.
    pub delta_ci95: Option<f64>,
    /// Fraction of answers (every attempt) the verifier could not parse.
    pub unparsable_rate: f64,
    /// Mean answer length in tokens.
    pub response_tokens: f64,
    /// Self-verifying episodes (SPOC): how the model's verdicts on its own attempts fared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyStats>,
}

impl AttemptsEvaluation {
    /// The evaluation as `eval/<task>/<metric>`.
    pub fn write(&self, task: &str, out: &mut Scope) {
        out.eval(&format!("{task}/problems"), self.problems);
        out.eval(&format!("{task}/samples"), self.samples);
        for (k, a) in self.stats.accuracy.iter().enumerate() {
            out.eval(&format!("{task}/attempt{}/accuracy", k + 1), *a);
        }
        write_stats(&self.stats, &format!("{task}/"), &mut |k, v| out.eval(k, v));
        out.eval_some(&format!("{task}/accuracy_t1_ci95"), self.accuracy_t1_ci95);
        out.eval_some(&format!("{task}/accuracy_t2_ci95"), self.accuracy_t2_ci95);
        out.eval_some(&format!("{task}/delta_ci95"), self.delta_ci95);
        out.eval(&format!("{task}/unparsable_rate"), self.unparsable_rate);
        out.eval(&format!("{task}/response_tokens"), self.response_tokens);
        if let Some(v) = &self.verify {
            write_verify(v, &format!("{task}/verify/"), &mut |k, x| out.eval(k, x));
        }
    }
}

/// SPOC's verifier metrics, each named `prefix` + its field name.
pub(super) fn write_verify(v: &VerifyStats, prefix: &str, put: &mut dyn FnMut(&str, f64)) {
    for (name, x) in [
        ("accuracy", v.accuracy),
        ("false_yes_rate", v.false_yes_rate),
        ("false_no_rate", v.false_no_rate),
        ("precision_wrong", v.precision_wrong),
        ("recall_wrong", v.recall_wrong),
        ("unparsable_rate", v.unparsable_rate),
        ("mean_attempts", v.mean_attempts),
    ] {
        put(&format!("{prefix}{name}"), x);
    }
}

/// Per episode of `envs` that verifies itself, its judged attempts; `None` without
/// self-verification.
pub(super) fn verify_stats(envs: &[AttemptsEnv]) -> Option<VerifyStats> {
    let verifying = envs.first().is_some_and(AttemptsEnv::verifies);
    verifying.then(|| VerifyStats::of(&envs.iter().map(AttemptsEnv::judged).collect::<Vec<_>>()))
}

/// The scalar fields of `stats`, each named `prefix` + its field name.
pub(super) fn write_stats(stats: &AttemptStats, prefix: &str, put: &mut dyn FnMut(&str, f64)) {
    for (name, v) in [
        ("accuracy_t1", stats.accuracy_t1),
        ("accuracy_t2", stats.accuracy_t2),
        ("delta", stats.delta),
        ("delta_i_to_c", stats.delta_i_to_c),
        ("delta_c_to_i", stats.delta_c_to_i),
        ("identical_rate", stats.identical_rate),
    ] {
        put(&format!("{prefix}{name}"), v);
    }
}

/// Per episode of `envs` (played to the end), each attempt's (correct, completion).
pub(super) fn attempt_outcomes(envs: &[AttemptsEnv]) -> Vec<Vec<(bool, &str)>> {
    envs.iter()
        .map(|e| {
            e.verdicts()
                .into_iter()
                .zip(e.answers())
                .map(|(v, a)| (v.is_correct(), a))
                .collect()
        })
        .collect()
}

/// 95% half-widths of Acc@t1, Acc@t2 and Delta(t1, t2) over problems: `outcomes` holds
/// `samples` consecutive episodes per problem; each problem's means over its episodes are the
/// observations of [`spar_eval::tournament::mean_interval`] (`None` with fewer than two problems).
pub(super) fn problem_intervals(
    outcomes: &[Vec<(bool, &str)>],
    samples: usize,
) -> [Option<f64>; 3] {
    // An attempt's correctness as 0 or 1 (an episode without attempts counts 0).
    let at = |a: Option<&(bool, &str)>| a.map_or(0.0, |a| f64::from(u8::from(a.0)));
    let mut columns: [Vec<f64>; 3] = Default::default();
    for problem in outcomes.chunks(samples.max(1)) {
        let n = problem.len() as f64;
        let a = problem.iter().map(|e| at(e.first())).sum::<f64>() / n;
        let b = problem.iter().map(|e| at(e.last())).sum::<f64>() / n;
        columns[0].push(a);
        columns[1].push(b);
        columns[2].push(b - a);
    }
    columns.map(|c| {
        spar_eval::tournament::mean_interval(&c)
            .1
            .map(|i| (i.high - i.low) / 2.0)
    })
}

/// How held-out episodes are sampled: `samples` episodes at each of the first `problems`
/// test problems, at `temperature`, at most `max_tokens` per message, the rollout's random
/// numbers from `seed` alone (so evaluations of different models share them).
#[derive(Debug, Clone, Copy)]
pub struct EvalSampling {
    /// Test problems (the first ones of the split).
    pub problems: usize,
    /// Episodes per problem.
    pub samples: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// Most tokens per message.
    pub max_tokens: usize,
    /// The rollout's seed.
    pub seed: u64,
}

/// Plays the held-out episodes of `sampling`: the environments (`samples` consecutive ones
/// per problem) and the rollout's samples.
pub(super) fn play_test_episodes(
    model: &Llama,
    tokenizer: &TextTokenizer,
    setup: &AttemptsSetup,
    style: PromptStyle,
    sampling: &EvalSampling,
) -> Result<(Vec<AttemptsEnv>, crate::rollout::Batch)> {
    let problems = sampling
        .problems
        .min(setup.task.split_size(Split::Test).unwrap_or(usize::MAX));
    let originals: Vec<AttemptsEnv> = (0..problems as u64)
        .map(|p| setup.env(Split::Test, p))
        .collect();
    let mut envs = groups(&originals, sampling.samples);
    let params = SamplingParams {
        temperature: sampling.temperature,
        max_tokens: sampling.max_tokens,
        ..SamplingParams::default()
    };
    let engine = spar_lm::LocalEngine { model, tokenizer };
    let rollout = Rollout {
        group_size: sampling.samples,
        max_rounds: setup.max_messages() as u64,
        ..Rollout::new(&engine, tokenizer, style, &params)
    };
    let batch = rollout.play(&mut envs, &[], sampling.seed)?;
    Ok((envs, batch))
}

impl AttemptsEvaluation {
    /// The evaluation of `outcomes` (per episode, each attempt's (correct, completion);
    /// `samples` consecutive episodes per problem) with the given unparsable rate, answer
    /// length and verifier metrics.
    pub(super) fn of(
        outcomes: &[Vec<(bool, &str)>],
        samples: usize,
        unparsable_rate: f64,
        response_tokens: f64,
        verify: Option<VerifyStats>,
    ) -> AttemptsEvaluation {
        let [t1, t2, delta] = problem_intervals(outcomes, samples);
        AttemptsEvaluation {
            problems: outcomes.len() / samples.max(1),
            samples,
            stats: AttemptStats::of(outcomes),
            accuracy_t1_ci95: t1,
            accuracy_t2_ci95: t2,
            delta_ci95: delta,
            unparsable_rate,
            response_tokens,
            verify,
        }
    }
}

/// Held-out evaluation: `sampling.samples` episodes of `setup.attempts` attempts at each of
/// the first `sampling.problems` test problems ([`play_test_episodes`]), and SCoRe's metrics.
pub fn evaluate_attempts(
    model: &Llama,
    tokenizer: &TextTokenizer,
    setup: &AttemptsSetup,
    style: PromptStyle,
    sampling: &EvalSampling,
) -> Result<AttemptsEvaluation> {
    let (envs, batch) = play_test_episodes(model, tokenizer, setup, style, sampling)?;
    let outcomes = attempt_outcomes(&envs);
    let answers = envs
        .iter()
        .map(|e| e.verdicts().len())
        .sum::<usize>()
        .max(1) as f64;
    let unparsable = envs
        .iter()
        .flat_map(|e| e.verdicts())
        .filter(|v| matches!(v, Verdict::Unparsable { .. }))
        .count();
    Ok(AttemptsEvaluation::of(
        &outcomes,
        sampling.samples,
        unparsable as f64 / answers,
        batch.mean_response_tokens(),
        verify_stats(&envs),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_over_problem_means() {
        // Two problems of two episodes: problem 0 right-then-right and wrong-then-right
        // (t1 1/2, t2 1, delta 1/2), problem 1 wrong twice and right-then-wrong (t1 1/2, t2 0,
        // delta -1/2).
        let outcomes = vec![
            vec![(true, "1"), (true, "1")],
            vec![(false, "2"), (true, "1")],
            vec![(false, "2"), (false, "2")],
            vec![(true, "1"), (false, "3")],
        ];
        let [t1, t2, delta] = problem_intervals(&outcomes, 2);
        let z = spar_eval::tournament::Z_95;
        // Means [1/2, 1/2]: no spread. [1, 0]: sample sd sqrt(1/2), over sqrt(2): 1/2.
        assert_eq!(t1, Some(0.0));
        assert!((t2.unwrap() - z * 0.5).abs() < 1e-12, "{t2:?}");
        assert!((delta.unwrap() - z * 0.5).abs() < 1e-12, "{delta:?}");
        assert_eq!(problem_intervals(&outcomes[..2], 2), [None, None, None]);
    }
}
