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
//! HTTP/1.1 is hyper's, on a tokio runtime (`http`). One worker thread owns the model. Each
//! request is checked and queued by its endpoint on tokio's blocking pool; the worker takes every request waiting (up to `max_batch` sequences, after waiting
//! `batch_window` for more to arrive) and samples each group of requests with the same model
//! and sampling settings in one batch. Every sequence keeps its own random stream
//! (`seed`, `seed_stream`), so a request gets the same tokens alone or batched with others, and
//! the same tokens as the in-process sampler with that seed and stream. Weight updates run on
//! the worker between batches, so no answer mixes two versions; every answer carries the
//! `weight_version` that produced it.
//!
//! Without `--api-key`, the endpoints that change the served model (adapters, weights) answer
//! only on loopback (403 elsewhere); with it, they need `Authorization: Bearer KEY` (401).
//!
//! The module by concern: [`config`] (how it runs: [`ServeConfig`], [`ApiKey`], [`Faults`],
//! [`ServeError`]); this file (the shared state, the jobs endpoints hand the worker, and
//! [`start`]); `http` (the accept loop, the API key, injected faults, body limits, request
//! logging, answers on the wire); `routes` (routing, the small endpoints); `submit`
//! (a generation request's checks, queueing it, collecting or streaming its tokens);
//! `completions` (the two generation endpoints); `worker` (the thread that owns the model:
//! batching, weight updates, sampling).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use spar_lm::sample::{Completion, SamplingParams};
use spar_lm::{Lora, TextTokenizer};
use tokio::sync::watch;

use crate::protocol::*;

mod completions;
pub mod config;
mod http;
mod routes;
mod submit;
mod worker;

pub use config::{ApiKey, Faults, ServeConfig, ServeError};

use worker::Worker;

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
            401 => "authentication_error",
            403 => "permission_error",
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

/// What the endpoints may read without asking the worker.
struct Shared {
    name: String,
    tokenizer: TextTokenizer,
    context: usize,
    created: u64,
    versions: Mutex<BTreeMap<String, String>>,
    config: ServeConfig,
    /// Whether the server listens on a loopback address only.
    loopback: bool,
    requests: AtomicU64,
    connections: AtomicUsize,
    fault_draws: AtomicU64,
}

/// A running server (see [`start`]).
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    shared: Arc<SharedHandle>,
    stop: watch::Sender<bool>,
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

    /// Whether the endpoints that change the served model are open without an API key: only
    /// on loopback.
    pub fn model_changes_open(&self) -> bool {
        self.shared.0.config.api_key.is_none() && self.shared.0.loopback
    }

    /// Stops accepting connections: requests in flight are answered (for up to 30 s), idle
    /// kept-alive connections are closed.
    pub fn stop(&self) {
        self.stop.send_replace(true);
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
    listener
        .set_nonblocking(true)
        .map_err(|source| ServeError::Bind {
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
        loopback: addr.ip().is_loopback(),
        requests: AtomicU64::new(0),
        connections: AtomicUsize::new(0),
        fault_draws: AtomicU64::new(0),
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("spar-serve-http")
        .build()
        .map_err(ServeError::Runtime)?;
    let (stop, stopped) = watch::channel(false);
    let http_shared = shared.clone();
    // The runtime lives on its own thread until the server stops; the worker ends when the
    // last job sender (held by the runtime's tasks) is gone.
    std::thread::Builder::new()
        .name("spar-serve-accept".into())
        .spawn(move || runtime.block_on(http::run(listener, http_shared, jobs, stopped)))
        .expect("spawn the accept thread");
    Ok(RunningServer {
        addr,
        shared: Arc::new(SharedHandle(shared)),
        stop,
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
    if config.api_key.is_none() && !server.model_changes_open() {
        eprintln!(
            "spar serve: listening beyond loopback without --api-key: the adapter and weight \
             endpoints answer 403 (restart with --api-key KEY, or SPAR_API_KEY, to open them)"
        );
    }
    loop {
        std::thread::park();
    }
}
