//! What a program is for a task: the tool that executes it (Countdown's exact evaluator,
//! [`super::super::countdown::parse`]), the reference program of a problem, the answer a
//! program's output gives, the teacher's verification of an output, and the teacher's
//! deliberate slips (CoSC's small-scale seed data: a wrong program whose output the
//! verification rejects).

use rand::seq::SliceRandom as _;

use super::super::countdown::{parse, parse_question};
use super::super::{Problem, Task, Verdict};

/// The tasks a CoSC episode can program: their answers are values of `+ - * /` expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramKind {
    /// `37+5*2=`: the program is the question's expression; the answer is its output.
    Arithmetic,
    /// `Numbers: 3 7 25. Target: 46.`: the program is a candidate expression over the
    /// numbers; the answer is the program itself, right when its output is the target.
    Countdown,
}

impl ProgramKind {
    /// The kind of `task`, from its canonical name; other tasks have no program.
    pub fn of(task: &dyn Task) -> Result<ProgramKind, String> {
        let name = task.name();
        match name.split('(').next().unwrap_or("") {
            "arithmetic" => Ok(ProgramKind::Arithmetic),
            "countdown" => Ok(ProgramKind::Countdown),
            _ => Err(format!(
                "task {name} has no program for CoSC's tool to execute: use arithmetic or \
                 countdown (their answers are values of + - * / expressions)"
            )),
        }
    }

    /// The program the teacher writes when it makes no slip: the question's expression
    /// (arithmetic), or the problem's reference solution (countdown).
    pub fn reference(self, problem: &Problem) -> String {
        match self {
            ProgramKind::Arithmetic => problem.question.trim().trim_end_matches('=').to_string(),
            ProgramKind::Countdown => problem.solution.trim().to_string(),
        }
    }

    /// The final answer a conclusion drawn from `program` and its `output` gives, as it goes
    /// inside `\boxed{}`: the output's value (arithmetic) or the program (countdown).
    pub fn answer(self, program: &str, output: &str) -> String {
        match self {
            ProgramKind::Arithmetic => output.to_string(),
            ProgramKind::Countdown => program.to_string(),
        }
    }

    /// Whether concluding from `program` and its `output` answers `problem` right.
    pub fn is_right(self, task: &dyn Task, problem: &Problem, program: &str, output: &str) -> bool {
        task.verify(problem, &self.answer(program, output))
            .is_correct()
    }

    /// The teacher's verification of `program`'s `output` (CoSC's `v_i`: does the output
    /// answer the question and meet its conditions?) and whether it passes:
    /// * arithmetic: the program checked against the question's expression, `37+5*2 =
    ///   37+5*2` or `37+5*3 != 37+5*2` (the slip is in the program, so rereading the
    ///   question is the check);
    /// * countdown: the verifier's own judgement of the program, `value 46 = 46` or its
    ///   reason (`value 49 != 46`, `uses 4, which is not given`, `division by zero`).
    pub fn verification(
        self,
        task: &dyn Task,
        problem: &Problem,
        program: &str,
        output: &str,
    ) -> (String, bool) {
        match self {
            ProgramKind::Arithmetic => {
                let question = self.reference(problem);
                let same = squeeze(program) == squeeze(&question);
                let relation = if same { "=" } else { "!=" };
                (format!("{program} {relation} {question}"), same)
            }
            ProgramKind::Countdown => match task.verify(problem, program) {
                Verdict::Correct => (format!("value {output} = {}", target(problem)), true),
                Verdict::Wrong { reason, .. } | Verdict::Unparsable { reason } => (reason, false),
            },
        }
    }

    /// A deliberate slip: a program one edit from the reference (an operator changed, or,
    /// in arithmetic, an operand's last digit off by one) whose conclusion would be wrong,
    /// drawn uniformly among them; `None` when there is none.
    pub fn slip(
        self,
        task: &dyn Task,
        problem: &Problem,
        rng: &mut spar_core::Rng,
    ) -> Option<String> {
        let reference = self.reference(problem);
        let chars: Vec<char> = reference.chars().collect();
        let mut candidates: Vec<String> = Vec::new();
        for (i, c) in chars.iter().enumerate() {
            let others: Vec<char> = match c {
                '+' | '-' | '*' | '/' => "+-*/".chars().filter(|o| o != c).collect(),
                // The last digit of an operand.
                d if d.is_ascii_digit()
                    && self == ProgramKind::Arithmetic
                    && !chars.get(i + 1).is_some_and(char::is_ascii_digit) =>
                {
                    let v = d.to_digit(10).unwrap_or(0);
                    [(v + 1) % 10, (v + 9) % 10]
                        .iter()
                        .filter_map(|&x| char::from_digit(x, 10))
                        .collect()
                }
                _ => Vec::new(),
            };
            for other in others {
                let mut edited = chars.clone();
                edited[i] = other;
                let text: String = edited.into_iter().collect();
                // Arithmetic's questions have no division.
                if self == ProgramKind::Arithmetic && text.contains('/') {
                    continue;
                }
                let output = execute(&text);
                if !self.is_right(task, problem, &text, &output) && !candidates.contains(&text) {
                    candidates.push(text);
                }
            }
        }
        candidates.choose(rng).cloned()
    }
}

/// The target of a countdown question (empty when it is not one).
fn target(problem: &Problem) -> String {
    parse_question(&problem.question).map_or(String::new(), |(_, t)| t.to_string())
}

