//! `spar serve`: an OpenAI-compatible server for spar's own models.
//!
//! Endpoints (the shapes of OpenAI's API and, for weight updates, of vLLM and SGLang):
//!
//! | endpoint | what it does |
//! |---|---|
//! | `GET /health` | 200 when the model is loaded |
//! | `GET /v1/models` | the served model and every loaded adapter, with their weight versions |
//! | `POST /v1/completions` | text or token-id prompts, `n`, `seed`, `stop`, `logprobs`, `echo` (with `max_tokens = 0`: scoring), `stream`, `return_token_ids` |
//! | `POST /v1/chat/completions` | the model's chat template, `logprobs`, `stream` |
//! | `POST /v1/load_lora_adapter` | `{lora_name, lora_path, load_inplace}`: a PEFT adapter directory, used by naming it in `model` |
//! | `POST /v1/unload_lora_adapter` | `{lora_name}` |
//! | `POST /update_weights_from_disk` | `{model_path, weight_version}`: new base weights from a checkpoint directory |
//! | `POST /tokenize`, `POST /detokenize` | vLLM's token helpers |
//!
//! One worker thread owns the model. Connection threads parse and check requests and queue
//! them; the worker takes every request waiting (up to `max_batch` sequences, after waiting
//! `batch_window` for more to arrive) and samples each group of requests with the same model
//! and sampling settings in one batch. Every sequence keeps its own random stream
//! (`seed`, `seed_stream`), so a request gets the same tokens alone or batched with others, and
//! the same tokens as the in-process sampler with that seed and stream. Weight updates run on
//! the worker between batches, so no answer mixes two versions; every answer carries the
//! `weight_version` that produced it.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use candle_core::Device;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use spar_lm::load::GgufMode;
use spar_lm::sample::{generate_streams, Completion, FinishReason, SamplingParams};
use spar_lm::score::score_values_at_temperature;
use spar_lm::tokenizer::Message;
use spar_lm::{Llama, Lora, TextTokenizer};

use crate::http::{read_request, write_response, ReadError, Request, SseWriter};
use crate::protocol::*;

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
}

/// An HTTP error answer.
#[derive(Debug, Clone, PartialEq)]
struct ApiError {
    status: u16,
    message: String,
    param: Option<String>,
}

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            param: None,
        }
    }

    fn param(mut self, param: &str) -> ApiError {
        self.param = Some(param.to_string());
        self
    }

    fn body(&self) -> Vec<u8> {
        let kind = match self.status {
            400 | 411 | 413 | 431 => "invalid_request_error",
            404 => "not_found_error",
            405 => "method_not_allowed",
            409 => "conflict_error",
            503 => "service_unavailable",
            _ => "server_error",
        };
        serde_json::to_vec(&ErrorBody {
            error: ErrorDetail {
                message: self.message.clone(),
                kind: kind.to_string(),
                param: self.param.clone(),
                code: Some(serde_json::Value::from(self.status)),
            },
        })
        .expect("error body serialises")
    }
}

/// One sequence's token, streamed as it is drawn, or the end of a job.
enum Event {
    Token {
        seq: usize,
        token: u32,
        logprob: f32,
    },
    Done(Result<JobOutput, ApiError>),
}

struct JobOutput {
    completions: Vec<Completion>,
    /// Per sequence, the log-probability of every prompt token after the first (echo).
    prompt_logprobs: Option<Vec<Vec<f32>>>,
    weight_version: String,
}

/// A batch of sequences for the worker: one request's prompts, each `n` times.
struct GenJob {
    model: String,
    prompts: Vec<Vec<u32>>,
    streams: Vec<(u64, u64)>,
    params: SamplingParams,
    score_prompts: bool,
    expected_version: Option<String>,
    events: Sender<Event>,
}

enum Admin {
    LoadLora(LoadLoraRequest),
    UnloadLora(UnloadLoraRequest),
    UpdateWeights(UpdateWeightsRequest),
}

enum Job {
    Generate(GenJob),
    Admin(Admin, Sender<Result<String, ApiError>>),
}

struct Adapter {
    lora: Lora,
    version: String,
}

/// What connection threads may read without asking the worker.
struct Shared {
    name: String,
    tokenizer: TextTokenizer,
    context: usize,
    created: u64,
    versions: Mutex<BTreeMap<String, String>>,
    config: ServeConfig,
    requests: AtomicU64,
    connections: AtomicUsize,
    fault_draws: AtomicU64,
    stop: AtomicBool,
}

/// A running server (see [`start`]).
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    shared: Arc<SharedHandle>,
}

struct SharedHandle(Arc<Shared>);

impl std::fmt::Debug for SharedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.0.name)
            .finish()
    }
}

