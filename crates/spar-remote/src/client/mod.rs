//! A blocking client for OpenAI-compatible servers: vLLM, SGLang, llama.cpp, Ollama and spar's
//! own `spar serve`.
//!
//! Contract:
//! * every request goes through one retry policy: transport errors (refused, reset, a body cut
//!   short), timeouts, HTTP 429 and 5xx, and a 2xx body that is not the expected JSON are retried
//!   up to [`ClientConfig::max_retries`] times with exponential backoff (plus up to 10% jitter),
//!   honouring a `Retry-After` header given in seconds (capped at
//!   [`ClientConfig::backoff_max`]); any other status is returned at once as
//!   [`RemoteError::Status`] with the server's own message;
//! * at most [`ClientConfig::concurrency`] requests are in flight at once through one client and
//!   all its clones (a permit is held per attempt and released while backing off);
//! * every attempt and every failure is counted in [`ClientStats`];
//! * nothing here panics on a bad answer: a failed call is an `Err(RemoteError)`, which callers
//!   inside an episode treat as data (`docs/STYLE.md`, rule 5).
//!
//! vLLM and SGLang serve the OpenAI routes under `/v1` and their own routes (`/tokenize`,
//! `/health`, `/update_weights_from_disk`) at the root: [`Client::api_url`] joins onto the base
//! URL, [`Client::root_url`] onto `scheme://host:port`.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use ureq::http::{HeaderValue, Response, Uri};
use ureq::{Agent, Body};

mod errors;
mod limits;

pub use errors::RemoteError;
use errors::{error_message, excerpt};
use limits::{lock, Counters, Semaphore};

use crate::protocol::{
    ChatRequest, ChatResponse, CompletionRequest, CompletionResponse, LoadLoraRequest, ModelList,
    TokenizeRequest, TokenizeResponse, UnloadLoraRequest, UpdateWeightsRequest,
    UpdateWeightsResponse,
};

/// Largest 2xx body read (a batch of completions with log-probabilities can be large).
const MAX_BODY_BYTES: u64 = 1 << 30;
/// Largest error body read to find the server's message.
const MAX_ERROR_BODY_BYTES: u64 = 1 << 20;
/// The jitter added to a backoff, as a fraction of it.
const JITTER: f64 = 0.1;

/// How to reach a server and how hard to try.
#[derive(Clone)]
pub struct ClientConfig {
    /// The OpenAI base URL, e.g. `http://127.0.0.1:8000/v1` (a trailing slash is tolerated).
    pub base_url: String,
    /// Sent as `Authorization: Bearer KEY` when set.
    pub api_key: Option<String>,
    /// Whole-request timeout, response body included (default 60 s).
    pub timeout: Duration,
    /// Timeout to open the connection (default 5 s).
    pub connect_timeout: Duration,
    /// Retries after the first attempt (default 4: up to 5 attempts).
    pub max_retries: u32,
    /// The first backoff; it doubles on every retry up to `backoff_max` (default 200 ms).
    pub backoff: Duration,
    /// The longest backoff, and the longest `Retry-After` honoured (default 5 s).
    pub backoff_max: Duration,
    /// Most requests in flight at once through this client and its clones (default 16).
    pub concurrency: usize,
}

impl ClientConfig {
    /// The defaults for a server at `base_url`; the API key comes from the environment
    /// (`SPAR_API_KEY`, else `OPENAI_API_KEY`, else none).
    pub fn new(base_url: &str) -> ClientConfig {
        let api_key = ["SPAR_API_KEY", "OPENAI_API_KEY"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|key| !key.trim().is_empty());
        ClientConfig {
            base_url: base_url.to_string(),
            api_key,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            max_retries: 4,
            backoff: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            concurrency: 16,
        }
    }
}

// By hand, so that the API key never reaches a log.
impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("backoff_max", &self.backoff_max)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// Counts since the client was built (shared by its clones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClientStats {
    /// Attempts sent (retries included).
    pub requests: u64,
    /// Attempts that were retries.
    pub retries: u64,
    /// Calls that returned an error.
    pub failures: u64,
    /// Attempts that timed out.
    pub timeouts: u64,
    /// Attempts answered with 429 or a 5xx status.
    pub server_errors: u64,
    /// Attempts that failed at the transport level (refused, reset, cut short).
    pub connection_errors: u64,
}

/// A blocking client for an OpenAI-compatible server; cheap to clone (clones share the
/// connection pool, the concurrency limit and the counts).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    /// `base_url` without its trailing slashes.
    base: String,
    /// `scheme://authority` of `base_url`.
    root: String,
    /// `Bearer KEY`, validated as a header value.
    authorization: Option<String>,
    agent: Agent,
    permits: Semaphore,
    counters: Counters,
    jitter: Mutex<ChaCha8Rng>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed, and whether another is worth it.
struct Failed {
    error: RemoteError,
    retry: Retry,
}

enum Retry {
    No,
    /// Yes, after the server's `Retry-After` when it gave one, else after the backoff.
    After(Option<Duration>),
}

