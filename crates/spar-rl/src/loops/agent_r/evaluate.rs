//! Held-out evaluation of a step-by-step policy: episodes on test problems from the start,
//! and after an injected error (the paper summary's recovery test: a wrong first step is
//! played for the model, which must notice it and recover).

use std::sync::Arc;

use spar_core::{Env, StepOutcome};
use spar_eval::tournament::{wilson_interval, Interval};
use spar_games::tasks::{operations, solvable, CountdownSteps, CountdownStepsEnv, Split};
use spar_lm::sample::SamplingParams;
use spar_lm::tokenizer::TextTokenizer;
use spar_lm::Llama;

use crate::error::Result;
use crate::rollout::prompt::PromptStyle;
use crate::rollout::{groups, Rollout};
use crate::trainer::Scope;

/// How the held-out episodes are sampled.
#[derive(Debug, Clone)]
pub struct StepsSampling {
    /// Test problems `0 .. problems`.
    pub problems: usize,
    /// Episodes per problem.
    pub samples: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// Most tokens per step.
    pub max_tokens: usize,
    /// Seed of the sampling (the same at every evaluation).
    pub seed: u64,
}

/// What a set of episodes showed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EpisodeStats {
    /// Episodes played.
    pub episodes: usize,
    /// Of them, the target reached.
    pub successes: usize,
    /// Episodes with a repeated action (a step played again in the same state).
    pub loops: usize,
    /// Episodes with at least one `undo`.
    pub undos: usize,
    /// Model turns.
    pub turns: usize,
    /// Of them, invalid moves.
    pub invalid: usize,
}

impl EpisodeStats {
    /// The statistics of played environments (`skip` turns of each were not the model's).
    fn of(envs: &[CountdownStepsEnv], skip: usize) -> EpisodeStats {
        let mut s = EpisodeStats {
            episodes: envs.len(),
            ..EpisodeStats::default()
        };
        for env in envs {
            s.successes += usize::from(env.reached());
            s.loops += usize::from(env.repeated_actions() > 0);
            let turns = &env.transcript().turns[skip.min(env.transcript().turns.len())..];
            s.turns += turns.len();
            s.invalid += turns
                .iter()
                .filter(|t| matches!(t.outcome, StepOutcome::Invalid { .. }))
                .count();
            s.undos += usize::from(turns.iter().any(|t| {
                matches!(&t.outcome, StepOutcome::Move { action_text, .. } if action_text == "undo")
            }));
        }
        s
    }

    fn rate(count: usize, of: usize) -> f64 {
        if of == 0 {
            0.0
        } else {
            count as f64 / of as f64
        }
    }

    /// The fraction of episodes that reached the target.
    pub fn success_rate(&self) -> f64 {
        Self::rate(self.successes, self.episodes)
    }

    /// Its 95% Wilson interval.
    pub fn success_ci95(&self) -> Interval {
        wilson_interval(self.successes, self.episodes)
    }

    /// The fraction of episodes with a repeated action.
    pub fn loop_rate(&self) -> f64 {
        Self::rate(self.loops, self.episodes)
    }

    fn write(&self, prefix: &str, out: &mut Scope) {
        let ci = self.success_ci95();
        out.eval(&format!("{prefix}success_rate"), self.success_rate());
        out.eval(&format!("{prefix}success_ci95_low"), ci.low);
        out.eval(&format!("{prefix}success_ci95_high"), ci.high);
        out.eval(&format!("{prefix}loop_rate"), self.loop_rate());
        out.eval(
            &format!("{prefix}undo_rate"),
            Self::rate(self.undos, self.episodes),
        );
        out.eval(
            &format!("{prefix}invalid_rate"),
            Self::rate(self.invalid, self.turns),
        );
        out.eval(
            &format!("{prefix}mean_turns"),
            Self::rate(self.turns, self.episodes),
        );
        out.eval(&format!("{prefix}episodes"), self.episodes);
    }
}

/// Held-out episodes from the start and after an injected error.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepsEvaluation {
    /// From the problem's start.
    pub fresh: EpisodeStats,
    /// After a wrong first step played for the model ([`injected_error`]).
    pub recovery: EpisodeStats,
}