impl RunningServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The name of the base model in requests.
    pub fn model_name(&self) -> String {
        self.shared.0.name.clone()
    }

    /// Stops accepting connections (open ones finish their request).
    pub fn stop(&self) {
        self.shared.0.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Loads the model and starts serving in background threads.
pub fn start(config: &ServeConfig) -> Result<RunningServer, ServeError> {
    let device = spar_lm::device::default_device();
    let loaded = spar_lm::load::load_model(&config.model, config.gguf_mode, &device)?;
    let name = config.served_name.clone().unwrap_or_else(|| {
        config
            .model
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".gguf").to_string())
            .unwrap_or_else(|| "model".to_string())
    });
    let mut adapters = BTreeMap::new();
    let mut versions = BTreeMap::new();
    versions.insert(name.clone(), config.weight_version.clone());
    let mut model = loaded.model;
    for (lora_name, dir) in &config.loras {
        let lora = Lora::load(dir, &device)?;
        lora.attach(&mut model)?;
        Lora::detach(&mut model);
        versions.insert(lora_name.clone(), lora_name.clone());
        adapters.insert(
            lora_name.clone(),
            Adapter {
                lora,
                version: lora_name.clone(),
            },
        );
    }
    let listener = TcpListener::bind(&config.addr).map_err(|source| ServeError::Bind {
        addr: config.addr.clone(),
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.addr.clone(),
        source,
    })?;
    let shared = Arc::new(Shared {
        name: name.clone(),
        tokenizer: loaded.tokenizer.clone(),
        context: model.config().max_position_embeddings,
        created: now(),
        versions: Mutex::new(versions),
        config: config.clone(),
        requests: AtomicU64::new(0),
        connections: AtomicUsize::new(0),
        fault_draws: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let (jobs, inbox) = channel::<Job>();
    let worker = Worker {
        model,
        base_version: config.weight_version.clone(),
        adapters,
        device,
        shared: shared.clone(),
        inbox,
    };
    std::thread::Builder::new()
        .name("spar-serve-worker".into())
        .spawn(move || worker.run())
        .expect("spawn the worker thread");
    let accept_shared = shared.clone();
    std::thread::Builder::new()
        .name("spar-serve-accept".into())
        .spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = accept_shared.clone();
                let jobs = jobs.clone();
                let open = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = std::thread::Builder::new()
                    .name("spar-serve-conn".into())
                    .spawn(move || {
                        if open > shared.config.max_connections {
                            let mut stream = stream;
                            let error = ApiError::new(
                                503,
                                format!(
                                    "the server has {} connections open, its limit \
                                     (spar serve --max-connections); retry later",
                                    shared.config.max_connections
                                ),
                            );
                            let _ = write_response(
                                &mut stream,
                                503,
                                "application/json",
                                &error.body(),
                                true,
                            );
                        } else {
                            connection(stream, &shared, &jobs);
                        }
                        shared.connections.fetch_sub(1, Ordering::SeqCst);
                    });
            }
        })
        .expect("spawn the accept thread");
    Ok(RunningServer {
        addr,
        shared: Arc::new(SharedHandle(shared)),
    })
}

/// Serves until the process ends, printing where to stderr.
pub fn serve(config: &ServeConfig) -> Result<(), ServeError> {
    let server = start(config)?;
    eprintln!(
        "spar serve: {} on {} (OpenAI-compatible; Ctrl-C stops)",
        server.model_name(),
        server.base_url()
    );
    loop {
        std::thread::park();
    }
}

/// Serves one connection's requests until it closes.
fn connection(stream: TcpStream, shared: &Shared, jobs: &Sender<Job>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(300)));
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let request = match read_request(&mut reader, shared.config.max_body_bytes) {
            Ok(r) => r,
            Err(ReadError::Closed) => return,
            Err(ReadError::Bad { status, message }) => {
                let error = ApiError::new(status, message);
                let _ =
                    write_response(&mut writer, status, "application/json", &error.body(), true);
                return;
            }
        };
        shared.requests.fetch_add(1, Ordering::Relaxed);
        let close = request.wants_close();
        let generation = request.method == "POST"
            && matches!(
                request.path.as_str(),
                "/v1/completions" | "/v1/chat/completions"
            );
        if generation && inject_fault(shared, &mut writer) {
            return;
        }
        let ok = match route(&request, shared, jobs, &mut writer) {
            Ok(Answer::Json(body)) => {
                write_response(&mut writer, 200, "application/json", &body, close).is_ok()
            }
            Ok(Answer::Text(body)) => {
                write_response(&mut writer, 200, "text/plain", body.as_bytes(), close).is_ok()
            }
            Ok(Answer::Streamed) => true,
            Err(error) => write_response(
                &mut writer,
                error.status,
                "application/json",
                &error.body(),
                close,
            )
            .is_ok(),
        };
        if !ok || close {
            return;
        }
    }
}

/// Draws this request's fault; returns true when the connection must end now.
fn inject_fault(shared: &Shared, writer: &mut TcpStream) -> bool {
    let f = &shared.config.faults;
    if f.drop + f.stall + f.error <= 0.0 {
        return false;
    }
    let draw = shared.fault_draws.fetch_add(1, Ordering::SeqCst);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(f.seed);
    rng.set_stream(draw);
    let u: f64 = rng.gen();
    if u < f.drop {
        // Half an answer, then the connection is cut.
        let _ = writer.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"id\":",
        );
        let _ = writer.flush();
        let _ = writer.shutdown(std::net::Shutdown::Both);
        return true;
    }
    if u < f.drop + f.stall {
        std::thread::sleep(f.stall_for);
        return false;
    }
    if u < f.drop + f.stall + f.error {
        let error = ApiError::new(500, "injected fault (spar serve --faults)");
        // The request is answered; the connection is closed (clients reconnect).
        let _ = write_response(writer, 500, "application/json", &error.body(), true);
        return true;
    }
    false
}

enum Answer {
    Json(Vec<u8>),
    Text(String),
    Streamed,
}

fn json<T: Serialize>(value: &T) -> Result<Answer, ApiError> {
    Ok(Answer::Json(
        serde_json::to_vec(value).expect("answers serialise"),
    ))
}

fn parse<T: serde::de::DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    serde_json::from_slice(&request.body).map_err(|e| {
        ApiError::new(
            400,
            format!("the request body is not the expected JSON: {e}"),
        )
    })
}

