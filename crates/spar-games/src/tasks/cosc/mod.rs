//! [`CoscEnv`]: a task solved in self-correction stages, the environment of CoSC (Gao et al.
//! 2024, "Embedding Self-Correction as an Inherent Ability in Large Language Models for
//! Enhanced Mathematical Reasoning", arXiv 2410.10735, sec. 3, the Chain of Self-Correction).
//!
//! One response holds stages `[PROG] p1 [OUT] o1 [VERIFY] v1 [CONCLUDE] c1 [PROG] p2 ...
//! [CONCLUDE] \boxed{a}`: the model writes a program, the tool executes it and inserts its
//! output, the model verifies the output and concludes, either continuing with the next
//! stage's program or answering. Here the tool is Countdown's exact expression evaluator
//! ([`execute`]) and the tasks are those whose answers are values of expressions
//! ([`ProgramKind`]: arithmetic and countdown). [`teacher_turns`] writes the seed
//! trajectories of the paper's first phase from the task's reference solutions, with
//! deliberate slips that the verification catches and the next stage corrects.

use std::sync::Arc;

use rand::Rng as _;
use serde::{Deserialize, Serialize};
use spar_core::{Env, Observation, Player, Role, Step, StepOutcome, Transcript};

use super::env::record_turn;
use super::{last_boxed, Problem, Split, Task, Verdict};

mod program;
mod stats;

pub use program::{execute, ProgramKind};
pub use stats::{CoscEpisode, CoscStats, LevelStats};

/// The program marker: the rest of its line is the stage's program.
pub const PROG: &str = "[PROG]";
/// The tool's output marker, written by the environment, never by the model.
pub const OUT: &str = "[OUT]";
/// The verification marker.
pub const VERIFY: &str = "[VERIFY]";
/// The conclusion marker: `continue` and the next `[PROG]`, or `\boxed{answer}`.
pub const CONCLUDE: &str = "[CONCLUDE]";
/// The conclusion that goes on to the next stage.
pub const CONTINUE: &str = "continue";

/// The format, appended to the task's rules (short: tiny byte-level models read it).
pub const RULES: &str = "Stages: [PROG] [OUT] [VERIFY] [CONCLUDE].";

/// How an episode ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum CoscEnd {
    /// A conclusion answered; the verifier's verdict on the boxed answer.
    Answered {
        /// The verdict.
        verdict: Verdict,
    },
    /// A turn broke the format (an invalid move): no answer.
    Invalid {
        /// Why.
        reason: String,
    },
}

/// One stage: the program, the tool's output, and whether concluding from it would be right.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// The program as written after `[PROG]`.
    pub program: String,
    /// What `[OUT]` showed.
    pub output: String,
    /// Whether the answer this program gives is right ([`ProgramKind::is_right`]).
    pub right: bool,
}

/// A [`Task`] solved in at most `stages` self-correction stages by one model, one turn per
/// model message:
///
/// * seat 0 (role `<task>/turn1`) writes `[PROG] p1`; the environment executes `p1` and shows
///   `[OUT] o1`;
/// * seat `k >= 1` (role `turn{k+1}`) writes `[VERIFY] v_k` and `[CONCLUDE] c_k`: `continue`
///   followed by `[PROG] p_{k+1}` (executed, `[OUT]` shown, the next seat acts), or
///   `\boxed{a}`, which ends the episode with the verifier's verdict on `a`;
/// * every seat reads the task's rules with [`RULES`], then the question and the trajectory
///   so far (each earlier message up to its program's line, each `[OUT]` line), so a
///   completion continues the one response; the tool's outputs are in the prompts, never in
///   a completion, so a loss on completions never learns to predict them;
/// * an invalid move ends the episode without an answer (reward 0): no `[PROG]` line in the
///   first message; a later message without `[VERIFY]` before `[CONCLUDE]`, without
///   `[CONCLUDE]`, or whose conclusion neither boxes an answer nor continues with `[PROG]`;
///   a `[PROG]` after the `stages`-th program (the stage limit). A program the tool cannot
///   execute is not invalid: its `[OUT]` is the evaluator's error;
/// * every seat's return is the episode's reward (1 when the final answer is right), so each
///   message of a right episode is rewarded 1 (what rejection sampling keeps); seats never
///   reached return 0 as well;
/// * `reset(index)` draws problem `index` of the split (task seed `seed`); `step` never
///   panics, and a step out of turn is an invalid move with `retry: true`.
#[derive(Debug, Clone)]
pub struct CoscEnv {
    task: Arc<dyn Task>,
    kind: ProgramKind,
    split: Split,
    seed: u64,
    stages: usize,
    base: String,
    problem: Option<Problem>,
    /// The trajectory shown after the question: each message up to its program's line and
    /// each `[OUT]` line.
    shown: String,
    /// The stages executed so far.
    done_stages: Vec<Stage>,
    /// Whether each executed stage was followed by `continue` (false until it is).
    continued: Vec<bool>,
    /// Model messages so far.
    turns: usize,
    end: Option<CoscEnd>,
    transcript: Transcript,
}