impl StepsEvaluation {
    /// `eval/<env>/<metric>` and `eval/<env>/recovery/<metric>`.
    pub fn write(&self, env: &str, out: &mut Scope) {
        self.fresh.write(&format!("{env}/"), out);
        self.recovery.write(&format!("{env}/recovery/"), out);
    }
}

/// The injected error of a state: a first step that is valid but from which the target can
/// no longer be made ([`solvable`] is false), one of them chosen by `seed`; `None` when every
/// valid step keeps the target reachable. Candidates are `a op b` over ordered pairs of the
/// (sorted) numbers' positions and `+ - * /`, in that order.
pub fn injected_error(numbers: &[u64], target: u64, seed: u64) -> Option<String> {
    let mut wrong: Vec<String> = Vec::new();
    for (step, r, next) in operations(numbers) {
        if r != target && !solvable(&next, target) && !wrong.contains(&step) {
            wrong.push(step);
        }
    }
    let pick = spar_core::seeds::splitmix64(seed) % wrong.len().max(1) as u64;
    wrong.get(pick as usize).cloned()
}

/// Plays `sampling.samples` episodes of each of the first `sampling.problems` test problems,
/// from the start and after an injected error (problems without one are left out of the
/// recovery episodes).
pub fn evaluate_steps(
    model: &Llama,
    tokenizer: &TextTokenizer,
    task: &Arc<CountdownSteps>,
    task_seed: u64,
    style: PromptStyle,
    sampling: &StepsSampling,
) -> Result<StepsEvaluation> {
    let engine = spar_lm::LocalEngine { model, tokenizer };
    let params = SamplingParams {
        temperature: sampling.temperature,
        max_tokens: sampling.max_tokens,
        ..SamplingParams::default()
    };
    let rollout = Rollout {
        group_size: sampling.samples,
        max_rounds: task.turns() as u64 + 1,
        ..Rollout::new(&engine, tokenizer, style, &params)
    };
    let originals: Vec<CountdownStepsEnv> = (0..sampling.problems as u64)
        .map(|p| {
            let mut env = CountdownStepsEnv::new(task.clone(), Split::Test, task_seed);
            env.reset(p);
            env
        })
        .collect();
    let mut fresh = groups(&originals, sampling.samples);
    rollout.play(&mut fresh, &[], sampling.seed)?;
    let injected: Vec<CountdownStepsEnv> = originals
        .iter()
        .zip(0u64..)
        .filter_map(|(env, p)| {
            let wrong = injected_error(&env.state().numbers, env.target(), sampling.seed ^ p)?;
            let mut env = env.clone();
            env.step(0, &wrong);
            (!env.is_done()).then_some(env)
        })
        .collect();
    let mut recovery = groups(&injected, sampling.samples);
    rollout.play(&mut recovery, &[], sampling.seed ^ 0x5eed)?;
    Ok(StepsEvaluation {
        fresh: EpisodeStats::of(&fresh, 0),
        recovery: EpisodeStats::of(&recovery, 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_errors_leave_the_target_unreachable() {
        // 3 7 25 -> 46. From 3+7 = 10: {10, 25} makes 35, 15, 250 (and 25/10 is not whole):
        // unreachable. 25+3*7 is the solution, so 3*7 is not an error.
        let wrong = injected_error(&[3, 7, 25], 46, 0).unwrap();
        let (numbers, _) = wrong.split_once('=').unwrap();
        assert_ne!(numbers, "3*7");
        assert_ne!(numbers, "7*3");
        for seed in 0..20 {
            let step = injected_error(&[3, 7, 25], 46, seed).unwrap();
            let mut state = spar_games::tasks::StepState::new(&[3, 7, 25]);
            let action = spar_games::tasks::parse_step(&step).unwrap();
            state.apply(action).unwrap();
            assert!(!solvable(&state.numbers, 46), "{step}");
        }
        // 2 2 -> 4: 2+2 and 2*2 make 4, 2-2 is not positive, 2/2 = 1 leaves {1}: the only
        // error.
        assert_eq!(injected_error(&[2, 2], 4, 3), Some("2/2=1".into()));
        // 1 1 -> 2: 1+1 reaches it, 1*1 = 1 and 1/1 = 1 leave {1}.
        let e = injected_error(&[1, 1], 2, 0).unwrap();
        assert!(e == "1*1=1" || e == "1/1=1", "{e}");
    }
}