fn route(
    request: &Request,
    shared: &Shared,
    jobs: &Sender<Job>,
    writer: &mut TcpStream,
) -> Result<Answer, ApiError> {
    let path = request.path.trim_end_matches('/');
    let method = request.method.as_str();
    let post_only = |m: &str| {
        if m == "POST" {
            Ok(())
        } else {
            Err(ApiError::new(405, format!("{path} takes POST, not {m}")))
        }
    };
    match path {
        "/health" | "/v1/health" => Ok(Answer::Text("ok".into())),
        "/v1/models" | "/models" => {
            let versions = shared.versions.lock().expect("versions lock").clone();
            let data = versions
                .iter()
                .map(|(id, version)| ModelCard {
                    id: id.clone(),
                    object: "model".into(),
                    created: shared.created,
                    owned_by: "spar".into(),
                    parent: (id != &shared.name).then(|| shared.name.clone()),
                    max_model_len: Some(shared.context),
                    weight_version: Some(version.clone()),
                })
                .collect();
            json(&ModelList {
                object: "list".into(),
                data,
            })
        }
        "/v1/completions" => {
            post_only(method)?;
            completions(&parse(request)?, shared, jobs, writer)
        }
        "/v1/chat/completions" => {
            post_only(method)?;
            chat(&parse(request)?, shared, jobs, writer)
        }
        "/v1/load_lora_adapter" | "/load_lora_adapter" => {
            post_only(method)?;
            admin(Admin::LoadLora(parse(request)?), jobs).map(Answer::Text)
        }
        "/v1/unload_lora_adapter" | "/unload_lora_adapter" => {
            post_only(method)?;
            admin(Admin::UnloadLora(parse(request)?), jobs).map(Answer::Text)
        }
        "/update_weights_from_disk" => {
            post_only(method)?;
            let message = admin(Admin::UpdateWeights(parse(request)?), jobs)?;
            json(&UpdateWeightsResponse {
                success: true,
                message,
                num_paused_requests: 0,
            })
        }
        "/tokenize" => {
            post_only(method)?;
            let r: TokenizeRequest = parse(request)?;
            let tokens = shared
                .tokenizer
                .encode(&r.prompt)
                .map_err(|e| ApiError::new(400, e.to_string()))?;
            json(&TokenizeResponse {
                count: tokens.len(),
                tokens,
                max_model_len: shared.context,
            })
        }
        "/detokenize" => {
            post_only(method)?;
            let r: DetokenizeRequest = parse(request)?;
            check_ids(&r.tokens, shared)?;
            let prompt = shared
                .tokenizer
                .decode(&r.tokens, false)
                .map_err(|e| ApiError::new(400, e.to_string()))?;
            json(&DetokenizeResponse { prompt })
        }
        _ => Err(ApiError::new(
            404,
            format!(
                "no endpoint {method} {path}; spar serve answers /v1/completions, \
                 /v1/chat/completions, /v1/models, /v1/load_lora_adapter, \
                 /v1/unload_lora_adapter, /update_weights_from_disk, /tokenize, /detokenize, \
                 /health"
            ),
        )),
    }
}

fn admin(job: Admin, jobs: &Sender<Job>) -> Result<String, ApiError> {
    let (tx, rx) = channel();
    jobs.send(Job::Admin(job, tx))
        .map_err(|_| ApiError::new(503, "the model worker has stopped"))?;
    rx.recv()
        .map_err(|_| ApiError::new(503, "the model worker has stopped"))?
}

fn check_ids(ids: &[u32], shared: &Shared) -> Result<(), ApiError> {
    let vocab = shared.tokenizer.vocab_size();
    if let Some(bad) = ids.iter().find(|&&t| t as usize >= vocab) {
        return Err(ApiError::new(
            400,
            format!("token id {bad} is outside the vocabulary (size {vocab})"),
        )
        .param("prompt"));
    }
    Ok(())
}

/// The sampling settings shared by every request kind.
struct Sampling {
    max_tokens: usize,
    temperature: f64,
    top_p: f64,
    top_k: Option<i64>,
    n: usize,
    stop: Option<Stop>,
    seed: Option<u64>,
    seed_stream: Option<u64>,
}

impl Sampling {
    fn params(&self, shared: &Shared) -> Result<SamplingParams, ApiError> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(ApiError::new(
                400,
                format!("temperature {} must be >= 0", self.temperature),
            )
            .param("temperature"));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(
                ApiError::new(400, format!("top_p {} must be in (0, 1]", self.top_p))
                    .param("top_p"),
            );
        }
        if self.max_tokens > shared.config.max_tokens_limit {
            return Err(ApiError::new(
                400,
                format!(
                    "max_tokens {} exceeds this server's limit {} (spar serve --max-tokens-limit)",
                    self.max_tokens, shared.config.max_tokens_limit
                ),
            )
            .param("max_tokens"));
        }
        if self.n == 0 || self.n > shared.config.max_batch {
            return Err(ApiError::new(
                400,
                format!("n {} must be in 1..={}", self.n, shared.config.max_batch),
            )
            .param("n"));
        }
        Ok(SamplingParams {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k.map(|k| k.max(0) as usize).unwrap_or(0),
            max_tokens: self.max_tokens,
            stop: self.stop.as_ref().map(Stop::to_vec).unwrap_or_default(),
            seed: 0,
        })
    }
}

