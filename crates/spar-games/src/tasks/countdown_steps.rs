//! Countdown step by step: the Countdown problems ([`super::Countdown`]) solved one operation
//! a turn, for loops that need episodes with steps (Agent-R's revision trajectories,
//! `docs/self-correction.md`).
//!
//! # Rules
//! The state is a multiset of numbers, at first the problem's (`Numbers: 3 7 25. Target:
//! 46.`). Each turn the player writes one *step*; the last non-empty line of its completion is
//! read (lines before it are free thought, e.g. Agent-R's revision thought), surrounding
//! spaces and one final `.` dropped:
//! * `a op b` or `a op b = c`, with `op` one of `+ - * /` and whole numbers (ASCII digits, at
//!   most 12 each): `a` and `b` must be in the state (twice when `a = b`), the result must be
//!   a positive whole number (`a - b` with `a > b`; `a / b` exact), and `c`, when written, must
//!   be that result. The two numbers are replaced by the result.
//! * `undo` (any case): the last operation still in effect is taken back.
//!
//! Anything else, or a step those rules refuse, is an invalid move: the state is unchanged,
//! the reason is shown, and the turn counts. The episode ends with return 1 when a step's
//! result equals the target, and with return 0 (truncated) after `turns` turns. A state with
//! one number left is a dead end, but the episode goes on: the player may `undo`.
//!
//! # Observation
//! There is no system text (the rules, [`RULES`], are the task's system text only: a tiny
//! model trained from scratch learns the format from reference steps, and every byte of
//! prompt costs it attention); the state text is the question and one line per turn so
//! far: the step as the environment read it (`25-3=22`, `undo`), then `->` and the numbers
//! left, or `invalid: <reason>`. There is no answer-format text.
//!
//! # As a task
//! `countdown_steps(numbers=3..4,max=25,target_max=100,turns=12)` is also a [`Task`]: the
//! problems are Countdown's (ids `countdown_steps/<split>/<index>`), the reference solution
//! is the generator's expression as steps, innermost operation first, one a line, written
//! without their results (`3*7`, `25+21`: the arithmetic is the environment's), and
//! [`Task::verify`] plays every non-empty line of a completion as one step: correct when the
//! target is reached within `turns` steps.
//!
//! # Parameters
//! | name | default | meaning |
//! |---|---|---|
//! | `numbers`, `max`, `target_max` | Countdown's | the problems ([`super::Countdown`]) |
//! | `turns` | `12` | turns per episode (1..64) |

use std::collections::BTreeSet;
use std::sync::Arc;

use spar_core::{Env, Observation, Player, Role, Step, StepOutcome, Transcript, TranscriptTurn};

use super::countdown::{parse, parse_question, Expr};
use super::{Countdown, Params, Problem, Split, Task, Verdict};

/// The environment's name and the task's base name.
pub const NAME: &str = "countdown_steps";

/// The system text: the rules in two sentences.
pub const RULES: &str = "Reach the target. Each step combines two numbers: a op b = c. \
                         Write undo to take back the last step.";

/// The largest number a step may write or produce (12 digits).
const MAX_NUMBER: u64 = 999_999_999_999;

/// Countdown step by step (the rules are in the module docs).
#[derive(Debug, Clone)]
pub struct CountdownSteps {
    countdown: Countdown,
    turns: u32,
}

impl CountdownSteps {
    pub(crate) fn from_params(params: &Params<'_>) -> Result<Self, String> {
        params.check_known(&["numbers", "max", "target_max", "turns"])?;
        Ok(CountdownSteps {
            countdown: Countdown::from_params_except(params, &["turns"])?,
            turns: params.number("turns", 12, 1, 64)?,
        })
    }

    /// The task of a specification `countdown_steps(...)` (what [`super::task_from_spec`]
    /// builds, as the concrete type that [`CountdownStepsEnv`] plays).
    pub fn from_spec(spec: &str) -> Result<CountdownSteps, String> {
        let parsed = spar_core::GameSpec::parse(spec.trim())
            .map_err(|e| format!("env spec {spec:?}: {e}; expected {NAME}(...)"))?;
        if parsed.name != NAME {
            return Err(format!(
                "env spec {spec:?}: unknown environment {:?}; the step-by-step environment is \
                 {NAME}(numbers=3..4,max=25,target_max=100,turns=12)",
                parsed.name
            ));
        }
        CountdownSteps::from_params(&Params::new(spec, &parsed))
    }

