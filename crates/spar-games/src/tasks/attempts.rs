//! [`AttemptsEnv`]: a task answered in several attempts, each after reading the earlier ones
//! and their feedback, the environment of spar's self-correction loops (SCoRe, Kumar et al.
//! 2025, sec. 3: `x2 = [x1, y1, p]`), and [`AttemptStats`], the paper's self-correction
//! metrics over such episodes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use spar_core::{Env, Observation, Player, Role, Step, StepOutcome, Transcript, TranscriptTurn};

use super::{Problem, Split, Task, Verdict};

/// SCoRe's fixed self-correction instruction `p`, shortened for tiny models (the paper's: "There
/// might be an error in the solution above because of lack of understanding of the question.
/// Please correct the error, if any, and rewrite the solution.").
pub const DEFAULT_INSTRUCTION: &str =
    "There might be an error in your answer. Correct it, if any, and answer again.";

/// What the model reads about an attempt before the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feedback {
    /// Nothing: only the self-correction instruction (SCoRe's intrinsic setting).
    #[default]
    None,
    /// The verifier's verdict: `The answer is correct.` / `wrong` / `No answer was found.`
    Verdict,
    /// The verifier's reason, without the reference answer: `12 is too high.` for numbers,
    /// the task's reason otherwise (`uses 4, which is not given`), as RLTF's text feedback.
    Text,
}

impl Feedback {
    /// Every kind, in listing order.
    pub const ALL: [Feedback; 3] = [Feedback::None, Feedback::Verdict, Feedback::Text];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Feedback::None => "none",
            Feedback::Verdict => "verdict",
            Feedback::Text => "text",
        }
    }

    /// The feedback line on `verdict`, an answer to `problem` (empty for [`Feedback::None`]).
    /// It never states the reference answer.
    pub fn line(self, problem: &Problem, verdict: &Verdict) -> String {
        match (self, verdict) {
            (Feedback::None, _) => String::new(),
            (_, Verdict::Correct) => "The answer is correct.".into(),
            (Feedback::Verdict, Verdict::Wrong { .. }) => "The answer is wrong.".into(),
            (_, Verdict::Unparsable { .. }) if self == Feedback::Verdict => {
                "No answer was found.".into()
            }
            (_, Verdict::Unparsable { reason }) => format!("No answer was found: {reason}."),
            (_, Verdict::Wrong { got, reason }) => {
                match (parse_number(got), parse_number(&problem.answer)) {
                    (Some(g), Some(want)) if g > want => format!("{got} is too high."),
                    (Some(g), Some(want)) if g < want => format!("{got} is too low."),
                    // Equal numbers the verifier still rejects, or answers that are not
                    // numbers: the task's own reason (a countdown reason names the value the
                    // expression reached and the target, which the question already states).
                    _ => format!("The answer is wrong: {reason}."),
                }
            }
        }
    }
}

impl std::str::FromStr for Feedback {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Feedback::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("feedback {s:?} is not one of none, verdict, text"))
    }
}

fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A [`Task`] answered in `attempts` attempts by one model playing one seat per attempt.
///
/// * Seat `i` is attempt `i + 1`, role `<task>/attempt{i+1}`; seats act in order, one turn
///   each, and the episode ends after the last attempt (every attempt is made, right or
///   wrong, as in SCoRe's two-attempt episodes).
/// * `reset(index)` draws problem `index` of the split, as [`super::TaskEnv`] does.
/// * Attempt 1 reads exactly [`super::TaskEnv`]'s observation. Attempt `k > 1` reads the
///   question, then each earlier attempt (`Attempt 1: <answer>`, its [`Feedback`] line when
///   there is one), then the self-correction instruction.
/// * Seat `i`'s return is attempt `i + 1`'s reward (1 correct, 0 otherwise), so a loop gets
///   per-attempt rewards from [`Env::returns`]; the verdicts are [`AttemptsEnv::verdicts`].
/// * An unparsable answer is an invalid move (no retry), counted per seat in the transcript;
///   the next attempt still comes. A step out of turn is an invalid move with `retry: true`;
///   before `reset` or after the end it changes nothing. `step` never panics.
#[derive(Debug, Clone)]
pub struct AttemptsEnv {
    task: Arc<dyn Task>,
    split: Split,
    seed: u64,
    attempts: usize,
    feedback: Feedback,
    instruction: String,
    base: String,
    problem: Option<Problem>,
    /// Each attempt made: the completion and its verdict.
    answers: Vec<(String, Verdict)>,
    transcript: Transcript,
}