fn check_model(model: &str, shared: &Shared) -> Result<(), ApiError> {
    let versions = shared.versions.lock().expect("versions lock");
    if model.is_empty() || versions.contains_key(model) {
        return Ok(());
    }
    let known: Vec<&String> = versions.keys().collect();
    Err(ApiError::new(
        404,
        format!("model {model:?} is not served here; served: {known:?}"),
    )
    .param("model"))
}

/// Checks and queues one generation job; its events arrive on the returned channel.
fn submit(
    shared: &Shared,
    jobs: &Sender<Job>,
    model: &str,
    prompts: Vec<Vec<u32>>,
    sampling: &Sampling,
    score_prompts: bool,
    expected_version: Option<String>,
) -> Result<Receiver<Event>, ApiError> {
    check_model(model, shared)?;
    let params = sampling.params(shared)?;
    for p in &prompts {
        if p.is_empty() {
            return Err(ApiError::new(400, "a prompt is empty").param("prompt"));
        }
        check_ids(p, shared)?;
        if p.len() + params.max_tokens > shared.context {
            return Err(ApiError::new(
                400,
                format!(
                    "the prompt has {} tokens and max_tokens is {}; the model's context is {} \
                     tokens",
                    p.len(),
                    params.max_tokens,
                    shared.context
                ),
            )
            .param("prompt"));
        }
    }
    let n = sampling.n;
    let seed = sampling.seed.unwrap_or_else(rand::random);
    let first = sampling.seed_stream.unwrap_or(0);
    let mut seqs = Vec::new();
    let mut streams = Vec::new();
    for (i, p) in prompts.into_iter().enumerate() {
        for j in 0..n {
            seqs.push(p.clone());
            streams.push((seed, first + (i * n + j) as u64));
        }
    }
    let (tx, rx) = channel();
    jobs.send(Job::Generate(GenJob {
        model: if model.is_empty() {
            shared.name.clone()
        } else {
            model.to_string()
        },
        prompts: seqs,
        streams,
        params,
        score_prompts,
        expected_version,
        events: tx,
    }))
    .map_err(|_| ApiError::new(503, "the model worker has stopped"))?;
    Ok(rx)
}

/// Waits for a job's end.
fn collect(rx: Receiver<Event>) -> Result<JobOutput, ApiError> {
    for event in rx {
        if let Event::Done(out) = event {
            return out;
        }
    }
    Err(ApiError::new(500, "the model worker dropped the request"))
}

/// Streams a job's tokens as server-sent events: `chunk(seq, delta, token, logprob)` makes an
/// event's payload, `last(out)` the closing events.
fn stream(
    writer: &mut TcpStream,
    rx: Receiver<Event>,
    tokenizer: &TextTokenizer,
    sequences: usize,
    stop: &[String],
    mut chunk: impl FnMut(usize, String, Option<(u32, f32)>) -> String,
    last: impl FnOnce(&JobOutput) -> Vec<String>,
) -> Result<Answer, ApiError> {
    let mut sse = SseWriter::start(writer).map_err(|e| ApiError::new(500, e.to_string()))?;
    let mut detok: Vec<Detokenizer> = (0..sequences).map(|_| Detokenizer::new()).collect();
    let mut connected = true;
    for event in rx {
        match event {
            Event::Token {
                seq,
                token,
                logprob,
            } => {
                if connected {
                    let delta = detok[seq].push(tokenizer, token, stop);
                    connected = sse
                        .event(&chunk(seq, delta, Some((token, logprob))))
                        .is_ok();
                }
            }
            Event::Done(Ok(out)) => {
                // Text held back (an incomplete character at the end of a token) goes out now,
                // so the deltas add up to the answer's text.
                for (seq, c) in out.completions.iter().enumerate() {
                    let sent = detok.get(seq).map_or(0, |d| d.sent);
                    if connected && c.text.len() > sent && c.text.is_char_boundary(sent) {
                        connected = sse
                            .event(&chunk(seq, c.text[sent..].to_string(), None))
                            .is_ok();
                    }
                }
                for payload in last(&out) {
                    let _ = sse.event(&payload);
                }
                let _ = sse.finish();
                return Ok(Answer::Streamed);
            }
            Event::Done(Err(e)) => {
                let _ = sse.event(&String::from_utf8_lossy(&e.body()));
                let _ = sse.finish();
                return Ok(Answer::Streamed);
            }
        }
    }
    Ok(Answer::Streamed)
}

fn finish_reason(reason: FinishReason) -> String {
    match reason {
        FinishReason::Stop => "stop".into(),
        FinishReason::Length => "length".into(),
    }
}

fn token_text(tokenizer: &TextTokenizer, id: u32) -> String {
    tokenizer.decode(&[id], false).unwrap_or_default()
}

fn usage(prompt_tokens: usize, completions: &[Completion]) -> Usage {
    let completion_tokens = completions.iter().map(|c| c.token_ids.len()).sum();
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
    }
}

/// Turns streamed tokens into text deltas (whole characters only; cut at stop strings).
struct Detokenizer {
    ids: Vec<u32>,
    sent: usize,
    done: bool,
}

impl Detokenizer {
    fn new() -> Self {
        Detokenizer {
            ids: Vec::new(),
            sent: 0,
            done: false,
        }
    }