impl Failed {
    fn fatal(error: RemoteError) -> Failed {
        Failed {
            error,
            retry: Retry::No,
        }
    }

    fn retry(error: RemoteError) -> Failed {
        Failed {
            error,
            retry: Retry::After(None),
        }
    }
}

impl Client {
    /// A client for `config`; fails on a base URL that is not `http://` or `https://`, a
    /// concurrency of 0, a zero timeout or an API key that cannot be a header.
    pub fn new(config: ClientConfig) -> Result<Client, RemoteError> {
        let base = config.base_url.trim().trim_end_matches('/').to_string();
        let uri: Uri = base.parse().map_err(|e| {
            RemoteError::Invalid(format!("base URL {:?} is not a URL: {e}", config.base_url))
        })?;
        let scheme = uri.scheme_str().unwrap_or("");
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
            return Err(RemoteError::Invalid(format!(
                "base URL {:?} must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)",
                config.base_url
            )));
        }
        let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
            return Err(RemoteError::Invalid(format!(
                "base URL {:?} names no host",
                config.base_url
            )));
        };
        let root = format!("{scheme}://{authority}");
        if config.concurrency == 0 {
            return Err(RemoteError::Invalid(
                "concurrency must be at least 1".into(),
            ));
        }
        if config.timeout.is_zero() || config.connect_timeout.is_zero() {
            return Err(RemoteError::Invalid(
                "timeout and connect_timeout must be longer than zero".into(),
            ));
        }
        let authorization = match &config.api_key {
            None => None,
            Some(key) => {
                let value = format!("Bearer {}", key.trim());
                if HeaderValue::from_str(&value).is_err() {
                    return Err(RemoteError::Invalid(
                        "the API key holds characters an HTTP header cannot carry".into(),
                    ));
                }
                Some(value)
            }
        };
        let agent: Agent = Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .timeout_connect(Some(config.connect_timeout))
            .http_status_as_error(false)
            .max_idle_connections(config.concurrency.max(10))
            .max_idle_connections_per_host(config.concurrency)
            .user_agent(concat!("spar/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        // Jitter only spreads retries of many clients apart: a time-based seed is enough.
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|t| t.as_nanos() as u64)
            .unwrap_or(0);
        Ok(Client {
            inner: Arc::new(Inner {
                permits: Semaphore::new(config.concurrency),
                config,
                base,
                root,
                authorization,
                agent,
                counters: Counters::default(),
                jitter: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            }),
        })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// `POST {base}/completions`.
    pub fn completions(
        &self,
        request: &CompletionRequest,
    ) -> Result<CompletionResponse, RemoteError> {
        self.post_json(&self.api_url("/completions"), request)
    }

    /// `POST {base}/chat/completions`.
    pub fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, RemoteError> {
        self.post_json(&self.api_url("/chat/completions"), request)
    }

    /// `GET {base}/models`.
    pub fn models(&self) -> Result<ModelList, RemoteError> {
        self.get_json(&self.api_url("/models"))
    }

    /// `POST {base}/load_lora_adapter` (vLLM; SGLang); returns the body's text.
    pub fn load_lora_adapter(&self, request: &LoadLoraRequest) -> Result<String, RemoteError> {
        let url = self.api_url("/load_lora_adapter");
        let body = serialize(request)?;
        self.call(&url, Some(&body), |text| Ok(text.to_string()))
    }

    /// `POST {base}/unload_lora_adapter`; returns the body's text.
    pub fn unload_lora_adapter(&self, request: &UnloadLoraRequest) -> Result<String, RemoteError> {
        let url = self.api_url("/unload_lora_adapter");
        let body = serialize(request)?;
        self.call(&url, Some(&body), |text| Ok(text.to_string()))
    }

    /// `POST {root}/update_weights_from_disk` (SGLang; `spar serve`). An answer with
    /// `success: false` is returned as [`RemoteError::Status`] with status 500 and the server's
    /// message.
    pub fn update_weights_from_disk(
        &self,
        request: &UpdateWeightsRequest,
    ) -> Result<UpdateWeightsResponse, RemoteError> {
        let url = self.root_url("/update_weights_from_disk");
        let response: UpdateWeightsResponse = self.post_json(&url, request)?;
        if response.success {
            Ok(response)
        } else {
            self.inner.counters.failures.fetch_add(1, Ordering::Relaxed);
            Err(RemoteError::Status {
                url,
                status: 500,
                message: response.message,
            })
        }
    }

    /// `POST {root}/tokenize` (vLLM).
    pub fn tokenize(&self, request: &TokenizeRequest) -> Result<TokenizeResponse, RemoteError> {
        self.post_json(&self.root_url("/tokenize"), request)
    }

    /// `GET {root}/health`: any 2xx answer is healthy.
    pub fn health(&self) -> Result<(), RemoteError> {
        self.call(&self.root_url("/health"), None, |_| Ok(()))
    }

    /// `POST url` (absolute) with `body` as JSON, parsing the answer as `R`, under the client's
    /// retry policy and concurrency limit.
    pub fn post_json<B: Serialize, R: DeserializeOwned>(
        &self,
        url: &str,
        body: &B,
    ) -> Result<R, RemoteError> {
        let body = serialize(body)?;
        self.call(url, Some(&body), |text| {
            serde_json::from_str(text).map_err(|e| e.to_string())
        })
    }

    /// `GET url` (absolute), parsing the answer as `R`, under the client's retry policy and
    /// concurrency limit.
    pub fn get_json<R: DeserializeOwned>(&self, url: &str) -> Result<R, RemoteError> {
        self.call(url, None, |text| {
            serde_json::from_str(text).map_err(|e| e.to_string())
        })
    }

    /// `POST url` (absolute) with `body` (which should ask for `"stream": true`) and read the
    /// answer as server-sent events: every `data:` event up to `data: [DONE]`, parsed as JSON.
    ///
    /// Attempts are retried as usual until a 2xx answer's headers arrive, never after: a stream
    /// that breaks off, times out or ends without `[DONE]` is an error. An event carrying
    /// OpenAI's error object (vLLM's way to fail mid-stream) is returned as
    /// [`RemoteError::Status`].
    pub fn post_stream(&self, url: &str, body: &Value) -> Result<Vec<Value>, RemoteError> {
        let body = serialize(body)?;
        let (permit, response) = self.with_retries(|| {
            let permit = self.inner.permits.acquire();
            let response = self.send(url, Some(&body))?;
            Ok((permit, response))
        })?;
        let events = self.read_events(url, response);
        drop(permit);
        if events.is_err() {
            self.inner.counters.failures.fetch_add(1, Ordering::Relaxed);
        }
        events
    }

    /// `path` joined onto the base URL: `api_url("/completions")` is
    /// `http://host:port/v1/completions` for the base `http://host:port/v1/`.
    pub fn api_url(&self, path: &str) -> String {
        join(&self.inner.base, path)
    }

    /// `path` joined onto `scheme://host:port` of the base URL, where vLLM and SGLang serve
    /// `/tokenize`, `/health` and `/update_weights_from_disk`.
    pub fn root_url(&self, path: &str) -> String {
        join(&self.inner.root, path)
    }

    /// The counts so far.
    pub fn stats(&self) -> ClientStats {
        self.inner.counters.snapshot()
    }

    /// `f` on every item, at most [`ClientConfig::concurrency`] at once (scoped threads); the
    /// results in the order of `items`. Requests `f` makes through this client are also limited
    /// by the client itself, so `f` may call it freely.
    pub fn map_concurrent<T: Send, R: Send>(
        &self,
        items: Vec<T>,
        f: impl Fn(T) -> R + Sync,
    ) -> Vec<R> {
        let workers = self.inner.config.concurrency.min(items.len());
        if workers <= 1 {
            return items.into_iter().map(f).collect();
        }
        let queue = Mutex::new(items.into_iter().enumerate());
        let f = &f;
        let queue = &queue;
        let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(move || {
                        let mut out = Vec::new();
                        loop {
                            let next = lock(queue).next();
                            let Some((i, item)) = next else { break };
                            out.push((i, f(item)));
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| match h.join() {
                    Ok(out) => out,
                    // A panic in `f` is the caller's bug: pass it on.
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        });
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, r)| r).collect()
    }

    /// One call: attempts of `url` until one answers 2xx with a body `parse` accepts.
    fn call<T>(
        &self,
        url: &str,
        body: Option<&str>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, RemoteError> {
        self.with_retries(|| {
            let _permit = self.inner.permits.acquire();
            let mut response = self.send(url, body)?;
            let bytes = response
                .body_mut()
                .with_config()
                .limit(MAX_BODY_BYTES)
                .read_to_vec()
                .map_err(|e| self.transport_failure(url, e))?;
            let garbage = |message: String| {
                Failed::retry(RemoteError::Garbage {
                    url: url.to_string(),
                    message,
                })
            };
            let text = String::from_utf8(bytes).map_err(|e| {
                let text = String::from_utf8_lossy(e.as_bytes());
                garbage(format!(
                    "the body is not UTF-8; it begins {:?}",
                    excerpt(&text)
                ))
            })?;
            parse(&text).map_err(|e| garbage(format!("{e}; the body begins {:?}", excerpt(&text))))
        })
    }

    /// Runs `attempt` until it succeeds, fails for good or the retries run out, sleeping the
    /// backoff between attempts; counts retries and failures.
    fn with_retries<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, Failed>,
    ) -> Result<T, RemoteError> {
        let counters = &self.inner.counters;
        let config = &self.inner.config;
        let mut retries = 0;
        loop {
            let failed = match attempt() {
                Ok(value) => return Ok(value),
                Err(failed) => failed,
            };
            let wait = match failed.retry {
                Retry::After(wait) if retries < config.max_retries => wait,
                _ => {
                    counters.failures.fetch_add(1, Ordering::Relaxed);
                    return Err(failed.error);
                }
            };
            let delay = match wait {
                Some(wait) => wait.min(config.backoff_max),
                None => {
                    let unit: f64 = lock(&self.inner.jitter).gen();
                    backoff_delay(config.backoff, config.backoff_max, retries, unit)
                }
            };
            retries += 1;
            counters.retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(delay);
        }
    }

    /// Sends one attempt (a POST when there is a body, else a GET) and returns a 2xx response
    /// with its body unread; anything else is a [`Failed`].
    fn send(&self, url: &str, body: Option<&str>) -> Result<Response<Body>, Failed> {
        let inner = &*self.inner;
        inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        let result = match body {
            None => {
                let mut request = inner.agent.get(url);
                if let Some(value) = &inner.authorization {
                    request = request.header("Authorization", value);
                }
                request.call()
            }
            Some(body) => {
                let mut request = inner
                    .agent
                    .post(url)
                    .header("Content-Type", "application/json");
                if let Some(value) = &inner.authorization {
                    request = request.header("Authorization", value);
                }
                request.send(body)
            }
        };
        let mut response = result.map_err(|e| self.transport_failure(url, e))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        // The body of an error only serves its message: a failure to read it is no matter.
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ERROR_BODY_BYTES)
            .lossy_utf8(true)
            .read_to_string()
            .unwrap_or_default();
        let error = RemoteError::Status {
            url: url.to_string(),
            status,
            message: error_message(status, &text),
        };
        if status == 429 || status >= 500 {
            inner.counters.server_errors.fetch_add(1, Ordering::Relaxed);
            let wait = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            Err(Failed {
                error,
                retry: Retry::After(wait),
            })
        } else {
            Err(Failed::fatal(error))
        }
    }

    /// Classifies and counts a transport-level error of an attempt on `url`.
    fn transport_failure(&self, url: &str, error: ureq::Error) -> Failed {
        let counters = &self.inner.counters;
        let config = &self.inner.config;
        let url = url.to_string();
        let timeout = |seconds: f64| {
            counters.timeouts.fetch_add(1, Ordering::Relaxed);
            Failed::retry(RemoteError::Timeout {
                url: url.clone(),
                seconds,
            })
        };
        match error {
            ureq::Error::Timeout(ureq::Timeout::Connect) => {
                timeout(config.connect_timeout.as_secs_f64())
            }
            ureq::Error::Timeout(_) => timeout(config.timeout.as_secs_f64()),
            ureq::Error::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                timeout(config.timeout.as_secs_f64())
            }
            e @ (ureq::Error::BadUri(_)
            | ureq::Error::Http(_)
            | ureq::Error::InvalidProxyUrl
            | ureq::Error::RequireHttpsOnly(_)) => {
                Failed::fatal(RemoteError::Invalid(format!("request to {url}: {e}")))
            }
            ureq::Error::BodyExceedsLimit(limit) => Failed::fatal(RemoteError::Garbage {
                url,
                message: format!("the body is larger than {limit} bytes"),
            }),
            // A certificate or a redirect will not change by trying again.
            e @ (ureq::Error::Tls(_)
            | ureq::Error::Rustls(_)
            | ureq::Error::TooManyRedirects
            | ureq::Error::RedirectFailed) => {
                counters.connection_errors.fetch_add(1, Ordering::Relaxed);
                Failed::fatal(RemoteError::Unreachable {
                    url,
                    message: e.to_string(),
                })
            }
            e => {
                counters.connection_errors.fetch_add(1, Ordering::Relaxed);
                Failed::retry(RemoteError::Unreachable {
                    url,
                    message: e.to_string(),
                })
            }
        }
    }

    /// Reads server-sent events up to `data: [DONE]`.
    fn read_events(
        &self,
        url: &str,
        mut response: Response<Body>,
    ) -> Result<Vec<Value>, RemoteError> {
        let reader = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .reader();
        let mut reader = BufReader::new(reader);
        let mut events = Vec::new();
        let mut data: Option<String> = None;
        let mut line = String::new();
        let garbage = |message: String| RemoteError::Garbage {
            url: url.to_string(),
            message,
        };
        loop {
            line.clear();
            let eof = match reader.read_line(&mut line) {
                Ok(n) => n == 0,
                Err(e) => {
                    let failed = self.transport_failure(url, ureq::Error::from(e));
                    return Err(match failed.error {
                        RemoteError::Unreachable { url, message } => RemoteError::Unreachable {
                            url,
                            message: format!(
                                "the stream broke off after {} events: {message}",
                                events.len()
                            ),
                        },
                        error => error,
                    });
                }
            };
            let field = line.trim_end_matches(['\r', '\n']);
            if let Some(value) = field.strip_prefix("data:") {
                let value = value.strip_prefix(' ').unwrap_or(value);
                match &mut data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => data = Some(value.to_string()),
                }
            }
            // A blank line ends an event; other fields (`event:`, `id:`, `: comment`) are
            // ignored, as OpenAI's streams carry everything in `data:`.
            if field.is_empty() || eof {
                if let Some(data) = data.take() {
                    if data.trim() == "[DONE]" {
                        return Ok(events);
                    }
                    let event: Value = serde_json::from_str(&data).map_err(|e| {
                        garbage(format!(
                            "event {} is not JSON ({e}); it begins {:?}",
                            events.len(),
                            excerpt(&data)
                        ))
                    })?;
                    if let Some(error) = event.get("error").filter(|e| e.is_object()) {
                        let status = error
                            .get("code")
                            .and_then(|c| c.as_u64().or_else(|| c.as_str()?.parse().ok()))
                            .and_then(|c| u16::try_from(c).ok())
                            .filter(|c| (400..600).contains(c))
                            .unwrap_or(500);
                        return Err(RemoteError::Status {
                            url: url.to_string(),
                            status,
                            message: error_message(status, &event.to_string()),
                        });
                    }
                    events.push(event);
                }
            }
            if eof {
                return Err(garbage(format!(
                    "the stream ended after {} events without `data: [DONE]`",
                    events.len()
                )));
            }
        }
    }
}