impl AttemptsEnv {
    /// `attempts` attempts (at least 1) at problems of `task`'s `split` (task seed `seed`),
    /// with `feedback` after each and `instruction` before every attempt after the first.
    pub fn new(
        task: Arc<dyn Task>,
        split: Split,
        seed: u64,
        attempts: usize,
        feedback: Feedback,
        instruction: &str,
    ) -> AttemptsEnv {
        let name = task.name();
        let base = name
            .split(['(', ':'])
            .next()
            .unwrap_or(name.as_str())
            .to_string();
        AttemptsEnv {
            task,
            split,
            seed,
            attempts: attempts.max(1),
            feedback,
            instruction: instruction.trim().to_string(),
            base,
            problem: None,
            answers: Vec::new(),
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

    /// The verdicts of the attempts made so far, in order.
    pub fn verdicts(&self) -> Vec<&Verdict> {
        self.answers.iter().map(|(_, v)| v).collect()
    }

    /// The completions of the attempts made so far, in order.
    pub fn answers(&self) -> Vec<&str> {
        self.answers.iter().map(|(a, _)| a.as_str()).collect()
    }

    /// The task.
    pub fn task(&self) -> &Arc<dyn Task> {
        &self.task
    }

    /// The state text attempt `k` (0-based) reads: the question, the earlier attempts with
    /// their feedback, and the instruction.
    fn state_text(&self, problem: &Problem, k: usize) -> String {
        let mut text = problem.question.clone();
        for (i, (answer, verdict)) in self.answers.iter().take(k).enumerate() {
            text.push_str(&format!("\nAttempt {}: {}", i + 1, answer.trim()));
            let line = self.feedback.line(problem, verdict);
            if !line.is_empty() {
                text.push('\n');
                text.push_str(&line);
            }
        }
        if k > 0 && !self.instruction.is_empty() {
            text.push('\n');
            text.push_str(&self.instruction);
        }
        text
    }

    fn refused(player: Player, reason: &str, retry: bool, done: bool) -> Step {
        Step {
            player,
            outcome: StepOutcome::Invalid {
                reason: reason.to_string(),
                retry,
            },
            done,
            truncated: false,
        }
    }
}

impl Env for AttemptsEnv {
    fn name(&self) -> String {
        self.transcript.env.clone()
    }

    fn num_players(&self) -> usize {
        self.attempts
    }

    fn role(&self, player: Player) -> Role {
        Role::new(self.base.clone(), player, format!("attempt{}", player + 1))
    }

    fn reset(&mut self, seed: u64) {
        self.problem = Some(self.task.problem(self.split, seed, self.seed));
        self.answers.clear();
        self.transcript = Transcript {
            env: self.task.name(),
            seed,
            invalid_moves: vec![0; self.attempts],
            ..Transcript::default()
        };
    }

    fn current_player(&self) -> Option<Player> {
        (self.problem.is_some() && self.answers.len() < self.attempts).then_some(self.answers.len())
    }

    fn observation(&self, player: Player) -> Observation {
        Observation {
            role: self.role(player),
            system: self.task.system(),
            role_text: String::new(),
            state_text: self
                .problem
                .as_ref()
                .map(|p| self.state_text(p, player.min(self.answers.len())))
                .unwrap_or_default(),
            legal_actions: None,
            answer_format: self.task.answer_format(),
        }
    }

    fn step(&mut self, player: Player, completion: &str) -> Step {
        let Some(problem) = self.problem.clone() else {
            return AttemptsEnv::refused(player, "no problem: call reset first", false, true);
        };
        let Some(to_move) = self.current_player() else {
            return AttemptsEnv::refused(player, "the episode is over", false, true);
        };
        let observation = self.observation(player);
        let outcome = if player != to_move {
            StepOutcome::Invalid {
                reason: format!("player {player} is not to move (player {to_move} is)"),
                retry: true,
            }
        } else {
            let verdict = self.task.verify(&problem, completion);
            let outcome = super::env::verdict_outcome(self.task.as_ref(), completion, &verdict);
            if matches!(verdict, Verdict::Unparsable { .. }) {
                self.transcript.invalid_moves[player] += 1;
            }
            self.answers.push((completion.to_string(), verdict));
            outcome
        };
        let done = self.current_player().is_none();
        if done {
            self.transcript.returns = Some(self.returns());
        }
        self.transcript.turns.push(TranscriptTurn {
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

    fn returns(&self) -> Vec<f64> {
        (0..self.attempts)
            .map(|i| self.answers.get(i).map_or(0.0, |(_, v)| v.reward()))
            .collect()
    }

    fn transcript(&self) -> &Transcript {
        &self.transcript
    }
}

/// One episode's attempts: (correct, completion) in order.
type Episode<'a> = [(bool, &'a str)];

/// SCoRe's self-correction metrics (Kumar et al. 2025, sec. 6, Table 3) over episodes of
/// two or more attempts, comparing the first attempt with the last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptStats {
    /// Episodes counted.
    pub episodes: usize,
    /// Accuracy at each attempt (`accuracy_t1`, `accuracy_t2` are the first two).
    pub accuracy: Vec<f64>,
    /// Accuracy at the first attempt, Acc@t1.
    pub accuracy_t1: f64,
    /// Accuracy at the last attempt, Acc@t2 with two attempts.
    pub accuracy_t2: f64,
    /// Delta(t1, t2) = Acc@t2 - Acc@t1.
    pub delta: f64,
    /// Delta^{i->c}: the fraction of episodes wrong at the first attempt and right at the last.
    pub delta_i_to_c: f64,
    /// Delta^{c->i}: the fraction right at the first attempt and wrong at the last.
    pub delta_c_to_i: f64,
    /// The fraction whose last completion equals the first (whitespace-trimmed): the
    /// "no edit" collapse of naive multi-turn RL.
    pub identical_rate: f64,
}

impl AttemptStats {
    /// The metrics of `episodes`, each the attempts' (correct, completion) in order (every
    /// episode with the same number of attempts, at least one).
    pub fn of(episodes: &[Vec<(bool, &str)>]) -> AttemptStats {
        let n = episodes.len();
        if n == 0 {
            return AttemptStats::default();
        }
        let attempts = episodes.iter().map(Vec::len).min().unwrap_or(0);
        if attempts == 0 {
            return AttemptStats {
                episodes: n,
                ..AttemptStats::default()
            };
        }
        let share = |f: &dyn Fn(&Episode) -> bool| {
            episodes.iter().filter(|e| f(e)).count() as f64 / n as f64
        };
        let accuracy: Vec<f64> = (0..attempts).map(|k| share(&|e| e[k].0)).collect();
        let last = attempts - 1;
        AttemptStats {
            episodes: n,
            accuracy_t1: accuracy[0],
            accuracy_t2: accuracy[last],
            delta: accuracy[last] - accuracy[0],
            delta_i_to_c: share(&|e| !e[0].0 && e[last].0),
            delta_c_to_i: share(&|e| e[0].0 && !e[last].0),
            identical_rate: share(&|e| e[0].1.trim() == e[last].1.trim()),
            accuracy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::task_from_spec;

    fn env(attempts: usize, feedback: Feedback) -> AttemptsEnv {
        let task: Arc<dyn Task> = Arc::from(task_from_spec("arithmetic").unwrap());
        let mut env = AttemptsEnv::new(
            task,
            Split::Train,
            0,
            attempts,
            feedback,
            DEFAULT_INSTRUCTION,
        );
        env.reset(3);
        env
    }

    #[test]
    fn two_attempts_each_rewarded_and_the_second_reads_the_first() {
        let mut e = env(2, Feedback::None);
        let problem = e.problem().unwrap().clone();
        let first = e.observation(0);
        // Attempt 1 reads what TaskEnv shows.
        let mut single = crate::tasks::TaskEnv::new(e.task().clone(), Split::Train, 0);
        single.reset(3);
        assert_eq!(first.prompt(), single.observation(0).prompt());
        assert_eq!(first.role.key(), "arithmetic/attempt1");
        assert_eq!(e.current_player(), Some(0));
        let wrong = format!("{}", problem.answer.parse::<i64>().unwrap() + 1);
        let s = e.step(0, &wrong);
        assert!(!s.done);
        assert_eq!(e.current_player(), Some(1));
        let second = e.observation(1);
        assert_eq!(second.role.key(), "arithmetic/attempt2");
        assert_eq!(
            second.state_text,
            format!(
                "{}\nAttempt 1: {wrong}\n{DEFAULT_INSTRUCTION}",
                problem.question
            )
        );
        let s = e.step(1, &problem.answer);
        assert!(s.done);
        assert_eq!(e.current_player(), None);
        assert_eq!(e.returns(), vec![0.0, 1.0]);
        assert_eq!(e.transcript().returns, Some(vec![0.0, 1.0]));
        assert_eq!(e.transcript().turns.len(), 2);
        assert!(e.verdicts()[1].is_correct());
        // After the end nothing changes.
        let s = e.step(0, "1");
        assert!(matches!(
            s.outcome,
            StepOutcome::Invalid { retry: false, .. }
        ));
        assert_eq!(e.returns(), vec![0.0, 1.0]);
    }

    #[test]
    fn feedback_lines_never_state_the_answer() {
        let p = Problem {
            id: "x".into(),
            question: "7+5=".into(),
            answer: "12".into(),
            difficulty: 1,
            solution: "12".into(),
        };
        let wrong = |got: &str| Verdict::Wrong {
            got: got.into(),
            reason: format!("{got} != 12"),
        };
        let unparsable = Verdict::Unparsable {
            reason: "no number".into(),
        };
        assert_eq!(Feedback::None.line(&p, &wrong("13")), "");
        assert_eq!(
            Feedback::Verdict.line(&p, &wrong("13")),
            "The answer is wrong."
        );
        assert_eq!(
            Feedback::Verdict.line(&p, &Verdict::Correct),
            "The answer is correct."
        );
        assert_eq!(
            Feedback::Verdict.line(&p, &unparsable),
            "No answer was found."
        );
        assert_eq!(Feedback::Text.line(&p, &wrong("13")), "13 is too high.");
        assert_eq!(Feedback::Text.line(&p, &wrong("-4")), "-4 is too low.");
        assert_eq!(
            Feedback::Text.line(&p, &unparsable),
            "No answer was found: no number."
        );
        // Not numbers: the task's reason.
        let expression = Problem {
            answer: "25+25-4".into(),
            ..p.clone()
        };
        let v = Verdict::Wrong {
            got: "25+3".into(),
            reason: "uses 3, which is not given".into(),
        };
        assert_eq!(
            Feedback::Text.line(&expression, &v),
            "The answer is wrong: uses 3, which is not given."
        );
        for f in Feedback::ALL {
            assert_eq!(f.name().parse::<Feedback>().unwrap(), f);
        }
        assert!("loud"
            .parse::<Feedback>()
            .unwrap_err()
            .contains("none, verdict, text"));
    }

    #[test]
    fn text_feedback_reaches_the_next_attempt_and_invalid_answers_count_per_seat() {
        let mut e = env(3, Feedback::Text);
        let problem = e.problem().unwrap().clone();
        let want: i64 = problem.answer.parse().unwrap();
        e.step(0, "no idea");
        e.step(1, &format!("Answer: {}", want + 2));
        let third = e.observation(2).state_text;
        assert!(
            third.contains("Attempt 1: no idea\nNo answer was found"),
            "{third}"
        );
        assert!(
            third.contains(&format!(
                "Attempt 2: Answer: {}\n{} is too high.",
                want + 2,
                want + 2
            )),
            "{third}"
        );
        assert!(third.ends_with(DEFAULT_INSTRUCTION));
        // Out of turn: refused with retry, nothing recorded.
        let s = e.step(0, "5");
        assert!(matches!(
            s.outcome,
            StepOutcome::Invalid { retry: true, .. }
        ));
        assert_eq!(e.verdicts().len(), 2);
        e.step(2, &problem.answer);
        assert_eq!(e.returns(), vec![0.0, 0.0, 1.0]);
        assert_eq!(e.transcript().invalid_moves, vec![1, 0, 0]);
    }

    #[test]
    fn the_env_keeps_its_contract_on_hostile_text() {
        let hostile = [
            String::new(),
            "\u{0}".to_string(),
            "Answer:".to_string(),
            "x".repeat(20_000),
            "Ünïcödé ☃ −3".to_string(),
            "Answer: Answer: Answer:".to_string(),
        ];
        for spec in [
            "arithmetic(digits=1..3,ops=+-*)",
            "countdown",
            "wordproblem",
        ] {
            let task: Arc<dyn Task> = Arc::from(task_from_spec(spec).unwrap());
            let mut e = AttemptsEnv::new(task, Split::Test, 1, 2, Feedback::Text, "again");
            // Before reset: no player, steps refused.
            assert_eq!(e.current_player(), None);
            assert!(matches!(
                e.step(0, "1").outcome,
                StepOutcome::Invalid { .. }
            ));
            for seed in 0..30u64 {
                e.reset(seed);
                let first = e.observation(0);
                e.reset(seed);
                assert_eq!(e.observation(0), first, "reset is deterministic");
                let problem = e.problem().unwrap().clone();
                for k in 0..2 {
                    let text = match (seed + k) % 3 {
                        0 => problem.solution.clone(),
                        _ => hostile[(seed as usize + k as usize) % hostile.len()].clone(),
                    };
                    let step = e.step(k as usize, &text);
                    assert_eq!(step.done, k == 1);
                }
                let returns = e.returns();
                assert_eq!(e.transcript().returns.as_ref(), Some(&returns));
                for (r, v) in returns.iter().zip(e.verdicts()) {
                    assert_eq!(*r, v.reward());
                }
                assert!(e.observation(1).state_text.starts_with(&problem.question));
            }
        }
    }

    #[test]
    fn stats_count_transitions_by_hand() {
        // Four episodes: w->c, c->c (same text), c->w, w->w (same text).
        let episodes = vec![
            vec![(false, "3"), (true, "4")],
            vec![(true, "4"), (true, " 4 ")],
            vec![(true, "4"), (false, "5")],
            vec![(false, "2"), (false, "2")],
        ];
        let s = AttemptStats::of(&episodes);
        assert_eq!(s.episodes, 4);
        assert_eq!(s.accuracy, vec![0.5, 0.5]);
        assert_eq!((s.accuracy_t1, s.accuracy_t2, s.delta), (0.5, 0.5, 0.0));
        assert_eq!((s.delta_i_to_c, s.delta_c_to_i), (0.25, 0.25));
        assert_eq!(s.identical_rate, 0.5);
        assert_eq!(AttemptStats::of(&[]), AttemptStats::default());
    }
}