impl CoscEnv {
    /// Episodes of at most `stages` stages (at least 1) at problems of `task`'s `split` (task
    /// seed `seed`); an error when the task has no program ([`ProgramKind::of`]).
    pub fn new(
        task: Arc<dyn Task>,
        split: Split,
        seed: u64,
        stages: usize,
    ) -> Result<CoscEnv, String> {
        let kind = ProgramKind::of(task.as_ref())?;
        let name = task.name();
        let base = name.split('(').next().unwrap_or(&name).to_string();
        Ok(CoscEnv {
            task,
            kind,
            split,
            seed,
            stages: stages.max(1),
            base,
            problem: None,
            shown: String::new(),
            done_stages: Vec::new(),
            continued: Vec::new(),
            turns: 0,
            end: None,
            transcript: Transcript {
                env: name,
                ..Transcript::default()
            },
        })
    }

    /// The stage limit.
    pub fn stages(&self) -> usize {
        self.stages
    }

    /// The program kind.
    pub fn kind(&self) -> ProgramKind {
        self.kind
    }

    /// The task.
    pub fn task(&self) -> &Arc<dyn Task> {
        &self.task
    }

    /// The current problem (`None` before the first reset).
    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    /// The stages executed so far, in order.
    pub fn executed(&self) -> &[Stage] {
        &self.done_stages
    }

    /// How the episode ended (`None` while it runs).
    pub fn end(&self) -> Option<&CoscEnd> {
        self.end.as_ref()
    }

    /// The trajectory after the question, as the next message reads it.
    pub fn trajectory(&self) -> &str {
        &self.shown
    }

    /// The episode's summary for the metrics, once it is over.
    pub fn episode(&self) -> Option<CoscEpisode> {
        let problem = self.problem.as_ref()?;
        let end = self.end.as_ref()?;
        Some(CoscEpisode {
            difficulty: problem.difficulty,
            stages: self.done_stages.iter().map(|s| s.right).collect(),
            continued: self.continued.clone(),
            limit: self.stages,
            correct: matches!(end, CoscEnd::Answered { verdict } if verdict.is_correct()),
            invalid: matches!(end, CoscEnd::Invalid { .. }),
        })
    }

    /// Executes `program` as the next stage and shows `text` (the message up to the
    /// program's line) and the `[OUT]` line.
    fn run_stage(&mut self, problem: &Problem, text: &str, program: &str) {
        let output = execute(program);
        let right = self
            .kind
            .is_right(self.task.as_ref(), problem, program, &output);
        self.shown.push('\n');
        self.shown.push_str(text);
        self.shown.push_str(&format!("\n{OUT} {output}"));
        self.done_stages.push(Stage {
            program: program.to_string(),
            output,
            right,
        });
        self.continued.push(false);
    }