    /// Turns per episode.
    pub fn turns(&self) -> usize {
        self.turns as usize
    }
}

/// One step as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepAction {
    /// `a op b`, with the claimed result `= c` when written.
    Op {
        /// The left number.
        a: u64,
        /// `+ - * /`.
        op: char,
        /// The right number.
        b: u64,
        /// The result the step claims, if any.
        claimed: Option<u64>,
    },
    /// Take back the last operation.
    Undo,
}

/// Reads the step of a completion: its last non-empty line (see the module docs).
pub fn parse_step(completion: &str) -> Result<StepAction, String> {
    let Some(line) = completion.lines().map(str::trim).rfind(|l| !l.is_empty()) else {
        return Err("no step written".to_string());
    };
    let line = line.strip_suffix('.').unwrap_or(line).trim();
    if line.eq_ignore_ascii_case("undo") {
        return Ok(StepAction::Undo);
    }
    let quoted = || {
        let start: String = line.chars().take(20).collect();
        format!("expected `a op b = c` or `undo`, got {start:?}")
    };
    let (left, claimed) = match line.split_once('=') {
        Some((left, right)) => (left, Some(number(right).ok_or_else(quoted)?)),
        None => (line, None),
    };
    let at = left
        .char_indices()
        .skip(1)
        .find(|(_, c)| matches!(c, '+' | '-' | '*' | '/'))
        .ok_or_else(quoted)?;
    let (a, b) = (&left[..at.0], &left[at.0 + 1..]);
    match (number(a), number(b)) {
        (Some(a), Some(b)) => Ok(StepAction::Op {
            a,
            op: at.1,
            b,
            claimed,
        }),
        _ => Err(quoted()),
    }
}

/// A whole number of at most 12 ASCII digits, surrounded by spaces or not.
fn number(text: &str) -> Option<u64> {
    let t = text.trim();
    (!t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()))
        .then(|| t.parse().ok())
        .flatten()
}

/// The result of `a op b` when it is a positive whole number no larger than 12 digits.
pub fn operate(a: u64, op: char, b: u64) -> Option<u64> {
    let r = match op {
        '+' => a.checked_add(b)?,
        '-' => a.checked_sub(b)?,
        '*' => a.checked_mul(b)?,
        '/' if b != 0 && a.is_multiple_of(b) => a / b,
        _ => return None,
    };
    (1..=MAX_NUMBER).contains(&r).then_some(r)
}

/// The numbers left and the operations in effect (for `undo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepState {
    /// The numbers, sorted.
    pub numbers: Vec<u64>,
    /// The numbers before each operation in effect, oldest first.
    history: Vec<Vec<u64>>,
}

impl StepState {
    /// The state of the given numbers, no operation made.
    pub fn new(numbers: &[u64]) -> StepState {
        let mut numbers = numbers.to_vec();
        numbers.sort_unstable();
        StepState {
            numbers,
            history: Vec::new(),
        }
    }

    /// Operations in effect (what `undo` can take back).
    pub fn depth(&self) -> usize {
        self.history.len()
    }

    /// Applies `action`: the canonical text of the step (`25-3=22`, `undo`) and, for an
    /// operation, its result; or why the step is refused (the state is then unchanged).
    pub fn apply(&mut self, action: StepAction) -> Result<(String, Option<u64>), String> {
        match action {
            StepAction::Undo => {
                let before = self
                    .history
                    .pop()
                    .ok_or("nothing to undo: no step has been made")?;
                self.numbers = before;
                Ok(("undo".to_string(), None))
            }
            StepAction::Op { a, op, b, claimed } => {
                let mut left = self.numbers.clone();
                for n in [a, b] {
                    match left.iter().position(|&x| x == n) {
                        Some(i) => {
                            left.remove(i);
                        }
                        None if a == b && self.numbers.contains(&n) => {
                            return Err(format!("{n} is there only once"))
                        }
                        None => return Err(format!("{n} is not one of the numbers")),
                    }
                }
                let result = operate(a, op, b).ok_or_else(|| match op {
                    '-' => format!("{a}-{b} is not positive"),
                    '/' => format!("{a}/{b} is not a whole number"),
                    _ => format!("{a}{op}{b} is too large"),
                })?;
                if let Some(c) = claimed.filter(|&c| c != result) {
                    return Err(format!("{a}{op}{b} is {result}, not {c}"));
                }
                left.push(result);
                left.sort_unstable();
                self.history
                    .push(std::mem::replace(&mut self.numbers, left));
                Ok((format!("{a}{op}{b}={result}"), Some(result)))
            }
        }
    }
}

