//! Problems the model writes: the proposer's side of proposer/solver self-play (Dr. Zero,
//! `docs/curriculum.md`).
//!
//! [`ProposerEnv`] asks for an arithmetic problem with a given number of operations (its *hop*
//! count, Dr. Zero's "hops"); the proposer answers with the expression alone (`3+4*2`), and
//! spar computes its value, so every accepted problem is solvable by construction.
//! [`parse_proposal`] is the whole rule: digits and the allowed operators only (spaces and a
//! final `=` ignored), 2 to 6 operands, each with at most `max_digits` digits and no leading
//! zero, a value that fits `i64`; anything else is an invalid move with its reason. The
//! accepted problem is written as the arithmetic task writes its own (`3+4*2=`), and
//! [`PosedTask`] serves a list of such problems to [`TaskEnv`], with the arithmetic task's
//! rules and verifier, for the solver.

use std::sync::Arc;

use spar_core::{Env, Observation, Player, Role, Step, StepOutcome, Transcript};

use super::env::play_turn;
use super::{Problem, Split, Task, Verdict};

/// The environment's name, the first half of its role key (`propose/proposer`).
pub const NAME: &str = "propose";

/// Most operands of a proposal (the arithmetic task's own limit).
pub const MAX_TERMS: usize = 6;

/// What a proposal may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalRules {
    /// Most digits of an operand.
    pub max_digits: u32,
    /// The operators allowed, from `+ - *`.
    pub ops: Vec<char>,
}

/// A proposal read: the problem it poses and its hop count (operators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The expression, canonical (no spaces, no `=`).
    pub expression: String,
    /// Its operators: the problem's hop count.
    pub hops: u32,
    /// Its value.
    pub value: i64,
}

impl Proposal {
    /// The problem it poses, as the arithmetic task writes its problems (`3+4*2=`), with
    /// difficulty = hops.
    pub fn problem(&self, id: String) -> Problem {
        Problem {
            id,
            question: format!("{}=", self.expression),
            answer: self.value.to_string(),
            difficulty: self.hops,
            solution: self.value.to_string(),
        }
    }
}

/// Reads a proposal: the rules are in the module's header. The error is the invalid move's
/// reason.
pub fn parse_proposal(text: &str, rules: &ProposalRules) -> Result<Proposal, String> {
    let compact: String = text.chars().filter(|c| *c != ' ').collect();
    let body = compact.trim().strip_suffix('=').unwrap_or(compact.trim());
    if body.is_empty() {
        return Err("no expression".into());
    }
    let (mut operands, mut ops) = (Vec::new(), Vec::new());
    let mut current = String::new();
    for c in body.chars() {
        if c.is_ascii_digit() {
            current.push(c);
        } else if "+-*".contains(c) {
            if !rules.ops.contains(&c) {
                return Err(format!(
                    "operator {c} is not allowed (allowed: {})",
                    ops_text(rules)
                ));
            }
            operands.push(std::mem::take(&mut current));
            ops.push(c);
        } else {
            let start: String = text.chars().take(20).collect();
            return Err(format!("{c:?} is not a digit or operator in {start:?}"));
        }
    }
    operands.push(current);
    if operands.len() < 2 || operands.len() > MAX_TERMS {
        return Err(format!(
            "{} operands; a problem has 2 to {MAX_TERMS}",
            operands.len()
        ));
    }
    let mut values = Vec::with_capacity(operands.len());
    for operand in &operands {
        if operand.is_empty() {
            return Err("an operator without a number beside it".into());
        }
        if operand.len() > rules.max_digits as usize {
            return Err(format!(
                "{operand} has more than {} digits",
                rules.max_digits
            ));
        }
        if operand.len() > 1 && operand.starts_with('0') {
            return Err(format!("{operand} has a leading zero"));
        }
        values.push(operand.parse::<i128>().expect("digits only"));
    }
    let value = super::arithmetic::evaluate(&values, &ops)
        .ok_or_else(|| "the value does not fit a 64-bit integer".to_string())?;
    let mut expression = operands[0].clone();
    for (op, operand) in ops.iter().zip(&operands[1..]) {
        expression.push(*op);
        expression.push_str(operand);
    }
    Ok(Proposal {
        expression,
        hops: ops.len() as u32,
        value,
    })
}

