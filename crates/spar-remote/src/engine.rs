//! A server as a rollout engine: [`RemoteEngine`] implements [`spar_lm::Engine`] over
//! `/v1/completions` with token-id prompts, so rollouts can run on `spar serve`, vLLM or SGLang
//! while the learner trains in this process.
//!
//! Token ids travel both ways (`prompt` as ids, `return_token_ids`), never re-tokenised text:
//! verl's agent-loop docs report PPO failing to converge when sampled ids and re-encoded ids
//! differ. Each prompt is its own request, sent concurrently (the client's concurrency limit);
//! the server batches them. With several servers, prompts are dealt round-robin. Scoring a
//! given completion is `echo` with `max_tokens = 0` and `logprobs`: the server returns the
//! log-probability of every prompt token, and the completion's are the last ones.
//!
//! `spar serve` puts its `weight_version` in every answer. After the learner pushes new weights
//! it calls [`RemoteEngine::expect_version`]; an answer from any other version is counted
//! (`stale`) and treated as a failed call. An answer without a version (vLLM, SGLang) cannot
//! be checked: it is accepted and counted (`unverified`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use spar_lm::engine::{Engine, Failure};
use spar_lm::sample::{Completion, FinishReason, SamplingParams};

use crate::client::{Client, ClientStats};
use crate::protocol::{CompletionRequest, CompletionResponse, Prompt};

/// Rollouts through one or more OpenAI-compatible servers.
#[derive(Debug)]
pub struct RemoteEngine {
    clients: Vec<Client>,
    model: Mutex<String>,
    expected: Mutex<Option<String>>,
    stale: AtomicU64,
    unverified: AtomicU64,
    failed: AtomicU64,
}

/// Counts of a [`RemoteEngine`]'s calls, summed over its servers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    /// The clients' counts (attempts, retries, timeouts, ...).
    pub client: ClientStats,
    /// Answers from a weight version other than the expected one.
    pub stale: u64,
    /// Answers without a weight version (servers that do not report one), accepted.
    pub unverified: u64,
    /// Prompts that got no usable answer.
    pub failed: u64,
}

