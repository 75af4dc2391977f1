//! A generation request between its endpoint and the worker: its sampling settings checked,
//! its prompts checked and queued as one job, and its answer collected or streamed as
//! server-sent events (whole characters, cut at stop strings).

use std::sync::mpsc::{channel, Receiver, Sender};

use spar_lm::sample::{Completion, FinishReason, SamplingParams};
use spar_lm::TextTokenizer;

use super::http::Replier;
use super::routes::{check_ids, Answer};
use super::{ApiError, Event, GenJob, Job, JobOutput, Shared};
use crate::protocol::*;

/// The sampling settings shared by every request kind.
pub(super) struct Sampling {
    pub(super) max_tokens: usize,
    pub(super) temperature: f64,
    pub(super) top_p: f64,
    pub(super) top_k: Option<i64>,
    pub(super) n: usize,
    pub(super) stop: Option<Stop>,
    pub(super) seed: Option<u64>,
    pub(super) seed_stream: Option<u64>,
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

pub(super) fn check_model(model: &str, shared: &Shared) -> Result<(), ApiError> {
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
pub(super) fn submit(
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
pub(super) fn collect(rx: Receiver<Event>) -> Result<JobOutput, ApiError> {
    for event in rx {
        if let Event::Done(out) = event {
            return out;
        }
    }
    Err(ApiError::new(500, "the model worker dropped the request"))
}

/// Streams a job's tokens as server-sent events: `chunk(seq, delta, token, logprob)` makes an
/// event's payload, `last(out)` the closing events.
pub(super) fn stream(
    reply: &mut Replier,
    rx: Receiver<Event>,
    tokenizer: &TextTokenizer,
    sequences: usize,
    stop: &[String],
    mut chunk: impl FnMut(usize, String, Option<(u32, f32)>) -> String,
    last: impl FnOnce(&JobOutput) -> Vec<String>,
) -> Result<Answer, ApiError> {
    let mut sse = reply.stream()?;
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
                    connected = sse.event(&chunk(seq, delta, Some((token, logprob))));
                }
            }
            Event::Done(Ok(out)) => {
                // Text held back (an incomplete character at the end of a token) goes out now,
                // so the deltas add up to the answer's text.
                for (seq, c) in out.completions.iter().enumerate() {
                    let sent = detok.get(seq).map_or(0, |d| d.sent);
                    if connected && c.text.len() > sent && c.text.is_char_boundary(sent) {
                        connected = sse.event(&chunk(seq, c.text[sent..].to_string(), None));
                    }
                }
                for payload in last(&out) {
                    sse.event(&payload);
                }
                sse.finish();
                return Ok(Answer::Streamed);
            }
            Event::Done(Err(e)) => {
                sse.event(&String::from_utf8_lossy(&e.body()));
                sse.finish();
                return Ok(Answer::Streamed);
            }
        }
    }
    Ok(Answer::Streamed)
}

pub(super) fn finish_reason(reason: FinishReason) -> String {
    match reason {
        FinishReason::Stop => "stop".into(),
        FinishReason::Length => "length".into(),
    }
}

pub(super) fn token_text(tokenizer: &TextTokenizer, id: u32) -> String {
    tokenizer.decode(&[id], false).unwrap_or_default()
}

pub(super) fn usage(prompt_tokens: usize, completions: &[Completion]) -> Usage {
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

#[cfg(test)]
mod tests {
    use super::*;

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
