//! How `spar serve` runs: its configuration, its API key, the faults it can inject, and why it
//! may fail to start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use spar_lm::load::GgufMode;

/// Faults injected into generation requests, for testing clients (`spar serve --faults`).
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Probability that the connection is cut before the answer ends.
    pub drop: f64,
    /// Probability that the answer is held back for `stall_for` first.
    pub stall: f64,
    /// Probability of an HTTP 500 answer.
    pub error: f64,
    /// How long a stall lasts.
    pub stall_for: Duration,
    /// Seed of the fault draws.
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            drop: 0.0,
            stall: 0.0,
            error: 0.0,
            stall_for: Duration::from_secs(5),
            seed: 0,
        }
    }
}

impl std::str::FromStr for Faults {
    type Err = String;

    /// `drop=0.1,stall=0.1,error=0.2,stall_ms=3000,seed=7` (any subset).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut faults = Faults::default();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                format!(
                    "fault {part:?} is not KEY=VALUE (keys: drop, stall, error, stall_ms, seed)"
                )
            })?;
            let number = |v: &str| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("fault {key}={v:?} is not a number"))
            };
            let probability = |v: &str| {
                let p = number(v)?;
                if (0.0..=1.0).contains(&p) {
                    Ok(p)
                } else {
                    Err(format!("fault {key}={p} is not a probability in [0, 1]"))
                }
            };
            match key.trim() {
                "drop" => faults.drop = probability(value)?,
                "stall" => faults.stall = probability(value)?,
                "error" => faults.error = probability(value)?,
                "stall_ms" => faults.stall_for = Duration::from_millis(number(value)? as u64),
                "seed" => faults.seed = number(value)? as u64,
                other => {
                    return Err(format!(
                        "unknown fault {other:?} (keys: drop, stall, error, stall_ms, seed)"
                    ))
                }
            }
        }
        if faults.drop + faults.stall + faults.error > 1.0 {
            return Err("fault probabilities drop + stall + error exceed 1".into());
        }
        Ok(faults)
    }
}

/// The key the endpoints that change the served model require as `Authorization: Bearer KEY`
/// (`spar serve --api-key`). Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key: printable ASCII without spaces (what an HTTP header carries), surrounding
    /// whitespace trimmed.
    pub fn new(key: &str) -> Result<ApiKey, String> {
        let key = key.trim();
        if key.is_empty() {
            return Err("the API key is empty".into());
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "the API key must be printable ASCII without spaces (it travels in an HTTP \
                 header)"
                    .into(),
            );
        }
        Ok(ApiKey(key.to_string()))
    }

    /// Whether `given` is this key, compared in time independent of where they differ.
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// How `spar serve` runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// A checkpoint directory or a `.gguf` file.
    pub model: PathBuf,
    /// The name requests use for the base model (default: the file or directory name).
    pub served_name: Option<String>,
    /// Adapters loaded at start: `(name, directory)`.
    pub loras: Vec<(String, PathBuf)>,
    /// Address to listen on, e.g. `127.0.0.1:8000` (port 0 picks a free port).
    pub addr: String,
    /// Most sequences sampled in one batch.
    pub max_batch: usize,
    /// How long the worker waits for more requests before sampling a batch.
    pub batch_window: Duration,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest `max_tokens` accepted.
    pub max_tokens_limit: usize,
    /// Most connections open at once (more are answered 503).
    pub max_connections: usize,
    /// GGUF files: quantised or dequantised weights.
    pub gguf_mode: GgufMode,
    /// The version of the weights loaded at start.
    pub weight_version: String,
    /// Injected faults (none by default).
    pub faults: Faults,
    /// The key the adapter and weight endpoints require; without one they answer on loopback
    /// only (403 on any other address).
    pub api_key: Option<ApiKey>,
}

impl ServeConfig {
    /// Defaults for serving `model` on `addr`.
    pub fn new(model: &Path, addr: &str) -> ServeConfig {
        ServeConfig {
            model: model.to_path_buf(),
            served_name: None,
            loras: Vec::new(),
            addr: addr.to_string(),
            max_batch: 64,
            batch_window: Duration::ZERO,
            max_body_bytes: 8 * 1024 * 1024,
            max_tokens_limit: 4096,
            max_connections: 512,
            gguf_mode: GgufMode::Quantized,
            weight_version: "0".to_string(),
            faults: Faults::default(),
            api_key: None,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The model or an adapter did not load.
    #[error("{0}")]
    Model(#[from] spar_lm::LmError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another server on that port? try --port 0)")]
    Bind {
        /// The address.
        addr: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The async runtime of the HTTP side did not start.
    #[error("cannot start the HTTP runtime: {0}")]
    Runtime(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_reject_nonsense() {
        let f: Faults = "drop=0.1,stall=0.2,error=0.3,stall_ms=50,seed=4"
            .parse()
            .unwrap();
        assert_eq!(
            (f.drop, f.stall, f.error, f.stall_for, f.seed),
            (0.1, 0.2, 0.3, Duration::from_millis(50), 4)
        );
        assert!("drop=2"
            .parse::<Faults>()
            .unwrap_err()
            .contains("probability"));
        assert!("drop=0.6,error=0.6"
            .parse::<Faults>()
            .unwrap_err()
            .contains("exceed"));
        assert!("explode=1"
            .parse::<Faults>()
            .unwrap_err()
            .contains("unknown fault"));
    }

    #[test]
    fn api_keys_compare_whole_and_never_print() {
        let key = ApiKey::new("  s3cret-key ").unwrap();
        assert!(key.matches("s3cret-key"));
        assert!(!key.matches("s3cret-kez"));
        assert!(!key.matches("s3cret-ke"));
        assert!(!key.matches("s3cret-key2"));
        assert!(!format!("{key:?}").contains("s3cret"));
        assert!(ApiKey::new(" ").unwrap_err().contains("empty"));
        assert!(ApiKey::new("a b").unwrap_err().contains("printable"));
        assert!(ApiKey::new("ключ").unwrap_err().contains("printable"));
    }
}
