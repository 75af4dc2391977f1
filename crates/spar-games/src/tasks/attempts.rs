//! [`AttemptsEnv`]: a task answered in several attempts, each after reading the earlier ones
//! and their feedback, the environment of spar's self-correction loops (SCoRe, Kumar et al.
//! 2025, sec. 3: `x2 = [x1, y1, p]`), and [`AttemptStats`], the paper's self-correction
//! metrics over such episodes. With self-verification ([`AttemptsEnv::with_self_verification`])
//! the same model also judges each of its attempts before the next one, as SPOC's proposer
//! and verifier messages (Zhao et al. 2025, "Boosting LLM Reasoning via Spontaneous
//! Self-Correction", sec. 3). With role reversal ([`AttemptsEnv::with_role_reversal`]) the
//! model critiques each attempt but the last from the asker's side and the next attempt reads
//! the critique (D-HUMOR's Role-Reversal Self-Loop, "D-HUMOR: Dark Humor Understanding via
//! Multimodal Open-ended Reasoning", text only).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use spar_core::{Env, Observation, Player, Role, Step, StepOutcome, Transcript};

use super::env::record_turn;
use super::{Problem, Split, Task, Verdict};

/// SCoRe's fixed self-correction instruction `p`, shortened for tiny models (the paper's: "There
/// might be an error in the solution above because of lack of understanding of the question.
/// Please correct the error, if any, and rewrite the solution.").
pub const DEFAULT_INSTRUCTION: &str =
    "There might be an error in your answer. Correct it, if any, and answer again.";

/// What a verification message reads after the attempt it judges (SPOC's verifier turn).
pub const VERIFY_INSTRUCTION: &str = "Is this answer correct?";

/// The answer format of a verification message.
pub const VERIFY_FORMAT: &str = "Answer yes or no.";

/// What a role-reversal critique reads after the attempt it critiques: the other side's
/// perspective (D-HUMOR's "as the author, what did I intend / what is missing", turned to the
/// asker of a question).
pub const CRITIQUE_INSTRUCTION: &str =
    "Now take the other side: you asked this question. Read the answer as the asker would. \
     Is it right? What is wrong or missing?";

/// The answer format of a critique message.
pub const CRITIQUE_FORMAT: &str = "Write a short critique.";

/// What, if anything, the model writes between two attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Between {
    /// Nothing (the [`Feedback`] line, if any, comes from the verifier).
    Nothing,
    /// A yes/no verification of the attempt before (SPOC); "yes" ends the episode.
    Verify,
    /// A free-text critique of the attempt before, from the asker's side (role reversal).
    Critique,
}

