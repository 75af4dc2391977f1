//! Verifiable tasks: single-player problems whose answers a program can check.
//!
//! A [`Task`] is a family of problems (generated, or read from a JSONL file) with a verifier.
//! The learner reads a problem's question, writes a completion, and the verifier returns a
//! [`Verdict`]; [`TaskEnv`] wraps a task as a one-seat [`spar_core::Env`] whose return is
//! the verifier's reward (1 correct, 0 otherwise). User documentation: `docs/tasks.md`.
//!
//! # Tasks
//! | spec | problems | difficulty |
//! |---|---|---|
//! | `arithmetic(digits=1..2,terms=2,ops=+-)` | `37+5*2=`, integer answer | digits per operand |
//! | `countdown(numbers=3..4,max=25,target_max=100)` | reach a target with + - * / | count of numbers |
//! | `countdown_steps(numbers=3..4,turns=12)` | Countdown one step a line (also [`CountdownStepsEnv`]: one step a turn) | count of numbers |
//! | `wordproblem(steps=1..3)` | a person's items after a few events | number of events |
//! | `jsonl:PATH` or `jsonl(path=PATH,question_key=K,answer_key=K)`; `parquet:PATH` (feature `parquet`) | question/answer rows of a file (GSM8K `####` answers, chat-message prompts) | the row's `difficulty` |
//! | `choice:SPEC` or `choice(options=4):SPEC` | any task's problems with lettered options | the task's |
//!
//! # Contract
//! * `problem(split, index, seed)` is a pure function: the same arguments give the same
//!   problem on every platform (ChaCha8 seeded by SplitMix64 of seed, split and index).
//! * **Splits are disjoint.** A generated question belongs to [`Split::Test`] when a hash of
//!   its text is 0 modulo 10 (about 10% of the problem space), else to [`Split::Train`];
//!   a draw of the other split is rejected and redrawn from the same RNG (the difficulty is
//!   drawn once, first, so every difficulty level is uniform in both splits). Train and
//!   test never share a question, for any seed. Building a task checks that every
//!   difficulty level has problems in both splits.
//! * `verify` is pure and never panics on any text; `extract_answer` returns the same
//!   normalised answer the verifier compares, so equal answers compare equal as strings
//!   (majority voting).
//!
//! # Answers
//! Number answers (arithmetic, word problems): when the completion contains `Answer:`
//! (any case), the first number after its last occurrence; otherwise the last number in the
//! completion. See [`extract_number`] for the exact rules.
//!
//! ```
//! use std::sync::Arc;
//! use spar_core::Env;
//! use spar_games::tasks::{task_from_spec, Split, TaskEnv, Verdict};
//!
//! let task = task_from_spec("countdown(numbers=3..4)").unwrap();
//! let problem = task.problem(Split::Test, 0, 0);
//! assert_eq!(task.verify(&problem, &problem.solution), Verdict::Correct);
//!
//! let mut env = TaskEnv::new(Arc::from(task), Split::Train, 0);
//! env.reset(17); // problem 17 of the training split, task seed 0
//! assert!(env.observation(0).prompt().starts_with("Numbers: "));
//! env.step(0, "1+1");
//! assert_eq!(env.returns(), vec![0.0]);
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod arithmetic;
mod attempts;
mod choice;
mod cosc;
mod countdown;
mod countdown_steps;
mod env;
mod jsonl;
#[cfg(feature = "parquet")]
mod parquet_rows;
mod propose;
mod rows;
mod word;

#[cfg(test)]
pub(crate) mod tests_support;

pub use arithmetic::Arithmetic;
pub use attempts::{
    parse_verification, AttemptStats, AttemptsEnv, Feedback, VerifyStats, CRITIQUE_FORMAT,
    CRITIQUE_INSTRUCTION, DEFAULT_INSTRUCTION, VERIFY_FORMAT, VERIFY_INSTRUCTION,
};
pub use choice::ChoiceTask;
pub use cosc::{
    execute, teacher_turns, CoscEnd, CoscEnv, CoscEpisode, CoscStats, LevelStats, ProgramKind,
    Stage, CONCLUDE, CONTINUE, OUT, PROG, RULES, VERIFY,
};
pub use countdown::Countdown;
pub use countdown_steps::{
    operate, operations, parse_step, question_numbers, solvable, CountdownSteps, CountdownStepsEnv,
    StepAction, StepState, NAME as COUNTDOWN_STEPS,
};
pub use env::TaskEnv;
pub use jsonl::JsonlTask;
pub use propose::{parse_proposal, PosedTask, Proposal, ProposalRules, ProposerEnv, MAX_TERMS};
pub use word::WordProblem;

