//! One row of a data set file (a JSONL line or a Parquet row) as a [`Problem`]: the fields
//! named by the task's keys, message-list prompts, and answers written as worked solutions
//! (GSM8K's `#### 42`, MATH's `\boxed{...}`). The layout is documented in [`super::jsonl`].

use serde_json::{Map, Value};

use super::{split_of, Problem, Split};

/// Which fields hold the question and the answer (`question_key`, `answer_key` of the task
/// specification); `None` is the default (`question`, else `prompt`; `answer`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Keys {
    pub question: Option<String>,
    pub answer: Option<String>,
}

impl Keys {
    /// Whether both keys are the defaults.
    pub(crate) fn is_default(&self) -> bool {
        self.question.is_none() && self.answer.is_none()
    }

    /// `,question_key=K,answer_key=K` for the keys that are set (for the task's name).
    pub(crate) fn spec_suffix(&self) -> String {
        let mut out = String::new();
        if let Some(k) = &self.question {
            out.push_str(&format!(",question_key={k}"));
        }
        if let Some(k) = &self.answer {
            out.push_str(&format!(",answer_key={k}"));
        }
        out
    }
}

/// A parsed row: its split, its problem, and the system message its prompt carried.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub split: Split,
    pub problem: Problem,
    pub system: Option<String>,
}

/// The reference answer inside a worked solution: the text after the last `####` (GSM8K;
/// thousands separators dropped from a number, `1,600` -> `1600`), else the inside of the
/// last `\boxed{...}` (MATH), else `None` (the whole text is the answer).
pub(crate) fn final_answer(text: &str) -> Option<String> {
    if let Some(at) = text.rfind("####") {
        let answer = text[at + 4..].trim();
        let without_commas = answer.replace(',', "");
        let numeric = !without_commas.is_empty()
            && without_commas
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.'));
        return Some(if numeric {
            without_commas
        } else {
            answer.to_string()
        });
    }
    super::last_boxed(text).map(|inside| inside.trim().to_string())
}

