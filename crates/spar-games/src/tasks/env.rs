//! [`TaskEnv`]: a task as a one-seat, one-turn text environment.

use std::sync::Arc;

use spar_core::{Env, Observation, Player, Role, Step, StepOutcome, Transcript, TranscriptTurn};

use super::{Problem, Split, Task, Verdict};

/// A [`Task`] as a [`spar_core::Env`]: one player (seat 0, role `<task>/solver`), one turn.
///
/// * The construction `seed` is the task seed; `reset(index)` draws problem
///   `task.problem(split, index, seed)`, so the reset seed is the problem index.
/// * The observation's system text is the task's rules, the state text the question, the
///   answer format the task's; there is no role text and no legal-action list.
/// * `step(0, completion)` verifies the completion and ends the episode: the return is
///   1.0 when correct, else 0.0. A parsed answer (right or wrong) is a
///   [`StepOutcome::Move`] whose action text is the extracted answer; an unparsable one is
///   [`StepOutcome::Invalid`] without retry, counted in the transcript's invalid moves.
/// * Before the first `reset` there is no problem and no player to move. A step by another
///   seat is an invalid move with `retry: true` (the episode goes on, as in
///   [`spar_core::TextGame`]); a step after the end changes nothing and says so. `step`
///   never panics.
#[derive(Debug, Clone)]
pub struct TaskEnv {
    task: Arc<dyn Task>,
    split: Split,
    seed: u64,
    /// The task's base name (`arithmetic`, `jsonl`), the role's environment.
    base: String,
    problem: Option<Problem>,
    verdict: Option<Verdict>,
    transcript: Transcript,
}

impl TaskEnv {
    /// An environment over `task`'s `split`, drawing problems with task seed `seed`.
    pub fn new(task: Arc<dyn Task>, split: Split, seed: u64) -> TaskEnv {
        let name = task.name();
        let base = name
            .split(['(', ':'])
            .next()
            .unwrap_or(name.as_str())
            .to_string();
        TaskEnv {
            task,
            split,
            seed,
            base,
            problem: None,
            verdict: None,
            transcript: Transcript {
                env: name,
                ..Transcript::default()
            },
        }
    }

    /// The current problem (`None` before the first reset).
    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    /// The verifier's verdict on the episode's answer, once given.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }

    /// The task.
    pub fn task(&self) -> &Arc<dyn Task> {
        &self.task
    }

    /// The split problems are drawn from.
    pub fn split(&self) -> Split {
        self.split
    }
}

/// The answer to a step that cannot be played (before `reset`, after the end): an invalid
/// move that ends nothing further, `done`.
pub(crate) fn refused(player: Player, reason: &str) -> Step {
    Step {
        player,
        outcome: StepOutcome::Invalid {
            reason: reason.to_string(),
            retry: false,
        },
        done: true,
        truncated: false,
    }
}

/// One turn of a one-seat, one-turn environment (the task's and the proposer's): a step by
/// another seat than 0 is an invalid move with retry that ends nothing; seat 0's `completion`
/// is judged by `judge` and ends the episode, an invalid judgement counted in the
/// transcript's invalid moves. The turn goes into the transcript either way.
pub(crate) fn play_turn(
    transcript: &mut Transcript,
    observation: &Observation,
    player: Player,
    completion: &str,
    judge: impl FnOnce() -> StepOutcome,
) -> Step {
    let (outcome, done) = if player != 0 {
        let reason = format!("player {player} is not to move (player 0 is)");
        (
            StepOutcome::Invalid {
                reason,
                retry: true,
            },
            false,
        )
    } else {
        let outcome = judge();
        if matches!(outcome, StepOutcome::Invalid { .. }) {
            transcript.invalid_moves[0] += 1;
        }
        (outcome, true)
    };
    record_turn(transcript, observation, player, completion, outcome, done)
}

/// Appends the turn of `player` (what it read, wrote and what came of it) to `transcript`
/// and returns its [`Step`]: the end of every task environment's `step`.
pub(crate) fn record_turn(
    transcript: &mut Transcript,
    observation: &Observation,
    player: Player,
    completion: &str,
    outcome: StepOutcome,
    done: bool,
) -> Step {
    transcript.turns.push(TranscriptTurn {
        role: observation.role.clone(),
        player,
        system: observation.system.clone(),
        prompt: observation.prompt(),
        completion: completion.to_string(),
        outcome: outcome.clone(),
    });
    Step {
        player,
        outcome,
        done,
        truncated: false,
    }
}