/// Every valid operation on `numbers`: over ordered pairs of positions `(i, j)`, `i != j`,
/// and `+ - * /` in that order, the step (`3+7=10`), its result and the numbers after it
/// (the others in order, then the result).
pub fn operations(numbers: &[u64]) -> Vec<(String, u64, Vec<u64>)> {
    let mut out = Vec::new();
    for i in 0..numbers.len() {
        for j in (0..numbers.len()).filter(|&j| j != i) {
            for op in ['+', '-', '*', '/'] {
                if let Some(r) = operate(numbers[i], op, numbers[j]) {
                    let mut next: Vec<u64> = (0..numbers.len())
                        .filter(|&k| k != i && k != j)
                        .map(|k| numbers[k])
                        .collect();
                    next.push(r);
                    out.push((format!("{}{op}{}={r}", numbers[i], numbers[j]), r, next));
                }
            }
        }
    }
    out
}

/// Whether `target` can be made from `numbers` by the steps' operations (each number used at
/// most once; not every number need be used): exhaustive search, for evaluation only (a loop
/// must not show it to its search). Exponential in the count of numbers: meant for at most 6.
pub fn solvable(numbers: &[u64], target: u64) -> bool {
    numbers.contains(&target)
        || operations(numbers)
            .iter()
            .any(|(_, _, next)| solvable(next, target))
}

/// The steps of an expression over whole numbers, innermost first, without their results
/// (`25+3*7` is `3*7`, `25+21`: the environment computes them); `None` when a step is not a
/// positive whole number.
fn steps_of(expr: &Expr, out: &mut Vec<String>) -> Option<u64> {
    match expr {
        Expr::Number(digits) => digits.parse().ok(),
        Expr::Binary(op, left, right) => {
            let (a, b) = (steps_of(left, out)?, steps_of(right, out)?);
            let r = operate(a, *op, b)?;
            out.push(format!("{a}{op}{b}"));
            Some(r)
        }
    }
}