/// Which half of a task's problems: training or held-out evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Problems for training (about 90% of a generated problem space).
    Train,
    /// Held-out problems for evaluation (about 10%), never shown in training.
    Test,
}

impl Split {
    /// Both splits, train first.
    pub const ALL: [Split; 2] = [Split::Train, Split::Test];

    /// `"train"` or `"test"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "train" => Ok(Split::Train),
            "test" => Ok(Split::Test),
            other => Err(format!(
                "unknown split {other:?}: expected \"train\" or \"test\""
            )),
        }
    }
}

/// One problem: what the model reads and what the verifier accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// A stable id: `arithmetic/train/17` (task, split, index; unique within one task
    /// specification and seed), or a JSONL row's id.
    pub id: String,
    /// The text shown to the model (the observation's state text).
    pub question: String,
    /// The canonical reference answer (for countdown, one valid expression).
    pub answer: String,
    /// The difficulty level (digits, count of numbers, steps, or a JSONL row's value), for
    /// per-difficulty accuracy.
    pub difficulty: u32,
    /// A reference completion the verifier marks correct, for supervised warm starts
    /// (word problems show their intermediate steps, then `Answer: N`).
    pub solution: String,
}

/// The verifier's judgement of one completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The answer is right.
    Correct,
    /// An answer was found, but it is wrong.
    Wrong {
        /// The answer as extracted and normalised.
        got: String,
        /// Why it is wrong (`value 45 != 46`, `uses 4, which is not given`).
        reason: String,
    },
    /// No answer could be read from the completion.
    Unparsable {
        /// What was missing or malformed.
        reason: String,
    },
}

impl Verdict {
    /// Whether the answer is right.
    pub fn is_correct(&self) -> bool {
        matches!(self, Verdict::Correct)
    }

    /// The reward: 1.0 when correct, 0.0 otherwise.
    pub fn reward(&self) -> f64 {
        if self.is_correct() {
            1.0
        } else {
            0.0
        }
    }
}

/// A family of problems with a verifier.
///
/// Implementations are immutable after construction (`Send + Sync`), so one task serves
/// every rollout thread through an `Arc<dyn Task>`.
pub trait Task: Send + Sync + fmt::Debug {
    /// The canonical specification with every parameter, e.g.
    /// `arithmetic(digits=1..2,terms=2,ops=+-)`; [`task_from_spec`] of it builds the same task.
    fn name(&self) -> String;

    /// The rules (system prompt). Short: tiny byte-level models read it.
    fn system(&self) -> String;

    /// The system prompt for `problem`: [`Task::system`] unless the problem brings its own
    /// (a JSONL row whose prompt is a chat message list with a system message).
    fn system_for(&self, problem: &Problem) -> String {
        let _ = problem;
        self.system()
    }

    /// How to write the answer, e.g. `Answer with the number only.`
    fn answer_format(&self) -> String;

    /// Problem `index` of `split` for `seed`: deterministic in its arguments. Generated
    /// tasks are unbounded; a JSONL task returns row `index % size` of the split and ignores
    /// `seed`.
    fn problem(&self, split: Split, index: u64, seed: u64) -> Problem;

    /// How many problems a split holds: `None` for generated (unbounded) tasks.
    fn split_size(&self, split: Split) -> Option<usize>;

    /// Judges `completion` as an answer to `problem`. Pure; never panics on any text.
    fn verify(&self, problem: &Problem, completion: &str) -> Verdict;

    /// The answer part of a completion, normalised so that answers the verifier treats as
    /// equal are equal strings (for majority voting); `None` when there is none.
    fn extract_answer(&self, completion: &str) -> Option<String>;
}

/// One entry of the task listing (`spar tasks`).
#[derive(Debug, Clone, Copy)]
pub struct TaskInfo {
    /// The name used in specifications.
    pub name: &'static str,
    /// One line: what the problems are.
    pub description: &'static str,
    /// Accepted parameters with their defaults.
    pub parameters: &'static str,
}