/// The step outcome of `completion`, judged `verdict`: a parsed answer (right or wrong) is a
/// [`StepOutcome::Move`] whose action text is the extracted answer; an unparsable one is
/// [`StepOutcome::Invalid`] without retry.
pub(super) fn verdict_outcome(task: &dyn Task, completion: &str, verdict: &Verdict) -> StepOutcome {
    match verdict {
        Verdict::Correct => StepOutcome::Move {
            action_text: task
                .extract_answer(completion)
                .unwrap_or_else(|| completion.trim().to_string()),
            action: None,
        },
        Verdict::Wrong { got, .. } => StepOutcome::Move {
            action_text: got.clone(),
            action: None,
        },
        Verdict::Unparsable { reason } => StepOutcome::Invalid {
            reason: reason.clone(),
            retry: false,
        },
    }
}

impl Env for TaskEnv {
    fn name(&self) -> String {
        self.transcript.env.clone()
    }

    fn num_players(&self) -> usize {
        1
    }

    fn role(&self, player: Player) -> Role {
        Role::new(self.base.clone(), player, "solver")
    }

    fn reset(&mut self, seed: u64) {
        self.problem = Some(self.task.problem(self.split, seed, self.seed));
        self.verdict = None;
        self.transcript = Transcript {
            env: self.task.name(),
            seed,
            invalid_moves: vec![0],
            ..Transcript::default()
        };
    }

    fn current_player(&self) -> Option<Player> {
        (self.problem.is_some() && self.verdict.is_none()).then_some(0)
    }

    fn observation(&self, player: Player) -> Observation {
        Observation {
            role: self.role(player),
            system: self
                .problem
                .as_ref()
                .map_or_else(|| self.task.system(), |p| self.task.system_for(p)),
            role_text: String::new(),
            state_text: self
                .problem
                .as_ref()
                .map(|p| p.question.clone())
                .unwrap_or_default(),
            legal_actions: None,
            answer_format: self.task.answer_format(),
        }
    }

    fn step(&mut self, player: Player, completion: &str) -> Step {
        let Some(problem) = self.problem.clone() else {
            return refused(player, "no problem: call reset first");
        };
        if self.verdict.is_some() {
            return refused(player, "the episode is over");
        }
        let observation = self.observation(player);
        let task = self.task.clone();
        let verdict = &mut self.verdict;
        let step = play_turn(
            &mut self.transcript,
            &observation,
            player,
            completion,
            || {
                let judged = task.verify(&problem, completion);
                let outcome = verdict_outcome(task.as_ref(), completion, &judged);
                *verdict = Some(judged);
                outcome
            },
        );
        if let Some(judged) = &self.verdict {
            self.transcript.returns = Some(vec![judged.reward()]);
        }
        step
    }

    fn returns(&self) -> Vec<f64> {
        self.transcript.returns.clone().unwrap_or_else(|| vec![0.0])
    }

