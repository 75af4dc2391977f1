//! Countdown: reach a target with the given numbers (the TinyZero / Countdown task).
//!
//! # Problems
//! `numbers` numbers drawn uniformly from `1..=max` (shown sorted) and a target:
//! `Numbers: 3 7 25. Target: 46.` The target is the value of a random expression over all
//! the numbers: pairs are combined with an operator drawn uniformly among `+ - * /` that
//! keeps every intermediate value a positive integer (a `-` that would reach zero or below
//! and an inexact `/` are redrawn); the draw is rejected unless the target lies in
//! `1..=target_max` and is not itself one of the numbers. That expression, printed with
//! the fewest parentheses, is the problem's `answer` and `solution`; the difficulty is the
//! count of numbers.
//!
//! # Parameters
//! | name | default | meaning |
//! |---|---|---|
//! | `numbers` | `3..4` | how many numbers, an inclusive range (2..6); the difficulty |
//! | `max` | `25` | largest number (1..1000) |
//! | `target_max` | `100` | largest target (1..1000000) |
//!
//! # Verifier
//! 1. The expression is read from the completion: the text after the last `Answer:` if
//!    any, then the inside of the last `\boxed{...}` if any, then the last non-empty line;
//!    of that, the part before the first `=` (or after the last `=` when the part before
//!    has no digit); surrounding spaces, backticks, `$` and a final `.` are dropped.
//! 2. It is parsed by recursive descent: non-negative integers, `+ - * /` (also `×` `÷`),
//!    parentheses (at most 64 deep), spaces anywhere; no unary minus; at most 1,000
//!    characters. Anything else is [`Verdict::Unparsable`].
//! 3. It is evaluated with exact rationals (`i128` numerator and denominator): division by
//!    zero or overflow is [`Verdict::Wrong`].
//! 4. The numbers it uses must be a sub-multiset of the given ones (each number at most as
//!    often as given; not every number must be used), else `Wrong`.
//! 5. Its value must equal the target, else `Wrong` with `value 45 != 46`.
//!
//! Many different expressions are correct, which is what pass@k diversity measures.
//! `extract_answer` returns the expression with whitespace removed (`×` `÷` as `*` `/`),
//! or `None` when it does not parse.
//!
//! # References
//! TinyZero's countdown task (`Jiayi-Pan/TinyZero`, `examples/data_preprocess/countdown.py`).

use std::collections::BTreeMap;

use rand::seq::SliceRandom as _;
use rand::Rng as _;

use super::{
    after_answer_marker, check_levels, format_range, generate, last_boxed, Candidate, Generator,
    Params, Problem, Split, Task, Verdict,
};

/// The countdown task (built by [`super::task_from_spec`]).
#[derive(Debug, Clone)]
pub struct Countdown {
    numbers: (u32, u32),
    max: u32,
    target_max: u32,
}

impl Countdown {
    pub(crate) fn from_params(params: &Params<'_>) -> Result<Self, String> {
        params.check_known(&["numbers", "max", "target_max"])?;
        Self::from_params_except(params, &[])
    }

    /// [`Countdown::from_params`] for a task that also accepts the parameters `extra`
    /// (`countdown_steps`'s `turns`), which are left for it to read.
    pub(super) fn from_params_except(params: &Params<'_>, extra: &[&str]) -> Result<Self, String> {
        let mut known = vec!["numbers", "max", "target_max"];
        known.extend_from_slice(extra);
        params.check_known(&known)?;
        let task = Self {
            numbers: params.range("numbers", (3, 4), 2, 6)?,
            max: params.number("max", 25, 1, 1000)?,
            target_max: params.number("target_max", 100, 1, 1_000_000)?,
        };
        check_levels(&task, &task.name())?;
        Ok(task)
    }
}

/// An expression under construction: value, text, precedence (1: `+ -`, 2: `* /`, 3: atom).
struct Built {
    value: i64,
    text: String,
    precedence: u8,
}

impl Built {
    /// The text, parenthesised when its precedence is below `min`.
    fn wrapped(&self, min: u8) -> String {
        if self.precedence < min {
            format!("({})", self.text)
        } else {
            self.text.clone()
        }
    }
}