    fn push(&mut self, tokenizer: &TextTokenizer, token: u32, stop: &[String]) -> String {
        if self.done {
            return String::new();
        }
        self.ids.push(token);
        let mut text = tokenizer.decode(&self.ids, true).unwrap_or_default();
        if let Some(cut) = stop.iter().filter_map(|s| text.find(s.as_str())).min() {
            text.truncate(cut);
            self.done = true;
        } else if text.ends_with('\u{FFFD}') {
            return String::new();
        }
        if text.len() <= self.sent || !text.is_char_boundary(self.sent) {
            return String::new();
        }
        let delta = text[self.sent..].to_string();
        self.sent = text.len();
        delta
    }
}

fn completions(
    r: &CompletionRequest,
    shared: &Shared,
    jobs: &Sender<Job>,
    writer: &mut TcpStream,
) -> Result<Answer, ApiError> {
    let tokenizer = &shared.tokenizer;
    let encode = |t: &str| {
        tokenizer
            .encode(t)
            .map_err(|e| ApiError::new(400, e.to_string()).param("prompt"))
    };
    let prompts: Vec<Vec<u32>> = match &r.prompt {
        None => return Err(ApiError::new(400, "the request has no prompt").param("prompt")),
        Some(Prompt::Text(t)) => vec![encode(t)?],
        Some(Prompt::Texts(ts)) => ts.iter().map(|t| encode(t)).collect::<Result<_, _>>()?,
        Some(Prompt::Ids(ids)) => vec![ids.clone()],
        Some(Prompt::IdsBatch(b)) => b.clone(),
    };
    if prompts.is_empty() {
        return Err(ApiError::new(400, "the prompt list is empty").param("prompt"));
    }
    let echo = r.echo.unwrap_or(false);
    let want_logprobs = r.logprobs.is_some();
    let sampling = Sampling {
        max_tokens: r.max_tokens.unwrap_or(16),
        temperature: r.temperature.unwrap_or(1.0),
        top_p: r.top_p.unwrap_or(1.0),
        top_k: r.top_k,
        n: r.n.unwrap_or(1),
        stop: r.stop.clone(),
        seed: r.seed,
        seed_stream: r.seed_stream,
    };
    let n = sampling.n;
    let id = format!("cmpl-{}", shared.requests.load(Ordering::Relaxed));
    let model = if r.model.is_empty() {
        shared.name.clone()
    } else {
        r.model.clone()
    };
    let prompt_texts: Vec<String> = prompts
        .iter()
        .map(|p| tokenizer.decode(p, false).unwrap_or_default())
        .collect();
    let total_prompt: usize = prompts.iter().map(Vec::len).sum::<usize>() * n;
    if r.stream.unwrap_or(false) {
        if echo {
            return Err(ApiError::new(400, "echo is not supported with stream").param("echo"));
        }
        let stop = sampling.stop.as_ref().map(Stop::to_vec).unwrap_or_default();
        let count = prompts.len() * n;
        let rx = submit(
            shared,
            jobs,
            &r.model,
            prompts,
            &sampling,
            false,
            r.weight_version.clone(),
        )?;
        let created = now();
        let chunk = |seq: usize, delta: String, token: Option<(u32, f32)>| {
            serde_json::to_string(&CompletionResponse {
                id: id.clone(),
                object: "text_completion".into(),
                created,
                model: model.clone(),
                choices: vec![CompletionChoice {
                    index: seq,
                    text: delta,
                    logprobs: want_logprobs.then(|| CompletionLogprobs {
                        tokens: token
                            .iter()
                            .map(|&(t, _)| token_text(tokenizer, t))
                            .collect(),
                        token_logprobs: token.iter().map(|&(_, lp)| Some(lp)).collect(),
                        top_logprobs: None,
                        text_offset: token.iter().map(|_| 0).collect(),
                    }),
                    finish_reason: None,
                    ..CompletionChoice::default()
                }],
                usage: None,
                weight_version: None,
            })
            .expect("chunk serialises")
        };
        let last = |out: &JobOutput| {
            out.completions
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    serde_json::to_string(&CompletionResponse {
                        id: id.clone(),
                        object: "text_completion".into(),
                        created,
                        model: model.clone(),
                        choices: vec![CompletionChoice {
                            index: i,
                            text: String::new(),
                            finish_reason: Some(finish_reason(c.finish_reason)),
                            ..CompletionChoice::default()
                        }],
                        usage: (i + 1 == out.completions.len())
                            .then(|| usage(total_prompt, &out.completions)),
                        weight_version: Some(out.weight_version.clone()),
                    })
                    .expect("chunk serialises")
                })
                .collect()
        };
        return stream(writer, rx, tokenizer, count, &stop, chunk, last);
    }
    let out = collect(submit(
        shared,
        jobs,
        &r.model,
        prompts.clone(),
        &sampling,
        echo && want_logprobs,
        r.weight_version.clone(),
    )?)?;
    let mut choices = Vec::new();
    for (k, c) in out.completions.iter().enumerate() {
        let p = k / n;
        let mut text = String::new();
        let mut logprobs = CompletionLogprobs::default();
        if echo {
            text.push_str(&prompt_texts[p]);
            if want_logprobs {
                let scores = out.prompt_logprobs.as_ref().map(|s| &s[k]);
                for (t, &id) in prompts[p].iter().enumerate() {
                    logprobs
                        .text_offset
                        .push(logprobs.tokens.iter().map(String::len).sum::<usize>());
                    logprobs.tokens.push(token_text(tokenizer, id));
                    logprobs.token_logprobs.push(if t == 0 {
                        None
                    } else {
                        scores.and_then(|s| s.get(t - 1).copied())
                    });
                }
            }
        }
        let base = text.len();
        text.push_str(&c.text);
        if want_logprobs {
            let mut offset = base;
            for (&id, &lp) in c.token_ids.iter().zip(&c.logprobs) {
                let t = token_text(tokenizer, id);
                logprobs.text_offset.push(offset);
                offset += t.len();
                logprobs.tokens.push(t);
                logprobs.token_logprobs.push(Some(lp));
            }
        }
        let ids = r.return_token_ids.unwrap_or(false);
        choices.push(CompletionChoice {
            index: k,
            text,
            logprobs: want_logprobs.then_some(logprobs),
            finish_reason: Some(finish_reason(c.finish_reason)),
            prompt_token_ids: ids.then(|| prompts[p].clone()),
            token_ids: ids.then(|| c.token_ids.clone()),
        });
    }
    json(&CompletionResponse {
        id,
        object: "text_completion".into(),
        created: now(),
        model,
        usage: Some(usage(total_prompt, &out.completions)),
        choices,
        weight_version: Some(out.weight_version),
    })
}