/// Plays every non-empty line of `completion` as a step from `numbers`; `Ok(true)` when the
/// target is reached within `turns` lines, `Err` with the first refused step's reason.
fn replay(numbers: &[u64], target: u64, completion: &str, turns: usize) -> Result<bool, String> {
    let mut state = StepState::new(numbers);
    for (i, line) in completion
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
    {
        if i == turns {
            return Ok(false);
        }
        let (_, result) = state
            .apply(parse_step(line)?)
            .map_err(|e| format!("step {}: {e}", i + 1))?;
        if result == Some(target) {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Task for CountdownSteps {
    fn name(&self) -> String {
        let countdown = self.countdown.name();
        let params = countdown
            .strip_prefix("countdown(")
            .and_then(|p| p.strip_suffix(')'))
            .unwrap_or("");
        format!("{NAME}({params},turns={})", self.turns)
    }

    fn system(&self) -> String {
        RULES.to_string()
    }

    fn answer_format(&self) -> String {
        "Answer with the steps, one a line.".to_string()
    }

    fn problem(&self, split: Split, index: u64, seed: u64) -> Problem {
        let mut p = self.countdown.problem(split, index, seed);
        p.id = format!("{NAME}/{split}/{index}");
        let mut steps = Vec::new();
        // The generator keeps every intermediate value a positive integer.
        if let Ok(expr) = parse(&p.solution) {
            steps_of(&expr, &mut steps);
        }
        p.solution = steps.join("\n");
        p.answer = p.solution.clone();
        p
    }

    fn split_size(&self, _split: Split) -> Option<usize> {
        None
    }

    fn verify(&self, problem: &Problem, completion: &str) -> Verdict {
        let Some((numbers, target)) = question_numbers(&problem.question) else {
            return Verdict::Unparsable {
                reason: format!("not a countdown question: {:?}", problem.question),
            };
        };
        let got = self.extract_answer(completion).unwrap_or_default();
        match replay(&numbers, target, completion, self.turns()) {
            Ok(true) => Verdict::Correct,
            Ok(false) => Verdict::Wrong {
                got,
                reason: format!("the steps do not reach {target}"),
            },
            Err(reason) if got.is_empty() => Verdict::Unparsable { reason },
            Err(reason) => Verdict::Wrong { got, reason },
        }
    }

    fn extract_answer(&self, completion: &str) -> Option<String> {
        let steps: Vec<String> = completion
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| match parse_step(l).ok()? {
                StepAction::Undo => Some("undo".to_string()),
                StepAction::Op { a, op, b, .. } => Some(format!("{a}{op}{b}")),
            })
            .collect::<Option<_>>()?;
        (!steps.is_empty()).then(|| steps.join(";"))
    }
}

/// The numbers and the target of a Countdown question.
pub fn question_numbers(question: &str) -> Option<(Vec<u64>, u64)> {
    let (numbers, target) = parse_question(question)?;
    Some((numbers, u64::try_from(target).ok()?))
}

/// A Countdown problem played one step a turn (the rules are in the module docs): one seat,
/// role `countdown_steps/solver`. The construction `seed` is the task seed; `reset(index)`
/// plays problem `index` of the split. `step` never panics: bad text is an invalid move with
/// its reason, a step out of turn one with `retry: true`, a step before `reset` or after the
/// end is refused.
#[derive(Debug, Clone)]
pub struct CountdownStepsEnv {
    task: Arc<CountdownSteps>,
    split: Split,
    seed: u64,
    problem: Option<Problem>,
    target: u64,
    state: StepState,
    /// One line per turn: the step read and what it did.
    lines: Vec<String>,
    /// Whether the target was reached.
    reached: bool,
    /// Every (numbers, step) pair played so far, to count repeated actions.
    seen: BTreeSet<(Vec<u64>, String)>,
    repeated: usize,
    transcript: Transcript,
}

impl CountdownStepsEnv {
    /// An environment over `task`'s `split` with task seed `seed` (reset it before use).
    pub fn new(task: Arc<CountdownSteps>, split: Split, seed: u64) -> CountdownStepsEnv {
        CountdownStepsEnv {
            task,
            split,
            seed,
            problem: None,
            target: 0,
            state: StepState::new(&[]),
            lines: Vec::new(),
            reached: false,
            seen: BTreeSet::new(),
            repeated: 0,
            transcript: Transcript::default(),
        }
    }

    /// The problem played (`None` before `reset`).
    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    /// The target.
    pub fn target(&self) -> u64 {
        self.target
    }

    /// The numbers left and the operations in effect.
    pub fn state(&self) -> &StepState {
        &self.state
    }

    /// Turns played.
    pub fn turns_played(&self) -> usize {
        self.lines.len()
    }

    /// Whether the target was reached.
    pub fn reached(&self) -> bool {
        self.reached
    }

    /// Turns whose step had already been played in the same state (an action loop: the same
    /// invalid step again, or a step redone after its `undo`).
    pub fn repeated_actions(&self) -> usize {
        self.repeated
    }

    /// Whether the turn limit ended the episode.
    pub fn truncated(&self) -> bool {
        self.transcript.truncated
    }

    /// Starts an episode on `problem` (a Countdown question: `Numbers: 3 7 25. Target:
    /// 46.`), `seed` recorded in the transcript: what `reset` does with the split's problem,
    /// for problems of your own. A question that is not Countdown's leaves no numbers and
    /// target 0, so every step is invalid.
    pub fn reset_with(&mut self, problem: Problem, seed: u64) {
        let (numbers, target) = question_numbers(&problem.question).unwrap_or_default();
        self.problem = Some(problem);
        self.target = target;
        self.state = StepState::new(&numbers);
        self.lines.clear();
        self.reached = false;
        self.seen.clear();
        self.repeated = 0;
        self.transcript = Transcript {
            env: self.task.name(),
            seed,
            invalid_moves: vec![0],
            ..Transcript::default()
        };
    }

    fn refused(player: Player, reason: &str) -> Step {
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
}

impl Env for CountdownStepsEnv {
    fn name(&self) -> String {
        self.task.name()
    }

    fn num_players(&self) -> usize {
        1
    }

    fn role(&self, player: Player) -> Role {
        Role::new(NAME, player, "solver")
    }

    fn reset(&mut self, seed: u64) {
        let problem = self.task.problem(self.split, seed, self.seed);
        self.reset_with(problem, seed);
    }

    fn current_player(&self) -> Option<Player> {
        (self.problem.is_some() && self.transcript.returns.is_none()).then_some(0)
    }

    fn observation(&self, player: Player) -> Observation {
        let mut state_text = self
            .problem
            .as_ref()
            .map(|p| p.question.clone())
            .unwrap_or_default();
        for line in &self.lines {
            state_text.push('\n');
            state_text.push_str(line);
        }
        Observation {
            role: self.role(player),
            // The rules are the task's system text, not the observation's: every byte of
            // prompt dilutes a tiny model's attention (`docs/adding-a-loop.md` measured it),
            // and the step format is learnt from the warm start's reference steps.
            system: String::new(),
            role_text: String::new(),
            state_text,
            legal_actions: None,
            answer_format: String::new(),
        }
    }

    fn step(&mut self, player: Player, completion: &str) -> Step {
        if self.problem.is_none() {
            return Self::refused(player, "no problem: call reset first");
        }
        if self.transcript.returns.is_some() {
            return Self::refused(player, "the episode is over");
        }
        let observation = self.observation(player);
        if player != 0 {
            let reason = format!("player {player} is not to move (player 0 is)");
            let outcome = StepOutcome::Invalid {
                reason,
                retry: true,
            };
            self.transcript.turns.push(TranscriptTurn {
                role: observation.role.clone(),
                player,
                system: observation.system.clone(),
                prompt: observation.prompt(),
                completion: completion.to_string(),
                outcome: outcome.clone(),
            });
            return Step {
                player,
                outcome,
                done: false,
                truncated: false,
            };
        }
        let before = self.state.numbers.clone();
        let applied = parse_step(completion).and_then(|a| self.state.apply(a));
        let (outcome, key) = match applied {
            Ok((text, result)) => {
                let shown: Vec<String> = self.state.numbers.iter().map(u64::to_string).collect();
                self.lines.push(format!("{text} -> {}", shown.join(" ")));
                self.reached = result == Some(self.target);
                let outcome = StepOutcome::Move {
                    action_text: text.clone(),
                    action: None,
                };
                (outcome, text)
            }
            Err(reason) => {
                self.transcript.invalid_moves[0] += 1;
                self.lines.push(format!("invalid: {reason}"));
                let last = completion.lines().map(str::trim).rfind(|l| !l.is_empty());
                let key: String = last.unwrap_or("").chars().take(40).collect();
                let outcome = StepOutcome::Invalid {
                    reason,
                    retry: false,
                };
                (outcome, key)
            }
        };
        if !self.seen.insert((before, key)) {
            self.repeated += 1;
        }
        let truncated = !self.reached && self.lines.len() >= self.task.turns();
        if self.reached || truncated {
            self.transcript.returns = Some(vec![if self.reached { 1.0 } else { 0.0 }]);
            self.transcript.truncated = truncated;
        }
        self.transcript.turns.push(TranscriptTurn {
            prompt: observation.prompt(),
            role: observation.role,
            player,
            system: observation.system,
            completion: completion.to_string(),
            outcome: outcome.clone(),
        });
        Step {
            player,
            outcome,
            done: self.reached || truncated,
            truncated,
        }
    }

    fn returns(&self) -> Vec<f64> {
        self.transcript.returns.clone().unwrap_or_else(|| vec![0.0])
    }

    fn transcript(&self) -> &Transcript {
        &self.transcript
    }
}

#[cfg(test)]
mod tests;