/// `a op b` when the result is a positive integer without overflow.
fn combine(a: &Built, op: char, b: &Built) -> Option<Built> {
    let (value, text, precedence) = match op {
        '+' => (
            a.value.checked_add(b.value)?,
            format!("{}+{}", a.text, b.text),
            1,
        ),
        '-' => (
            a.value.checked_sub(b.value)?,
            format!("{}-{}", a.text, b.wrapped(2)),
            1,
        ),
        '*' => (
            a.value.checked_mul(b.value)?,
            format!("{}*{}", a.wrapped(2), b.wrapped(2)),
            2,
        ),
        _ => {
            if b.value == 0 || a.value % b.value != 0 {
                return None;
            }
            (
                a.value / b.value,
                format!("{}/{}", a.wrapped(2), b.wrapped(3)),
                2,
            )
        }
    };
    (value >= 1).then_some(Built {
        value,
        text,
        precedence,
    })
}

impl Generator for Countdown {
    fn base(&self) -> &'static str {
        "countdown"
    }

    fn levels(&self) -> (u32, u32) {
        self.numbers
    }

    fn candidate(&self, rng: &mut spar_core::Rng, count: u32) -> Option<Candidate> {
        let mut numbers: Vec<i64> = (0..count)
            .map(|_| rng.gen_range(1..=i64::from(self.max)))
            .collect();
        let mut items: Vec<Built> = numbers
            .iter()
            .map(|&n| Built {
                value: n,
                text: n.to_string(),
                precedence: 3,
            })
            .collect();
        while items.len() > 1 {
            let first = items.swap_remove(rng.gen_range(0..items.len()));
            let second = items.swap_remove(rng.gen_range(0..items.len()));
            let mut ops = ['+', '-', '*', '/'];
            ops.shuffle(rng);
            // `+` of positives always succeeds unless it overflows, so this rarely fails.
            items.push(ops.iter().find_map(|&op| combine(&first, op, &second))?);
        }
        let built = items.pop()?;
        if built.value > i64::from(self.target_max) || numbers.contains(&built.value) {
            return None;
        }
        numbers.sort_unstable();
        let shown: Vec<String> = numbers.iter().map(i64::to_string).collect();
        Some(Candidate {
            question: format!("Numbers: {}. Target: {}.", shown.join(" "), built.value),
            answer: built.text.clone(),
            solution: built.text,
        })
    }
}

impl Task for Countdown {
    fn name(&self) -> String {
        format!(
            "countdown(numbers={},max={},target_max={})",
            format_range(self.numbers),
            self.max,
            self.target_max
        )
    }

    fn system(&self) -> String {
        "Write an expression with + - * / and parentheses that equals the target. \
         Use each given number at most once."
            .to_string()
    }

    fn answer_format(&self) -> String {
        "Answer with the expression only.".to_string()
    }

    fn problem(&self, split: Split, index: u64, seed: u64) -> Problem {
        generate(self, split, index, seed)
    }

    fn split_size(&self, _split: Split) -> Option<usize> {
        None
    }

    fn verify(&self, problem: &Problem, completion: &str) -> Verdict {
        let Some((numbers, target)) = parse_question(&problem.question) else {
            return Verdict::Unparsable {
                reason: format!("not a countdown question: {:?}", problem.question),
            };
        };
        verify_expression(&numbers, target, completion)
    }

    fn extract_answer(&self, completion: &str) -> Option<String> {
        let text = expression_text(completion)?;
        parse(&text).ok().map(|_| normalise(&text))
    }
}

