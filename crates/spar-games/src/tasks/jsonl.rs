//! JSONL (and, with the `parquet` feature, Parquet): question/answer rows of a file, with a
//! normalised or numeric verifier.
//!
//! # File format
//! One JSON object per line (or one Parquet row); blank lines are skipped, unknown fields
//! ignored:
//!
//! | field | required | meaning |
//! |---|---|---|
//! | `question` (or `prompt`; `question_key=K` names another) | yes | the text shown to the model: a string, or a list of chat messages `[{"role": "system", "content": ...}, {"role": "user", "content": ...}]` (system messages, then one user message; the system text replaces the task's for that row) |
//! | `answer` (`answer_key=K` names another) | yes | the reference answer (a string or a JSON number); a worked solution is reduced to its final answer: the text after the last `####` (GSM8K; `1,600` -> `1600`), else the inside of the last `\boxed{}` (MATH) |
//! | `difficulty` | no, 0 | a whole number, for per-difficulty accuracy |
//! | `split` | no | `"train"` or `"test"`; without it, the hash rule of generated tasks |
//! | `id` | no, `<file stem>/<line>` | a string or number (line numbers count from 1) |
//! | `solution` | no, the answer field as written | a reference completion for warm starts |
//!
//! Specifications: `jsonl:PATH`, or `jsonl(path=PATH,question_key=K,answer_key=K)`
//! (GSM8K: `jsonl(path=gsm8k.jsonl)` as it comes; MATH:
//! `jsonl(path=math.jsonl,question_key=problem,answer_key=solution)`); `parquet:PATH` and
//! `parquet(path=PATH,...)` read a Parquet file the same way (row numbers count from 1).
//! Errors name the file, the line (or row) and the key.
//!
//! Both splits must be non-empty. `problem(split, index, seed)` is row `index % size` of
//! the split in file order; the seed is unused.
//!
//! # Verifier
//! 1. The answer part of the completion: the first non-empty line after the last
//!    `Answer:` (any case) if there is one; else the first after the last `####` (GSM8K's
//!    marker); else the inside of the last `\boxed{...}`; else the last non-empty line.
//! 2. Both it and the reference are normalised: trimmed, one final `.` dropped, runs of
//!    whitespace made one space, lowercased.
//! 3. When the reference is a number (`42`, `-0.5`, `1e3`), the answer's number is the
//!    whole answer if it is one, else its last number; they match within a relative
//!    tolerance of 1e-9. No number is [`Verdict::Unparsable`].
//! 4. Otherwise the normalised strings must be equal.
//!
//! `extract_answer` returns the normalised answer part, with a number written canonically
//! (`42.0` -> `42`).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::rows::{parse_object, Keys, Row};
use super::{after_answer_marker, last_boxed, last_number, Problem, Split, Task, Verdict};

/// The file format of a [`JsonlTask`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// One JSON object per line.
    Jsonl,
    /// A Parquet file (the `parquet` feature).
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    Parquet,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }
}

/// A task read from a JSONL or Parquet file (built by [`super::task_from_spec`]).
#[derive(Debug, Clone)]
pub struct JsonlTask {
    /// The path as given in the specification.
    path: String,
    format: Format,
    keys: Keys,
    train: Vec<Problem>,
    test: Vec<Problem>,
    /// The system text of rows whose prompt was a message list with a system message, by
    /// problem id.
    systems: HashMap<String, String>,
}

