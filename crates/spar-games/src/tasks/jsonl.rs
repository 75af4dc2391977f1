//! JSONL: question/answer rows of a file, with a normalised or numeric verifier.
//!
//! # File format
//! One JSON object per line; blank lines are skipped, unknown fields ignored:
//!
//! | field | required | meaning |
//! |---|---|---|
//! | `question` (or `prompt`) | yes | the text shown to the model (a string) |
//! | `answer` | yes | the reference answer (a string or a JSON number) |
//! | `difficulty` | no, 0 | a whole number, for per-difficulty accuracy |
//! | `split` | no | `"train"` or `"test"`; without it, the hash rule of generated tasks |
//! | `id` | no, `<file stem>/<line>` | a string or number (line numbers count from 1) |
//! | `solution` | no, the answer | a reference completion for warm starts |
//!
//! Both splits must be non-empty. `problem(split, index, seed)` is row `index % size` of
//! the split in file order; the seed is unused.
//!
//! # Verifier
//! 1. The answer part of the completion: the first non-empty line after the last
//!    `Answer:` (any case) if there is one; else the inside of the last `\boxed{...}`;
//!    else the last non-empty line.
//! 2. Both it and the reference are normalised: trimmed, one final `.` dropped, runs of
//!    whitespace made one space, lowercased.
//! 3. When the reference is a number (`42`, `-0.5`, `1e3`), the answer's number is the
//!    whole answer if it is one, else its last number; they match within a relative
//!    tolerance of 1e-9. No number is [`Verdict::Unparsable`].
//! 4. Otherwise the normalised strings must be equal.
//!
//! `extract_answer` returns the normalised answer part, with a number written canonically
//! (`42.0` -> `42`).

use std::path::Path;

use serde_json::Value;

use super::{
    after_answer_marker, last_boxed, last_number, split_of, Problem, Split, Task, Verdict,
};

/// A task read from a JSONL file (built by [`super::task_from_spec`]).
#[derive(Debug, Clone)]
pub struct JsonlTask {
    /// The path as given in the specification.
    path: String,
    train: Vec<Problem>,
    test: Vec<Problem>,
}

impl JsonlTask {
    /// Reads and checks the whole file.
    pub(crate) fn load(path: &str) -> Result<Self, String> {
        let name = format!("jsonl:{path}");
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "task {name}: cannot read {path:?}: {e}; give the path of a JSONL file \
                 (one JSON object per line), e.g. jsonl:data/problems.jsonl"
            )
        })?;
        let stem = Path::new(path)
            .file_stem()
            .map_or_else(|| "jsonl".to_string(), |s| s.to_string_lossy().into_owned());
        let mut task = Self {
            path: path.to_string(),
            train: Vec::new(),
            test: Vec::new(),
        };
        for (i, line) in text.lines().enumerate() {
            let line_number = i + 1;
            let line = line.trim_start_matches('\u{feff}').trim();
            if line.is_empty() {
                continue;
            }
            let (split, problem) = parse_row(line, &stem, line_number)
                .map_err(|reason| format!("task {name}: line {line_number}: {reason}"))?;
            match split {
                Split::Train => task.train.push(problem),
                Split::Test => task.test.push(problem),
            }
        }
        for split in Split::ALL {
            if task.rows(split).is_empty() {
                return Err(format!(
                    "task {name}: the {split} split is empty ({} train and {} test rows); \
                     mark rows with \"split\": \"{split}\" (rows without a split go to test \
                     when a hash of the question is 0 mod 10)",
                    task.train.len(),
                    task.test.len()
                ));
            }
        }
        Ok(task)
    }

    fn rows(&self, split: Split) -> &[Problem] {
        match split {
            Split::Train => &self.train,
            Split::Test => &self.test,
        }
    }
}

