//! [`ChoiceTask`]: any task posed as a multiple-choice question, for comparing iterative
//! self-correction in the two output spaces of Rahmani et al. 2025 ("Self-Correcting Large
//! Language Models: Generation vs. Multiple Choice", sec. 3): free generation (the task
//! itself) and a choice among `options` candidates (this wrapper), with the same problems.
//!
//! Spec: `choice:SPEC` or `choice(options=N):SPEC` (`choice:arithmetic(digits=2)`); 4
//! options by default, 2 to 8.

use rand::seq::SliceRandom;
use rand::Rng as _;

use super::{problem_rng, Problem, Split, Task, Verdict};

/// Salt of the options' random stream, so that the options of a problem do not repeat the
/// draws that generated it.
const OPTIONS_SALT: u64 = 0x6368_6f69_6365; // "choice"

/// The option letters, in order.
const LETTERS: &[u8] = b"ABCDEFGH";

/// A task whose problems list `options` candidate answers, labelled `A`, `B`, ...: the right
/// one and `options - 1` wrong ones, in a seeded order.
///
/// * The question is the wrapped task's, then one line per option (`A) 12`); the answer and
///   the solution are the right option's letter.
/// * Wrong options are answers the wrapped task's verifier rejects: for a number answer, the
///   answer plus or minus 1 to 9 (seeded); otherwise the answers of the next problems of the
///   same split. A problem with too few distinct wrong candidates gets fewer options.
/// * The verifier reads the letter after the last `Answer:` (any case) if there is one, else
///   the first letter of the completion standing alone (`B`, `B)`, `(B)`, `b.`).
#[derive(Debug)]
pub struct ChoiceTask {
    inner: Box<dyn Task>,
    options: usize,
}

impl ChoiceTask {
    /// `inner` posed with `options` options (2 to 8).
    pub fn new(inner: Box<dyn Task>, options: usize) -> Result<ChoiceTask, String> {
        if !(2..=LETTERS.len()).contains(&options) {
            return Err(format!(
                "choice: options must be between 2 and {}, got {options}",
                LETTERS.len()
            ));
        }
        Ok(ChoiceTask { inner, options })
    }

    /// Parses `choice:SPEC` or `choice(options=N):SPEC`; `None` when `spec` is not a choice
    /// spec.
    pub(super) fn from_spec(spec: &str) -> Option<Result<ChoiceTask, String>> {
        let rest = spec.trim().strip_prefix("choice")?;
        let (options, inner) = if let Some(inner) = rest.strip_prefix(':') {
            (Ok(4), inner)
        } else {
            let (params, inner) = rest.strip_prefix('(')?.split_once("):")?;
            let options = params
                .trim()
                .strip_prefix("options=")
                .and_then(|n| n.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    format!("task spec {spec:?}: choice takes one parameter, options=N")
                });
            (options, inner)
        };
        Some(options.and_then(|n| ChoiceTask::new(super::task_from_spec(inner)?, n)))
    }

    /// Wrong candidate answers to `problem` (problem `index` of `split`), distinct, in a
    /// seeded order.
    fn wrong_answers(&self, problem: &Problem, split: Split, index: u64, seed: u64) -> Vec<String> {
        let mut rng = problem_rng(split, index, seed ^ OPTIONS_SALT);
        let mut candidates: Vec<String> = match problem.answer.trim().parse::<i64>() {
            Ok(n) => {
                let mut offsets: Vec<i64> = (1..=9).flat_map(|d| [d, -d]).collect();
                offsets.shuffle(&mut rng);
                offsets.iter().map(|d| (n + d).to_string()).collect()
            }
            Err(_) => (1..=4 * self.options as u64)
                .map(|k| self.inner.problem(split, index + k, seed).answer)
                .collect(),
        };
        let mut wrong: Vec<String> = Vec::new();
        for c in candidates.drain(..) {
            let rejected = !self.inner.verify(problem, &c).is_correct();
            if rejected && c != problem.answer && !wrong.contains(&c) {
                wrong.push(c);
            }
            if wrong.len() + 1 == self.options {
                break;
            }
        }
        // The position of the right answer among the options.
        let at = rng.gen_range(0..=wrong.len());
        wrong.insert(at, String::new());
        wrong
    }
}

/// The option letter a completion names, if any (see [`ChoiceTask`]).
fn letter_of(completion: &str, options: usize) -> Option<char> {
    let lower = completion.to_ascii_lowercase();
    let tail = lower
        .rfind("answer:")
        .map_or(completion, |i| &completion[i + "answer:".len()..]);
    tail.split(|c: char| c.is_whitespace() || "().,:;".contains(c))
        .find(|w| !w.is_empty())
        .and_then(|w| {
            let mut chars = w.chars();
            let c = chars.next()?.to_ascii_uppercase();
            let valid = chars.next().is_none() && LETTERS[..options].contains(&(c as u8));
            valid.then_some(c)
        })
}

