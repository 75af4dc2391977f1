//! The self-correction warm start's supervised data: (observation, completion) pairs made from
//! the task's reference solutions, before any of the model's own answers exist.

use spar_core::{Env, Observation};
use spar_games::tasks::{AttemptsEnv, Feedback, Split};

use super::evaluate::AttemptsSetup;
use crate::error::{Error, Result};

/// The pairs of the first `problems` training problems; the first `corrections` fraction of
/// them (rounded) are correction episodes:
/// * without self-verification: the reference solution as attempt 1, or, for a correction
///   problem, as attempt 2 after the next problem's solution as attempt 1 (Pair-SFT's data
///   made from the task's own solutions; that solution is usually wrong for this problem,
///   sometimes right);
/// * with self-verification, SPOC's SFT data (Zhao et al. 2025, sec. 3.2), verdicts given by
///   the oracle (the paper keeps only verifications that agree with it): `D_correct`, the
///   reference solution then its verification "yes"; `D_pair` (a correction problem), the
///   next problem's solution as attempt 1 (played, not learnt from), its verification ("no",
///   or "yes" when it happens to be right, and the episode ends there), the reference
///   solution as attempt 2 and "yes". The paper builds both from the model's own samples; a
///   model trained from scratch has none before its warm start;
/// * with role reversal, a correction problem's critique is the verifier's text feedback on
///   the other problem's solution (`12 is too high.`, a programmatic teacher's critique), then
///   the reference solution as attempt 2.
pub(super) fn pairs(
    setup: &AttemptsSetup,
    problems: usize,
    corrections: f64,
) -> Result<Vec<(Observation, String)>> {
    let corrections = (corrections * problems as f64).round() as usize;
    let mut data = Vec::with_capacity(problems);
    for p in 0..problems as u64 {
        let correction = (p as usize) < corrections && setup.attempts > 1;
        let mut env = setup.env(Split::Train, p);
        let problem = env
            .problem()
            .cloned()
            .ok_or_else(|| Error::Invalid("the task drew no problem".into()))?;
        // Plays `text` in the seat to move, keeping the pair when `learnt`.
        let mut say = |env: &mut AttemptsEnv, text: &str, learnt: bool| {
            let seat = env.current_player().unwrap_or(0);
            if learnt {
                data.push((env.observation(seat), text.to_string()));
            }
            env.step(seat, text);
        };
        if correction {
            let other = setup.env(Split::Train, p + 1);
            let first = other
                .problem()
                .map(|q| q.solution.clone())
                .unwrap_or_default();
            say(&mut env, &first, false);
            if setup.critique {
                let verdict = setup.task.verify(&problem, &first);
                say(&mut env, &Feedback::Text.line(&problem, &verdict), true);
            }
            if setup.verify {
                let right = setup.task.verify(&problem, &first).is_correct();
                say(&mut env, if right { "yes" } else { "no" }, true);
                if right {
                    continue;
                }
            }
        }
        say(&mut env, &problem.solution, true);
        if setup.verify {
            say(&mut env, "yes", true);
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use spar_games::tasks::{task_from_spec, VERIFY_INSTRUCTION};

    use super::*;

    fn setup(verify: bool) -> AttemptsSetup {
        AttemptsSetup {
            task: Arc::from(task_from_spec("arithmetic(digits=1,terms=2,ops=+-)").unwrap()),
            task_seed: 0,
            attempts: 2,
            feedback: Feedback::None,
            instruction: "Again.".into(),
            verify,
            critique: false,
        }
    }

    #[test]
    fn role_reversal_pairs_critique_with_the_verifiers_reason() {
        let s = AttemptsSetup {
            critique: true,
            ..setup(false)
        };
        let data = pairs(&s, 4, 0.5).unwrap();
        let names: Vec<&str> = data.iter().map(|(o, _)| o.role.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "critique1",
                "attempt2",
                "critique1",
                "attempt2",
                "attempt1",
                "attempt1"
            ]
        );
        for p in 0..2u64 {
            let problem = s.env(Split::Train, p).problem().unwrap().clone();
            let first = s
                .env(Split::Train, p + 1)
                .problem()
                .unwrap()
                .solution
                .clone();
            let (obs, critique) = &data[2 * p as usize];
            assert!(obs.state_text.contains(&format!("Attempt 1: {first}")));
            let verdict = s.task.verify(&problem, &first);
            assert_eq!(critique, &Feedback::Text.line(&problem, &verdict));
            let (obs, answer) = &data[2 * p as usize + 1];
            assert!(obs
                .state_text
                .contains(&format!("Critique 1 (the asker's view): {critique}")));
            assert_eq!(answer, &problem.solution);
        }
    }

    #[test]
    fn spoc_pairs_are_d_correct_and_d_pair_with_oracle_verdicts() {
        let s = setup(true);
        let data = pairs(&s, 6, 0.5).unwrap();
        let mut i = 0;
        for p in 0..6u64 {
            let problem = s.env(Split::Train, p).problem().unwrap().clone();
            if p < 3 {
                // D_pair: the next problem's solution judged by the oracle.
                let first = s
                    .env(Split::Train, p + 1)
                    .problem()
                    .unwrap()
                    .solution
                    .clone();
                let (obs, verdict) = &data[i];
                assert_eq!(obs.role.name, "verify1");
                assert!(obs.state_text.contains(&format!("Attempt 1: {first}")));
                assert!(obs.state_text.ends_with(VERIFY_INSTRUCTION));
                let right = s.task.verify(&problem, &first).is_correct();
                assert_eq!(verdict, if right { "yes" } else { "no" });
                i += 1;
                if right {
                    continue;
                }
                let (obs, answer) = &data[i];
                assert_eq!(obs.role.name, "attempt2");
                assert!(obs.state_text.contains("Verification 1: no\nAgain."));
                assert_eq!(answer, &problem.solution);
                i += 1;
                assert_eq!(data[i].0.role.name, "verify2");
            } else {
                // D_correct: the solution, then "yes".
                assert_eq!(data[i].0.role.name, "attempt1");
                assert_eq!(data[i].1, problem.solution);
                i += 1;
                assert_eq!(data[i].0.role.name, "verify1");
                assert!(data[i]
                    .0
                    .state_text
                    .contains(&format!("Attempt 1: {}", problem.solution)));
            }
            assert_eq!(data[i].1, "yes");
            i += 1;
        }
        assert_eq!(i, data.len());
    }

    #[test]
    fn plain_pairs_are_first_attempts_or_corrections() {
        let s = setup(false);
        let data = pairs(&s, 4, 0.5).unwrap();
        assert_eq!(data.len(), 4);
        let names: Vec<&str> = data.iter().map(|(o, _)| o.role.name.as_str()).collect();
        assert_eq!(names, ["attempt2", "attempt2", "attempt1", "attempt1"]);
        for (p, (_, answer)) in data.iter().enumerate() {
            let problem = s.env(Split::Train, p as u64).problem().unwrap().clone();
            assert_eq!(answer, &problem.solution);
        }
    }
}
