//! The generation endpoints: `/v1/completions` (text or token-id prompts, scoring with `echo`)
//! and `/v1/chat/completions` (the model's chat template).

use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;

use spar_lm::tokenizer::Message;

use super::http::Replier;
use super::routes::{json, Answer};
use super::submit::{collect, finish_reason, stream, submit, token_text, usage, Sampling};
use super::{now, ApiError, Job, JobOutput, Shared};
use crate::protocol::*;

pub(super) fn completions(
    r: &CompletionRequest,
    shared: &Shared,
    jobs: &Sender<Job>,
    reply: &mut Replier,
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
        return stream(reply, rx, tokenizer, count, &stop, chunk, last);
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

pub(super) fn chat(
    r: &ChatRequest,
    shared: &Shared,
    jobs: &Sender<Job>,
    reply: &mut Replier,
) -> Result<Answer, ApiError> {
    let tokenizer = &shared.tokenizer;
    if !tokenizer.has_chat_template() {
        return Err(ApiError::new(
            400,
            "this model has no chat template; use /v1/completions with a text prompt",
        ));
    }
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
        .render_chat(&messages, true)
        .and_then(|text| tokenizer.encode(&text))
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
        return stream(reply, rx, tokenizer, sampling.n, &stop, chunk, last);
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
