//! The OpenAI-compatible wire format: requests and responses of `/v1/completions` and
//! `/v1/chat/completions`, the weight-update endpoints of vLLM and SGLang, and the error body.
//!
//! Field names follow OpenAI's API reference; the extensions vLLM adds (`top_k`,
//! `return_token_ids`, token-id prompts) are kept under vLLM's names
//! (`vllm/entrypoints/openai/completion/protocol.py`). spar adds two fields of its own, both
//! optional and ignored by other servers:
//! * `seed_stream`: the random stream of the request's `seed` (ChaCha8 stream), so that a batch
//!   of prompts sampled by a server draws exactly what the in-process batch would draw;
//! * `weight_version` in every response: the version of the weights that produced it (the
//!   `weight_version` given to `/update_weights_from_disk`, or the adapter's name); in a
//!   completion request, the version the caller expects (a mismatch is answered 409).
//!
//! Unknown request fields are accepted and ignored, as OpenAI's own servers do.

use serde::{Deserialize, Serialize};

/// A completion prompt: text, or token ids, one or a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// One text prompt.
    Text(String),
    /// Several text prompts.
    Texts(Vec<String>),
    /// One prompt as token ids.
    Ids(Vec<u32>),
    /// Several prompts as token ids.
    IdsBatch(Vec<Vec<u32>>),
}

/// `stop`: one string or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several stop strings.
    Many(Vec<String>),
}

impl Stop {
    /// The stop strings as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(v) => v.clone(),
        }
    }
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// The model (a served name or an adapter's name; empty or absent: the base model).
    #[serde(default)]
    pub model: String,
    /// The prompt(s).
    pub prompt: Option<Prompt>,
    /// Most new tokens (OpenAI's default is 16).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// Softmax temperature (default 1; 0 is greedy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// vLLM: keep the `top_k` most likely tokens (0 or -1 keeps all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i64>,
    /// Completions per prompt (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<usize>,
    /// Answer as server-sent events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Return the log-probability of every token (any value; spar returns the sampled token's
    /// log-probability and no alternatives).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<usize>,
    /// Put the prompt in front of the completion (with its log-probabilities when `logprobs`
    /// is set): with `max_tokens = 0` this scores a given text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
    /// Stop strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Seed of the sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// spar: the random stream of `seed` used by the first completion (choice `j` of prompt
    /// `i` uses stream `seed_stream + i * n + j`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_stream: Option<u64>,
    /// vLLM: return the prompt's and completion's token ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_token_ids: Option<bool>,
    /// spar: the weight version the caller expects; spar serve answers 409 when the model
    /// would answer with another one (other servers ignore the field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_version: Option<String>,
}

/// Per-token log-probabilities of a `/v1/completions` choice (OpenAI's legacy format).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionLogprobs {
    /// The tokens' texts.
    pub tokens: Vec<String>,
    /// Each token's log-probability (`null` for the first prompt token when echoing).
    pub token_logprobs: Vec<Option<f32>>,
    /// Alternatives per position (spar returns none).
    #[serde(default)]
    pub top_logprobs: Option<Vec<serde_json::Value>>,
    /// Each token's character offset in the choice's text.
    #[serde(default)]
    pub text_offset: Vec<usize>,
}

/// One choice of a `/v1/completions` response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionChoice {
    /// Position in `choices`.
    pub index: usize,
    /// The text (the prompt's text in front when echoing).
    pub text: String,
    /// Per-token log-probabilities when asked for.
    #[serde(default)]
    pub logprobs: Option<CompletionLogprobs>,
    /// `stop` or `length` (`null` in stream chunks before the last).
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// vLLM: the prompt's token ids (with `return_token_ids`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_token_ids: Option<Vec<u32>>,
    /// vLLM: the completion's token ids (with `return_token_ids`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ids: Option<Vec<u32>>,
}

/// Token counts of a request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens.
    pub completion_tokens: usize,
    /// Their sum.
    pub total_tokens: usize,
}

/// A `/v1/completions` response (or one stream chunk of it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionResponse {
    /// Request id.
    #[serde(default)]
    pub id: String,
    /// `text_completion`.
    #[serde(default)]
    pub object: String,
    /// Unix time.
    #[serde(default)]
    pub created: u64,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// The choices.
    pub choices: Vec<CompletionChoice>,
    /// Token counts.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// spar: the weight version that produced the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_version: Option<String>,
}

/// One chat message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text (OpenAI's list of content parts is accepted when every part is text).
    #[serde(deserialize_with = "content_text")]
    pub content: String,
}

fn content_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Content {
        Text(String),
        Parts(Vec<Part>),
        Null(()),
    }
    #[derive(Deserialize)]
    struct Part {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        text: String,
    }
    match Content::deserialize(d)? {
        Content::Text(s) => Ok(s),
        Content::Null(()) => Ok(String::new()),
        Content::Parts(parts) => {
            let mut out = String::new();
            for p in parts {
                if p.kind != "text" {
                    return Err(serde::de::Error::custom(format!(
                        "content part of type {:?}: only text parts are supported",
                        p.kind
                    )));
                }
                out.push_str(&p.text);
            }
            Ok(out)
        }
    }
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model (a served name or an adapter's name; empty or absent: the base model).
    #[serde(default)]
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Most new tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// Most new tokens (OpenAI's newer name; wins over `max_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<usize>,
    /// Softmax temperature (default 1; 0 is greedy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// vLLM: top-k truncation (0 or -1 keeps all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i64>,
    /// Completions (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<usize>,
    /// Answer as server-sent events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Stop strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Seed of the sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// spar: random stream of `seed` for the first choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_stream: Option<u64>,
    /// Return per-token log-probabilities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    /// Alternatives per position (spar returns none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<usize>,
    /// vLLM: return the completion's token ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_token_ids: Option<bool>,
}