/// The numbers and target of `Numbers: 3 7 25. Target: 46.`
pub(crate) fn parse_question(question: &str) -> Option<(Vec<u64>, i128)> {
    let rest = question.trim().strip_prefix("Numbers:")?;
    let (numbers, target) = rest.split_once("Target:")?;
    let numbers = numbers
        .trim()
        .trim_end_matches('.')
        .split_whitespace()
        .map(|n| n.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    let target = target.trim().trim_end_matches('.').trim().parse().ok()?;
    Some((numbers, target))
}

/// The verifier proper: `completion` against the given `numbers` and `target`.
pub(crate) fn verify_expression(numbers: &[u64], target: i128, completion: &str) -> Verdict {
    let Some(text) = expression_text(completion) else {
        return Verdict::Unparsable {
            reason: "no expression found".to_string(),
        };
    };
    let expression = match parse(&text) {
        Ok(expression) => expression,
        Err(reason) => return Verdict::Unparsable { reason },
    };
    let got = normalise(&text);
    let wrong = |reason: String| Verdict::Wrong {
        got: got.clone(),
        reason,
    };
    let value = match expression.evaluate() {
        Ok(value) => value,
        Err(reason) => return wrong(reason),
    };
    let mut available: BTreeMap<u64, usize> = BTreeMap::new();
    for &n in numbers {
        *available.entry(n).or_default() += 1;
    }
    let mut used: BTreeMap<&str, usize> = BTreeMap::new();
    expression.literals(&mut used);
    let given = |literal: &str| {
        literal
            .parse::<u64>()
            .ok()
            .and_then(|n| available.get(&n).copied())
            .unwrap_or(0)
    };
    // Numbers not given at all first: they are the more telling reason.
    if let Some(literal) = used.keys().find(|l| given(l) == 0) {
        return wrong(format!("uses {literal}, which is not given"));
    }
    if let Some((literal, count)) = used.iter().find(|(l, count)| **count > given(l)) {
        let times = given(literal);
        return wrong(format!(
            "uses {literal} {count} times, but it is given {times} time{}",
            if times == 1 { "" } else { "s" }
        ));
    }
    if value
        != (Rational {
            num: target,
            den: 1,
        })
    {
        return wrong(format!("value {value} != {target}"));
    }
    Verdict::Correct
}

/// The expression part of a completion (see the module docs, step 1).
fn expression_text(completion: &str) -> Option<String> {
    let mut text = after_answer_marker(completion).unwrap_or(completion);
    if let Some(inside) = last_boxed(text) {
        text = inside;
    }
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let expression = match line.split_once('=') {
        Some((before, _)) if before.bytes().any(|b| b.is_ascii_digit()) => before,
        Some(_) => line.rsplit('=').next().unwrap_or(""),
        None => line,
    };
    let trimmed = expression
        .trim()
        .trim_matches(|c| c == '`' || c == '$')
        .trim()
        .trim_end_matches('.')
        .trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// Whitespace removed, `×` and `÷` written `*` and `/`.
fn normalise(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '×' => '*',
            '÷' => '/',
            c => c,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Expressions: parsing and exact evaluation.

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// A literal, as written without leading zeros.
    Number(String),
    /// `left op right`.
    Binary(char, Box<Expr>, Box<Expr>),
}

impl Expr {
    /// The exact value; division by zero and overflow are errors.
    pub(crate) fn evaluate(&self) -> Result<Rational, String> {
        match self {
            Expr::Number(digits) => digits
                .parse::<i128>()
                .ok()
                .filter(|n| *n < 10i128.pow(30))
                .map(|num| Rational { num, den: 1 })
                .ok_or_else(|| format!("the number {digits} is too large")),
            Expr::Binary(op, left, right) => {
                let (a, b) = (left.evaluate()?, right.evaluate()?);
                let result = match op {
                    '+' => a.add(b),
                    '-' => b.negate().and_then(|b| a.add(b)),
                    '*' => a.mul(b),
                    _ => {
                        if b.num == 0 {
                            return Err("division by zero".to_string());
                        }
                        a.mul(
                            Rational {
                                num: b.den,
                                den: b.num,
                            }
                            .reduced()
                            .ok_or_else(overflow)?,
                        )
                    }
                };
                result.ok_or_else(overflow)
            }
        }
    }

    /// Counts the literals used.
    fn literals<'a>(&'a self, counts: &mut BTreeMap<&'a str, usize>) {
        match self {
            Expr::Number(digits) => *counts.entry(digits.as_str()).or_default() += 1,
            Expr::Binary(_, left, right) => {
                left.literals(counts);
                right.literals(counts);
            }
        }
    }
}

fn overflow() -> String {
    "the value overflows".to_string()
}

/// An exact rational `num / den`, `den > 0`, in lowest terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rational {
    num: i128,
    den: i128,
}

