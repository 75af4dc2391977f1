//! Why a remote call failed ([`RemoteError`]), and the server's own message found in an
//! error body.

use serde_json::Value;

/// Characters of a body quoted in an error.
const EXCERPT_CHARS: usize = 200;

/// Why a remote call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RemoteError {
    /// The connection failed (refused, DNS, reset before an answer), after every retry.
    #[error(
        "the server at {url} could not be reached ({message}); check that it is running \
         (spar's own: `spar serve --model DIR --port PORT`) and that the URL (scheme, host, \
         port, `/v1`) is right"
    )]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport's error.
        message: String,
    },
    /// No full answer within the timeout, after every retry.
    #[error(
        "no full answer from {url} within {seconds} s, after every retry; the server may be \
         overloaded, or the timeout too short for the request"
    )]
    Timeout {
        /// The URL called.
        url: String,
        /// The timeout that ran out.
        seconds: f64,
    },
    /// The server answered with a status other than 2xx.
    #[error("{url} answered HTTP {status}: {message}")]
    Status {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's `error.message` when it sent OpenAI's error body, else an excerpt of
        /// the body.
        message: String,
    },
    /// A 2xx answer that is not the expected JSON, after every retry.
    #[error("{url} answered with something other than the expected JSON: {message}")]
    Garbage {
        /// The URL called.
        url: String,
        /// The parse error and an excerpt of the body.
        message: String,
    },
    /// The client's configuration or a request cannot work.
    #[error("invalid remote client configuration: {0}")]
    Invalid(String),
}

/// The server's message in an error body: OpenAI's `error.message`, Ollama's `error`,
/// SGLang's `message`, FastAPI's `detail`, else an excerpt of the body.
pub(super) fn error_message(status: u16, body: &str) -> String {
    if let Ok(json) = serde_json::from_str::<Value>(body) {
        let found = [
            json.pointer("/error/message"),
            json.get("error"),
            json.get("message"),
            json.get("detail"),
        ]
        .into_iter()
        .flatten()
        .find_map(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::Array(_) => Some(v.to_string()),
            _ => None,
        });
        if let Some(message) = found {
            return message;
        }
    }
    if body.trim().is_empty() {
        let reason = ureq::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no reason");
        format!("{reason} (empty body)")
    } else {
        excerpt(body)
    }
}

/// At most [`EXCERPT_CHARS`] characters of `text`, with `…` when cut.
pub(super) fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}