/// A prompt given as a message list: the system messages (joined by a blank line) and the
/// one user message, which must come last.
fn messages(key: &str, items: &[Value]) -> Result<(Option<String>, String), String> {
    let mut turns = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = |name: &str| {
            item.get(name).and_then(Value::as_str).ok_or_else(|| {
                format!(
                    "key {key:?}: message {i} must be an object with string \"role\" and \
                     \"content\", got {item}"
                )
            })
        };
        turns.push((field("role")?, field("content")?));
    }
    match turns.split_last() {
        Some((("user", question), earlier)) if earlier.iter().all(|(r, _)| *r == "system") => {
            let system: Vec<&str> = earlier.iter().map(|(_, c)| *c).collect();
            Ok((
                (!system.is_empty()).then(|| system.join("\n\n")),
                question.to_string(),
            ))
        }
        _ => Err(format!(
            "key {key:?}: a message list may hold system messages and then one user message, \
             last (got roles [{}]); few-shot turns are not supported: write them into the \
             user message",
            turns.iter().map(|(r, _)| *r).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Parses one row object; errors name the key (the caller adds the file and line).
pub(crate) fn parse_object(
    row: &Map<String, Value>,
    keys: &Keys,
    stem: &str,
    line_number: usize,
) -> Result<Row, String> {
    let text_field = |key: &str| -> Result<Option<String>, String> {
        match row.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(format!("key {key:?} must be a string, got {other}")),
        }
    };
    let question_keys: Vec<&str> = match &keys.question {
        Some(k) => vec![k.as_str()],
        None => vec!["question", "prompt"],
    };
    let (question_key, value) = question_keys
        .iter()
        .find_map(|k| row.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
        .ok_or_else(|| match &keys.question {
            Some(k) => format!("missing key {k:?} (question_key)"),
            None => "missing \"question\" (or \"prompt\"; set question_key=KEY for another \
                     field)"
                .to_string(),
        })?;
    let (system, question) = match value {
        Value::String(s) => (None, s.clone()),
        Value::Array(items) => messages(question_key, items)?,
        other => {
            return Err(format!(
                "key {question_key:?} must be a string or a list of chat messages, got {other}"
            ))
        }
    };
    let answer_key = keys.answer.as_deref().unwrap_or("answer");
    let answer_text = text_field(answer_key)?.ok_or_else(|| match &keys.answer {
        Some(k) => format!("missing key {k:?} (answer_key)"),
        None => "missing \"answer\" (set answer_key=KEY for another field)".to_string(),
    })?;
    let answer = final_answer(&answer_text).unwrap_or_else(|| answer_text.clone());
    if answer.trim().is_empty() {
        return Err(format!(
            "key {answer_key:?}: the answer is empty (after `####` or inside \\boxed{{}})"
        ));
    }
    let difficulty = match row.get("difficulty") {
        None | Some(Value::Null) => 0,
        Some(value) => value
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .ok_or_else(|| format!("key \"difficulty\" must be a whole number, got {value}"))?,
    };
    let split = match text_field("split")? {
        None => split_of(&question),
        Some(text) => text.parse::<Split>()?,
    };
    let id = text_field("id")?.unwrap_or_else(|| format!("{stem}/{line_number}"));
    // A worked answer (GSM8K, MATH) is itself a completion the verifier accepts.
    let solution = match text_field("solution")? {
        Some(s) if answer_key != "solution" => s,
        _ => answer_text,
    };
    Ok(Row {
        split,
        problem: Problem {
            id,
            question,
            answer,
            difficulty,
            solution,
        },
        system,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str, keys: &Keys) -> Result<Row, String> {
        let Value::Object(map) = serde_json::from_str(json).unwrap() else {
            panic!("not an object")
        };
        parse_object(&map, keys, "f", 3)
    }

    #[test]
    fn gsm8k_and_math_answers_give_their_final_answer() {
        assert_eq!(
            final_answer("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72"),
            Some("72".into())
        );
        assert_eq!(final_answer("so\n#### 1,600"), Some("1600".into()));
        assert_eq!(final_answer("#### -3.5"), Some("-3.5".into()));
        assert_eq!(final_answer("#### Paris"), Some("Paris".into()));
        assert_eq!(
            final_answer("Thus $x = \\boxed{\\frac{1}{2}}$."),
            Some("\\frac{1}{2}".into())
        );
        assert_eq!(final_answer("42"), None);
        let keys = Keys {
            question: Some("problem".into()),
            answer: Some("solution".into()),
        };
        let row = parse(
            r#"{"problem": "Half of 1?", "solution": "It is $\\boxed{0.5}$.", "split": "train"}"#,
            &keys,
        )
        .unwrap();
        assert_eq!(row.problem.answer, "0.5");
        assert_eq!(row.problem.solution, "It is $\\boxed{0.5}$.");
    }

    #[test]
    fn message_lists_give_a_system_and_a_question() {
        let row = parse(
            r#####"{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}], "answer": "#### 4"}"#####,
            &Keys::default(),
        )
        .unwrap();
        assert_eq!(row.system.as_deref(), Some("Be brief."));
        assert_eq!(row.problem.question, "2+2?");
        assert_eq!(row.problem.answer, "4");
        assert_eq!(row.problem.id, "f/3");
        let err = parse(
            r#"{"prompt": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}], "answer": "1"}"#,
            &Keys::default(),
        )
        .unwrap_err();
        assert!(
            err.contains("key \"prompt\"") && err.contains("[user, assistant, user]"),
            "{err}"
        );
        let err = parse(
            r#"{"prompt": [{"role": "user"}], "answer": "1"}"#,
            &Keys::default(),
        )
        .unwrap_err();
        assert!(err.contains("message 0"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        let keys = Keys {
            question: Some("problem".into()),
            answer: Some("target".into()),
        };
        let err = parse(r#"{"question": "a", "target": "1"}"#, &keys).unwrap_err();
        assert!(
            err.contains("missing key \"problem\" (question_key)"),
            "{err}"
        );
        let err = parse(r#"{"problem": "a"}"#, &keys).unwrap_err();
        assert!(err.contains("missing key \"target\" (answer_key)"), "{err}");
        let err = parse(r#"{"problem": "a", "target": [1]}"#, &keys).unwrap_err();
        assert!(err.contains("key \"target\" must be a string"), "{err}");
        let err = parse(r#"{"problem": 7, "target": "1"}"#, &keys).unwrap_err();
        assert!(
            err.contains("key \"problem\" must be a string or a list"),
            "{err}"
        );
        let err = parse(r#####"{"problem": "a", "target": "####  "}"#####, &keys).unwrap_err();
        assert!(err.contains("the answer is empty"), "{err}");
    }
}