/// The greatest common divisor of `|a|` and `|b|` (`i128::MIN` included).
fn gcd(a: i128, b: i128) -> u128 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Rational {
    /// Lowest terms with a positive denominator; `None` on overflow.
    fn reduced(self) -> Option<Self> {
        let g = i128::try_from(gcd(self.num, self.den).max(1)).ok()?;
        let sign = if self.den < 0 { -1 } else { 1 };
        Some(Self {
            num: self.num.checked_div(g)?.checked_mul(sign)?,
            den: self.den.checked_div(g)?.checked_mul(sign)?,
        })
    }

    fn add(self, other: Self) -> Option<Self> {
        Self {
            num: self
                .num
                .checked_mul(other.den)?
                .checked_add(other.num.checked_mul(self.den)?)?,
            den: self.den.checked_mul(other.den)?,
        }
        .reduced()
    }

    fn negate(self) -> Option<Self> {
        Some(Self {
            num: self.num.checked_neg()?,
            den: self.den,
        })
    }

    fn mul(self, other: Self) -> Option<Self> {
        Self {
            num: self.num.checked_mul(other.num)?,
            den: self.den.checked_mul(other.den)?,
        }
        .reduced()
    }
}

impl std::fmt::Display for Rational {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

/// The longest expression read, in characters.
const MAX_CHARS: usize = 1_000;
/// The deepest parenthesis nesting read (the parser recurses once per level).
const MAX_DEPTH: usize = 64;

/// Parses an expression (see the module docs, step 2).
pub(crate) fn parse(text: &str) -> Result<Expr, String> {
    if text.chars().count() > MAX_CHARS {
        return Err(format!(
            "the expression is longer than {MAX_CHARS} characters"
        ));
    }
    let chars: Vec<char> = text
        .chars()
        .map(|c| match c {
            '×' => '*',
            '÷' => '/',
            c => c,
        })
        .collect();
    let mut parser = Parser { chars, at: 0 };
    let expression = parser.expression(0)?;
    match parser.peek() {
        None => Ok(expression),
        Some(c) => Err(format!("unexpected {c:?} at character {}", parser.at + 1)),
    }
}

/// Recursive descent over characters; whitespace separates tokens and is skipped.
struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    /// The next non-whitespace character (moving past the whitespace).
    fn peek(&mut self) -> Option<char> {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
        self.chars.get(self.at).copied()
    }