    fn transcript(&self) -> &Transcript {
        &self.transcript
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::task_from_spec;

    fn env(spec: &str) -> TaskEnv {
        TaskEnv::new(Arc::from(task_from_spec(spec).unwrap()), Split::Test, 5)
    }

    #[test]
    fn a_correct_answer_ends_the_episode_with_return_one() {
        let mut env = env("arithmetic");
        assert_eq!(env.current_player(), None, "no problem before reset");
        assert!(env.problem().is_none());
        env.reset(3);
        let problem = env.problem().unwrap().clone();
        assert_eq!(
            problem,
            env.task().problem(Split::Test, 3, 5),
            "reset seed = index"
        );
        assert_eq!(env.current_player(), Some(0));
        let observation = env.observation(0);
        assert_eq!(observation.role, Role::new("arithmetic", 0, "solver"));
        assert_eq!(observation.role.to_string(), "arithmetic/solver");
        assert_eq!(observation.state_text, problem.question);
        assert_eq!(
            observation.prompt(),
            format!("{}\n\nAnswer with the number only.", problem.question)
        );
        assert_eq!(observation.legal_actions, None);
        assert_eq!(env.returns(), vec![0.0], "zeros before the end");

        let completion = format!("Answer: {}", problem.answer);
        let step = env.step(0, &completion);
        assert_eq!(
            step.outcome,
            StepOutcome::Move {
                action_text: problem.answer.clone(),
                action: None
            }
        );
        assert!(step.done && !step.truncated);
        assert!(env.is_done());
        assert_eq!(env.returns(), vec![1.0]);
        assert_eq!(env.verdict(), Some(&Verdict::Correct));

        let transcript = env.transcript();
        assert_eq!(transcript.env, "arithmetic(digits=1..2,terms=2,ops=+-)");
        assert_eq!(transcript.seed, 3);
        assert_eq!(transcript.returns, Some(vec![1.0]));
        assert_eq!(transcript.invalid_moves, vec![0]);
        assert_eq!(transcript.turns.len(), 1);
        let turn = &transcript.turns[0];
        assert_eq!(turn.completion, completion);
        assert_eq!(turn.prompt, observation.prompt());
        assert_eq!(turn.system, env.task().system());
        assert_eq!(turn.outcome, step.outcome);

        // After the end: nothing changes, nothing panics.
        let after = env.step(0, "1");
        assert!(after.done && matches!(after.outcome, StepOutcome::Invalid { .. }));
        assert_eq!(env.transcript().turns.len(), 1);
        assert_eq!(env.returns(), vec![1.0]);
    }

    #[test]
    fn a_wrong_answer_is_a_move_with_return_zero() {
        let mut env = env("countdown");
        env.reset(0);
        let step = env.step(0, "1+1+1+1+1");
        assert!(step.done);
        assert_eq!(
            step.outcome,
            StepOutcome::Move {
                action_text: "1+1+1+1+1".into(),
                action: None
            }
        );
        assert_eq!(env.returns(), vec![0.0]);
        assert!(matches!(env.verdict(), Some(Verdict::Wrong { .. })));
        assert_eq!(env.transcript().invalid_moves, vec![0]);
        assert_eq!(env.observation(0).role.to_string(), "countdown/solver");
    }

    #[test]
    fn an_unparsable_answer_is_an_invalid_move_without_retry() {
        let mut env = env("wordproblem");
        env.reset(1);
        let step = env.step(0, "no idea");
        assert_eq!(
            step.outcome,
            StepOutcome::Invalid {
                reason: "no number found".into(),
                retry: false
            }
        );
        assert!(step.done);
        assert_eq!(env.returns(), vec![0.0]);
        assert_eq!(env.transcript().invalid_moves, vec![1]);
        assert_eq!(env.transcript().returns, Some(vec![0.0]));
    }

    #[test]
    fn another_seat_is_refused_and_the_episode_goes_on() {
        let mut env = env("arithmetic");
        env.reset(0);
        let step = env.step(1, "3");
        assert!(!step.done);
        assert!(matches!(
            step.outcome,
            StepOutcome::Invalid { retry: true, .. }
        ));
        assert_eq!(env.current_player(), Some(0));
        let answer = env.problem().unwrap().answer.clone();
        assert!(env.step(0, &answer).done);
        assert_eq!(env.returns(), vec![1.0]);
        assert_eq!(env.transcript().turns.len(), 2);
    }

    /// The text-environment contract of `spar_core::Env`, checked directly: the shared
    /// conformance suites in `spar_core::testing` take tree games, which a task is not.
    #[test]
    fn env_contract_over_many_episodes_and_hostile_completions() {
        let hostile = [
            String::new(),
            "\u{0}".to_string(),
            "Answer:".to_string(),
            "x".repeat(20_000),
            "(".repeat(5_000),
            "9".repeat(100),
            "\\boxed{".to_string(),
            "Ünïcödé ☃ −3".to_string(),
            "Answer: Answer: Answer:".to_string(),
        ];
        for spec in [
            "arithmetic(digits=1..3,ops=+-*)",
            "countdown",
            "wordproblem",
        ] {
            let mut env = env(spec);
            let mut correct = 0;
            for seed in 0..60u64 {
                env.reset(seed);
                let first = env.observation(0);
                env.reset(seed);
                assert_eq!(env.observation(0), first, "reset is deterministic");
                assert!(!first.state_text.is_empty());
                let problem = env.problem().unwrap().clone();
                let completion = match seed % 3 {
                    0 => problem.solution.clone(),
                    1 => hostile[(seed as usize / 3) % hostile.len()].clone(),
                    _ => format!("{}0", problem.answer),
                };
                let step = env.step(0, &completion);
                assert!(step.done && env.current_player().is_none());
                let returns = env.returns();
                assert!(returns == vec![1.0] || returns == vec![0.0]);
                assert_eq!(env.transcript().returns.as_ref(), Some(&returns));
                assert_eq!(returns[0], env.verdict().unwrap().reward());
                assert_eq!(env.transcript().turns.len(), 1);
                assert_eq!(env.transcript().turns[0].role, first.role);
                let invalid = matches!(step.outcome, StepOutcome::Invalid { .. });
                assert_eq!(env.transcript().invalid_moves, vec![usize::from(invalid)]);
                if seed % 3 == 0 {
                    assert_eq!(returns, vec![1.0], "{spec}: solution of {problem:?}");
                    correct += 1;
                }
            }
            assert_eq!(correct, 20);
        }
    }
}