/// One row: its split and problem, or why it is refused.
fn parse_row(line: &str, stem: &str, line_number: usize) -> Result<(Split, Problem), String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("bad JSON: {e}"))?;
    let Value::Object(row) = value else {
        return Err("expected a JSON object".to_string());
    };
    let text_field = |key: &str| -> Result<Option<String>, String> {
        match row.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) if key != "question" && key != "prompt" => {
                Ok(Some(n.to_string()))
            }
            Some(other) => Err(format!("{key:?} must be a string, got {other}")),
        }
    };
    let question = match text_field("question")? {
        Some(q) => q,
        None => text_field("prompt")?
            .ok_or_else(|| "missing \"question\" (or \"prompt\")".to_string())?,
    };
    let answer = text_field("answer")?.ok_or_else(|| "missing \"answer\"".to_string())?;
    let difficulty = match row.get("difficulty") {
        None | Some(Value::Null) => 0,
        Some(value) => value
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .ok_or_else(|| format!("\"difficulty\" must be a whole number, got {value}"))?,
    };
    let split = match text_field("split")? {
        None => split_of(&question),
        Some(text) => text.parse::<Split>()?,
    };
    let id = text_field("id")?.unwrap_or_else(|| format!("{stem}/{line_number}"));
    let solution = text_field("solution")?.unwrap_or_else(|| answer.clone());
    Ok((
        split,
        Problem {
            id,
            question,
            answer,
            difficulty,
            solution,
        },
    ))
}

/// The answer part of a completion (see the module docs, step 1), trimmed.
fn answer_text(completion: &str) -> Option<&str> {
    let text = match after_answer_marker(completion) {
        Some(rest) => rest.lines().map(str::trim).find(|l| !l.is_empty())?,
        None => match last_boxed(completion) {
            Some(inside) => inside.trim(),
            None => completion.lines().map(str::trim).rfind(|l| !l.is_empty())?,
        },
    };
    (!text.is_empty()).then_some(text)
}