/// `base` and `path` with exactly one slash between them.
fn join(base: &str, path: &str) -> String {
    if path.is_empty() {
        return base.to_string();
    }
    format!("{base}/{}", path.trim_start_matches('/'))
}

fn serialize<B: Serialize + ?Sized>(body: &B) -> Result<String, RemoteError> {
    serde_json::to_string(body)
        .map_err(|e| RemoteError::Invalid(format!("the request body cannot be JSON: {e}")))
}

/// The `retry`-th backoff (0 for the first retry): `backoff * 2^retry`, capped at `max`, plus
/// `JITTER * unit` of itself (`unit` uniform in [0, 1)).
fn backoff_delay(backoff: Duration, max: Duration, retry: u32, unit: f64) -> Duration {
    let base = backoff.saturating_mul(2u32.saturating_pow(retry)).min(max);
    let jitter = Duration::try_from_secs_f64(base.as_secs_f64() * JITTER * unit.clamp(0.0, 1.0))
        .unwrap_or(Duration::ZERO);
    base.saturating_add(jitter)
}

/// `Retry-After` in seconds (the HTTP-date form is ignored: the backoff applies).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    use super::*;

    /// One scripted answer: after reading the request, wait `delay`, write `bytes`, close.
    #[derive(Clone)]
    struct Step {
        delay: Duration,
        bytes: Vec<u8>,
    }

    fn answer(status: u16, headers: &str, body: &str) -> Step {
        Step {
            delay: Duration::ZERO,
            bytes: format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
                body.len()
            )
            .into_bytes(),
        }
    }

    fn json(status: u16, body: &str) -> Step {
        answer(status, "Content-Type: application/json\r\n", body)
    }

    fn ok() -> Step {
        json(200, r#"{"object":"list","data":[]}"#)
    }

    fn delayed(delay: Duration, step: Step) -> Step {
        Step { delay, ..step }
    }

    /// Headers promising 100 bytes, 10 of them, then the connection closes.
    fn cut_short() -> Step {
        Step {
            delay: Duration::ZERO,
            bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n0123456789"
                .to_vec(),
        }
    }

    /// A scripted HTTP server on 127.0.0.1: connection `i` is answered by `script[i]` (the last
    /// step repeats), each on its own thread.
    struct Mock {
        url: String,
        /// Every request's head and body, in the order they were read.
        requests: Arc<Mutex<Vec<String>>>,
        /// The most connections between accept and answer at once.
        max_in_flight: Arc<AtomicUsize>,
    }

    impl Mock {
        fn start(script: Vec<Step>) -> Mock {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}/v1", listener.local_addr().unwrap());
            let requests = Arc::new(Mutex::new(Vec::new()));
            let max_in_flight = Arc::new(AtomicUsize::new(0));
            let in_flight = Arc::new(AtomicUsize::new(0));
            let (log, max) = (requests.clone(), max_in_flight.clone());
            std::thread::spawn(move || {
                for (i, stream) in listener.incoming().enumerate() {
                    let Ok(stream) = stream else { continue };
                    let step = script[i.min(script.len() - 1)].clone();
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(now, Ordering::SeqCst);
                    let (log, in_flight) = (log.clone(), in_flight.clone());
                    std::thread::spawn(move || serve(stream, &step, &log, &in_flight));
                }
            });
            Mock {
                url,
                requests,
                max_in_flight,
            }
        }

        fn requests(&self) -> Vec<String> {
            lock(&self.requests).clone()
        }
    }

    fn serve(
        mut stream: TcpStream,
        step: &Step,
        log: &Mutex<Vec<String>>,
        in_flight: &AtomicUsize,
    ) {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break request.len(),
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        };
        let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while request.len() < head_end + length {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        lock(log).push(String::from_utf8_lossy(&request).into_owned());
        std::thread::sleep(step.delay);
        // Counted out before answering, so that a client's next request cannot overlap.
        in_flight.fetch_sub(1, Ordering::SeqCst);
        let _ = stream.write_all(&step.bytes);
        let _ = stream.flush();
    }

    fn config(url: &str) -> ClientConfig {
        ClientConfig {
            api_key: None,
            backoff: Duration::from_millis(1),
            backoff_max: Duration::from_millis(5),
            timeout: Duration::from_secs(5),
            ..ClientConfig::new(url)
        }
    }

    fn client(mock: &Mock) -> Client {
        Client::new(config(&mock.url)).unwrap()
    }

    fn stats(requests: u64, retries: u64, failures: u64) -> ClientStats {
        ClientStats {
            requests,
            retries,
            failures,
            ..ClientStats::default()
        }
    }

    #[test]
    fn a_500_is_retried() {
        let mock = Mock::start(vec![json(500, "{}"), ok()]);
        let client = client(&mock);
        let models = client.models().unwrap();
        assert_eq!(models.object, "list");
        let expected = ClientStats {
            server_errors: 1,
            ..stats(2, 1, 0)
        };
        assert_eq!(client.stats(), expected);
    }

    #[test]
    fn a_429_is_retried_after_retry_after() {
        let mock = Mock::start(vec![answer(429, "Retry-After: 0\r\n", ""), ok()]);
        let client = client(&mock);
        client.models().unwrap();
        let expected = ClientStats {
            server_errors: 1,
            ..stats(2, 1, 0)
        };
        assert_eq!(client.stats(), expected);
    }

    #[test]
    fn retry_after_is_capped_at_backoff_max() {
        let mock = Mock::start(vec![answer(503, "Retry-After: 100\r\n", ""), ok()]);
        let client = client(&mock);
        let start = Instant::now();
        client.models().unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(client.stats().server_errors, 1);
    }

    #[test]
    fn a_stall_times_out_and_is_retried() {
        let mock = Mock::start(vec![delayed(Duration::from_secs(2), ok()), ok()]);
        let client = Client::new(ClientConfig {
            timeout: Duration::from_millis(300),
            ..config(&mock.url)
        })
        .unwrap();
        client.models().unwrap();
        let expected = ClientStats {
            timeouts: 1,
            ..stats(2, 1, 0)
        };
        assert_eq!(client.stats(), expected);
    }

    #[test]
    fn every_attempt_timing_out_is_a_timeout_error() {
        let mock = Mock::start(vec![delayed(Duration::from_secs(2), ok())]);
        let client = Client::new(ClientConfig {
            timeout: Duration::from_millis(100),
            max_retries: 1,
            ..config(&mock.url)
        })
        .unwrap();
        let err = client.models().unwrap_err();
        assert_eq!(
            err,
            RemoteError::Timeout {
                url: format!("{}/models", mock.url),
                seconds: 0.1
            }
        );
        let expected = ClientStats {
            timeouts: 2,
            ..stats(2, 1, 1)
        };
        assert_eq!(client.stats(), expected);
    }

    #[test]
    fn a_body_cut_short_is_retried() {
        let mock = Mock::start(vec![cut_short(), ok()]);
        let client = client(&mock);
        client.models().unwrap();
        let s = client.stats();
        assert!(s.connection_errors >= 1, "{s:?}");
        assert_eq!(
            (s.requests, s.retries, s.failures, s.timeouts),
            (2, 1, 0, 0)
        );
    }

    #[test]
    fn a_server_that_is_not_there_is_unreachable() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/v1");
        let client = Client::new(ClientConfig {
            max_retries: 1,
            ..config(&url)
        })
        .unwrap();
        let err = client.models().unwrap_err();
        assert!(matches!(err, RemoteError::Unreachable { .. }), "{err:?}");
        let shown = err.to_string();
        assert!(shown.contains(&format!("{url}/models")), "{shown}");
        assert!(shown.contains("spar serve"), "{shown}");
        let expected = ClientStats {
            connection_errors: 2,
            ..stats(2, 1, 1)
        };
        assert_eq!(client.stats(), expected);
    }

    #[test]
    fn garbage_is_retried_then_reported_with_an_excerpt() {
        let mock = Mock::start(vec![json(200, "not json")]);
        let client = Client::new(ClientConfig {
            max_retries: 2,
            ..config(&mock.url)
        })
        .unwrap();
        let err = client.models().unwrap_err();
        let RemoteError::Garbage { url, message } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(url, &format!("{}/models", mock.url));
        assert!(message.contains("\"not json\""), "{message}");
        assert!(message.contains("expected"), "{message}");
        assert_eq!(client.stats(), stats(3, 2, 1));
    }

    #[test]
    fn a_400_is_returned_at_once_with_the_servers_message() {
        let body = r#"{"error":{"message":"bad field x","type":"invalid_request_error"}}"#;
        let mock = Mock::start(vec![json(400, body), ok()]);
        let client = client(&mock);
        let err = client.models().unwrap_err();
        assert_eq!(
            err,
            RemoteError::Status {
                url: format!("{}/models", mock.url),
                status: 400,
                message: "bad field x".into()
            }
        );
        assert_eq!(client.stats(), stats(1, 0, 1));
    }

    #[test]
    fn the_concurrency_limit_holds_in_map_concurrent() {
        let mock = Mock::start(vec![delayed(Duration::from_millis(100), ok())]);
        let client = Client::new(ClientConfig {
            concurrency: 2,
            ..config(&mock.url)
        })
        .unwrap();
        let url = client.api_url("/models");
        let out = client.map_concurrent((0..6).collect(), |i: usize| {
            let list: ModelList = client.get_json(&url).unwrap();
            (i, list.data.len())
        });
        assert_eq!(out, (0..6).map(|i| (i, 0)).collect::<Vec<_>>());
        assert_eq!(mock.max_in_flight.load(Ordering::SeqCst), 2);
        assert_eq!(client.stats(), stats(6, 0, 0));
    }

    #[test]
    fn the_concurrency_limit_holds_for_every_request() {
        let mock = Mock::start(vec![delayed(Duration::from_millis(50), ok())]);
        let client = Client::new(ClientConfig {
            concurrency: 2,
            ..config(&mock.url)
        })
        .unwrap();
        std::thread::scope(|scope| {
            for _ in 0..6 {
                let client = client.clone();
                scope.spawn(move || client.models().unwrap());
            }
        });
        assert_eq!(mock.max_in_flight.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn map_concurrent_keeps_the_input_order() {
        let client = Client::new(config("http://127.0.0.1:1/v1")).unwrap();
        let out = client.map_concurrent((0..100u64).collect(), |i| {
            std::thread::sleep(Duration::from_micros((100 - i) * 10));
            i * i
        });
        assert_eq!(out, (0..100u64).map(|i| i * i).collect::<Vec<_>>());
        assert!(client.map_concurrent(Vec::<u8>::new(), |i| i).is_empty());
    }

    #[test]
    fn the_api_key_is_sent_as_a_bearer_token() {
        let mock = Mock::start(vec![json(200, r#"{"id":"c","choices":[]}"#)]);
        let with_key = Client::new(ClientConfig {
            api_key: Some("k".into()),
            ..config(&mock.url)
        })
        .unwrap();
        let request = CompletionRequest {
            model: "m".into(),
            ..CompletionRequest::default()
        };
        let response = with_key.completions(&request).unwrap();
        assert_eq!(response.id, "c");
        client(&mock).completions(&request).unwrap();
        let requests = mock.requests();
        assert!(
            requests[0].starts_with("POST /v1/completions HTTP/1.1\r\n"),
            "{}",
            requests[0]
        );
        assert!(requests[0]
            .to_lowercase()
            .contains("\r\nauthorization: bearer k\r\n"));
        assert!(
            requests[0].ends_with(r#"{"model":"m","prompt":null}"#),
            "{}",
            requests[0]
        );
        assert!(!requests[1].to_lowercase().contains("authorization"));
    }

    #[test]
    fn urls_join_onto_the_base_and_the_root() {
        for base in [
            "http://h:8000/v1",
            "http://h:8000/v1/",
            " http://h:8000/v1// ",
        ] {
            let client = Client::new(config(base)).unwrap();
            assert_eq!(
                client.api_url("/completions"),
                "http://h:8000/v1/completions"
            );
            assert_eq!(client.api_url("models"), "http://h:8000/v1/models");
            assert_eq!(client.root_url("/health"), "http://h:8000/health");
        }
        for base in ["https://h:8000", "https://h:8000/"] {
            let client = Client::new(config(base)).unwrap();
            assert_eq!(client.api_url("/completions"), "https://h:8000/completions");
            assert_eq!(client.root_url("/tokenize"), "https://h:8000/tokenize");
        }
        let client = Client::new(config("http://10.0.0.2/api/v1")).unwrap();
        assert_eq!(client.root_url("/health"), "http://10.0.0.2/health");
    }

    #[test]
    fn bad_configurations_are_invalid() {
        let invalid =
            |config: ClientConfig| matches!(Client::new(config), Err(RemoteError::Invalid(_)));
        assert!(invalid(config("127.0.0.1:8000/v1")));
        assert!(invalid(config("ftp://h/v1")));
        assert!(invalid(config("")));
        assert!(invalid(ClientConfig {
            concurrency: 0,
            ..config("http://h/v1")
        }));
        assert!(invalid(ClientConfig {
            timeout: Duration::ZERO,
            ..config("http://h/v1")
        }));
        assert!(invalid(ClientConfig {
            api_key: Some("a\nb".into()),
            ..config("http://h/v1")
        }));
    }

    #[test]
    fn post_stream_reads_events_up_to_done() {
        let body = concat!(
            ": keep-alive\n\n",
            "data: {\"choices\":[{\"index\":0,\"text\":\"a\"}]}\n\n",
            "event: message\r\ndata: {\"choices\":[{\"index\":0,\"text\":\"b\"}]}\r\n\r\n",
            "data: [DONE]\n\n",
            "data: {\"after\":\"done\"}\n\n",
        );
        let mock = Mock::start(vec![
            json(502, ""),
            answer(200, "Content-Type: text/event-stream\r\n", body),
        ]);
        let client = client(&mock);
        let url = client.api_url("/completions");
        let events = client
            .post_stream(&url, &serde_json::json!({"model": "m", "stream": true}))
            .unwrap();
        let texts: Vec<_> = events
            .iter()
            .map(|e| e["choices"][0]["text"].clone())
            .collect();
        assert_eq!(texts, ["a", "b"]);
        assert_eq!(client.stats().retries, 1);
    }

    #[test]
    fn a_stream_without_done_or_with_an_error_event_fails() {
        let events = |body: &str| {
            let mock = Mock::start(vec![answer(
                200,
                "Content-Type: text/event-stream\r\n",
                body,
            )]);
            let client = client(&mock);
            let result = client.post_stream(&client.api_url("/completions"), &Value::Null);
            assert_eq!(client.stats().requests, 1, "no retry once the stream began");
            result
        };
        let err = events("data: {}\n\n").unwrap_err();
        assert!(matches!(&err, RemoteError::Garbage { message, .. } if message.contains("[DONE]")));
        let err = events("data: {\"error\":{\"message\":\"boom\",\"code\":400}}\n\n").unwrap_err();
        assert!(
            matches!(&err, RemoteError::Status { status: 400, message, .. } if message == "boom")
        );
        let err = events("data: nope\n\n").unwrap_err();
        assert!(matches!(&err, RemoteError::Garbage { message, .. } if message.contains("nope")));
    }

    #[test]
    fn update_weights_reports_success_false_as_an_error() {
        let body = r#"{"success":false,"message":"no such directory"}"#;
        let mock = Mock::start(vec![json(200, body)]);
        let client = client(&mock);
        let request = UpdateWeightsRequest {
            model_path: "/nowhere".into(),
            weight_version: None,
        };
        let err = client.update_weights_from_disk(&request).unwrap_err();
        assert!(
            matches!(&err, RemoteError::Status { status: 500, message, url }
                if message == "no such directory" && url.ends_with("/update_weights_from_disk")
                    && !url.contains("/v1")),
            "{err:?}"
        );
        assert_eq!(client.stats(), stats(1, 0, 1));
        assert!(mock.requests()[0].starts_with("POST /update_weights_from_disk "));
    }

    #[test]
    fn health_and_load_lora_return_plain_answers() {
        let mock = Mock::start(vec![
            answer(200, "", ""),
            answer(200, "", "Success: adapter a added"),
        ]);
        let client = client(&mock);
        client.health().unwrap();
        let request = LoadLoraRequest {
            lora_name: "a".into(),
            lora_path: "/a".into(),
            load_inplace: false,
        };
        assert_eq!(
            client.load_lora_adapter(&request).unwrap(),
            "Success: adapter a added"
        );
        let requests = mock.requests();
        assert!(requests[0].starts_with("GET /health "), "{}", requests[0]);
        assert!(
            requests[1].starts_with("POST /v1/load_lora_adapter "),
            "{}",
            requests[1]
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_plus_a_little_jitter() {
        let ms = Duration::from_millis;
        let delays: Vec<_> = (0..7)
            .map(|k| backoff_delay(ms(200), ms(5000), k, 0.0))
            .collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 5000, 5000].map(ms));
        assert_eq!(backoff_delay(ms(200), ms(5000), 1, 0.5), ms(420));
        assert_eq!(backoff_delay(ms(200), ms(5000), 40, 1.0), ms(5500));
        assert_eq!(
            backoff_delay(Duration::MAX, Duration::MAX, 3, 0.99),
            Duration::MAX
        );
    }

    #[test]
    fn error_messages_come_from_every_common_error_body() {
        let openai = r#"{"error":{"message":"bad field x","type":"invalid_request_error"}}"#;
        assert_eq!(error_message(400, openai), "bad field x");
        assert_eq!(
            error_message(404, r#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(
            error_message(400, r#"{"success":false,"message":"m"}"#),
            "m"
        );
        assert_eq!(error_message(404, r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(error_message(502, ""), "Bad Gateway (empty body)");
        let long = "x".repeat(300);
        assert_eq!(error_message(500, &long), format!("{}…", "x".repeat(200)));
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn the_client_is_shareable_and_hides_its_key() {
        fn shareable<T: Clone + Send + Sync + fmt::Debug>() {}
        shareable::<Client>();
        let client = Client::new(ClientConfig {
            api_key: Some("secret".into()),
            ..config("http://h/v1")
        })
        .unwrap();
        let shown = format!("{client:?}");
        assert!(
            !shown.contains("secret") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}