/// Every task spar ships, in listing order.
pub const TASKS: &[TaskInfo] = &[
    TaskInfo {
        name: "arithmetic",
        description: "integer expressions with standard precedence (`37+5*2=`); answer the value",
        parameters: "digits=1..2 (per operand, difficulty), terms=2, ops=+- (any of + - *)",
    },
    TaskInfo {
        name: "countdown",
        description:
            "reach the target with + - * / and parentheses, each given number at most once",
        parameters: "numbers=3..4 (count, difficulty), max=25, target_max=100",
    },
    TaskInfo {
        name: "countdown_steps",
        description: "Countdown one step at a time (`25-3=22`, `undo`); an environment of one \
                      step a turn for multi-step loops (Agent-R)",
        parameters: "numbers=3..4, max=25, target_max=100, turns=12 (steps at most)",
    },
    TaskInfo {
        name: "wordproblem",
        description: "a person's items after a few buys, gifts, losses and doublings",
        parameters: "steps=1..3 (events, difficulty)",
    },
    TaskInfo {
        name: "jsonl",
        description: "question/answer rows of a JSONL file: `jsonl:PATH` (Parquet: `parquet:PATH`, with the parquet feature)",
        parameters: "path (required), question_key, answer_key (field names; default question/prompt, answer)",
    },
    TaskInfo {
        name: "choice",
        description: "any task as a multiple-choice question: `choice:SPEC`, answer a letter",
        parameters: "options=4 (2 to 8), written `choice(options=N):SPEC`",
    },
];

/// Builds a task from its specification: `arithmetic`, `arithmetic(digits=1..3,ops=+-*)`,
/// `countdown(numbers=3..4)`, `wordproblem(steps=1..3)`, `jsonl:PATH`, `jsonl(path=PATH)`.
///
/// Errors name the specification, the offending parameter or file line, and what is
/// accepted.
pub fn task_from_spec(spec: &str) -> Result<Box<dyn Task>, String> {
    let trimmed = spec.trim();
    if let Some(path) = trimmed.strip_prefix("jsonl:") {
        return Ok(Box::new(JsonlTask::load(
            path.trim(),
            rows::Keys::default(),
        )?));
    }
    if let Some(path) = trimmed.strip_prefix("parquet:") {
        return parquet_task(spec, path.trim(), rows::Keys::default());
    }
    if let Some(choice) = ChoiceTask::from_spec(trimmed) {
        return Ok(Box::new(choice?));
    }
    let parsed = spar_core::GameSpec::parse(trimmed)
        .map_err(|e| format!("task spec {spec:?}: {e}; known tasks: {}", known_tasks()))?;
    let params = Params::new(spec, &parsed);
    match parsed.name.as_str() {
        "arithmetic" => Ok(Box::new(Arithmetic::from_params(&params)?)),
        "countdown" => Ok(Box::new(Countdown::from_params(&params)?)),
        "countdown_steps" => Ok(Box::new(CountdownSteps::from_params(&params)?)),
        "wordproblem" => Ok(Box::new(WordProblem::from_params(&params)?)),
        name @ ("jsonl" | "parquet") => {
            params.check_known(&["path", "question_key", "answer_key"])?;
            let path = parsed.params.get("path").ok_or_else(|| {
                format!(
                    "task spec {spec:?}: {name} needs a file: `{name}:PATH` or \
                     `{name}(path=PATH,question_key=KEY,answer_key=KEY)`"
                )
            })?;
            let keys = rows::Keys {
                question: parsed.params.get("question_key").cloned(),
                answer: parsed.params.get("answer_key").cloned(),
            };
            if name == "jsonl" {
                Ok(Box::new(JsonlTask::load(path, keys)?))
            } else {
                parquet_task(spec, path, keys)
            }
        }
        other => Err(format!(
            "task spec {spec:?}: unknown task {other:?}; known tasks: {}",
            known_tasks()
        )),
    }
}