fn chat(
    r: &ChatRequest,
    shared: &Shared,
    jobs: &Sender<Job>,
    writer: &mut TcpStream,
) -> Result<Answer, ApiError> {
    let tokenizer = &shared.tokenizer;
    let template = tokenizer.chat_template().ok_or_else(|| {
        ApiError::new(
            400,
            "this model has no chat template; use /v1/completions with a text prompt",
        )
    })?;
    if r.messages.is_empty() {
        return Err(ApiError::new(400, "messages is empty").param("messages"));
    }
    for m in &r.messages {
        if !matches!(m.role.as_str(), "system" | "user" | "assistant") {
            return Err(ApiError::new(
                400,
                format!("message role {:?} is not system, user or assistant", m.role),
            )
            .param("messages"));
        }
    }
    let messages: Vec<Message> = r
        .messages
        .iter()
        .map(|m| Message::new(&m.role, &m.content))
        .collect();
    let prompt = tokenizer
        .encode(&template.render(&messages, true))
        .map_err(|e| ApiError::new(400, e.to_string()))?;
    let sampling = Sampling {
        max_tokens: r
            .max_completion_tokens
            .or(r.max_tokens)
            .unwrap_or(shared.config.max_tokens_limit.min(512)),
        temperature: r.temperature.unwrap_or(1.0),
        top_p: r.top_p.unwrap_or(1.0),
        top_k: r.top_k,
        n: r.n.unwrap_or(1),
        stop: r.stop.clone(),
        seed: r.seed,
        seed_stream: r.seed_stream,
    };
    let want_logprobs = r.logprobs.unwrap_or(false);
    let id = format!("chatcmpl-{}", shared.requests.load(Ordering::Relaxed));
    let model = if r.model.is_empty() {
        shared.name.clone()
    } else {
        r.model.clone()
    };
    let prompt_len = prompt.len() * sampling.n;
    let entry = |t: u32, lp: f32| {
        let text = token_text(tokenizer, t);
        ChatTokenLogprob {
            bytes: Some(text.as_bytes().to_vec()),
            token: text,
            logprob: lp,
            top_logprobs: Vec::new(),
        }
    };
    if r.stream.unwrap_or(false) {
        let stop = sampling.stop.as_ref().map(Stop::to_vec).unwrap_or_default();
        let rx = submit(shared, jobs, &r.model, vec![prompt], &sampling, false, None)?;
        let created = now();
        let mut started = vec![false; sampling.n];
        let chunk = |seq: usize, delta: String, token: Option<(u32, f32)>| {
            let role = (!started[seq]).then(|| "assistant".to_string());
            started[seq] = true;
            serde_json::to_string(&ChatResponse {
                id: id.clone(),
                object: "chat.completion.chunk".into(),
                created,
                model: model.clone(),
                choices: vec![ChatChoice {
                    index: seq,
                    delta: Some(AssistantMessage {
                        role,
                        content: Some(delta),
                    }),
                    logprobs: want_logprobs.then(|| ChatLogprobs {
                        content: Some(token.iter().map(|&(t, lp)| entry(t, lp)).collect()),
                    }),
                    ..ChatChoice::default()
                }],
                usage: None,
                weight_version: None,
            })
            .expect("chunk serialises")
        };
        let last = |out: &JobOutput| {
            out.completions
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    serde_json::to_string(&ChatResponse {
                        id: id.clone(),
                        object: "chat.completion.chunk".into(),
                        created,
                        model: model.clone(),
                        choices: vec![ChatChoice {
                            index: i,
                            delta: Some(AssistantMessage::default()),
                            finish_reason: Some(finish_reason(c.finish_reason)),
                            ..ChatChoice::default()
                        }],
                        usage: (i + 1 == out.completions.len())
                            .then(|| usage(prompt_len, &out.completions)),
                        weight_version: Some(out.weight_version.clone()),
                    })
                    .expect("chunk serialises")
                })
                .collect()
        };
        return stream(writer, rx, tokenizer, sampling.n, &stop, chunk, last);
    }
    let out = collect(submit(
        shared,
        jobs,
        &r.model,
        vec![prompt],
        &sampling,
        false,
        None,
    )?)?;
    let choices = out
        .completions
        .iter()
        .enumerate()
        .map(|(i, c)| ChatChoice {
            index: i,
            message: Some(AssistantMessage {
                role: Some("assistant".into()),
                content: Some(c.text.clone()),
            }),
            delta: None,
            logprobs: want_logprobs.then(|| ChatLogprobs {
                content: Some(
                    c.token_ids
                        .iter()
                        .zip(&c.logprobs)
                        .map(|(&t, &lp)| entry(t, lp))
                        .collect(),
                ),
            }),
            finish_reason: Some(finish_reason(c.finish_reason)),
            token_ids: r
                .return_token_ids
                .unwrap_or(false)
                .then(|| c.token_ids.clone()),
        })
        .collect();
    json(&ChatResponse {
        id,
        object: "chat.completion".into(),
        created: now(),
        model,
        usage: Some(usage(prompt_len, &out.completions)),
        choices,
        weight_version: Some(out.weight_version),
    })
}