impl RemoteEngine {
    /// An engine asking `model` on every client's server.
    pub fn new(clients: Vec<Client>, model: &str) -> RemoteEngine {
        RemoteEngine {
            clients,
            model: Mutex::new(model.to_string()),
            expected: Mutex::new(None),
            stale: AtomicU64::new(0),
            unverified: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// The servers' clients.
    pub fn clients(&self) -> &[Client] {
        &self.clients
    }

    /// Sends later requests to `model` (e.g. a newly loaded adapter's name).
    pub fn set_model(&self, model: &str) {
        *self.model.lock().expect("model lock") = model.to_string();
    }

    /// The model requests name.
    pub fn model(&self) -> String {
        self.model.lock().expect("model lock").clone()
    }

    /// From now on, answers must carry `version` (None: any).
    pub fn expect_version(&self, version: Option<String>) {
        *self.expected.lock().expect("version lock") = version;
    }

    /// Counts so far.
    pub fn stats(&self) -> EngineStats {
        let mut client = ClientStats::default();
        for c in &self.clients {
            let s = c.stats();
            client.requests += s.requests;
            client.retries += s.retries;
            client.failures += s.failures;
            client.timeouts += s.timeouts;
            client.server_errors += s.server_errors;
            client.connection_errors += s.connection_errors;
        }
        EngineStats {
            client,
            stale: self.stale.load(Ordering::Relaxed),
            unverified: self.unverified.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// Sends `requests` (request `i` to server `i mod servers`), concurrently.
    fn send(&self, requests: Vec<CompletionRequest>) -> Vec<Result<CompletionResponse, Failure>> {
        let servers = self.clients.len().max(1);
        let expected = self.expected.lock().expect("version lock").clone();
        // Tag every request with the version it expects (spar serve refuses a mismatch).
        let indexed: Vec<(usize, CompletionRequest)> = requests
            .into_iter()
            .map(|mut r| {
                r.weight_version = expected.clone();
                r
            })
            .enumerate()
            .collect();
        let Some(first) = self.clients.first() else {
            return indexed
                .iter()
                .map(|_| Err("no server configured".to_string()))
                .collect();
        };
        first.map_concurrent(indexed, |(i, request)| {
            let client = &self.clients[i % servers];
            let answer = client.completions(&request).map_err(|e| e.to_string());
            let answer = answer.and_then(|r| match (&expected, &r.weight_version) {
                (Some(want), Some(got)) if want != got => {
                    self.stale.fetch_add(1, Ordering::Relaxed);
                    Err(format!(
                        "the server answered with weight version {got:?}, expected {want:?}"
                    ))
                }
                (Some(_), None) => {
                    // vLLM and SGLang do not report versions: accepted, counted.
                    self.unverified.fetch_add(1, Ordering::Relaxed);
                    Ok(r)
                }
                _ => Ok(r),
            });
            if answer.is_err() {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
            answer
        })
    }
}

fn first_choice(r: &CompletionResponse) -> Result<&crate::protocol::CompletionChoice, Failure> {
    r.choices
        .first()
        .ok_or_else(|| "the server answered with no choices".to_string())
}

impl Engine for RemoteEngine {
    fn generate_streams(
        &self,
        prompts: &[Vec<u32>],
        params: &SamplingParams,
        streams: &[(u64, u64)],
    ) -> spar_lm::Result<Vec<Result<Completion, Failure>>> {
        if streams.len() != prompts.len() {
            return Err(spar_lm::LmError::InvalidArgument(format!(
                "{} random streams for {} prompts",
                streams.len(),
                prompts.len()
            )));
        }
        let model = self.model();
        let requests = prompts
            .iter()
            .zip(streams)
            .map(|(p, &(seed, stream))| CompletionRequest {
                model: model.clone(),
                prompt: Some(Prompt::Ids(p.clone())),
                max_tokens: Some(params.max_tokens),
                temperature: Some(params.temperature),
                top_p: Some(params.top_p),
                top_k: (params.top_k > 0).then_some(params.top_k as i64),
                logprobs: Some(1),
                stop: (!params.stop.is_empty())
                    .then(|| crate::protocol::Stop::Many(params.stop.clone())),
                seed: Some(seed),
                seed_stream: Some(stream),
                return_token_ids: Some(true),
                ..CompletionRequest::default()
            })
            .collect();
        Ok(self
            .send(requests)
            .into_iter()
            .map(|answer| {
                let r = answer?;
                let c = first_choice(&r)?;
                let token_ids = c.token_ids.clone().ok_or_else(|| {
                    "the server returned no token ids (it must support return_token_ids)"
                        .to_string()
                })?;
                let logprobs = c
                    .logprobs
                    .as_ref()
                    .map(|l| l.token_logprobs.iter().map(|v| v.unwrap_or(0.0)).collect())
                    .unwrap_or_default();
                let finish_reason = match c.finish_reason.as_deref() {
                    Some("length") => FinishReason::Length,
                    _ => FinishReason::Stop,
                };
                Ok(Completion {
                    token_ids,
                    text: c.text.clone(),
                    logprobs,
                    finish_reason,
                })
            })
            .collect())
    }

    fn score(
        &self,
        pairs: &[(Vec<u32>, Vec<u32>)],
        temperature: f64,
    ) -> spar_lm::Result<Vec<Result<Vec<f32>, Failure>>> {
        let model = self.model();
        let requests = pairs
            .iter()
            .map(|(p, c)| CompletionRequest {
                model: model.clone(),
                prompt: Some(Prompt::Ids(p.iter().chain(c).copied().collect())),
                max_tokens: Some(0),
                temperature: Some(temperature),
                logprobs: Some(1),
                echo: Some(true),
                ..CompletionRequest::default()
            })
            .collect();
        Ok(self
            .send(requests)
            .into_iter()
            .zip(pairs)
            .map(|(answer, (prompt, completion))| {
                let r = answer?;
                let c = first_choice(&r)?;
                let values = &c
                    .logprobs
                    .as_ref()
                    .ok_or_else(|| "the server returned no log-probabilities".to_string())?
                    .token_logprobs;
                let total = prompt.len() + completion.len();
                if values.len() < total {
                    return Err(format!(
                        "the server scored {} tokens of {total} (it must echo the prompt's \
                         log-probabilities)",
                        values.len()
                    ));
                }
                values[prompt.len()..total]
                    .iter()
                    .map(|v| v.ok_or_else(|| "a completion token has no log-probability".into()))
                    .collect()
            })
            .collect())
    }
}