/// A Parquet file's task; without the `parquet` feature, an error saying how to build it.
fn parquet_task(spec: &str, path: &str, keys: rows::Keys) -> Result<Box<dyn Task>, String> {
    #[cfg(feature = "parquet")]
    {
        let _ = spec;
        Ok(Box::new(JsonlTask::load_parquet(path, keys)?))
    }
    #[cfg(not(feature = "parquet"))]
    {
        let _ = (path, keys);
        Err(format!(
            "task spec {spec:?}: this spar was built without Parquet support; rebuild with \
             `cargo build --release -p spar-cli --features parquet`, or convert the file to \
             JSONL"
        ))
    }
}

/// The task names, comma separated, as errors and help list them (`jsonl:PATH` for JSONL).
pub fn known_tasks() -> String {
    TASKS
        .iter()
        .map(|t| match t.name {
            "jsonl" => "jsonl:PATH",
            "choice" => "choice:SPEC",
            name => name,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A task specification's parameters, read with errors that name the spec and parameter.
pub(crate) struct Params<'a> {
    spec: &'a str,
    parsed: &'a spar_core::GameSpec,
}

impl<'a> Params<'a> {
    fn new(spec: &'a str, parsed: &'a spar_core::GameSpec) -> Self {
        Self { spec, parsed }
    }

    /// Fails on a parameter outside `known`, listing the accepted ones.
    pub(crate) fn check_known(&self, known: &[&str]) -> Result<(), String> {
        match self
            .parsed
            .params
            .keys()
            .find(|k| !known.contains(&k.as_str()))
        {
            None => Ok(()),
            Some(key) => Err(format!(
                "task spec {:?}: unknown parameter {key:?}; {} accepts: {}",
                self.spec,
                self.parsed.name,
                known.join(", ")
            )),
        }
    }

    /// The error for parameter `key`.
    pub(crate) fn bad(&self, key: &str, reason: &str) -> String {
        let value = self.parsed.params.get(key).map_or("", String::as_str);
        format!(
            "task spec {:?}: bad parameter {key}={value:?}: {reason}",
            self.spec
        )
    }

    /// An inclusive range `a..b` (or `a..=b`, or a single `a`) within `min..=max`.
    pub(crate) fn range(
        &self,
        key: &str,
        default: (u32, u32),
        min: u32,
        max: u32,
    ) -> Result<(u32, u32), String> {
        let Some(value) = self.parsed.params.get(key) else {
            return Ok(default);
        };
        let expected =
            format!("expected an inclusive range `a..b` or a number, within {min}..{max}");
        let number = |text: &str| {
            text.trim()
                .parse::<u32>()
                .map_err(|_| self.bad(key, &expected))
        };
        let (low, high) = match value.split_once("..") {
            Some((low, high)) => {
                let high = high.strip_prefix('=').unwrap_or(high);
                (number(low)?, number(high)?)
            }
            None => {
                let n = number(value)?;
                (n, n)
            }
        };
        if low > high {
            return Err(self.bad(key, &format!("the range {low}..{high} is empty")));
        }
        if low < min || high > max {
            return Err(self.bad(key, &expected));
        }
        Ok((low, high))
    }

    /// A whole number within `min..=max`.
    pub(crate) fn number(
        &self,
        key: &str,
        default: u32,
        min: u32,
        max: u32,
    ) -> Result<u32, String> {
        let Some(value) = self.parsed.params.get(key) else {
            return Ok(default);
        };
        match value.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.bad(key, &format!("expected a whole number within {min}..{max}"))),
        }
    }

    /// The raw text of parameter `key`.
    pub(crate) fn text(&self, key: &str) -> Option<&str> {
        self.parsed.params.get(key).map(String::as_str)
    }
}

/// Prints an inclusive range the way specifications write it: `2` or `1..3`.
pub(crate) fn format_range((low, high): (u32, u32)) -> String {
    if low == high {
        low.to_string()
    } else {
        format!("{low}..{high}")
    }
}

// ---------------------------------------------------------------------------------------
// Seeds and splits.

use spar_core::seeds::splitmix64;

/// 64-bit FNV-1a of `bytes`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// The split a question belongs to by the hash rule: test when
/// `splitmix64(fnv1a(question)) % 10 == 0`. Used for generated problems and for JSONL rows
/// without a `split` field.
pub fn split_of(question: &str) -> Split {
    if splitmix64(fnv1a(question.as_bytes())).is_multiple_of(10) {
        Split::Test
    } else {
        Split::Train
    }
}

