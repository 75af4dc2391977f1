//! Chat templates rendered as `transformers` renders them: the Jinja source of a model's
//! `tokenizer_config.json` (`chat_template`) run through minijinja with the same settings as
//! `transformers.utils.chat_template_utils._compile_jinja_template`:
//!
//! * `trim_blocks` and `lstrip_blocks` on (a block tag eats its newline and the indentation
//!   before it);
//! * `raise_exception(message)` fails the render with `message` (Gemma's template refuses a
//!   system turn this way);
//! * `tojson` writes JSON as Python's `json.dumps(x, ensure_ascii=False)` does (`", "` and
//!   `": "` separators; with `indent`, `","` and one line per item), not minijinja's
//!   HTML-escaping `tojson`;
//! * `strftime_now(format)`: the current UTC date and time (Llama 3.1's template prints the
//!   date), for the directives `%d %m %Y %y %b %B %H %M %S %%`;
//! * Python's string and dict methods (`.strip()`, `.startswith()`, `.split()`, `.items()`,
//!   ...) through `minijinja-contrib`'s `pycompat`;
//! * the variables `messages`, `add_generation_prompt`, `tools` and `documents` (none) and
//!   the tokenizer's special tokens (`bos_token`, `eos_token`, `unk_token`, `pad_token`).
//!
//! `crates/spar-lm/tests/chat_templates.rs` checks Llama 3, Qwen2.5, Gemma and Phi-3.5
//! templates against strings rendered by `transformers`' `apply_chat_template`.

use std::collections::BTreeMap;

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};
use serde::Serialize;

use crate::error::{LmError, Result};
use crate::tokenizer::Message;

/// The name the template is stored under in its environment.
const NAME: &str = "chat_template";

/// A Jinja chat template with the special tokens it may print.
#[derive(Clone)]
pub struct JinjaTemplate {
    source: String,
    special_tokens: BTreeMap<String, String>,
    env: Environment<'static>,
}

impl std::fmt::Debug for JinjaTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JinjaTemplate")
            .field("source_chars", &self.source.len())
            .field("special_tokens", &self.special_tokens)
            .finish()
    }
}

impl PartialEq for JinjaTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.special_tokens == other.special_tokens
    }
}

fn template_error(e: &Error) -> LmError {
    // minijinja's alternate form adds the template line and a caret under the error.
    LmError::Tokenizer(format!("chat template: {e:#}"))
}

impl JinjaTemplate {
    /// Compiles `source`; `special_tokens` maps `bos_token`, `eos_token`, ... to their text.
    /// A template that does not parse is an error naming the line.
    pub fn new(source: &str, special_tokens: BTreeMap<String, String>) -> Result<JinjaTemplate> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| template_error(&e))?;
        Ok(JinjaTemplate {
            source: source.to_string(),
            special_tokens,
            env,
        })
    }

    /// The Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The special tokens the template sees, by variable name.
    pub fn special_tokens(&self) -> &BTreeMap<String, String> {
        &self.special_tokens
    }

    /// The prompt text for `messages`, ending with the assistant's header when
    /// `add_generation_prompt`. A `raise_exception` of the template is an error with its
    /// message.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        #[derive(Serialize)]
        struct Turn<'a> {
            role: &'a str,
            content: &'a str,
        }
        let turns: Vec<Turn<'_>> = messages
            .iter()
            .map(|m| Turn {
                role: &m.role,
                content: &m.content,
            })
            .collect();
        let mut context: BTreeMap<&str, Value> = self
            .special_tokens
            .iter()
            .map(|(k, v)| (k.as_str(), Value::from(v.as_str())))
            .collect();
        context.insert("messages", Value::from_serialize(&turns));
        context.insert("add_generation_prompt", Value::from(add_generation_prompt));
        // transformers passes these as None when not given (templates test `is not none`).
        context.insert("tools", Value::from(()));
        context.insert("documents", Value::from(()));
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| template_error(&e))?;
        template.render(context).map_err(|e| template_error(&e))
    }
}

/// `raise_exception(message)`: fails the render with `message`.
fn raise_exception(message: String) -> std::result::Result<String, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

