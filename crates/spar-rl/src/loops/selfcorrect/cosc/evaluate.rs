//! Held-out evaluation of CoSC: staged episodes on test problems (`spar eval --cosc` and the
//! loop's `eval/` values), and how a checkpoint's episodes are set up (`cosc.json`).

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use spar_core::atomic::write_atomic;
use spar_games::tasks::{CoscEnv, CoscStats, Split, Task};
use spar_lm::sample::SamplingParams;
use spar_lm::tokenizer::TextTokenizer;
use spar_lm::Llama;

use crate::error::{Error, Result};
use crate::loops::selfcorrect::EvalSampling;
use crate::rollout::prompt::PromptStyle;
use crate::rollout::{groups, Rollout};
use crate::trainer::Scope;

/// How CoSC episodes are set up: the task, its generator seed and the stage limit.
#[derive(Debug, Clone)]
pub struct CoscSetup {
    /// The task (arithmetic or countdown).
    pub task: Arc<dyn Task>,
    /// Its generator seed.
    pub task_seed: u64,
    /// The stage limit.
    pub stages: usize,
}

impl CoscSetup {
    /// An environment of `split`, reset to problem `index`; an error when the task has no
    /// program.
    pub fn env(&self, split: Split, index: u64) -> Result<CoscEnv> {
        let mut env = CoscEnv::new(self.task.clone(), split, self.task_seed, self.stages)
            .map_err(Error::Invalid)?;
        spar_core::Env::reset(&mut env, index);
        Ok(env)
    }
}

/// `cosc.json` in a checkpoint: the stage limit its episodes were played with (`spar eval`
/// reads it, and evaluates a checkpoint that has one as CoSC episodes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoscPrompting {
    /// The stage limit.
    pub stages: usize,
}

impl CoscPrompting {
    /// The file name inside a checkpoint directory.
    pub const FILE: &'static str = "cosc.json";

    /// Reads `dir/cosc.json`, if there is one.
    pub fn load(dir: &Path) -> Result<Option<CoscPrompting>> {
        let path = dir.join(Self::FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Invalid(format!("{}: corrupt cosc.json: {e}", path.display())))
    }

    /// Writes `dir/cosc.json`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("cosc.json serialises");
        write_atomic(&dir.join(Self::FILE), json.as_bytes())?;
        Ok(())
    }
}

/// CoSC's metrics on held-out problems, with how many episodes they count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoscEvaluation {
    /// Test problems evaluated.
    pub problems: usize,
    /// Episodes per problem.
    pub samples: usize,
    /// The stage limit.
    pub stages: usize,
    /// Accuracy, stages, revisions, invalid episodes, per level.
    #[serde(flatten)]
    pub stats: CoscStats,
    /// 95% half-width of the accuracy (normal approximation over problems: each problem's
    /// mean over its episodes is one observation); absent with one problem.
    pub accuracy_ci95: Option<f64>,
    /// The same for the first program's accuracy.
    pub first_program_accuracy_ci95: Option<f64>,
    /// Fraction of model messages that were invalid moves.
    pub invalid_turn_rate: f64,
    /// Mean message length in tokens.
    pub response_tokens: f64,
}

impl CoscEvaluation {
    /// The evaluation as `eval/<task>/<metric>`.
    pub fn write(&self, task: &str, out: &mut Scope) {
        out.eval(&format!("{task}/problems"), self.problems);
        out.eval(&format!("{task}/samples"), self.samples);
        write_stats(&self.stats, &format!("{task}/"), &mut |k, v| out.eval(k, v));
        out.eval_some(&format!("{task}/accuracy_ci95"), self.accuracy_ci95);
        out.eval_some(
            &format!("{task}/first_program_accuracy_ci95"),
            self.first_program_accuracy_ci95,
        );
        out.eval(&format!("{task}/invalid_turn_rate"), self.invalid_turn_rate);
        out.eval(&format!("{task}/response_tokens"), self.response_tokens);
    }
}