/// The RNG of problem `(split, index, seed)`: ChaCha8 seeded by SplitMix64 of the three.
pub(crate) fn problem_rng(split: Split, index: u64, seed: u64) -> spar_core::Rng {
    let tag = match split {
        Split::Train => 0x0074_7261_696E, // "train"
        Split::Test => 0x7465_7374,       // "test"
    };
    let mixed = splitmix64(splitmix64(splitmix64(seed) ^ tag) ^ index);
    spar_core::seeded_rng(mixed)
}

/// One generated problem before its split is known.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) question: String,
    pub(crate) answer: String,
    pub(crate) solution: String,
}

/// The shared sampler of generated tasks: difficulty first, then candidates until one of
/// the wanted split.
pub(crate) trait Generator {
    /// The task's base name (`arithmetic`), the first part of problem ids.
    fn base(&self) -> &'static str;
    /// The inclusive range of difficulty levels.
    fn levels(&self) -> (u32, u32);
    /// One draw at `difficulty`, or `None` when this draw failed a constraint.
    fn candidate(&self, rng: &mut spar_core::Rng, difficulty: u32) -> Option<Candidate>;
}

/// Draws problem `(split, index, seed)` from a generator (see the module docs).
pub(crate) fn generate(gen: &dyn Generator, split: Split, index: u64, seed: u64) -> Problem {
    use rand::Rng as _;
    let mut rng = problem_rng(split, index, seed);
    let (low, high) = gen.levels();
    let difficulty = rng.gen_range(low..=high);
    // Terminates: construction checked that this level has problems of both splits.
    loop {
        if let Some(c) = gen.candidate(&mut rng, difficulty) {
            if split_of(&c.question) == split {
                return Problem {
                    id: format!("{}/{split}/{index}", gen.base()),
                    question: c.question,
                    answer: c.answer,
                    difficulty,
                    solution: c.solution,
                };
            }
        }
    }
}

/// Draws per level and split at construction, to refuse parameters whose problem space
/// has no test (or train) problems at some difficulty level.
pub(crate) fn check_levels(gen: &dyn Generator, name: &str) -> Result<(), String> {
    const ATTEMPTS: usize = 50_000;
    let (low, high) = gen.levels();
    for difficulty in low..=high {
        let mut rng = spar_core::seeded_rng(u64::from(difficulty));
        let mut found = [false; 2];
        for _ in 0..ATTEMPTS {
            if let Some(c) = gen.candidate(&mut rng, difficulty) {
                found[usize::from(split_of(&c.question) == Split::Test)] = true;
                if found == [true, true] {
                    break;
                }
            }
        }
        if let Some(missing) = Split::ALL
            .iter()
            .find(|s| !found[usize::from(**s == Split::Test)])
        {
            return Err(format!(
                "task {name}: no {missing} problems at difficulty {difficulty} in {ATTEMPTS} draws; \
                 the problem space is too small, widen the parameters"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Answer extraction shared by the tasks.

/// The text after the last `Answer:` (ASCII case-insensitive), if the completion has one.
pub(crate) fn after_answer_marker(completion: &str) -> Option<&str> {
    // ASCII lowercasing keeps byte offsets, so the index is valid in `completion`.
    let lower = completion.to_ascii_lowercase();
    lower
        .rfind("answer:")
        .map(|at| &completion[at + "answer:".len()..])
}

/// The inside of the last `\boxed{...}`, brace-matched (to the end when unclosed).
pub(crate) fn last_boxed(text: &str) -> Option<&str> {
    let start = text.rfind("\\boxed{")? + "\\boxed{".len();
    let mut depth = 1usize;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..start + i]);
                }
            }
            _ => {}
        }
    }
    Some(&text[start..])
}

/// A number token found in text, before normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NumberToken<'a> {
    negative: bool,
    integer: &'a str,
    fraction: &'a str,
}

/// Every number in `text`, in order: digits, optionally `.digits`; a `-` directly before
/// the digits is a sign when the character before it is not a letter, digit or `)`
/// (`x=-3` is -3, `5-3` ends in 3).
fn number_tokens(text: &str) -> Vec<NumberToken<'_>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let integer = &text[start..i];
        let mut fraction = "";
        if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
            let fraction_start = i + 1;
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            fraction = &text[fraction_start..i];
        }
        let negative = start >= 1
            && bytes[start - 1] == b'-'
            && (start < 2 || {
                let before = bytes[start - 2];
                !(before.is_ascii_alphanumeric() || before == b')')
            });
        tokens.push(NumberToken {
            negative,
            integer,
            fraction,
        });
    }
    tokens
}

