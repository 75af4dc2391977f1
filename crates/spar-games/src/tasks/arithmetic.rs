//! Arithmetic: the value of a short integer expression.
//!
//! # Problems
//! `terms` operands joined by operators drawn uniformly from `ops`, written plainly and
//! ending in `=`: `37+5*2=`. Every operand of a problem has the same number of digits, the
//! problem's difficulty; one digit includes 0 (`0..=9`), `d` digits are `10^(d-1)..10^d-1`.
//! Standard precedence (`*` before `+` and `-`, then left to right); the answer is the
//! exact integer value (possibly negative), computed with checked 128-bit arithmetic and
//! redrawn in the rare case it leaves `i64`.
//!
//! # Parameters
//! | name | default | meaning |
//! |---|---|---|
//! | `digits` | `1..2` | digits per operand, an inclusive range (1..6); the difficulty |
//! | `terms` | `2` | operands per expression, a number or range (2..6) |
//! | `ops` | `+-` | the operators to draw from, any of `+ - *` |
//!
//! # Answers
//! A number (see [`super::extract_number`]); the solution is the bare value.

use rand::Rng as _;

use super::{
    check_levels, extract_number, format_range, generate, verify_number, Candidate, Generator,
    Params, Problem, Split, Task, Verdict,
};

/// The arithmetic task (built by [`super::task_from_spec`]).
#[derive(Debug, Clone)]
pub struct Arithmetic {
    digits: (u32, u32),
    terms: (u32, u32),
    /// The operators, in the canonical order `+ - *`.
    ops: Vec<char>,
}

impl Arithmetic {
    pub(crate) fn from_params(params: &Params<'_>) -> Result<Self, String> {
        params.check_known(&["digits", "terms", "ops"])?;
        let digits = params.range("digits", (1, 2), 1, 6)?;
        let terms = params.range("terms", (2, 2), 2, 6)?;
        let ops_text = params.text("ops").unwrap_or("+-");
        if ops_text.chars().any(|c| !"+-*".contains(c)) {
            return Err(params.bad("ops", "expected operators from `+-*`, e.g. ops=+-*"));
        }
        let ops: Vec<char> = "+-*".chars().filter(|c| ops_text.contains(*c)).collect();
        let task = Self { digits, terms, ops };
        check_levels(&task, &task.name())?;
        Ok(task)
    }
}

impl Generator for Arithmetic {
    fn base(&self) -> &'static str {
        "arithmetic"
    }

    fn levels(&self) -> (u32, u32) {
        self.digits
    }

    fn candidate(&self, rng: &mut spar_core::Rng, digits: u32) -> Option<Candidate> {
        let terms = rng.gen_range(self.terms.0..=self.terms.1) as usize;
        let low = if digits == 1 {
            0
        } else {
            10i128.pow(digits - 1)
        };
        let high = 10i128.pow(digits) - 1;
        let operands: Vec<i128> = (0..terms).map(|_| rng.gen_range(low..=high)).collect();
        let ops: Vec<char> = (1..terms)
            .map(|_| self.ops[rng.gen_range(0..self.ops.len())])
            .collect();
        let value = evaluate(&operands, &ops)?;
        let mut question = operands[0].to_string();
        for (op, operand) in ops.iter().zip(&operands[1..]) {
            question.push(*op);
            question.push_str(&operand.to_string());
        }
        question.push('=');
        let answer = value.to_string();
        Some(Candidate {
            question,
            solution: answer.clone(),
            answer,
        })
    }
}

/// The value of `operands[0] ops[0] operands[1] ...` with `*` before `+`/`-`; `None` when
/// it overflows or leaves `i64`.
pub(crate) fn evaluate(operands: &[i128], ops: &[char]) -> Option<i64> {
    let mut total: i128 = 0;
    let mut sign: i128 = 1;
    let mut product = operands[0];
    for (op, &operand) in ops.iter().zip(&operands[1..]) {
        if *op == '*' {
            product = product.checked_mul(operand)?;
        } else {
            total = total.checked_add(sign.checked_mul(product)?)?;
            sign = if *op == '+' { 1 } else { -1 };
            product = operand;
        }
    }
    total = total.checked_add(sign.checked_mul(product)?)?;
    i64::try_from(total).ok()
}

impl Task for Arithmetic {
    fn name(&self) -> String {
        format!(
            "arithmetic(digits={},terms={},ops={})",
            format_range(self.digits),
            format_range(self.terms),
            self.ops.iter().collect::<String>()
        )
    }

    fn system(&self) -> String {
        "Compute the value of the expression. * comes before + and -.".to_string()
    }

    fn answer_format(&self) -> String {
        "Answer with the number only.".to_string()
    }

    fn problem(&self, split: Split, index: u64, seed: u64) -> Problem {
        generate(self, split, index, seed)
    }

    fn split_size(&self, _split: Split) -> Option<usize> {
        None
    }

    fn verify(&self, problem: &Problem, completion: &str) -> Verdict {
        verify_number(&problem.answer, completion)
    }