/// `text` without whitespace.
fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// CoSC's tool: executes `program`, an expression of non-negative integers, `+ - * /` and
/// parentheses, with Countdown's parser and exact rational evaluator, and returns what the
/// `[OUT]` line shows: the value (`46`, `-7`, `7/2`) or `error: <why>` (`error: division by
/// zero`, `error: unexpected 'x' at character 3`). Never panics.
pub fn execute(program: &str) -> String {
    match parse(program.trim()).and_then(|e| e.evaluate()) {
        Ok(value) => value.to_string(),
        Err(reason) => format!("error: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::{task_from_spec, Split};

    fn hand(question: &str, answer: &str, solution: &str) -> Problem {
        Problem {
            id: "hand".into(),
            question: question.into(),
            answer: answer.into(),
            difficulty: 2,
            solution: solution.into(),
        }
    }

    #[test]
    fn the_tool_evaluates_exactly_and_reports_errors() {
        assert_eq!(execute("25+3*7"), "46");
        assert_eq!(execute(" 3-10 "), "-7");
        assert_eq!(execute("7/2"), "7/2");
        assert_eq!(execute("(1+2)*(3+4)"), "21");
        assert_eq!(execute("5/(2-2)"), "error: division by zero");
        assert_eq!(execute(""), "error: the expression ends early");
        assert_eq!(
            execute("3+x"),
            "error: expected a number or '(' at character 3, found 'x'"
        );
    }

    #[test]
    fn kinds_come_from_the_task_and_other_tasks_are_refused() {
        let arithmetic = task_from_spec("arithmetic").unwrap();
        assert_eq!(
            ProgramKind::of(arithmetic.as_ref()),
            Ok(ProgramKind::Arithmetic)
        );
        let countdown = task_from_spec("countdown").unwrap();
        assert_eq!(
            ProgramKind::of(countdown.as_ref()),
            Ok(ProgramKind::Countdown)
        );
        let word = task_from_spec("wordproblem").unwrap();
        let e = ProgramKind::of(word.as_ref()).unwrap_err();
        assert!(
            e.contains("wordproblem") && e.contains("arithmetic or countdown"),
            "{e}"
        );
    }

    #[test]
    fn verifications_on_hand_written_programs() {
        let task = task_from_spec("countdown").unwrap();
        let p = hand("Numbers: 3 7 25. Target: 46.", "25+3*7", "25+3*7");
        let k = ProgramKind::Countdown;
        assert_eq!(k.reference(&p), "25+3*7");
        assert_eq!(
            k.verification(task.as_ref(), &p, "25+3*7", "46"),
            ("value 46 = 46".to_string(), true)
        );
        assert_eq!(
            k.verification(task.as_ref(), &p, "25+3*8", "49"),
            ("uses 8, which is not given".to_string(), false)
        );
        assert_eq!(
            k.verification(task.as_ref(), &p, "25+3+7", "35"),
            ("value 35 != 46".to_string(), false)
        );
        assert!(k.is_right(task.as_ref(), &p, "3*7+25", "46"));
        assert_eq!(k.answer("3*7+25", "46"), "3*7+25");
        let task = task_from_spec("arithmetic").unwrap();
        let p = hand("37+5*2=", "47", "47");
        let k = ProgramKind::Arithmetic;
        assert_eq!(k.reference(&p), "37+5*2");
        assert_eq!(
            k.verification(task.as_ref(), &p, "37 + 5*2", "47"),
            ("37 + 5*2 = 37+5*2".to_string(), true)
        );
        assert_eq!(
            k.verification(task.as_ref(), &p, "37+5*3", "52"),
            ("37+5*3 != 37+5*2".to_string(), false)
        );
        assert!(k.is_right(task.as_ref(), &p, "37+5*2", "47"));
        assert!(!k.is_right(task.as_ref(), &p, "37+5*3", "52"));
    }

    #[test]
    fn slips_are_one_edit_away_and_always_wrong() {
        let mut rng = spar_core::seeded_rng(3);
        for spec in ["arithmetic(digits=1..3,ops=+-*)", "countdown(numbers=2..4)"] {
            let task = task_from_spec(spec).unwrap();
            let kind = ProgramKind::of(task.as_ref()).unwrap();
            let mut slipped = 0;
            for i in 0..200 {
                let p = task.problem(Split::Train, i, 0);
                let reference = kind.reference(&p);
                assert!(kind.is_right(task.as_ref(), &p, &reference, &execute(&reference)));
                let Some(slip) = kind.slip(task.as_ref(), &p, &mut rng) else {
                    continue;
                };
                slipped += 1;
                assert_eq!(slip.len(), reference.len(), "{spec}: {reference} -> {slip}");
                let edits = slip
                    .chars()
                    .zip(reference.chars())
                    .filter(|(a, b)| a != b)
                    .count();
                assert_eq!(edits, 1, "{spec}: {reference} -> {slip}");
                let output = execute(&slip);
                assert!(!kind.is_right(task.as_ref(), &p, &slip, &output), "{slip}");
                let (_, pass) = kind.verification(task.as_ref(), &p, &slip, &output);
                assert!(!pass, "{spec}: the teacher's check passes the slip {slip}");
            }
            // Every problem has an operator or a digit to change.
            assert!(slipped >= 190, "{spec}: {slipped} of 200");
        }
    }
}