/// Canonical text of a number token: no leading zeros, no trailing fractional zeros, no
/// `-0`: `007` -> `7`, `24.50` -> `24.5`, `24.0` -> `24`, `-0` -> `0`.
fn normalise_number(token: NumberToken<'_>) -> String {
    let integer = token.integer.trim_start_matches('0');
    let integer = if integer.is_empty() { "0" } else { integer };
    let fraction = token.fraction.trim_end_matches('0');
    let mut out = String::new();
    if token.negative && !(integer == "0" && fraction.is_empty()) {
        out.push('-');
    }
    out.push_str(integer);
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    out
}

/// The number answer of a completion, normalised: no leading zeros, no trailing fractional
/// zeros, no `-0` (`007` -> `7`, `24.50` -> `24.5`, `24.0` -> `24`).
///
/// When the completion contains `Answer:` (any case), the first number after its last
/// occurrence; otherwise the last number in the completion. A number is ASCII digits with
/// an optional `.digits` part and an optional `-` sign directly before it (a `-` that
/// follows a letter, digit or `)` is subtraction, not a sign). `None` when there is none.
pub fn extract_number(completion: &str) -> Option<String> {
    match after_answer_marker(completion) {
        Some(rest) => number_tokens(rest).first().copied().map(normalise_number),
        None => number_tokens(completion)
            .last()
            .copied()
            .map(normalise_number),
    }
}

/// The last number in `text`, normalised.
pub(crate) fn last_number(text: &str) -> Option<String> {
    number_tokens(text).last().copied().map(normalise_number)
}

