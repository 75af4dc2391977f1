//! From an observation to token ids, and where a completion ends.
//!
//! A policy must be trained and evaluated on the same prompts. [`PromptStyle::Chat`] renders the
//! observation with the tokenizer's chat template (system message = the rules, user message =
//! [`Observation::prompt`], then the assistant header), as SPIRAL does with its models' chat
//! templates; [`PromptStyle::Raw`] writes [`Observation::full_prompt`] followed by a newline,
//! for small models trained from scratch that have no template. A completion ends with the
//! tokenizer's first end-of-sequence token ([`stop_token`]).

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
    /// `full_prompt()` and a newline.
    Raw,
}

impl std::str::FromStr for PromptStyle {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(PromptStyle::Auto),
            "chat" => Ok(PromptStyle::Chat),
            "raw" => Ok(PromptStyle::Raw),
            other => Err(Error::Invalid(format!(
                "prompt style {other:?} is not one of auto, chat, raw"
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
    let template = tokenizer.chat_template();
    let chat = match (style, template) {
        (PromptStyle::Raw, _) | (PromptStyle::Auto, None) => None,
        (_, Some(t)) => Some(t),
        (PromptStyle::Chat, None) => {
            return Err(Error::Invalid(
                "prompt style `chat` needs a tokenizer with a chat template; use `raw`".into(),
            ))
        }
    };
    Ok(match chat {
        Some(template) => {
            let mut messages = Vec::new();
            if !observation.system.trim().is_empty() {
                messages.push(Message::new("system", observation.system.trim_end()));
            }
            messages.push(Message::new("user", &observation.prompt()));
            template.render(&messages, true)
        }
        None => format!("{}\n", observation.full_prompt()),
    })
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
    /// Prompt style (`auto`, `chat`, `raw`).
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
