//! One connection: reading its requests, injected faults, routing, and the endpoints that
//! need no sampling (models, adapters and weights through the worker, token helpers).

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Sender};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::completions::{chat, completions};
use super::{Admin, ApiError, Job, Shared};
use crate::http::{read_request, write_response, ReadError, Request};
use crate::protocol::*;

/// Serves one connection's requests until it closes.
pub(super) fn connection(stream: TcpStream, shared: &Shared, jobs: &Sender<Job>) {
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