    /// What message `turn` (0-based) does with `completion`.
    fn act(&mut self, problem: &Problem, completion: &str) -> Result<StepOutcome, String> {
        if self.turns == 0 {
            let (text, program) = program_line(completion)
                .ok_or_else(|| format!("no {PROG} line: write {PROG} and an expression"))?;
            self.run_stage(problem, text, program);
            return Ok(StepOutcome::Move {
                action_text: program.to_string(),
                action: None,
            });
        }
        let at = completion
            .find(CONCLUDE)
            .ok_or_else(|| format!("no {CONCLUDE}: conclude with {CONTINUE} or \\boxed{{}}"))?;
        if !completion[..at].contains(VERIFY) {
            return Err(format!("no {VERIFY} before {CONCLUDE}"));
        }
        let conclusion = &completion[at + CONCLUDE.len()..];
        let prog_at = conclusion.find(PROG);
        let boxed_at = conclusion.find("\\boxed{");
        match (boxed_at, prog_at) {
            // A box before any further program: the answer.
            (Some(b), p) if p.is_none_or(|p| b < p) => {
                let inside = last_boxed(&conclusion[..p.unwrap_or(conclusion.len())])
                    .unwrap_or("")
                    .to_string();
                let verdict = self.task.verify(problem, &inside);
                self.end = Some(CoscEnd::Answered {
                    verdict: verdict.clone(),
                });
                Ok(StepOutcome::Move {
                    action_text: inside,
                    action: None,
                })
            }
            (_, Some(_)) => {
                if self.done_stages.len() >= self.stages {
                    return Err(format!(
                        "the stage limit ({}) is reached: conclude with \\boxed{{}}",
                        self.stages
                    ));
                }
                let (text, program) = program_line(completion).unwrap_or((completion, ""));
                if let Some(last) = self.continued.last_mut() {
                    *last = true;
                }
                self.run_stage(problem, text, program);
                Ok(StepOutcome::Move {
                    action_text: program.to_string(),
                    action: None,
                })
            }
            _ => Err(format!(
                "the conclusion neither answers with \\boxed{{}} nor continues with {PROG}"
            )),
        }
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

/// The message up to the end of its last `[PROG]` line, and that line's program (trimmed),
/// or `None` without `[PROG]`.
fn program_line(completion: &str) -> Option<(&str, &str)> {
    let at = completion.rfind(PROG)?;
    let rest = &completion[at + PROG.len()..];
    let end = rest.find('\n').unwrap_or(rest.len());
    let text = completion[..at + PROG.len() + end].trim();
    Some((text, rest[..end].trim()))
}

impl Env for CoscEnv {
    fn name(&self) -> String {
        self.transcript.env.clone()
    }

    fn num_players(&self) -> usize {
        self.stages + 1
    }

    fn role(&self, player: Player) -> Role {
        Role::new(self.base.clone(), player, format!("turn{}", player + 1))
    }

    fn reset(&mut self, seed: u64) {
        self.problem = Some(self.task.problem(self.split, seed, self.seed));
        self.shown.clear();
        self.done_stages.clear();
        self.continued.clear();
        self.turns = 0;
        self.end = None;
        self.transcript = Transcript {
            env: self.task.name(),
            seed,
            invalid_moves: vec![0; self.stages + 1],
            ..Transcript::default()
        };
    }

    fn current_player(&self) -> Option<Player> {
        (self.problem.is_some() && self.end.is_none()).then_some(self.turns)
    }

    fn observation(&self, player: Player) -> Observation {
        Observation {
            role: self.role(player),
            system: format!("{} {RULES}", self.task.system().trim_end()),
            role_text: String::new(),
            state_text: self
                .problem
                .as_ref()
                .map(|p| format!("{}{}", p.question, self.shown))
                .unwrap_or_default(),
            legal_actions: None,
            answer_format: String::new(),
        }
    }

    fn step(&mut self, player: Player, completion: &str) -> Step {
        let Some(problem) = self.problem.clone() else {
            return CoscEnv::refused(player, "no problem: call reset first", false, true);
        };
        let Some(to_move) = self.current_player() else {
            return CoscEnv::refused(player, "the episode is over", false, true);
        };
        let observation = self.observation(player);
        let outcome = if player != to_move {
            StepOutcome::Invalid {
                reason: format!("player {player} is not to move (player {to_move} is)"),
                retry: true,
            }
        } else {
            let acted = self.act(&problem, completion);
            self.turns += 1;
            match acted {
                Ok(outcome) => outcome,
                Err(reason) => {
                    self.transcript.invalid_moves[player] += 1;
                    self.end = Some(CoscEnd::Invalid {
                        reason: reason.clone(),
                    });
                    StepOutcome::Invalid {
                        reason,
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
        let reward = match &self.end {
            Some(CoscEnd::Answered { verdict }) => verdict.reward(),
            _ => 0.0,
        };
        vec![reward; self.stages + 1]
    }

    fn transcript(&self) -> &Transcript {
        &self.transcript
    }
}

/// The teacher's messages for `env`'s problem (CoSC sec. 3's seed data, made here by a
/// program instead of GPT-4): before the reference program, each stage slips with
/// probability `slip_rate` while a stage is left for the correction (so at most `stages - 1`
/// slips); a slip is a wrong program one edit away ([`ProgramKind::slip`]), whose
/// verification fails and whose conclusion is `continue`; the reference program's
/// verification passes and its conclusion boxes the answer. The messages are what the model
/// writes: seat 0's `[PROG] p1`, then `[VERIFY] v_k\n[CONCLUDE] continue\n[PROG] p_{k+1}`,
/// and last `[VERIFY] v_n\n[CONCLUDE] \boxed{a}`. With `stages = 1` (or `slip_rate = 0`) it
/// is single-stage program-of-thought data in the same format.
pub fn teacher_turns(env: &CoscEnv, slip_rate: f64, rng: &mut spar_core::Rng) -> Vec<String> {
    let Some(problem) = env.problem() else {
        return Vec::new();
    };
    let (task, kind) = (env.task.as_ref(), env.kind);
    let mut programs = Vec::new();
    while programs.len() + 1 < env.stages && rng.gen_bool(slip_rate.clamp(0.0, 1.0)) {
        match kind.slip(task, problem, rng) {
            Some(slip) => programs.push(slip),
            None => break,
        }
    }
    programs.push(kind.reference(problem));
    let mut turns = vec![format!("{PROG} {}", programs[0])];
    for (k, program) in programs.iter().enumerate() {
        let output = execute(program);
        let (check, _) = kind.verification(task, problem, program, &output);
        let conclusion = match programs.get(k + 1) {
            Some(next) => format!("{CONTINUE}\n{PROG} {next}"),
            None => format!("\\boxed{{{}}}", kind.answer(program, &output)),
        };
        turns.push(format!("{VERIFY} {check}\n{CONCLUDE} {conclusion}"));
    }
    turns
}

#[cfg(test)]
mod tests;