impl Task for ChoiceTask {
    fn name(&self) -> String {
        format!("choice(options={}):{}", self.options, self.inner.name())
    }

    fn system(&self) -> String {
        self.inner.system()
    }

    fn system_for(&self, problem: &Problem) -> String {
        self.inner.system_for(problem)
    }

    fn answer_format(&self) -> String {
        "Answer with the letter of one option.".to_string()
    }

    fn problem(&self, split: Split, index: u64, seed: u64) -> Problem {
        let inner = self.inner.problem(split, index, seed);
        let mut options = self.wrong_answers(&inner, split, index, seed);
        let right = options.iter().position(String::is_empty).unwrap_or(0);
        options[right] = inner.answer.clone();
        let letter = (LETTERS[right] as char).to_string();
        let mut question = inner.question.clone();
        for (k, option) in options.iter().enumerate() {
            question.push_str(&format!("\n{}) {option}", LETTERS[k] as char));
        }
        Problem {
            id: format!("choice/{}", inner.id),
            question,
            answer: letter.clone(),
            difficulty: inner.difficulty,
            solution: letter,
        }
    }

    fn split_size(&self, split: Split) -> Option<usize> {
        self.inner.split_size(split)
    }

    fn verify(&self, problem: &Problem, completion: &str) -> Verdict {
        let shown = problem
            .question
            .lines()
            .filter(|l| l.get(1..3) == Some(") "))
            .count();
        match letter_of(completion, shown.clamp(2, LETTERS.len())) {
            None => Verdict::Unparsable {
                reason: "no option letter".into(),
            },
            Some(c) if c.to_string() == problem.answer => Verdict::Correct,
            Some(c) => Verdict::Wrong {
                got: c.to_string(),
                reason: format!("option {c} is not the right one"),
            },
        }
    }

    fn extract_answer(&self, completion: &str) -> Option<String> {
        letter_of(completion, self.options).map(|c| c.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::task_from_spec;

    #[test]
    fn options_hold_the_answer_once_and_only_wrong_others() {
        for spec in [
            "choice:arithmetic(digits=1..2)",
            "choice(options=3):countdown",
            "choice(options=8):wordproblem",
        ] {
            let task = task_from_spec(spec).unwrap();
            assert_eq!(task_from_spec(&task.name()).unwrap().name(), task.name());
            let inner_spec = spec.split_once(':').unwrap().1;
            let inner = task_from_spec(inner_spec).unwrap();
            for index in 0..40 {
                for split in [Split::Train, Split::Test] {
                    let p = task.problem(split, index, 7);
                    assert_eq!(p, task.problem(split, index, 7), "deterministic");
                    let q = inner.problem(split, index, 7);
                    assert!(p.question.starts_with(&q.question));
                    let options: Vec<(char, String)> = p.question[q.question.len()..]
                        .lines()
                        .filter(|l| !l.is_empty())
                        .map(|l| (l.chars().next().unwrap(), l[3..].to_string()))
                        .collect();
                    assert!(options.len() >= 2, "{spec}: {}", p.question);
                    let mut right = 0;
                    for (letter, text) in &options {
                        let correct = inner.verify(&q, text).is_correct();
                        assert_eq!(correct, letter.to_string() == p.answer, "{}", p.question);
                        right += usize::from(correct);
                    }
                    assert_eq!(right, 1, "{}", p.question);
                    assert_eq!(task.verify(&p, &p.solution), Verdict::Correct);
                }
            }
        }
    }

    #[test]
    fn letters_are_read_strictly() {
        let p = Problem {
            id: "x".into(),
            question: "2+2=\nA) 3\nB) 4\nC) 5\nD) 6".into(),
            answer: "B".into(),
            difficulty: 1,
            solution: "B".into(),
        };
        let task = task_from_spec("choice:arithmetic").unwrap();
        for (text, want) in [
            ("B", Some(true)),
            ("b)", Some(true)),
            ("(B) because 4", Some(true)),
            ("Answer: B", Some(true)),
            ("A then Answer: b.", Some(true)),
            ("C", Some(false)),
            ("Answer: D", Some(false)),
            ("E", None),
            ("Because", None),
            ("", None),
            ("4", None),
        ] {
            let v = task.verify(&p, text);
            match want {
                Some(true) => assert_eq!(v, Verdict::Correct, "{text:?}"),
                Some(false) => assert!(matches!(v, Verdict::Wrong { .. }), "{text:?}: {v:?}"),
                None => assert!(matches!(v, Verdict::Unparsable { .. }), "{text:?}: {v:?}"),
            }
        }
        assert_eq!(task.extract_answer("(c)"), Some("C".into()));
    }

    #[test]
    fn bad_specs_name_the_problem() {
        for (spec, needle) in [
            ("choice(options=1):arithmetic", "between 2 and 8"),
            ("choice(options=9):arithmetic", "between 2 and 8"),
            ("choice(n=3):arithmetic", "options=N"),
            ("choice:chess", "unknown task"),
        ] {
            let e = task_from_spec(spec).unwrap_err();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }
}