/// A verification message's verdict on the attempt before it: `Some(true)` for "yes",
/// `Some(false)` for "no", `None` when it says neither. The text after the last `Answer:`
/// (ASCII case-insensitive) when there is one, else the whole message; its last word that is
/// `yes` or `no` (any case, punctuation around it ignored) decides.
pub fn parse_verification(completion: &str) -> Option<bool> {
    let lower = completion.to_ascii_lowercase();
    let tail = lower
        .rfind("answer:")
        .map_or(lower.as_str(), |i| &lower[i + "answer:".len()..]);
    tail.split(|c: char| !c.is_ascii_alphabetic())
        .rev()
        .find_map(|w| match w {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        })
}

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
///
/// With self-verification (SPOC) every attempt is followed by the model's own verification:
/// * seat `2k` is attempt `k + 1` (role `attempt{k+1}`), seat `2k + 1` its verification
///   (role `verify{k+1}`), which reads the question, the earlier attempts with their
///   verifications, the attempt to judge and [`VERIFY_INSTRUCTION`], and answers yes or no
///   ([`parse_verification`]);
/// * "yes" ends the episode (the proposer stops at its own verifier's approval); "no", or a
///   verification that says neither (an invalid move), leads to the next attempt, which reads
///   the earlier attempts with their verifications (`Verification 1: no`) and the
///   instruction; the episode also ends after the last attempt's verification;
/// * a verification's return is 1 when its verdict matches the attempt's correctness (SPOC's
///   message-wise oracle reward for the verifier), 0 otherwise; an attempt's return is its
///   reward; seats never reached return 0.
///
/// With role reversal ([`AttemptsEnv::with_role_reversal`]) seat `2k` is attempt `k + 1` and
/// seat `2k + 1` (for `k + 1 < attempts`) the critique of it (role `critique{k+1}`), which
/// reads the question, the attempts and critiques so far and [`CRITIQUE_INSTRUCTION`]; the
/// next attempt reads `Critique 1 (the asker's view): ...`. An empty critique is an invalid
/// move (no retry). A critique returns the next attempt's reward.
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
    /// What the model writes after an attempt: nothing, a verification or a critique.
    between: Between,
    /// Each verification or critique made: the completion and what it said (a critique says
    /// neither yes nor no: `None`).
    checks: Vec<(String, Option<bool>)>,
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
            between: Between::Nothing,
            checks: Vec::new(),
            transcript: Transcript {
                env: name,
                ..Transcript::default()
            },
        }
    }

    /// The same environment with self-verification: every attempt is followed by the
    /// model's verification of it, and a "yes" ends the episode (SPOC). The feedback is then
    /// the model's own verification; an external [`Feedback`] line is not shown.
    pub fn with_self_verification(mut self) -> AttemptsEnv {
        self.between = Between::Verify;
        self.feedback = Feedback::None;
        self
    }

    /// The same environment with role reversal: every attempt but the last is followed by the
    /// model's critique of it from the asker's side ([`CRITIQUE_INSTRUCTION`]), which the next
    /// attempt reads in place of an external [`Feedback`] line. Critique `k` (seat `2k - 1`,
    /// role `critique{k}`) returns attempt `k + 1`'s reward: a critique is worth the
    /// refinement it leads to (as AutoMathCritique scores critiques by whether the refinement
    /// is right). All attempts are made; none ends the episode early.
    pub fn with_role_reversal(mut self) -> AttemptsEnv {
        self.between = Between::Critique;
        self.feedback = Feedback::None;
        self
    }

    /// Whether every attempt is followed by a verification message.
    pub fn verifies(&self) -> bool {
        self.between == Between::Verify
    }

    /// Whether attempts are followed by role-reversal critiques.
    pub fn critiques(&self) -> bool {
        self.between == Between::Critique
    }

    /// The verifications made so far, in order: `Some(true)` yes, `Some(false)` no, `None`
    /// neither (empty without self-verification).
    pub fn checks(&self) -> Vec<Option<bool>> {
        match self.between {
            Between::Verify => self.checks.iter().map(|(_, c)| *c).collect(),
            _ => Vec::new(),
        }
    }

    /// The role-reversal critiques written so far, in order (empty without role reversal).
    pub fn critique_texts(&self) -> Vec<&str> {
        match self.between {
            Between::Critique => self.checks.iter().map(|(c, _)| c.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// Messages (attempts and verifications or critiques) per episode at most.
    pub fn max_messages(&self) -> usize {
        match self.between {
            Between::Nothing => self.attempts,
            Between::Verify => 2 * self.attempts,
            Between::Critique => 2 * self.attempts - 1,
        }
    }

    /// Whether the seat is an attempt (`false`: a verification or critique).
    fn is_attempt(&self, player: Player) -> bool {
        self.between == Between::Nothing || player.is_multiple_of(2)
    }

    /// The attempt a seat makes or judges (0-based).
    fn attempt_of(&self, player: Player) -> usize {
        match self.between {
            Between::Nothing => player,
            _ => player / 2,
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

    /// The state text seat `player` reads: the question, the earlier attempts with their
    /// feedback (or verifications), and the instruction; a verification seat reads the
    /// attempt it judges and [`VERIFY_INSTRUCTION`] instead of the instruction.
    fn state_text(&self, problem: &Problem, player: Player) -> String {
        let k = self.attempt_of(player);
        let shown = if self.is_attempt(player) { k } else { k + 1 };
        let mut text = problem.question.clone();
        for (i, (answer, verdict)) in self.answers.iter().take(shown).enumerate() {
            text.push_str(&format!("\nAttempt {}: {}", i + 1, answer.trim()));
            let line = match self.checks.get(i) {
                Some((check, _)) if i < k && self.between == Between::Critique => {
                    format!("Critique {} (the asker's view): {}", i + 1, check.trim())
                }
                Some((check, _)) if i < k => {
                    format!("Verification {}: {}", i + 1, check.trim())
                }
                _ => self.feedback.line(problem, verdict),
            };
            if !line.is_empty() {
                text.push('\n');
                text.push_str(&line);
            }
        }
        let instruction = match (self.is_attempt(player), self.between) {
            (true, _) if k > 0 => self.instruction.as_str(),
            (true, _) => "",
            (false, Between::Critique) => CRITIQUE_INSTRUCTION,
            (false, _) => VERIFY_INSTRUCTION,
        };
        if !instruction.is_empty() {
            text.push('\n');
            text.push_str(instruction);
        }
        text
    }

    /// Whether the model's own verification accepted an attempt (the episode is over).
    fn accepted(&self) -> bool {
        self.between == Between::Verify && self.checks.last().is_some_and(|(_, c)| *c == Some(true))
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
        self.max_messages()
    }

    fn role(&self, player: Player) -> Role {
        let kind = match (self.is_attempt(player), self.between) {
            (true, _) => "attempt",
            (false, Between::Critique) => "critique",
            (false, _) => "verify",
        };
        let k = self.attempt_of(player) + 1;
        Role::new(self.base.clone(), player, format!("{kind}{k}"))
    }

    fn reset(&mut self, seed: u64) {
        self.problem = Some(self.task.problem(self.split, seed, self.seed));
        self.answers.clear();
        self.checks.clear();
        self.transcript = Transcript {
            env: self.task.name(),
            seed,
            invalid_moves: vec![0; self.max_messages()],
            ..Transcript::default()
        };
    }

    fn current_player(&self) -> Option<Player> {
        let made = self.answers.len() + self.checks.len();
        (self.problem.is_some() && made < self.max_messages() && !self.accepted()).then_some(made)
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
                .map(|p| {
                    let made = self.answers.len() + self.checks.len();
                    self.state_text(p, player.min(made))
                })
                .unwrap_or_default(),
            legal_actions: None,
            answer_format: match (self.is_attempt(player), self.between) {
                (true, _) => self.task.answer_format(),
                (false, Between::Critique) => CRITIQUE_FORMAT.to_string(),
                (false, _) => VERIFY_FORMAT.to_string(),
            },
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
        } else if self.is_attempt(player) {
            let verdict = self.task.verify(&problem, completion);
            let outcome = super::env::verdict_outcome(self.task.as_ref(), completion, &verdict);
            if matches!(verdict, Verdict::Unparsable { .. }) {
                self.transcript.invalid_moves[player] += 1;
            }
            self.answers.push((completion.to_string(), verdict));
            outcome
        } else if self.between == Between::Critique {
            self.checks.push((completion.to_string(), None));
            if completion.trim().is_empty() {
                self.transcript.invalid_moves[player] += 1;
                StepOutcome::Invalid {
                    reason: "the critique is empty".into(),
                    retry: false,
                }
            } else {
                StepOutcome::Move {
                    action_text: "critique".into(),
                    action: None,
                }
            }
        } else {
            let check = parse_verification(completion);
            self.checks.push((completion.to_string(), check));
            match check {
                Some(yes) => StepOutcome::Move {
                    action_text: if yes { "yes" } else { "no" }.to_string(),
                    action: None,
                },
                None => {
                    self.transcript.invalid_moves[player] += 1;
                    StepOutcome::Invalid {
                        reason: "the verification says neither yes nor no".into(),
                        retry: false,
                    }
                }
            }
        };
        let done = self.current_player().is_none();
        if done {
            self.transcript.returns = Some(self.returns());
        }
        record_turn(
            &mut self.transcript,
            &observation,
            player,
            completion,
            outcome,
            done,
        )
    }

    fn returns(&self) -> Vec<f64> {
        (0..self.max_messages())
            .map(|seat| {
                let k = self.attempt_of(seat);
                let Some((_, verdict)) = self.answers.get(k) else {
                    return 0.0;
                };
                if self.is_attempt(seat) {
                    return verdict.reward();
                }
                if self.between == Between::Critique {
                    // A critique is worth the refinement it leads to.
                    return self.answers.get(k + 1).map_or(0.0, |(_, v)| v.reward());
                }
                // SPOC's verifier reward: 1[verdict == the attempt's correctness].
                let said = self.checks.get(k).and_then(|(_, c)| *c);
                f64::from(u8::from(said == Some(verdict.is_correct())))
            })
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
    /// Per round `k` (attempt `k + 1` to `k + 2`), the fraction of episodes that went from
    /// wrong to right (Rahmani et al. 2025's per-round flips, i->c).
    #[serde(default)]
    pub round_i_to_c: Vec<f64>,
    /// Per round, the fraction that went from right to wrong (c->i).
    #[serde(default)]
    pub round_c_to_i: Vec<f64>,
}

impl AttemptStats {
    /// The metrics of `episodes`, each the attempts' (correct, completion) in order. Episodes
    /// may stop early (a self-verifying episode ends when its verifier accepts): an episode's
    /// answer at a later attempt is its last one, so `accuracy[k]` is the accuracy of the
    /// answers standing after `k + 1` attempts and Acc@t2 is the final answers' (with equal
    /// lengths, simply attempt `k + 1`'s accuracy). An episode without attempts counts as wrong.
    pub fn of(episodes: &[Vec<(bool, &str)>]) -> AttemptStats {
        let n = episodes.len();
        let attempts = episodes.iter().map(Vec::len).max().unwrap_or(0);
        if attempts == 0 {
            return AttemptStats {
                episodes: n,
                ..AttemptStats::default()
            };
        }
        fn at<'a>(e: &Episode<'a>, k: usize) -> (bool, &'a str) {
            e.get(k.min(e.len().saturating_sub(1)))
                .map_or((false, ""), |(c, t)| (*c, t.trim()))
        }
        let share = |f: &dyn Fn(&Episode) -> bool| {
            episodes.iter().filter(|e| f(e)).count() as f64 / n as f64
        };
        let accuracy: Vec<f64> = (0..attempts).map(|k| share(&|e| at(e, k).0)).collect();
        let last = attempts - 1;
        AttemptStats {
            episodes: n,
            accuracy_t1: accuracy[0],
            accuracy_t2: accuracy[last],
            delta: accuracy[last] - accuracy[0],
            delta_i_to_c: share(&|e| !at(e, 0).0 && at(e, last).0),
            delta_c_to_i: share(&|e| at(e, 0).0 && !at(e, last).0),
            identical_rate: share(&|e| at(e, 0).1 == at(e, last).1),
            round_i_to_c: (1..attempts)
                .map(|k| share(&|e| !at(e, k - 1).0 && at(e, k).0))
                .collect(),
            round_c_to_i: (1..attempts)
                .map(|k| share(&|e| at(e, k - 1).0 && !at(e, k).0))
                .collect(),
            accuracy,
        }
    }
}

/// SPOC's verifier metrics (Zhao et al. 2025, sec. 5) over self-verifying episodes: how often
/// the model's verdict on its own attempt matches the attempt's correctness, and how it errs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifyStats {
    /// Verification messages counted.
    pub checks: usize,
    /// Mean attempts per episode (SPOC's rounds: fewer when the verifier accepts early).
    pub mean_attempts: f64,
    /// Fraction of verifications whose verdict matches the attempt's correctness (one that
    /// says neither yes nor no counts as wrong).
    pub accuracy: f64,
    /// Among verifications of wrong attempts, the fraction that said "yes".
    pub false_yes_rate: f64,
    /// Among verifications of correct attempts, the fraction that said "no".
    pub false_no_rate: f64,
    /// Among "no" verdicts, the fraction whose attempt was wrong (precision of "wrong").
    pub precision_wrong: f64,
    /// Among wrong attempts, the fraction the verifier called wrong (recall of "wrong").
    pub recall_wrong: f64,
    /// Fraction of verifications that said neither yes nor no.
    pub unparsable_rate: f64,
}

/// A judged attempt: (the attempt was correct, what its verification said).
type Judged = (bool, Option<bool>);

impl VerifyStats {
    /// The metrics of `episodes`, each its judged attempts in order as (the attempt was
    /// correct, what the verification said). A rate whose denominator is empty is 0.
    pub fn of(episodes: &[Vec<(bool, Option<bool>)>]) -> VerifyStats {
        let all: Vec<Judged> = episodes.iter().flatten().copied().collect();
        let count = |f: &dyn Fn(&Judged) -> bool| all.iter().filter(|x| f(x)).count();
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let wrong = count(&|x| !x.0);
        let right = count(&|x| x.0);
        let said_no = count(&|x| x.1 == Some(false));
        VerifyStats {
            checks: all.len(),
            mean_attempts: ratio(all.len(), episodes.len()),
            accuracy: ratio(count(&|x| x.1 == Some(x.0)), all.len()),
            false_yes_rate: ratio(count(&|x| !x.0 && x.1 == Some(true)), wrong),
            false_no_rate: ratio(count(&|x| x.0 && x.1 == Some(false)), right),
            precision_wrong: ratio(count(&|x| !x.0 && x.1 == Some(false)), said_no),
            recall_wrong: ratio(count(&|x| !x.0 && x.1 == Some(false)), wrong),
            unparsable_rate: ratio(count(&|x| x.1.is_none()), all.len()),
        }
    }
}

impl AttemptsEnv {
    /// Each verified attempt of the episode so far as (correct, what its verification said).
    pub fn judged(&self) -> Vec<(bool, Option<bool>)> {
        self.answers
            .iter()
            .zip(&self.checks)
            .map(|((_, v), (_, c))| (v.is_correct(), *c))
            .collect()
    }
}

#[cfg(test)]
mod tests;
