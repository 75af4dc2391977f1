//! Routing a request to its endpoint, and the endpoints that need no sampling (models,
//! adapters and weights through the worker, token helpers). Synchronous code: `http` runs it on
//! tokio's blocking pool.

use std::sync::mpsc::{channel, Sender};

use bytes::Bytes;
use serde::Serialize;

use super::completions::{chat, completions};
use super::http::Replier;
use super::{Admin, ApiError, Job, Shared};
use crate::protocol::*;

/// A request as the endpoints see it: read whole, its body within `--max-body-bytes`.
pub(super) struct Request {
    /// `GET`, `POST`, ...
    pub(super) method: String,
    /// The path without the query string.
    pub(super) path: String,
    /// The body.
    pub(super) body: Bytes,
}

/// The endpoints that change the served model (adapters, weights): `--api-key` guards them,
/// and without one they are open on loopback only.
pub(super) fn changes_model(path: &str) -> bool {
    matches!(
        path.trim_end_matches('/'),
        "/v1/load_lora_adapter"
            | "/load_lora_adapter"
            | "/v1/unload_lora_adapter"
            | "/unload_lora_adapter"
            | "/update_weights_from_disk"
    )
}

pub(super) enum Answer {
    Json(Vec<u8>),
    Text(String),
    Streamed,
}

pub(super) fn json<T: Serialize>(value: &T) -> Result<Answer, ApiError> {
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

/// Answers `request` (a streamed answer goes out through `reply` as it is made).
pub(super) fn route(
    request: &Request,
    shared: &Shared,
    jobs: &Sender<Job>,
    reply: &mut Replier,
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
            completions(&parse(request)?, shared, jobs, reply)
        }
        "/v1/chat/completions" => {
            post_only(method)?;
            chat(&parse(request)?, shared, jobs, reply)
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

pub(super) fn check_ids(ids: &[u32], shared: &Shared) -> Result<(), ApiError> {
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