/// One token's log-probability in a chat choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatTokenLogprob {
    /// The token's text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f32,
    /// Its UTF-8 bytes.
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
    /// Alternatives (spar returns none).
    #[serde(default)]
    pub top_logprobs: Vec<serde_json::Value>,
}

/// Log-probabilities of a chat choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatLogprobs {
    /// One entry per generated token.
    #[serde(default)]
    pub content: Option<Vec<ChatTokenLogprob>>,
}

/// The assistant's message in a chat choice (or a stream delta).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssistantMessage {
    /// `assistant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One choice of a chat response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatChoice {
    /// Position in `choices`.
    pub index: usize,
    /// The answer (absent in stream chunks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<AssistantMessage>,
    /// Stream chunks: the new text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<AssistantMessage>,
    /// Per-token log-probabilities when asked for.
    #[serde(default)]
    pub logprobs: Option<ChatLogprobs>,
    /// `stop` or `length`.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// vLLM: the completion's token ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ids: Option<Vec<u32>>,
}

/// A `/v1/chat/completions` response (or one stream chunk).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// Request id.
    #[serde(default)]
    pub id: String,
    /// `chat.completion` or `chat.completion.chunk`.
    #[serde(default)]
    pub object: String,
    /// Unix time.
    #[serde(default)]
    pub created: u64,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// The choices.
    pub choices: Vec<ChatChoice>,
    /// Token counts.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// spar: the weight version that produced the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_version: Option<String>,
}

/// `POST /v1/load_lora_adapter` (vLLM; SGLang's `/load_lora_adapter` takes the same fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadLoraRequest {
    /// The name requests use in `model`.
    pub lora_name: String,
    /// A PEFT adapter directory (`adapter_config.json`, `adapter_model.safetensors`).
    pub lora_path: String,
    /// Replace an adapter already loaded under this name (vLLM's `load_inplace`).
    #[serde(default)]
    pub load_inplace: bool,
}

/// `POST /v1/unload_lora_adapter`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnloadLoraRequest {
    /// The adapter's name.
    pub lora_name: String,
}

/// `POST /update_weights_from_disk` (SGLang's fields; spar reads `model_path` and
/// `weight_version`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateWeightsRequest {
    /// A checkpoint directory with the served model's architecture.
    pub model_path: String,
    /// The version answers will carry from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_version: Option<String>,
}

/// The answer of `/update_weights_from_disk` (SGLang's shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateWeightsResponse {
    /// Whether the weights were replaced.
    pub success: bool,
    /// What happened.
    pub message: String,
    /// Requests paused by the update (spar updates between batches: always 0).
    #[serde(default)]
    pub num_paused_requests: usize,
}

/// `POST /tokenize` (vLLM).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenizeRequest {
    /// The model (optional).
    #[serde(default)]
    pub model: Option<String>,
    /// The text.
    pub prompt: String,
}

/// The answer of `/tokenize`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenizeResponse {
    /// The token ids.
    pub tokens: Vec<u32>,
    /// Their number.
    pub count: usize,
    /// The model's context length.
    pub max_model_len: usize,
}

/// `POST /detokenize` (vLLM).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetokenizeRequest {
    /// The model (optional).
    #[serde(default)]
    pub model: Option<String>,
    /// The token ids.
    pub tokens: Vec<u32>,
}

/// The answer of `/detokenize`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetokenizeResponse {
    /// The text.
    pub prompt: String,
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// The name requests use.
    pub id: String,
    /// `model`.
    pub object: String,
    /// Unix time it was loaded.
    pub created: u64,
    /// `spar`.
    pub owned_by: String,
    /// The base model of an adapter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Context length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<usize>,
    /// spar: the weight version it answers with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_version: Option<String>,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    /// `list`.
    pub object: String,
    /// The models.
    pub data: Vec<ModelCard>,
}

/// OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// What went wrong and how to fix it.
    pub message: String,
    /// `invalid_request_error`, `not_found_error`, `server_error`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The offending field, when one is.
    #[serde(default)]
    pub param: Option<String>,
    /// The HTTP status as a string (vLLM sends the number).
    #[serde(default)]
    pub code: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_parse_in_every_openai_shape() {
        let parse = |s: &str| serde_json::from_str::<Prompt>(s).unwrap();
        assert_eq!(parse(r#""hi""#), Prompt::Text("hi".into()));
        assert_eq!(
            parse(r#"["a","b"]"#),
            Prompt::Texts(vec!["a".into(), "b".into()])
        );
        assert_eq!(parse("[1,2,3]"), Prompt::Ids(vec![1, 2, 3]));
        assert_eq!(
            parse("[[1],[2,3]]"),
            Prompt::IdsBatch(vec![vec![1], vec![2, 3]])
        );
    }

    #[test]
    fn chat_content_may_be_text_parts() {
        let m: ChatMessage = serde_json::from_str(
            r#"{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(m.content, "ab");
        let err = serde_json::from_str::<ChatMessage>(
            r#"{"role":"user","content":[{"type":"image_url","image_url":{}}]}"#,
        );
        assert!(err.is_err());
    }

    #[test]
    fn unknown_request_fields_are_ignored() {
        let r: ChatRequest =
            serde_json::from_str(r#"{"model":"m","messages":[],"user":"x","frequency_penalty":0}"#)
                .unwrap();
        assert_eq!(r.model, "m");
    }
}