    /// expression := term (('+' | '-') term)*
    fn expression(&mut self, depth: usize) -> Result<Expr, String> {
        let mut left = self.term(depth)?;
        while let Some(op @ ('+' | '-')) = self.peek() {
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.term(depth)?));
        }
        Ok(left)
    }

    /// term := factor (('*' | '/') factor)*
    fn term(&mut self, depth: usize) -> Result<Expr, String> {
        let mut left = self.factor(depth)?;
        while let Some(op @ ('*' | '/')) = self.peek() {
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.factor(depth)?));
        }
        Ok(left)
    }

    /// factor := number | '(' expression ')'
    fn factor(&mut self, depth: usize) -> Result<Expr, String> {
        match self.peek() {
            Some('(') => {
                if depth >= MAX_DEPTH {
                    return Err(format!("parentheses nested deeper than {MAX_DEPTH}"));
                }
                self.at += 1;
                let inner = self.expression(depth + 1)?;
                if self.peek() != Some(')') {
                    return Err(format!("missing ')' at character {}", self.at + 1));
                }
                self.at += 1;
                Ok(inner)
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.at;
                // No `peek` here: whitespace ends a number (`25 3` is not 253).
                while self.chars.get(self.at).is_some_and(|c| c.is_ascii_digit()) {
                    self.at += 1;
                }
                let digits: String = self.chars[start..self.at].iter().collect();
                let trimmed = digits.trim_start_matches('0');
                Ok(Expr::Number(
                    if trimmed.is_empty() { "0" } else { trimmed }.to_string(),
                ))
            }
            Some(c) => Err(format!(
                "expected a number or '(' at character {}, found {c:?}",
                self.at + 1
            )),
            None => Err("the expression ends early".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::task_from_spec;
    use crate::tasks::tests_support::check_generated_task;

    fn problem() -> Problem {
        Problem {
            id: "hand".into(),
            question: "Numbers: 3 7 25. Target: 46.".into(),
            answer: "25+3*7".into(),
            difficulty: 3,
            solution: "25+3*7".into(),
        }
    }

    fn reason(verdict: Verdict) -> String {
        match verdict {
            Verdict::Wrong { reason, .. } | Verdict::Unparsable { reason } => reason,
            Verdict::Correct => "correct".to_string(),
        }
    }

    #[test]
    fn verifier_on_hand_written_completions() {
        let task = task_from_spec("countdown").unwrap();
        let p = problem();
        let verify = |text: &str| task.verify(&p, text);
        for correct in [
            "25+3*7",
            " 25 + 3 * 7 ",
            "3*7+25",
            "(3*7)+25",
            "((25))+(7*3)",
            "25+3*7=46",
            "25 + 3 × 7 = 46.",
            "Let me think.\n21+25 works.\nAnswer: 25+7*3",
            "\\boxed{25+3*7}",
            "`25+3*7`",
        ] {
            assert_eq!(verify(correct), Verdict::Correct, "{correct:?}");
        }
        assert_eq!(
            verify("(25-3)*7"),
            Verdict::Wrong {
                got: "(25-3)*7".into(),
                reason: "value 154 != 46".into()
            }
        );
        assert_eq!(reason(verify("25+25-4")), "uses 4, which is not given");
        assert_eq!(reason(verify("3/0+46")), "division by zero");
        assert_eq!(reason(verify("25*(7-3)/2")), "uses 2, which is not given");
        assert_eq!(
            reason(verify("25+25-7+3")),
            "uses 25 2 times, but it is given 1 time"
        );
        assert_eq!(reason(verify("25/3+7")), "value 46/3 != 46");
        assert_eq!(reason(verify("25-3-7")), "value 15 != 46");
        for unparsable in ["", "abc", "25+", "(25+3", "25+3)", "-3+49", "25 3", "2^5"] {
            assert!(
                matches!(verify(unparsable), Verdict::Unparsable { .. }),
                "{unparsable:?}: {:?}",
                verify(unparsable)
            );
        }
        assert_eq!(task.extract_answer(" 25 + 3*7 = 46"), Some("25+3*7".into()));
        assert_eq!(task.extract_answer("no idea"), None);
    }

    #[test]
    fn a_number_given_twice_may_be_used_twice() {
        assert!(verify_expression(&[5, 5, 2], 12, "5+5+2").is_correct());
        assert!(!verify_expression(&[5, 2], 12, "5+5+2").is_correct());
        assert!(
            verify_expression(&[5, 5, 2], 10, "5+5").is_correct(),
            "not all numbers"
        );
    }

    #[test]
    fn exact_rationals_not_floats() {
        // 8 / (3 - 8/3) = 24: needs exact fractions (the classic 24-game puzzle).
        assert!(verify_expression(&[3, 3, 8, 8], 24, "8/(3-8/3)").is_correct());
        // (1/3)*3 is exactly 1.
        assert!(verify_expression(&[1, 3, 3], 1, "1/3*3").is_correct());
        assert_eq!(
            reason(verify_expression(&[1, 3], 1, "1/3")),
            "value 1/3 != 1"
        );
    }

    #[test]
    fn hostile_completions_never_panic() {
        let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        let big = "9".repeat(40);
        let huge_product = ["99999999999999999999"; 8].join("*");
        for text in [
            deep.as_str(),
            big.as_str(),
            huge_product.as_str(),
            "((((((((((",
            "))))",
            "1/(2-2)",
            "0/0",
            "\\boxed{",
            "Answer:",
            "=",
            "==46",
            "½+☃",
            "\u{0}\u{7f}",
        ] {
            let verdict = verify_expression(&[3, 7, 25], 46, text);
            assert!(!verdict.is_correct(), "{text:?}");
        }
        assert_eq!(
            reason(verify_expression(&[3], 3, &big)),
            format!("the number {big} is too large")
        );
        let nested = format!("{}1{}", "(".repeat(65), ")".repeat(65));
        assert_eq!(
            reason(verify_expression(&[1], 1, &nested)),
            "parentheses nested deeper than 64"
        );
        let nested = format!("{}1{}", "(".repeat(64), ")".repeat(64));
        assert!(verify_expression(&[1], 1, &nested).is_correct());
        // i128::MIN as a product: the rational code must not negate or abs it.
        let minimum = "(0-9223372036854775808)*18446744073709551616/1";
        assert!(!verify_expression(&[1], 1, minimum).is_correct());
        let minimum = "1/((0-9223372036854775808)*18446744073709551616)";
        assert!(!verify_expression(&[1], 1, minimum).is_correct());
        let minimum = "1-(0-9223372036854775808)*18446744073709551616";
        assert!(!verify_expression(&[1], 1, minimum).is_correct());
    }

    #[test]
    fn pinned_problems_are_deterministic() {
        // Golden values produced by this implementation (see the arithmetic test's note).
        let task = task_from_spec("countdown").unwrap();
        let pinned = [
            (
                Split::Train,
                0,
                0,
                "Numbers: 4 13 15. Target: 32.",
                "13+4+15",
            ),
            (
                Split::Train,
                1,
                0,
                "Numbers: 14 16 24. Target: 21.",
                "14*24/16",
            ),
            (
                Split::Test,
                0,
                0,
                "Numbers: 6 13 17 20. Target: 56.",
                "20+6+13+17",
            ),
            (
                Split::Train,
                0,
                1,
                "Numbers: 2 10 13. Target: 16.",
                "2*13-10",
            ),
        ];
        for (split, index, seed, question, answer) in pinned {
            let p = task.problem(split, index, seed);
            assert_eq!((p.question.as_str(), p.answer.as_str()), (question, answer));
            assert_eq!(p.solution, p.answer);
            assert_eq!(p.id, format!("countdown/{split}/{index}"));
        }
    }

    #[test]
    fn generated_answers_and_solutions_verify() {
        let task = task_from_spec("countdown(numbers=2..5,max=25,target_max=100)").unwrap();
        for split in Split::ALL {
            for index in 0..500 {
                let p = task.problem(split, index, 3);
                assert_eq!(task.verify(&p, &p.answer), Verdict::Correct, "{p:?}");
                assert_eq!(task.verify(&p, &p.solution), Verdict::Correct, "{p:?}");
                let (numbers, target) = parse_question(&p.question).unwrap();
                assert_eq!(numbers.len() as u32, p.difficulty);
                assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "sorted");
                assert!(numbers.iter().all(|&n| (1..=25).contains(&n)));
                assert!((1..=100).contains(&target) && !numbers.contains(&(target as u64)));
            }
        }
    }

    #[test]
    fn generated_problems_are_deterministic_disjoint_and_cover_every_level() {
        check_generated_task("countdown", 2_000);
        check_generated_task("countdown(numbers=2..6,max=10,target_max=50)", 2_000);
    }

    #[test]
    fn printing_uses_the_fewest_parentheses_that_keep_the_value() {
        let atom = |n: i64| Built {
            value: n,
            text: n.to_string(),
            precedence: 3,
        };
        let sum = combine(&atom(3), '+', &atom(4)).unwrap();
        let product = combine(&atom(6), '*', &atom(2)).unwrap();
        assert_eq!(combine(&atom(10), '-', &sum).unwrap().text, "10-(3+4)");
        assert_eq!(combine(&sum, '*', &atom(2)).unwrap().text, "(3+4)*2");
        assert_eq!(combine(&atom(24), '/', &product).unwrap().text, "24/(6*2)");
        assert_eq!(combine(&product, '/', &atom(4)).unwrap().text, "6*2/4");
        assert_eq!(combine(&sum, '-', &atom(2)).unwrap().text, "3+4-2");
        assert!(
            combine(&atom(3), '-', &atom(3)).is_none(),
            "zero is refused"
        );
        assert!(
            combine(&atom(7), '/', &atom(2)).is_none(),
            "inexact division"
        );
    }
}