fn ops_text(rules: &ProposalRules) -> String {
    rules
        .ops
        .iter()
        .map(char::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The proposer's episode: one seat (role `propose/proposer`), one turn: read how many
/// operations to use, write an expression. A proposal [`parse_proposal`] accepts is a move
/// (its action text the canonical expression); any other text is an invalid move without
/// retry. The environment gives no reward: the loop rewards a proposal by how the solver
/// does on it, so `returns()` is 0 until [`ProposerEnv::set_return`]. `step` never panics.
#[derive(Debug, Clone)]
pub struct ProposerEnv {
    rules: ProposalRules,
    /// Operations asked for.
    hops: u32,
    started: bool,
    proposal: Option<Result<Proposal, String>>,
    transcript: Transcript,
}

impl ProposerEnv {
    /// An environment asking for problems of `hops` operations under `rules`.
    pub fn new(rules: ProposalRules, hops: u32) -> ProposerEnv {
        ProposerEnv {
            rules,
            hops,
            started: false,
            proposal: None,
            transcript: Transcript {
                env: NAME.to_string(),
                ..Transcript::default()
            },
        }
    }

    /// The operations asked for.
    pub fn hops(&self) -> u32 {
        self.hops
    }

    /// The proposal read (`Err`: the invalid move's reason), once answered.
    pub fn proposal(&self) -> Option<&Result<Proposal, String>> {
        self.proposal.as_ref()
    }

    /// Records the proposer's reward, which the solver's answers decide.
    pub fn set_return(&mut self, reward: f64) {
        self.transcript.returns = Some(vec![reward]);
    }
}

impl Env for ProposerEnv {
    fn name(&self) -> String {
        NAME.to_string()
    }

    fn num_players(&self) -> usize {
        1
    }

    fn role(&self, player: Player) -> Role {
        Role::new(NAME, player, "proposer")
    }

    fn reset(&mut self, seed: u64) {
        self.started = true;
        self.proposal = None;
        self.transcript = Transcript {
            env: NAME.to_string(),
            seed,
            invalid_moves: vec![0],
            returns: Some(vec![0.0]),
            ..Transcript::default()
        };
    }

    fn current_player(&self) -> Option<Player> {
        (self.started && self.proposal.is_none()).then_some(0)
    }

    fn observation(&self, player: Player) -> Observation {
        Observation {
            role: self.role(player),
            system: format!(
                "Write an arithmetic problem: whole numbers of at most {} digits joined by {}.",
                self.rules.max_digits,
                ops_text(&self.rules)
            ),
            role_text: String::new(),
            state_text: format!("Operations: {}", self.hops),
            legal_actions: None,
            answer_format: "Answer with the expression only.".into(),
        }
    }

    fn step(&mut self, player: Player, completion: &str) -> Step {
        if !self.started {
            return super::env::refused(player, "no request: call reset first");
        }
        if self.proposal.is_some() {
            return super::env::refused(player, "the episode is over");
        }
        let observation = self.observation(player);
        let rules = self.rules.clone();
        play_turn(
            &mut self.transcript,
            &observation,
            player,
            completion,
            || {
                let proposal = parse_proposal(completion, &rules);
                let outcome = match &proposal {
                    Ok(p) => StepOutcome::Move {
                        action_text: p.expression.clone(),
                        action: None,
                    },
                    Err(reason) => StepOutcome::Invalid {
                        reason: reason.clone(),
                        retry: false,
                    },
                };
                self.proposal = Some(proposal);
                outcome
            },
        )
    }

    fn returns(&self) -> Vec<f64> {
        self.transcript.returns.clone().unwrap_or_else(|| vec![0.0])
    }

    fn transcript(&self) -> &Transcript {
        &self.transcript
    }
}

/// A fixed list of problems (proposals) posed with another task's rules, answer format and
/// verifier: problem `index` of any split is `problems[index % len]`.
#[derive(Debug, Clone)]
pub struct PosedTask {
    rules: Arc<dyn Task>,
    problems: Vec<Problem>,
}

impl PosedTask {
    /// `problems` under `rules`' system prompt, answer format and verifier.
    pub fn new(rules: Arc<dyn Task>, problems: Vec<Problem>) -> PosedTask {
        PosedTask { rules, problems }
    }
}

impl Task for PosedTask {
    fn name(&self) -> String {
        self.rules.name()
    }

    fn system(&self) -> String {
        self.rules.system()
    }

    fn answer_format(&self) -> String {
        self.rules.answer_format()
    }

    fn problem(&self, _split: Split, index: u64, _seed: u64) -> Problem {
        self.problems[index as usize % self.problems.len().max(1)].clone()
    }

    fn split_size(&self, _split: Split) -> Option<usize> {
        Some(self.problems.len())
    }

    fn verify(&self, problem: &Problem, completion: &str) -> Verdict {
        self.rules.verify(problem, completion)
    }

    fn extract_answer(&self, completion: &str) -> Option<String> {
        self.rules.extract_answer(completion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ProposalRules {
        ProposalRules {
            max_digits: 2,
            ops: vec!['+', '-', '*'],
        }
    }

    #[test]
    fn proposals_are_read_by_hand_computed_rules() {
        let p = parse_proposal(" 3 + 4*2 =", &rules()).unwrap();
        assert_eq!((p.expression.as_str(), p.hops, p.value), ("3+4*2", 2, 11));
        let p = parse_proposal("12-30*2-1", &rules()).unwrap();
        assert_eq!((p.hops, p.value), (3, 12 - 60 - 1));
        assert_eq!(p.problem("x".into()).question, "12-30*2-1=");
        assert_eq!(p.problem("x".into()).difficulty, 3);
        for (text, reason) in [
            ("", "no expression"),
            ("7", "1 operands"),
            ("1+2+3+4+5+6+7", "7 operands"),
            ("123+4", "more than 2 digits"),
            ("05+4", "leading zero"),
            ("3++4", "without a number"),
            ("3+x", "'x'"),
            ("3/4", "'/'"),
            ("3+4 is 7", "'i'"),
        ] {
            let e = parse_proposal(text, &rules()).unwrap_err();
            assert!(e.contains(reason), "{text:?}: {e}");
        }
        let only_plus = ProposalRules {
            max_digits: 1,
            ops: vec!['+'],
        };
        assert!(parse_proposal("3*4", &only_plus)
            .unwrap_err()
            .contains("not allowed"));
    }

    #[test]
    fn the_proposer_env_keeps_the_env_contract() {
        let mut env = ProposerEnv::new(rules(), 2);
        assert_eq!(env.current_player(), None);
        assert!(matches!(
            env.step(0, "1+2").outcome,
            StepOutcome::Invalid { .. }
        ));
        env.reset(5);
        assert_eq!(env.observation(0).state_text, "Operations: 2");
        assert_eq!(env.role(0).key(), "propose/proposer");
        let step = env.step(0, "9*9*9");
        assert!(step.done);
        assert!(
            matches!(step.outcome, StepOutcome::Move { ref action_text, .. } if action_text == "9*9*9")
        );
        assert_eq!(env.current_player(), None);
        assert_eq!(env.returns(), vec![0.0]);
        env.set_return(0.75);
        assert_eq!(env.returns(), vec![0.75]);
        env.reset(6);
        let step = env.step(0, "ñññ".repeat(100).as_str());
        assert!(matches!(
            step.outcome,
            StepOutcome::Invalid { retry: false, .. }
        ));
        assert_eq!(env.transcript().invalid_moves, vec![1]);
    }

    #[test]
    fn a_posed_task_serves_its_problems_with_the_rules_verifier() {
        let rules_task: Arc<dyn Task> =
            Arc::from(super::super::task_from_spec("arithmetic").unwrap());
        let problems = vec![parse_proposal("3+4*2", &rules())
            .unwrap()
            .problem("p0".into())];
        let posed = PosedTask::new(rules_task.clone(), problems);
        let mut env = super::super::TaskEnv::new(Arc::new(posed), Split::Train, 0);
        env.reset(0);
        assert_eq!(env.observation(0).state_text, "3+4*2=");
        assert_eq!(env.observation(0).system, rules_task.system());
        env.step(0, "11");
        assert_eq!(env.returns(), vec![1.0]);
    }
}