/// The verdict for a number answer against a reference in canonical form.
pub(crate) fn verify_number(reference: &str, completion: &str) -> Verdict {
    match extract_number(completion) {
        None => Verdict::Unparsable {
            reason: if after_answer_marker(completion).is_some() {
                "no number after `Answer:`".to_string()
            } else {
                "no number found".to_string()
            },
        },
        Some(got) if got == reference => Verdict::Correct,
        Some(got) => Verdict::Wrong {
            reason: format!("{got} != {reference}"),
            got,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_parse_and_print() {
        assert_eq!("train".parse::<Split>().unwrap(), Split::Train);
        assert_eq!(" test ".parse::<Split>().unwrap(), Split::Test);
        assert!("dev".parse::<Split>().unwrap_err().contains("\"dev\""));
        assert_eq!(Split::Test.to_string(), "test");
        assert_eq!(serde_json::to_string(&Split::Train).unwrap(), "\"train\"");
    }

    #[test]
    fn verdicts_serialise_with_a_tag_and_reward_one_only_when_correct() {
        let wrong = Verdict::Wrong {
            got: "25".into(),
            reason: "25 != 24".into(),
        };
        assert_eq!(
            serde_json::to_string(&wrong).unwrap(),
            r#"{"verdict":"wrong","got":"25","reason":"25 != 24"}"#
        );
        assert_eq!(
            serde_json::to_string(&Verdict::Correct).unwrap(),
            r#"{"verdict":"correct"}"#
        );
        let unparsable = Verdict::Unparsable { reason: "x".into() };
        let back: Verdict =
            serde_json::from_str(&serde_json::to_string(&unparsable).unwrap()).unwrap();
        assert_eq!(back, unparsable);
        assert_eq!(Verdict::Correct.reward(), 1.0);
        assert_eq!(wrong.reward(), 0.0);
        assert_eq!(unparsable.reward(), 0.0);
        assert!(Verdict::Correct.is_correct() && !wrong.is_correct());
    }

    #[test]
    fn hash_functions_match_their_published_values() {
        // FNV-1a 64 test vectors (Fowler/Noll/Vo): "" and "a".
        assert_eq!(fnv1a(b""), 0xCBF2_9CE4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xAF63_DC4C_8601_EC8C);
        // SplitMix64 seeded with 0: its first output is 0xE220A8397B1DCDAF.
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn the_hash_rule_puts_about_a_tenth_of_questions_in_test() {
        let test = (0..10_000)
            .filter(|i| split_of(&format!("{i}+{i}=")) == Split::Test)
            .count();
        assert!((900..1100).contains(&test), "{test} of 10000 in test");
    }

    #[test]
    fn number_extraction_follows_the_documented_rules() {
        let cases = [
            ("24", Some("24")),
            (" 24 \n", Some("24")),
            ("Answer: 24", Some("24")),
            ("answer:-3", Some("-3")),
            ("-3", Some("-3")),
            ("x = -3", Some("-3")),
            ("5-3", Some("3")),
            ("(2)-3", Some("3")),
            ("12+3*4=24", Some("24")),
            ("Answer: 6 apples, since 3+3", Some("6")),
            ("7 then Answer: 8 and 9", Some("8")),
            ("Answer: none", None),
            ("abc", None),
            ("", None),
            ("007", Some("7")),
            ("24.0", Some("24")),
            ("24.50", Some("24.5")),
            ("The answer is 24.", Some("24")),
            ("-0", Some("0")),
            ("ANSWER: 5", Some("5")),
            ("Ünïcode 12 ✓", Some("12")),
        ];
        for (text, want) in cases {
            assert_eq!(extract_number(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn ranges_parse_with_errors_naming_the_parameter() {
        let parse = |text: &str| {
            let parsed = spar_core::GameSpec::parse(text).unwrap();
            let params = Params::new(text, &parsed);
            params.range("digits", (1, 2), 1, 6)
        };
        assert_eq!(parse("t").unwrap(), (1, 2));
        assert_eq!(parse("t(digits=2..4)").unwrap(), (2, 4));
        assert_eq!(parse("t(digits=1..=3)").unwrap(), (1, 3));
        assert_eq!(parse("t(digits=3)").unwrap(), (3, 3));
        let err = parse("t(digits=3..1)").unwrap_err();
        assert!(err.contains("digits") && err.contains("empty"), "{err}");
        let err = parse("t(digits=0..9)").unwrap_err();
        assert!(err.contains("digits") && err.contains("1..6"), "{err}");
        let err = parse("t(digits=a..b)").unwrap_err();
        assert!(err.contains("digits=\"a..b\""), "{err}");
    }

    #[test]
    fn task_from_spec_builds_every_listed_task_and_round_trips_names() {
        for spec in [
            "arithmetic",
            "arithmetic(digits=1..3,terms=2,ops=+-*)",
            "countdown",
            "countdown(numbers=3..4,max=25,target_max=100)",
            "wordproblem(steps=1..3)",
        ] {
            let task = task_from_spec(spec).unwrap();
            let again = task_from_spec(&task.name()).unwrap();
            assert_eq!(again.name(), task.name(), "{spec}");
            assert_eq!(
                again.problem(Split::Test, 3, 9),
                task.problem(Split::Test, 3, 9)
            );
        }
        assert_eq!(
            task_from_spec("arithmetic").unwrap().name(),
            "arithmetic(digits=1..2,terms=2,ops=+-)"
        );
    }

    #[test]
    fn task_from_spec_errors_name_the_problem() {
        let err = task_from_spec("algebra").unwrap_err();
        assert!(err.contains("unknown task \"algebra\""), "{err}");
        assert!(
            err.contains("arithmetic, countdown, countdown_steps, wordproblem, jsonl:PATH"),
            "{err}"
        );
        let err = task_from_spec("arithmetic(digit=2)").unwrap_err();
        assert!(
            err.contains("unknown parameter \"digit\"") && err.contains("digits, terms, ops"),
            "{err}"
        );
        let err = task_from_spec("countdown(numbers=4..2)").unwrap_err();
        assert!(err.contains("numbers") && err.contains("empty"), "{err}");
        let err = task_from_spec("wordproblem(steps=x)").unwrap_err();
        assert!(err.contains("steps=\"x\""), "{err}");
        let err = task_from_spec("arithmetic(ops=+/)").unwrap_err();
        assert!(err.contains("ops"), "{err}");
        let err = task_from_spec("arithmetic(digits=1").unwrap_err();
        assert!(
            err.contains("arithmetic(digits=1") && err.contains("')'"),
            "{err}"
        );
        let err = task_from_spec("jsonl").unwrap_err();
        assert!(err.contains("jsonl:PATH"), "{err}");
    }
}