/// The thread that owns the model.
struct Worker {
    model: Llama,
    base_version: String,
    adapters: BTreeMap<String, Adapter>,
    device: Device,
    shared: Arc<Shared>,
    inbox: Receiver<Job>,
}

impl Worker {
    fn run(mut self) {
        while let Ok(first) = self.inbox.recv() {
            let mut waiting = vec![first];
            let deadline = Instant::now() + self.shared.config.batch_window;
            let mut sequences = count(&waiting);
            while sequences < self.shared.config.max_batch {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.inbox.recv_timeout(left) {
                    Ok(job) => {
                        sequences += count(std::slice::from_ref(&job));
                        waiting.push(job);
                    }
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            let mut generate = Vec::new();
            for job in waiting {
                match job {
                    Job::Admin(admin, reply) => {
                        // Weight changes happen between batches: first the batches queued
                        // before them.
                        self.generate(std::mem::take(&mut generate));
                        let _ = reply.send(self.admin(admin));
                    }
                    Job::Generate(g) => generate.push(g),
                }
            }
            self.generate(generate);
        }
    }

    fn admin(&mut self, admin: Admin) -> Result<String, ApiError> {
        match admin {
            Admin::LoadLora(r) => {
                if r.lora_name.is_empty() || r.lora_name == self.shared.name {
                    return Err(ApiError::new(
                        400,
                        format!(
                            "lora_name {:?} is empty or the base model's name",
                            r.lora_name
                        ),
                    )
                    .param("lora_name"));
                }
                if self.adapters.contains_key(&r.lora_name) && !r.load_inplace {
                    return Err(ApiError::new(
                        400,
                        format!(
                            "the adapter {:?} is already loaded; unload it first or set \
                             load_inplace",
                            r.lora_name
                        ),
                    )
                    .param("lora_name"));
                }
                let lora = Lora::load(Path::new(&r.lora_path), &self.device).map_err(|e| {
                    ApiError::new(400, format!("lora_path: {e}")).param("lora_path")
                })?;
                lora.attach(&mut self.model).map_err(|e| {
                    ApiError::new(400, format!("lora_path: {e}")).param("lora_path")
                })?;
                Lora::detach(&mut self.model);
                let loads = self.adapters.get(&r.lora_name).map(|a| {
                    a.version
                        .rsplit_once('#')
                        .and_then(|(_, k)| k.parse::<u64>().ok())
                        .unwrap_or(1)
                        + 1
                });
                let version = match loads {
                    None => r.lora_name.clone(),
                    Some(k) => format!("{}#{k}", r.lora_name),
                };
                self.shared
                    .versions
                    .lock()
                    .expect("versions lock")
                    .insert(r.lora_name.clone(), version.clone());
                self.adapters
                    .insert(r.lora_name.clone(), Adapter { lora, version });
                Ok(format!(
                    "Success: LoRA adapter '{}' added successfully.",
                    r.lora_name
                ))
            }
            Admin::UnloadLora(r) => {
                if self.adapters.remove(&r.lora_name).is_none() {
                    return Err(ApiError::new(
                        404,
                        format!("no adapter named {:?} is loaded", r.lora_name),
                    )
                    .param("lora_name"));
                }
                self.shared
                    .versions
                    .lock()
                    .expect("versions lock")
                    .remove(&r.lora_name);
                Ok(format!(
                    "Success: LoRA adapter '{}' removed successfully.",
                    r.lora_name
                ))
            }
            Admin::UpdateWeights(r) => {
                let loaded = spar_lm::load::load_model(
                    Path::new(&r.model_path),
                    self.shared.config.gguf_mode,
                    &self.device,
                )
                .map_err(|e| ApiError::new(400, format!("model_path: {e}")).param("model_path"))?;
                if loaded.model.config() != self.model.config() {
                    return Err(ApiError::new(
                        400,
                        format!(
                            "model_path {} has another architecture than the served model",
                            r.model_path
                        ),
                    )
                    .param("model_path"));
                }
                let mut model = loaded.model;
                for (name, a) in &self.adapters {
                    a.lora.attach(&mut model).map_err(|e| {
                        ApiError::new(
                            400,
                            format!("adapter {name} does not fit the new weights: {e}"),
                        )
                    })?;
                    Lora::detach(&mut model);
                }
                self.model = model;
                self.base_version = r
                    .weight_version
                    .clone()
                    .unwrap_or_else(|| r.model_path.clone());
                self.shared
                    .versions
                    .lock()
                    .expect("versions lock")
                    .insert(self.shared.name.clone(), self.base_version.clone());
                Ok(format!(
                    "Succeeded to update model weights (version {}).",
                    self.base_version
                ))
            }
        }
    }

    fn generate(&mut self, jobs: Vec<GenJob>) {
        // Group by model and sampling settings (all but the seed).
        let mut groups: BTreeMap<String, Vec<GenJob>> = BTreeMap::new();
        for job in jobs {
            let p = &job.params;
            let key = format!(
                "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{:?}",
                job.model, p.temperature, p.top_p, p.top_k, p.max_tokens, p.stop
            );
            groups.entry(key).or_default().push(job);
        }
        for (_, group) in groups {
            self.generate_group(group);
        }
    }

    fn generate_group(&mut self, group: Vec<GenJob>) {
        let model_name = group[0].model.clone();
        let version = if model_name == self.shared.name {
            Lora::detach(&mut self.model);
            self.base_version.clone()
        } else {
            match self.adapters.get(&model_name) {
                Some(a) => {
                    if let Err(e) = a.lora.attach(&mut self.model) {
                        for job in group {
                            let _ = job.events.send(Event::Done(Err(ApiError::new(
                                500,
                                format!("adapter {model_name}: {e}"),
                            ))));
                        }
                        return;
                    }
                    a.version.clone()
                }
                None => {
                    for job in group {
                        let _ = job.events.send(Event::Done(Err(ApiError::new(
                            404,
                            format!("model {model_name:?} was unloaded"),
                        ))));
                    }
                    return;
                }
            }
        };
        // Requests tagged with another weight version than this one are refused (409).
        let (group, mismatched): (Vec<GenJob>, Vec<GenJob>) = group
            .into_iter()
            .partition(|j| j.expected_version.as_ref().is_none_or(|v| *v == version));
        for job in mismatched {
            let want = job.expected_version.clone().unwrap_or_default();
            let _ = job.events.send(Event::Done(Err(ApiError::new(
                409,
                format!(
                    "the request expects weight version {want:?}; {model_name:?} is at {version:?}"
                ),
            )
            .param("weight_version"))));
        }
        if group.is_empty() {
            Lora::detach(&mut self.model);
            return;
        }
        let params = group[0].params.clone();
        let mut prompts = Vec::new();
        let mut streams = Vec::new();
        let mut owner = Vec::new();
        for (j, job) in group.iter().enumerate() {
            for (k, p) in job.prompts.iter().enumerate() {
                prompts.push(p.clone());
                streams.push(job.streams[k]);
                owner.push((j, k));
            }
        }
        let scored: Option<Result<Vec<Vec<f32>>, String>> =
            group.iter().any(|j| j.score_prompts).then(|| {
                let pairs: Vec<(Vec<u32>, Vec<u32>)> = prompts
                    .iter()
                    .map(|p| (p[..1].to_vec(), p[1..].to_vec()))
                    .collect();
                if pairs.iter().all(|(_, c)| c.is_empty()) {
                    return Ok(vec![Vec::new(); pairs.len()]);
                }
                let temperature = if params.temperature > 0.0 {
                    params.temperature
                } else {
                    1.0
                };
                score_values_at_temperature(&self.model, &pairs, temperature)
                    .map_err(|e| e.to_string())
            });
        let result = if params.max_tokens == 0 {
            Ok(prompts
                .iter()
                .map(|_| Completion {
                    token_ids: Vec::new(),
                    text: String::new(),
                    logprobs: Vec::new(),
                    finish_reason: FinishReason::Length,
                })
                .collect())
        } else {
            generate_streams(
                &self.model,
                &self.shared.tokenizer,
                &prompts,
                &params,
                &streams,
                &mut |seq, token, logprob| {
                    let (j, k) = owner[seq];
                    let _ = group[j].events.send(Event::Token {
                        seq: k,
                        token,
                        logprob,
                    });
                },
            )
            .map_err(|e| e.to_string())
        };
        Lora::detach(&mut self.model);
        let mut completions: Vec<Vec<Completion>> = group.iter().map(|_| Vec::new()).collect();
        let mut scores: Vec<Vec<Vec<f32>>> = group.iter().map(|_| Vec::new()).collect();
        let failure = match (&result, &scored) {
            (Err(e), _) | (_, Some(Err(e))) => Some(e.clone()),
            _ => None,
        };
        if let Some(e) = failure {
            for job in group {
                let _ = job.events.send(Event::Done(Err(ApiError::new(
                    500,
                    format!("sampling failed: {e}"),
                ))));
            }
            return;
        }
        let all = result.expect("checked");
        let all_scores = scored.map(|s| s.expect("checked"));
        for (seq, c) in all.into_iter().enumerate() {
            let (j, _) = owner[seq];
            completions[j].push(c);
            if let Some(s) = &all_scores {
                scores[j].push(s[seq].clone());
            }
        }
        for ((job, c), s) in group.into_iter().zip(completions).zip(scores) {
            let _ = job.events.send(Event::Done(Ok(JobOutput {
                completions: c,
                prompt_logprobs: job.score_prompts.then_some(s),
                weight_version: version.clone(),
            })));
        }
    }
}

fn count(jobs: &[Job]) -> usize {
    jobs.iter()
        .map(|j| match j {
            Job::Generate(g) => g.prompts.len(),
            Job::Admin(..) => 0,
        })
        .sum()
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
    fn detokenizer_streams_whole_characters_and_stops() {
        let tok = TextTokenizer::byte_level(&["<eos>"]).unwrap();
        let ids = tok.encode("aé|b").unwrap();
        let mut d = Detokenizer::new();
        let stop = vec!["|".to_string()];
        let deltas: Vec<String> = ids.iter().map(|&t| d.push(&tok, t, &stop)).collect();
        assert_eq!(deltas.concat(), "aé");
        // 'é' is two bytes: its first byte alone yields nothing.
        assert_eq!(deltas[1], "");
        assert_eq!(deltas[2], "é");
    }
}
