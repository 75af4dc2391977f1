//! From an observation to token ids, and where a completion ends.
//!
//! A policy must be trained and evaluated on the same prompts. [`PromptStyle::Chat`] renders the
//! observation with the tokenizer's chat template (system message = the rules, user message =
//! [`Observation::prompt`], then the assistant header), as SPIRAL does with its models' chat
//! templates: natively when spar recognises the layout (ChatML), else the model's Jinja
//! template through minijinja. [`PromptStyle::Template`] always renders the model's own Jinja
//! template (`chat_template` of `tokenizer_config.json`) through minijinja, exactly as
//! `transformers`' `apply_chat_template` does (`spar_lm::jinja`). [`PromptStyle::Raw`] writes
//! [`Observation::full_prompt`] followed by a newline, for small models trained from scratch
//! that have no template. A completion ends with the tokenizer's first end-of-sequence token
//! ([`stop_token`]).

use serde::{Deserialize, Serialize};
use spar_core::Observation;
use spar_lm::tokenizer::{Message, TextTokenizer};

use crate::error::{Error, Result};

/// How observations are written for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptStyle {
    /// The chat template when the tokenizer has one, plain text otherwise.
    #[default]
    Auto,
    /// The tokenizer's chat template (an error if it has none).
    Chat,
    /// The model's Jinja chat template rendered by minijinja as `transformers` renders it (an
    /// error if it has none).
    Template,
    /// `full_prompt()` and a newline.
    Raw,
}

impl std::str::FromStr for PromptStyle {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(PromptStyle::Auto),
            "chat" => Ok(PromptStyle::Chat),
            "template" => Ok(PromptStyle::Template),
            "raw" => Ok(PromptStyle::Raw),
            other => Err(Error::Invalid(format!(
                "prompt style {other:?} is not one of auto, chat, template, raw"
            ))),
        }
    }
}

/// The text of the prompt for `observation`.
pub fn prompt_text(
    tokenizer: &TextTokenizer,
    observation: &Observation,
    style: PromptStyle,
) -> Result<String> {
    let has_template = tokenizer.has_chat_template();
    let use_chat = match style {
        PromptStyle::Raw => false,
        PromptStyle::Auto => has_template,
        PromptStyle::Chat if !has_template => {
            return Err(Error::Invalid(
                "prompt style `chat` needs a tokenizer with a chat template; use `raw`".into(),
            ))
        }
        PromptStyle::Chat | PromptStyle::Template => true,
    };
    if !use_chat {
        return Ok(format!("{}\n", observation.full_prompt()));
    }
    let mut messages = Vec::new();
    if !observation.system.trim().is_empty() {
        messages.push(Message::new("system", observation.system.trim_end()));
    }
    messages.push(Message::new("user", &observation.prompt()));
    let text = if style == PromptStyle::Template {
        tokenizer.render_template(&messages, true).map_err(|e| {
            Error::Invalid(format!(
                "prompt style `template`: {e}; use `chat` (spar's native layout) or `raw`"
            ))
        })?
    } else {
        tokenizer.render_chat(&messages, true)?
    };
    Ok(text)
}

/// The token ids of the prompt for `observation`.
pub fn prompt_ids(
    tokenizer: &TextTokenizer,
    observation: &Observation,
    style: PromptStyle,
) -> Result<Vec<u32>> {
    Ok(tokenizer.encode(&prompt_text(tokenizer, observation, style)?)?)
}

/// The token that ends a completion: the tokenizer's first end-of-sequence token.
pub fn stop_token(tokenizer: &TextTokenizer) -> Result<u32> {
    tokenizer.eos_ids().first().copied().ok_or_else(|| {
        Error::Invalid("the tokenizer has no end-of-sequence token to end completions".into())
    })
}

/// The token ids of `completion` followed by the stop token: what the model must produce for
/// its answer to be exactly `completion`.
pub fn completion_ids(tokenizer: &TextTokenizer, completion: &str) -> Result<Vec<u32>> {
    let mut ids = tokenizer.encode(completion)?;
    ids.push(stop_token(tokenizer)?);
    Ok(ids)
}

/// How a model was prompted during training, saved in each checkpoint as `prompting.json` so
/// that evaluating the checkpoint (`spar exploitability --policy model:DIR`, `spar eval`)
/// shows it the prompts it learned on unless told otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompting {
    /// The game spec trained on.
    pub game: String,
    /// Answer protocol (`boxed`, `bracketed`, `bare`).
    pub protocol: String,
    /// Prompt style (`auto`, `chat`, `template`, `raw`).
    pub prompt_style: String,
    /// The observation view (`full`, `norules`, `compact`).
    pub view: String,
    /// Sampling temperature.
    pub temperature: f64,
    /// Most tokens per answer.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// How answers are produced (`sample`, `legal`).
    #[serde(default = "default_policy")]
    pub policy: String,
}

fn default_policy() -> String {
    "sample".into()
}

fn default_max_tokens() -> usize {
    64
}

impl Prompting {
    /// The file name inside a checkpoint directory.
    pub const FILE: &'static str = "prompting.json";

    /// Reads `dir/prompting.json`; `None` when `dir` is not a directory or has none.
    pub fn load(dir: &std::path::Path) -> Result<Option<Prompting>> {
        let path = dir.join(Self::FILE);
        if !dir.is_dir() || !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Invalid(format!("{}: corrupt prompting file: {e}", path.display())))
    }

    /// Writes `dir/prompting.json` (atomically).
    pub fn save(&self, dir: &std::path::Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("prompting serialises");
        spar_lm::checkpoint::write_atomic(&dir.join(Self::FILE), json.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_lm::jinja::JinjaTemplate;

    /// Meta-Llama-3-8B-Instruct's chat template (as in spar-lm's golden template file).
    const LLAMA3: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    fn observation() -> Observation {
        Observation {
            role: spar_core::Role::new("t", 0, "solver"),
            system: "Rules.".into(),
            role_text: String::new(),
            state_text: "What is 2+2?".into(),
            legal_actions: None,
            answer_format: String::new(),
        }
    }

    #[test]
    fn the_template_style_renders_the_models_jinja_template() {
        let special = [("bos_token".to_string(), "<|begin_of_text|>".to_string())].into();
        let tok = TextTokenizer::byte_level(&["<|eot_id|>"])
            .unwrap()
            .with_jinja_template(JinjaTemplate::new(LLAMA3, special).unwrap());
        let want = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nRules.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
        let obs = observation();
        assert_eq!(
            prompt_text(&tok, &obs, PromptStyle::Template).unwrap(),
            want
        );
        // Not ChatML: `chat` and `auto` fall back to the same Jinja rendering.
        assert_eq!(prompt_text(&tok, &obs, PromptStyle::Chat).unwrap(), want);
        assert_eq!(prompt_text(&tok, &obs, PromptStyle::Auto).unwrap(), want);
        assert_eq!(
            prompt_text(&tok, &obs, PromptStyle::Raw).unwrap(),
            format!("{}\n", obs.full_prompt())
        );
        // Without a template, `template` is an error that says what to use instead.
        let bare = TextTokenizer::byte_level(&["<|endoftext|>"]).unwrap();
        let err = prompt_text(&bare, &obs, PromptStyle::Template)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`template`") && err.contains("`raw`"), "{err}");
        assert_eq!(
            "template".parse::<PromptStyle>().unwrap(),
            PromptStyle::Template
        );
    }
}