    fn extract_answer(&self, completion: &str) -> Option<String> {
        extract_number(completion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::task_from_spec;
    use crate::tasks::tests_support::{check_generated_task, parse_and_evaluate};

    fn problem(question: &str, answer: &str) -> Problem {
        Problem {
            id: "hand".into(),
            question: question.into(),
            answer: answer.into(),
            difficulty: 2,
            solution: answer.into(),
        }
    }

    #[test]
    fn evaluation_uses_standard_precedence() {
        assert_eq!(evaluate(&[12, 3, 4], &['+', '*']), Some(24));
        assert_eq!(evaluate(&[37, 5, 2], &['+', '*']), Some(47));
        assert_eq!(evaluate(&[2, 3, 4, 5], &['*', '-', '*']), Some(-14));
        assert_eq!(evaluate(&[3, 10], &['-']), Some(-7));
        assert_eq!(evaluate(&[9, 8, 7], &['-', '-']), Some(-6));
        assert_eq!(evaluate(&[999_999; 6], &['*'; 5]), None, "beyond i64");
    }

    #[test]
    fn verifier_on_hand_written_completions() {
        let task = task_from_spec("arithmetic").unwrap();
        let p = problem("12+3*4=", "24");
        assert_eq!(task.verify(&p, "24"), Verdict::Correct);
        assert_eq!(task.verify(&p, "Answer: 24"), Verdict::Correct);
        assert_eq!(task.verify(&p, " 24 "), Verdict::Correct);
        assert_eq!(task.verify(&p, "12+3*4=24"), Verdict::Correct);
        assert_eq!(
            task.verify(&p, "3*4=12, 12+12=24. Answer: 24."),
            Verdict::Correct
        );
        assert_eq!(
            task.verify(&p, "25"),
            Verdict::Wrong {
                got: "25".into(),
                reason: "25 != 24".into()
            }
        );
        assert!(matches!(task.verify(&p, "abc"), Verdict::Unparsable { .. }));
        assert!(matches!(task.verify(&p, ""), Verdict::Unparsable { .. }));
        assert_eq!(
            task.verify(&p, "24 Answer: ?"),
            Verdict::Unparsable {
                reason: "no number after `Answer:`".into()
            }
        );
        let negative = problem("3-10=", "-7");
        assert_eq!(task.verify(&negative, "-7"), Verdict::Correct);
        assert_eq!(task.verify(&negative, "Answer: -7"), Verdict::Correct);
        assert!(!task.verify(&negative, "7").is_correct());
        assert_eq!(task.extract_answer(" Answer: 007 "), Some("7".into()));
    }

    #[test]
    fn pinned_problems_are_deterministic() {
        // Golden values produced by this implementation (ChaCha8 via rand_chacha 0.3, the
        // module's SplitMix64 seeding); a change here changes every training run's data.
        let task = task_from_spec("arithmetic(digits=1..3,terms=2,ops=+-*)").unwrap();
        let pinned = [
            (Split::Train, 0, 0, ("2*8=", "16", 1)),
            (Split::Train, 1, 0, ("484+320=", "804", 3)),
            (Split::Test, 0, 0, ("150*635=", "95250", 3)),
            (Split::Train, 0, 1, ("16*25=", "400", 2)),
        ];
        for (split, index, seed, (question, answer, difficulty)) in pinned {
            let p = task.problem(split, index, seed);
            assert_eq!(
                (p.question.as_str(), p.answer.as_str(), p.difficulty),
                (question, answer, difficulty),
                "{split}/{index} seed {seed}"
            );
            assert_eq!(p.id, format!("arithmetic/{split}/{index}"));
            assert_eq!(p, task.problem(split, index, seed));
        }
    }

    #[test]
    fn answers_match_an_independent_evaluator() {
        let task = task_from_spec("arithmetic(digits=1..3,terms=2..4,ops=+-*)").unwrap();
        for split in Split::ALL {
            for index in 0..500 {
                let p = task.problem(split, index, 7);
                let expression = p.question.strip_suffix('=').unwrap();
                assert_eq!(parse_and_evaluate(expression), p.answer, "{}", p.question);
                let operand_digits: Vec<usize> =
                    expression.split(['+', '-', '*']).map(str::len).collect();
                assert!(operand_digits.iter().all(|&d| d == p.difficulty as usize));
            }
        }
    }

    #[test]
    fn generated_problems_are_deterministic_disjoint_and_cover_every_level() {
        check_generated_task("arithmetic", 2_000);
        check_generated_task("arithmetic(digits=1..3,terms=2,ops=+-*)", 2_000);
        // The smallest space: 1-digit operands, two terms, + and -: 200 questions.
        check_generated_task("arithmetic(digits=1,terms=2,ops=+-)", 2_000);
    }

    #[test]
    fn one_digit_test_split_is_exactly_the_hashed_tenth_of_the_space() {
        let task = task_from_spec("arithmetic(digits=1,terms=2,ops=+-)").unwrap();
        let mut expected: Vec<String> = Vec::new();
        for a in 0..10 {
            for b in 0..10 {
                for op in ['+', '-'] {
                    let q = format!("{a}{op}{b}=");
                    if crate::tasks::split_of(&q) == Split::Test {
                        expected.push(q);
                    }
                }
            }
        }
        expected.sort();
        let mut seen: Vec<String> = (0..3_000)
            .map(|i| task.problem(Split::Test, i, 0).question)
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(
            seen,
            expected,
            "{} of 200 questions are test",
            expected.len()
        );
    }

    #[test]
    fn parameters_are_checked() {
        assert!(task_from_spec("arithmetic(terms=1)")
            .unwrap_err()
            .contains("terms"));
        assert!(task_from_spec("arithmetic(digits=7)")
            .unwrap_err()
            .contains("digits"));
        let err = task_from_spec("arithmetic(ops=+/)").unwrap_err();
        assert!(err.contains("ops=\"+/\""), "{err}");
        assert_eq!(
            task_from_spec("arithmetic(ops=*+,terms=2..3)")
                .unwrap()
                .name(),
            "arithmetic(digits=1..2,terms=2..3,ops=+*)"
        );
    }
}