/// `tojson`, as `transformers` defines it: `json.dumps(x, ensure_ascii=False, indent=indent,
/// separators=separators, sort_keys=sort_keys)`; maps keep their order, as Python's dicts do.
// minijinja hands a filter its keyword arguments by value (`Kwargs` is not an argument type
// by reference), and `assert_all_used` reads them.
#[allow(clippy::needless_pass_by_value)]
fn tojson(value: &Value, kwargs: Kwargs) -> std::result::Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let mut out = String::new();
    python_json(value, indent, sort_keys.unwrap_or(false), 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

/// Appends `value` as Python's `json.dumps` writes it (`ensure_ascii=False`).
fn python_json(
    value: &Value,
    indent: Option<usize>,
    sort: bool,
    depth: usize,
    out: &mut String,
) -> std::result::Result<(), Error> {
    let newline = |out: &mut String, depth: usize| {
        if let Some(width) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(width * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    let json_string = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::String => out.push_str(&json_string(value.as_str().unwrap_or_default())),
        ValueKind::Number => {
            // Integers as integers; floats as JSON numbers (`2.5`, `1.0`), as Python's repr.
            let number: serde_json::Value = serde_json::to_value(value)
                .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?;
            out.push_str(&number.to_string());
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                python_json(item, indent, sort, depth + 1, out)?;
            }
            newline(out, depth);
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = value.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if sort {
                keys.sort();
            }
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                out.push_str(&json_string(&key.to_string()));
                out.push_str(": ");
                python_json(&value.get_item(key)?, indent, sort, depth + 1, out)?;
            }
            newline(out, depth);
            out.push('}');
        }
        other => {
            return Err(Error::new(
                ErrorKind::BadSerialization,
                format!("tojson: cannot write a {other} as JSON"),
            ))
        }
    }
    Ok(())
}

/// `strftime_now(format)`: the current UTC time formatted with the directives of Python's
/// `strftime` that chat templates use (`%d %m %Y %y %b %B %H %M %S %%`).
fn strftime_now(format: &str) -> std::result::Result<String, Error> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?
        .as_secs();
    format_time(secs, format)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `secs` after the Unix epoch (UTC) in `format`.
fn format_time(secs: u64, format: &str) -> std::result::Result<String, Error> {
    let days = (secs / 86_400) as i64;
    let (year, month, day) = civil_from_days(days);
    let rest = secs % 86_400;
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let month_name = MONTHS[(month - 1) as usize];
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year % 100)),
            Some('b') => out.push_str(&month_name[..3]),
            Some('B') => out.push_str(month_name),
            Some('H') => out.push_str(&format!("{hour:02}")),
            Some('M') => out.push_str(&format!("{minute:02}")),
            Some('S') => out.push_str(&format!("{second:02}")),
            Some('%') => out.push('%'),
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "strftime_now: directive %{} is not supported (only %d %m %Y %y %b %B \
                         %H %M %S %%)",
                        other.map(String::from).unwrap_or_default()
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, "chrono-Compatible Low-Level Date Algorithms").
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_format_like_python() {
        // 2024-07-26 13:25:09 UTC = 1722000309 s (Python:
        // datetime.fromtimestamp(1722000309, timezone.utc)).
        assert_eq!(
            format_time(1_722_000_309, "%d %b %Y %H:%M:%S %B %m %y %%").unwrap(),
            "26 Jul 2024 13:25:09 July 07 24 %"
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2000-02-29, a leap day: 11016 days after the epoch.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert!(format_time(0, "%j").unwrap_err().to_string().contains("%j"));
    }

    #[test]
    fn tojson_writes_python_json_dumps() {
        let t = JinjaTemplate::new(
            "{{ {'name': 'f', 'args': [1, 2.5, 'é<'], 'empty': {}, 'none': none} | tojson }}|\
             {{ {'b': [1, 2], 'a': true} | tojson(indent=2) }}|{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}",
            BTreeMap::new(),
        )
        .unwrap();
        // Python: json.dumps({"name": "f", "args": [1, 2.5, "é<"], "empty": {}, "none": None},
        // ensure_ascii=False); json.dumps({"b": [1, 2], "a": True}, indent=2);
        // json.dumps({"b": 1, "a": 2}, sort_keys=True).
        assert_eq!(
            t.render(&[], false).unwrap(),
            "{\"name\": \"f\", \"args\": [1, 2.5, \"é<\"], \"empty\": {}, \"none\": null}|\
             {\n  \"b\": [\n    1,\n    2\n  ],\n  \"a\": true\n}|{\"a\": 2, \"b\": 1}"
        );
    }

    #[test]
    fn raise_exception_and_syntax_errors_are_reported() {
        let t = JinjaTemplate::new(
            "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}ok",
            BTreeMap::new(),
        )
        .unwrap();
        let err = t
            .render(&[Message::new("system", "x")], true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("System role not supported"), "{err}");
        assert_eq!(t.render(&[Message::new("user", "x")], true).unwrap(), "ok");
        let err = JinjaTemplate::new("{% for m in messages %}", BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("chat template"), "{err}");
    }
}