/// The values of `stats`, each named `prefix` + its name: the scalar fields (the revision
/// rates when there are any), `accuracy_by_difficulty/<level>` and
/// `stages_by_difficulty/<level>`.
pub(super) fn write_stats(stats: &CoscStats, prefix: &str, put: &mut dyn FnMut(&str, f64)) {
    for (name, v) in [
        ("accuracy", Some(stats.accuracy)),
        ("first_program_accuracy", Some(stats.first_program_accuracy)),
        ("mean_stages", Some(stats.mean_stages)),
        ("revision_rate", stats.revision_rate),
        ("continue_after_right_rate", stats.continue_after_right_rate),
        ("fixed_rate", Some(stats.fixed_rate)),
        ("broken_rate", Some(stats.broken_rate)),
        ("invalid_rate", Some(stats.invalid_rate)),
    ] {
        if let Some(v) = v {
            put(&format!("{prefix}{name}"), v);
        }
    }
    for l in &stats.levels {
        put(
            &format!("{prefix}accuracy_by_difficulty/{}", l.level),
            l.accuracy,
        );
        put(
            &format!("{prefix}stages_by_difficulty/{}", l.level),
            l.mean_stages,
        );
    }
}

/// 95% half-width over problems of the per-episode values `x` (`samples` consecutive
/// episodes per problem; each problem's mean is one observation).
fn problem_interval(x: &[f64], samples: usize) -> Option<f64> {
    let means: Vec<f64> = x
        .chunks(samples.max(1))
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect();
    spar_eval::tournament::mean_interval(&means)
        .1
        .map(|i| (i.high - i.low) / 2.0)
}

/// Held-out evaluation: `sampling.samples` episodes at each of the first `sampling.problems`
/// test problems, CoSC's metrics over them. Episode `j` of problem `p` draws from the
/// rollout's stream of environment `p * samples + j` of `sampling.seed`, so evaluations of
/// different models share their random numbers.
pub fn evaluate_cosc(
    model: &Llama,
    tokenizer: &TextTokenizer,
    setup: &CoscSetup,
    style: PromptStyle,
    sampling: &EvalSampling,
) -> Result<CoscEvaluation> {
    let problems = sampling
        .problems
        .min(setup.task.split_size(Split::Test).unwrap_or(usize::MAX));
    let originals = (0..problems as u64)
        .map(|p| setup.env(Split::Test, p))
        .collect::<Result<Vec<CoscEnv>>>()?;
    let mut envs = groups(&originals, sampling.samples);
    let params = SamplingParams {
        temperature: sampling.temperature,
        max_tokens: sampling.max_tokens,
        ..SamplingParams::default()
    };
    let engine = spar_lm::LocalEngine { model, tokenizer };
    let rollout = Rollout {
        group_size: sampling.samples,
        max_rounds: setup.stages as u64 + 1,
        ..Rollout::new(&engine, tokenizer, style, &params)
    };
    let batch = rollout.play(&mut envs, &[], sampling.seed)?;
    let episodes: Vec<_> = envs.iter().filter_map(CoscEnv::episode).collect();
    let column = |f: &dyn Fn(&spar_games::tasks::CoscEpisode) -> bool| -> Vec<f64> {
        episodes.iter().map(|e| f64::from(u8::from(f(e)))).collect()
    };
    let first = |e: &spar_games::tasks::CoscEpisode| e.stages.first().copied().unwrap_or(false);
    Ok(CoscEvaluation {
        problems,
        samples: sampling.samples,
        stages: setup.stages,
        stats: CoscStats::of(&episodes),
        accuracy_ci95: problem_interval(&column(&|e| e.correct), sampling.samples),
        first_program_accuracy_ci95: problem_interval(&column(&first), sampling.samples),
        invalid_turn_rate: batch.invalid_rate(),
        response_tokens: batch.mean_response_tokens(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_over_problem_means() {
        // Problem means 1 and 0: sample sd sqrt(1/2), over sqrt(2): 1/2, times z.
        let z = spar_eval::tournament::Z_95;
        let h = problem_interval(&[1.0, 1.0, 0.0, 0.0], 2).unwrap();
        assert!((h - z * 0.5).abs() < 1e-12, "{h}");
        assert_eq!(problem_interval(&[1.0, 0.0], 2), None);
    }
}