impl JsonlTask {
    /// Reads and checks the whole JSONL file.
    pub(crate) fn load(path: &str, keys: Keys) -> Result<Self, String> {
        let name = spec_name(path, Format::Jsonl, &keys);
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "task {name}: cannot read {path:?}: {e}; give the path of a JSONL file \
                 (one JSON object per line), e.g. jsonl:data/problems.jsonl"
            )
        })?;
        let stem = file_stem(path);
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_number = i + 1;
            let line = line.trim_start_matches('\u{feff}').trim();
            if line.is_empty() {
                continue;
            }
            let row = serde_json::from_str::<Value>(line)
                .map_err(|e| format!("bad JSON: {e}"))
                .and_then(|value| match value {
                    Value::Object(map) => parse_object(&map, &keys, &stem, line_number),
                    _ => Err("expected a JSON object".to_string()),
                })
                .map_err(|reason| format!("task {name}: {path}: line {line_number}: {reason}"))?;
            rows.push(row);
        }
        Self::from_rows(path, Format::Jsonl, keys, rows)
    }

    /// Reads and checks a whole Parquet file: each row as a JSON object (nested lists and
    /// structs included), then as a JSONL line.
    #[cfg(feature = "parquet")]
    pub(crate) fn load_parquet(path: &str, keys: Keys) -> Result<Self, String> {
        let name = spec_name(path, Format::Parquet, &keys);
        let stem = file_stem(path);
        let objects = super::parquet_rows::read(path)
            .map_err(|reason| format!("task {name}: {path}: {reason}"))?;
        let rows = objects
            .into_iter()
            .enumerate()
            .map(|(i, object)| {
                parse_object(&object, &keys, &stem, i + 1)
                    .map_err(|reason| format!("task {name}: {path}: row {}: {reason}", i + 1))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Self::from_rows(path, Format::Parquet, keys, rows)
    }

    fn from_rows(path: &str, format: Format, keys: Keys, rows: Vec<Row>) -> Result<Self, String> {
        let name = spec_name(path, format, &keys);
        let mut task = Self {
            path: path.to_string(),
            format,
            keys,
            train: Vec::new(),
            test: Vec::new(),
            systems: HashMap::new(),
        };
        for row in rows {
            if let Some(system) = row.system {
                task.systems.insert(row.problem.id.clone(), system);
            }
            match row.split {
                Split::Train => task.train.push(row.problem),
                Split::Test => task.test.push(row.problem),
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

/// The task's specification: `jsonl:PATH` with the default keys, else the keyword form.
fn spec_name(path: &str, format: Format, keys: &Keys) -> String {
    if keys.is_default() {
        format!("{}:{path}", format.name())
    } else {
        format!("{}(path={path}{})", format.name(), keys.spec_suffix())
    }
}

/// The file name without its extension, for default row ids.
fn file_stem(path: &str) -> String {
    Path::new(path)
        .file_stem()
        .map_or_else(|| "jsonl".to_string(), |s| s.to_string_lossy().into_owned())
}

/// The answer part of a completion (see the module docs, step 1), trimmed.
fn answer_text(completion: &str) -> Option<&str> {
    let after_hashes = || {
        completion
            .rfind("####")
            .map(|at| &completion[at + "####".len()..])
    };
    let text = match after_answer_marker(completion).or_else(after_hashes) {
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
        spec_name(&self.path, self.format, &self.keys)
    }

    fn system(&self) -> String {
        "Answer the question.".to_string()
    }

    fn system_for(&self, problem: &Problem) -> String {
        self.systems
            .get(&problem.id)
            .cloned()
            .unwrap_or_else(|| self.system())
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
    use crate::tasks::{split_of, task_from_spec};
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
                "line 1: missing \"question\" (or \"prompt\"",
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
                "line 1: key \"difficulty\" must be a whole number",
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

    #[test]
    fn gsm8k_rows_key_mapping_and_message_prompts() {
        // Two rows as GSM8K publishes them, one MATH-style row read through the key mapping,
        // one with a chat-message prompt.
        let gsm8k = "{\"question\": \"Natalia sold 48 clips in April and half as many in May. How many in all?\", \"answer\": \"In May she sold 48/2 = <<48/2=24>>24.\\nIn all 48+24 = <<48+24=72>>72.\\n#### 72\", \"split\": \"train\"}\n{\"question\": \"Big sum?\", \"answer\": \"#### 1,600\", \"split\": \"test\"}\n";
        let path = temp_file("gsm8k", gsm8k);
        let task = task_from_spec(&format!("jsonl:{}", path.display())).unwrap();
        let natalia = task.problem(Split::Train, 0, 0);
        assert_eq!(natalia.answer, "72");
        assert!(natalia.solution.ends_with("#### 72"));
        assert_eq!(task.verify(&natalia, &natalia.solution), Verdict::Correct);
        assert_eq!(task.verify(&natalia, "so\n#### 72"), Verdict::Correct);
        assert!(!task.verify(&natalia, "#### 71").is_correct());
        assert_eq!(task.problem(Split::Test, 0, 0).answer, "1600");
        assert_eq!(task.system_for(&natalia), task.system());
        std::fs::remove_file(path).unwrap();

        let rows = "{\"problem\": \"Half of 1?\", \"solution\": \"It is $\\\\boxed{0.5}$.\", \"split\": \"train\"}\n{\"problem\": [{\"role\": \"system\", \"content\": \"Think step by step.\"}, {\"role\": \"user\", \"content\": \"1+1?\"}], \"solution\": \"2\", \"split\": \"test\"}\n";
        let path = temp_file("math", rows);
        let spec = format!(
            "jsonl(path={},question_key=problem,answer_key=solution)",
            path.display()
        );
        let task = task_from_spec(&spec).unwrap();
        assert_eq!(task.name(), spec, "the name rebuilds the same task");
        assert_eq!(task_from_spec(&task.name()).unwrap().name(), spec);
        let half = task.problem(Split::Train, 0, 0);
        assert_eq!(
            (half.question.as_str(), half.answer.as_str()),
            ("Half of 1?", "0.5")
        );
        assert_eq!(task.verify(&half, "\\boxed{0.5}"), Verdict::Correct);
        let chat = task.problem(Split::Test, 0, 0);
        assert_eq!(chat.question, "1+1?");
        assert_eq!(task.system_for(&chat), "Think step by step.");
        assert_eq!(task.system_for(&half), "Answer the question.");
        // The default keys do not find these rows: the error names file, line and key.
        let err = task_from_spec(&format!("jsonl:{}", path.display())).unwrap_err();
        assert!(
            err.contains(&path.display().to_string())
                && err.contains("line 1")
                && err.contains("missing \"question\""),
            "{err}"
        );
        let err = task_from_spec(&format!(
            "jsonl(path={},question_key=problem,answer_key=answer)",
            path.display()
        ))
        .unwrap_err();
        assert!(
            err.contains("line 1: missing key \"answer\" (answer_key)"),
            "{err}"
        );
        let err = task_from_spec(&format!("jsonl(path={},question=problem)", path.display()))
            .unwrap_err();
        assert!(err.contains("question_key, answer_key"), "{err}");
        std::fs::remove_file(path).unwrap();
    }
}