/// Trimmed, one final `.` dropped, whitespace collapsed, lowercased.
fn normalise_text(text: &str) -> String {
    let trimmed = text.trim();
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    trimmed
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// `text` as a finite number, when the whole of it is one (`42`, `-0.5`, `1e3`).
fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    let plausible = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if !plausible {
        return None;
    }
    text.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// A number written canonically: integers without a fraction (`42.0` -> `42`).
fn canonical_number(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Equal within a relative tolerance of 1e-9.
fn numbers_match(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

impl Task for JsonlTask {
    fn name(&self) -> String {
        format!("jsonl:{}", self.path)
    }

    fn system(&self) -> String {
        "Answer the question.".to_string()
    }

    fn answer_format(&self) -> String {
        "Answer with the final answer only.".to_string()
    }

    fn problem(&self, split: Split, index: u64, _seed: u64) -> Problem {
        let rows = self.rows(split);
        // `load` refuses empty splits, so the modulus is never zero.
        rows[(index % rows.len() as u64) as usize].clone()
    }

    fn split_size(&self, split: Split) -> Option<usize> {
        Some(self.rows(split).len())
    }

    fn verify(&self, problem: &Problem, completion: &str) -> Verdict {
        let Some(text) = answer_text(completion) else {
            return Verdict::Unparsable {
                reason: "no answer found".to_string(),
            };
        };
        let got = normalise_text(text);
        let reference = normalise_text(&problem.answer);
        if let Some(want) = parse_number(&reference) {
            let Some(value) =
                parse_number(&got).or_else(|| last_number(&got).and_then(|n| parse_number(&n)))
            else {
                return Verdict::Unparsable {
                    reason: "no number found".to_string(),
                };
            };
            let got = canonical_number(value);
            return if numbers_match(value, want) {
                Verdict::Correct
            } else {
                Verdict::Wrong {
                    reason: format!("{got} != {}", canonical_number(want)),
                    got,
                }
            };
        }
        if got == reference {
            Verdict::Correct
        } else {
            Verdict::Wrong {
                got,
                reason: "does not match the reference answer".to_string(),
            }
        }
    }

    fn extract_answer(&self, completion: &str) -> Option<String> {
        let got = normalise_text(answer_text(completion)?);
        Some(parse_number(&got).map_or(got, canonical_number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::task_from_spec;
    use std::path::PathBuf;

    /// Writes `content` to a file unique to this process and test.
    fn temp_file(name: &str, content: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("spar-tasks-{}-{name}.jsonl", std::process::id()));
        std::fs::write(&path, content).unwrap();
        path
    }

    const ROWS: &str = r#"{"question": "What is 2+2?", "answer": "4", "split": "train"}
{"prompt": "Capital of France?", "answer": "Paris", "split": "test", "difficulty": 2, "id": "geo-1"}

{"question": "Half of 1?", "answer": 0.5, "split": "test", "extra": [1, 2]}
{"question": "Name a primary colour", "answer": "Red ", "solution": "Red is primary. Answer: red", "split": "train"}
"#;

    #[test]
    fn loads_rows_with_defaults_and_explicit_splits() {
        let path = temp_file("rows", ROWS);
        let spec = format!("jsonl:{}", path.display());
        let task = task_from_spec(&spec).unwrap();
        assert_eq!(task.name(), spec);
        assert_eq!(task.split_size(Split::Train), Some(2));
        assert_eq!(task.split_size(Split::Test), Some(2));
        let first = task.problem(Split::Train, 0, 0);
        assert_eq!(
            first,
            Problem {
                id: format!("spar-tasks-{}-rows/1", std::process::id()),
                question: "What is 2+2?".into(),
                answer: "4".into(),
                difficulty: 0,
                solution: "4".into(),
            }
        );
        let geo = task.problem(Split::Test, 0, 99);
        assert_eq!((geo.id.as_str(), geo.difficulty), ("geo-1", 2));
        assert_eq!(geo.question, "Capital of France?");
        // Row index modulo the split's size; the seed is unused.
        assert_eq!(task.problem(Split::Test, 3, 5).answer, "0.5");
        assert_eq!(task.problem(Split::Train, 2, 7), first);
        let colour = task.problem(Split::Train, 1, 0);
        assert_eq!(task.verify(&colour, &colour.solution), Verdict::Correct);
        // The same file through the keyword form.
        let keyword = task_from_spec(&format!("jsonl(path={})", path.display())).unwrap();
        assert_eq!(keyword.problem(Split::Test, 1, 0).answer, "0.5");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn rows_without_a_split_follow_the_hash_rule() {
        let mut content = String::new();
        for i in 0..200 {
            content.push_str(&format!(
                "{{\"question\": \"q{i}\", \"answer\": \"{i}\"}}\n"
            ));
        }
        let path = temp_file("hashed", &content);
        let task = task_from_spec(&format!("jsonl:{}", path.display())).unwrap();
        let test: Vec<String> = (0..200)
            .map(|i| format!("q{i}"))
            .filter(|q| split_of(q) == Split::Test)
            .collect();
        assert!(!test.is_empty() && test.len() < 40, "{} of 200", test.len());
        assert_eq!(task.split_size(Split::Test), Some(test.len()));
        assert_eq!(task.split_size(Split::Train), Some(200 - test.len()));
        let loaded: Vec<String> = (0..test.len() as u64)
            .map(|i| task.problem(Split::Test, i, 0).question)
            .collect();
        assert_eq!(loaded, test, "file order");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn verifier_matches_normalised_text_and_numbers() {
        let path = temp_file("verify", ROWS);
        let task = task_from_spec(&format!("jsonl:{}", path.display())).unwrap();
        let row = |answer: &str| Problem {
            id: "x".into(),
            question: "q".into(),
            answer: answer.into(),
            difficulty: 0,
            solution: answer.into(),
        };
        let paris = row("Paris");
        for correct in [
            "Paris",
            "  paris. ",
            "I think...\nAnswer: PARIS",
            "Answer:\n\n  Paris\nbecause it is the capital",
            "\\boxed{Paris}",
        ] {
            assert_eq!(
                task.verify(&paris, correct),
                Verdict::Correct,
                "{correct:?}"
            );
        }
        assert_eq!(
            task.verify(&paris, "Lyon"),
            Verdict::Wrong {
                got: "lyon".into(),
                reason: "does not match the reference answer".into()
            }
        );
        assert!(!task.verify(&paris, "Paris, France").is_correct());
        let colour = row("Light   Blue");
        assert_eq!(task.verify(&colour, "light blue"), Verdict::Correct);
        let half = row("0.5");
        for correct in [
            "0.5",
            ".5",
            "0.50",
            "5e-1",
            "Answer: 0.5000000000001",
            "It is 0.5",
        ] {
            assert_eq!(task.verify(&half, correct), Verdict::Correct, "{correct:?}");
        }
        assert_eq!(
            task.verify(&half, "0.6"),
            Verdict::Wrong {
                got: "0.6".into(),
                reason: "0.6 != 0.5".into()
            }
        );
        assert!(!task.verify(&half, "0.500001").is_correct(), "beyond 1e-9");
        assert!(matches!(
            task.verify(&half, "half"),
            Verdict::Unparsable { .. }
        ));
        assert!(matches!(
            task.verify(&half, "  \n "),
            Verdict::Unparsable { .. }
        ));
        let forty_two = row("42");
        assert_eq!(
            task.verify(&forty_two, "Answer: 42 apples"),
            Verdict::Correct
        );
        assert_eq!(task.verify(&forty_two, "42.0"), Verdict::Correct);
        assert!(!task.verify(&forty_two, "inf").is_correct());
        assert_eq!(task.extract_answer("Answer: 42.0"), Some("42".into()));
        assert_eq!(
            task.extract_answer("so\n  The  Cat. "),
            Some("the cat".into())
        );
        assert_eq!(task.extract_answer(""), None);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_fix() {
        let missing = std::env::temp_dir().join("spar-tasks-does-not-exist.jsonl");
        let err = task_from_spec(&format!("jsonl:{}", missing.display())).unwrap_err();
        assert!(
            err.contains("cannot read") && err.contains("spar-tasks-does-not-exist.jsonl"),
            "{err}"
        );
        let cases = [
            (
                "bad-json",
                "{\"question\": \"a\", \"answer\": \"b\"}\n{\"question\": oops}\n",
                "line 2: bad JSON",
            ),
            (
                "no-answer",
                "{\"question\": \"a\"}\n",
                "line 1: missing \"answer\"",
            ),
            (
                "no-question",
                "{\"answer\": \"a\"}\n",
                "line 1: missing \"question\" (or \"prompt\")",
            ),
            ("not-object", "[1, 2]\n", "line 1: expected a JSON object"),
            (
                "bad-split",
                "{\"question\": \"a\", \"answer\": \"b\", \"split\": \"dev\"}\n",
                "line 1: unknown split \"dev\"",
            ),
            (
                "bad-difficulty",
                "{\"question\": \"a\", \"answer\": \"b\", \"difficulty\": -1}\n",
                "line 1: \"difficulty\" must be a whole number",
            ),
            (
                "empty-test",
                "{\"question\": \"a\", \"answer\": \"b\", \"split\": \"train\"}\n",
                "the test split is empty (1 train and 0 test rows)",
            ),
            ("empty-file", "\n\n", "the train split is empty"),
        ];
        for (name, content, want) in cases {
            let path = temp_file(name, content);
            let err = task_from_spec(&format!("jsonl:{}", path.display())).unwrap_err();
            assert!(err.contains(want), "{name}: {err}");
            assert!(err.contains(&path.display().to_string()), "{name}: {err}");
            std::fs::remove_file(path).unwrap();
        }
    }
}
