//! `spar serve` on loopback, driven by spar's own client: answers equal the in-process model's,
//! streaming equals non-streaming, bad requests get 4xx with a message, adapters and weight
//! updates change what answers and their `weight_version`, and injected faults are survived
//! and counted.

use std::time::Duration;

use candle_core::{DType, Device};
use spar_lm::model::init_weights;
use spar_lm::sample::{generate, SamplingParams};
use spar_lm::score::score_values;
use spar_lm::train::BYTE_SPECIAL_TOKENS;
use spar_lm::{Checkpoint, Config, Engine, Lora, LoraConfig, TextTokenizer};
use spar_remote::protocol::*;
use spar_remote::server::Faults;
use spar_remote::{Client, ClientConfig, RemoteEngine, RemoteError, ServeConfig};

mod support;
use support::{scratch, tiny_model};

fn client(url: &str) -> Client {
    let mut c = ClientConfig::new(url);
    c.backoff = Duration::from_millis(5);
    Client::new(c).unwrap()
}

fn ids(tok: &TextTokenizer, text: &str) -> Vec<u32> {
    tok.encode(text).unwrap()
}

#[test]
fn completions_and_scores_equal_the_in_process_model() {
    let dir = scratch("equal");
    let ckpt = tiny_model(&dir, 1);
    let model = ckpt.frozen().unwrap();
    let tok = ckpt.tokenizer.clone().unwrap();
    let server = spar_remote::start(&ServeConfig::new(&dir, "127.0.0.1:0")).unwrap();
    let c = client(&server.base_url());

    let prompts: Vec<Vec<u32>> = ["a", "Kuhn poker, player 0:", "xyz xyz", "1 2 3 4 5 6 7 8"]
        .iter()
        .map(|p| ids(&tok, p))
        .collect();
    let params = SamplingParams {
        temperature: 1.0,
        max_tokens: 10,
        seed: 77,
        ..SamplingParams::default()
    };
    let local = generate(&model, &tok, &prompts, &params).unwrap();
    // Through the engine: one request per prompt, sent at once, batched by the server.
    let engine = RemoteEngine::new(vec![c.clone()], "");
    let remote = engine.generate(&prompts, &params).unwrap();
    for (l, r) in local.iter().zip(&remote) {
        let r = r.as_ref().unwrap();
        assert_eq!(l.token_ids, r.token_ids);
        assert_eq!(l.text, r.text);
        for (a, b) in l.logprobs.iter().zip(&r.logprobs) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
    // Scoring given completions: echo + max_tokens 0.
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = prompts
        .iter()
        .map(|p| (p.clone(), ids(&tok, "\\boxed{bet}")))
        .collect();
    let local_scores = score_values(&model, &pairs).unwrap();
    let remote_scores = engine.score(&pairs, 1.0).unwrap();
    for (l, r) in local_scores.iter().zip(&remote_scores) {
        let r = r.as_ref().unwrap();
        assert_eq!(l.len(), r.len());
        for (a, b) in l.iter().zip(r) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
    // n = 3 choices of one text prompt: streams seed_stream + j, like a batch of three.
    let r = c
        .completions(&CompletionRequest {
            prompt: Some(Prompt::Text("a".into())),
            n: Some(3),
            max_tokens: Some(6),
            seed: Some(5),
            return_token_ids: Some(true),
            ..CompletionRequest::default()
        })
        .unwrap();
    let three = vec![ids(&tok, "a"); 3];
    let local = generate(
        &model,
        &tok,
        &three,
        &SamplingParams {
            max_tokens: 6,
            seed: 5,
            ..SamplingParams::default()
        },
    )
    .unwrap();
    for (choice, l) in r.choices.iter().zip(&local) {
        assert_eq!(choice.token_ids.as_ref().unwrap(), &l.token_ids);
    }
    assert_eq!(r.weight_version.as_deref(), Some("0"));
    let usage = r.usage.unwrap();
    assert_eq!(usage.prompt_tokens, 3);
    assert_eq!(
        usage.completion_tokens,
        local.iter().map(|l| l.token_ids.len()).sum::<usize>()
    );
}

#[test]
fn chat_and_streaming_answer_like_the_template_and_the_plain_call() {
    let dir = scratch("chat");
    let ckpt = tiny_model(&dir, 2);
    let model = ckpt.frozen().unwrap();
    let tok = ckpt.tokenizer.clone().unwrap();
    let server = spar_remote::start(&ServeConfig::new(&dir, "127.0.0.1:0")).unwrap();
    let c = client(&server.base_url());
    let messages = vec![
        ChatMessage {
            role: "system".into(),
            content: "rules".into(),
        },
        ChatMessage {
            role: "user".into(),
            content: "your move".into(),
        },
    ];
    let request = ChatRequest {
        messages: messages.clone(),
        max_tokens: Some(8),
        seed: Some(3),
        logprobs: Some(true),
        ..ChatRequest::default()
    };
    let answer = c.chat(&request).unwrap();
    let text = answer.choices[0]
        .message
        .as_ref()
        .unwrap()
        .content
        .clone()
        .unwrap();
    let prompt = tok.chat_template().unwrap().render(
        &[
            spar_lm::tokenizer::Message::new("system", "rules"),
            spar_lm::tokenizer::Message::new("user", "your move"),
        ],
        true,
    );
    let local = generate(
        &model,
        &tok,
        &[ids(&tok, &prompt)],
        &SamplingParams {
            max_tokens: 8,
            seed: 3,
            ..SamplingParams::default()
        },
    )
    .unwrap();
    assert_eq!(text, local[0].text);
    let lp = answer.choices[0].logprobs.as_ref().unwrap();
    assert_eq!(lp.content.as_ref().unwrap().len(), local[0].token_ids.len());

    // Streaming: the deltas add up to the same answer, then [DONE].
    let body = serde_json::to_value(ChatRequest {
        stream: Some(true),
        logprobs: None,
        ..request
    })
    .unwrap();
    let events = c
        .post_stream(&c.api_url("/chat/completions"), &body)
        .unwrap();
    let streamed: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, text);
    assert!(events
        .last()
        .unwrap()
        .get("weight_version")
        .is_some_and(|v| v == "0"));

    let body = serde_json::json!({"prompt": "abc", "max_tokens": 7, "seed": 9, "stream": true});
    let events = c.post_stream(&c.api_url("/completions"), &body).unwrap();
    let streamed: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["text"].as_str())
        .collect();
    let plain = c
        .completions(&CompletionRequest {
            prompt: Some(Prompt::Text("abc".into())),
            max_tokens: Some(7),
            seed: Some(9),
            ..CompletionRequest::default()
        })
        .unwrap();
    assert_eq!(streamed, plain.choices[0].text);
}

/// Sends raw bytes and returns the status line and body.
fn raw(addr: std::net::SocketAddr, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn bad_requests_get_4xx_answers_that_say_what_was_wrong() {
    let dir = scratch("bad");
    tiny_model(&dir, 3);
    let mut config = ServeConfig::new(&dir, "127.0.0.1:0");
    config.max_body_bytes = 4096;
    config.max_tokens_limit = 50;
    let server = spar_remote::start(&config).unwrap();
    let addr = server.addr();
    let cases = [
        (
            post("/v1/completions", "{not json"),
            400,
            "not the expected JSON",
        ),
        (
            post("/v1/completions", r#"{"model":"nope","prompt":"a"}"#),
            404,
            "is not served here",
        ),
        (
            post("/v1/completions", r#"{"prompt":"a","max_tokens":51}"#),
            400,
            "exceeds this server's limit",
        ),
        (
            post("/v1/completions", r#"{"prompt":[1,2,99999]}"#),
            400,
            "outside the vocabulary",
        ),
        (
            post(
                "/v1/completions",
                r#"{"prompt":"a","max_tokens":5,"temperature":-1}"#,
            ),
            400,
            "temperature",
        ),
        (
            post(
                "/v1/completions",
                &format!(r#"{{"prompt":{:?},"max_tokens":40}}"#, vec![65u32; 230]),
            ),
            400,
            "context",
        ),
        (
            post("/v1/chat/completions", r#"{"model":"","messages":[]}"#),
            400,
            "messages is empty",
        ),
        (
            post("/v1/completions", &"x".repeat(5000)),
            413,
            "at most 4096",
        ),
        (
            "GET /v1/completions HTTP/1.1\r\nConnection: close\r\n\r\n".to_string(),
            405,
            "takes POST",
        ),
        (
            "GET /v2/everything HTTP/1.1\r\nConnection: close\r\n\r\n".to_string(),
            404,
            "no endpoint",
        ),
        (
            post("/v1/unload_lora_adapter", r#"{"lora_name":"ghost"}"#),
            404,
            "no adapter named",
        ),
        (
            post(
                "/update_weights_from_disk",
                r#"{"model_path":"/definitely/not/here"}"#,
            ),
            400,
            "model_path",
        ),
    ];
    for (request, status, needle) in cases {
        let (got, body) = raw(addr, &request);
        assert_eq!(got, status, "{request:.60}: {body}");
        let parsed: ErrorBody = serde_json::from_str(&body).unwrap();
        assert!(
            parsed.error.message.contains(needle),
            "{request:.60}: {:?} lacks {needle:?}",
            parsed.error.message
        );
    }
    // A request that is not HTTP gets hyper's own 400, without a body.
    assert_eq!(raw(addr, "garbage\r\n\r\n").0, 400);
    // The server still answers after all that.
    let c = client(&server.base_url());
    c.health().unwrap();
    assert_eq!(c.models().unwrap().data.len(), 1);
}

#[test]
fn adapters_and_weight_updates_change_answers_and_versions() {
    let dir = scratch("lora");
    let base_dir = dir.join("base");
    let ckpt = tiny_model(&base_dir, 4);
    let tok = ckpt.tokenizer.clone().unwrap();
    // An adapter whose B is not zero, so it changes the model.
    let mut adapted = ckpt.frozen().unwrap();
    let lora = Lora::init(
        &mut adapted,
        LoraConfig::new(4, 8.0, &["q_proj", "v_proj"]),
        9,
    )
    .unwrap();
    for var in lora.vars() {
        let t = var.as_tensor();
        if t.dims()[1] == 4 {
            // B (out, r)
            var.set(&(t.ones_like().unwrap() * 0.05).unwrap()).unwrap();
        }
    }
    let adapter_dir = dir.join("adapter");
    lora.save(&adapter_dir).unwrap();
    let server = spar_remote::start(&ServeConfig::new(&base_dir, "127.0.0.1:0")).unwrap();
    let c = client(&server.base_url());
    let pair = vec![(ids(&tok, "hello"), ids(&tok, " world"))];
    let base_engine = RemoteEngine::new(vec![c.clone()], "");
    let base_scores = base_engine.score(&pair, 1.0).unwrap()[0].clone().unwrap();

    c.load_lora_adapter(&LoadLoraRequest {
        lora_name: "policy-v1".into(),
        lora_path: adapter_dir.display().to_string(),
        load_inplace: false,
    })
    .unwrap();
    let names: Vec<String> = c.models().unwrap().data.into_iter().map(|m| m.id).collect();
    assert!(names.contains(&"policy-v1".to_string()), "{names:?}");
    // Loading the same name again without load_inplace is refused.
    let again = c.load_lora_adapter(&LoadLoraRequest {
        lora_name: "policy-v1".into(),
        lora_path: adapter_dir.display().to_string(),
        load_inplace: false,
    });
    assert!(matches!(
        again,
        Err(RemoteError::Status { status: 400, .. })
    ));
    let engine = RemoteEngine::new(vec![c.clone()], "policy-v1");
    engine.expect_version(Some("policy-v1".into()));
    let lora_scores = engine.score(&pair, 1.0).unwrap()[0].clone().unwrap();
    let local = score_values(&adapted, &pair).unwrap();
    for (a, b) in local[0].iter().zip(&lora_scores) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    assert!(lora_scores
        .iter()
        .zip(&base_scores)
        .any(|(a, b)| (a - b).abs() > 1e-3));
    // Requests are tagged with the version they expect: another one is refused (409), a
    // failed and counted call.
    engine.expect_version(Some("policy-v0".into()));
    let refused = engine.score(&pair, 1.0).unwrap()[0].clone().unwrap_err();
    assert!(
        refused.contains("409") || refused.contains("expects weight version"),
        "{refused}"
    );
    assert_eq!(engine.stats().failed, 1);

    c.unload_lora_adapter(&UnloadLoraRequest {
        lora_name: "policy-v1".into(),
    })
    .unwrap();
    let gone = c.completions(&CompletionRequest {
        model: "policy-v1".into(),
        prompt: Some(Prompt::Text("a".into())),
        ..CompletionRequest::default()
    });
    assert!(matches!(gone, Err(RemoteError::Status { status: 404, .. })));

    // New base weights from disk, with a version.
    let other_dir = dir.join("other");
    let other = tiny_model(&other_dir, 5);
    let answer = c
        .update_weights_from_disk(&UpdateWeightsRequest {
            model_path: other_dir.display().to_string(),
            weight_version: Some("step-7".into()),
        })
        .unwrap();
    assert!(answer.success);
    base_engine.expect_version(Some("step-7".into()));
    let new_scores = base_engine.score(&pair, 1.0).unwrap()[0].clone().unwrap();
    let local = score_values(&other.frozen().unwrap(), &pair).unwrap();
    for (a, b) in local[0].iter().zip(&new_scores) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    // Another architecture is refused and the served weights stay.
    let wide_dir = dir.join("wide");
    let tokenizer = TextTokenizer::byte_level(&BYTE_SPECIAL_TOKENS).unwrap();
    let cfg = Config::tiny(tokenizer.vocab_size(), 64, 1, 4);
    Checkpoint {
        tensors: init_weights(&cfg, 0.3, 1, &Device::Cpu).unwrap(),
        config: cfg,
        tokenizer: Some(tokenizer),
    }
    .save(&wide_dir)
    .unwrap();
    let refused = c.update_weights_from_disk(&UpdateWeightsRequest {
        model_path: wide_dir.display().to_string(),
        weight_version: Some("wide".into()),
    });
    assert!(matches!(
        refused,
        Err(RemoteError::Status { status: 400, .. })
    ));
    assert_eq!(
        c.models().unwrap().data[0].weight_version.as_deref(),
        Some("step-7")
    );
    let _ = DType::F32;
}

#[test]
fn injected_faults_are_retried_counted_and_never_fatal() {
    let dir = scratch("faults");
    tiny_model(&dir, 6);
    let mut config = ServeConfig::new(&dir, "127.0.0.1:0");
    config.faults = "drop=0.2,stall=0.15,error=0.2,stall_ms=1500,seed=11"
        .parse::<Faults>()
        .unwrap();
    let server = spar_remote::start(&config).unwrap();
    let mut cc = ClientConfig::new(&server.base_url());
    cc.timeout = Duration::from_millis(700);
    cc.backoff = Duration::from_millis(5);
    cc.max_retries = 2;
    cc.concurrency = 8;
    let c = Client::new(cc).unwrap();
    let tok = TextTokenizer::byte_level(&BYTE_SPECIAL_TOKENS).unwrap();
    let prompts: Vec<Vec<u32>> = (0..40).map(|i| ids(&tok, &format!("p{i}"))).collect();
    let engine = RemoteEngine::new(vec![c], "");
    let params = SamplingParams {
        max_tokens: 4,
        ..SamplingParams::default()
    };
    let answers = engine.generate(&prompts, &params).unwrap();
    assert_eq!(answers.len(), 40);
    let failed = answers.iter().filter(|a| a.is_err()).count() as u64;
    let stats = engine.stats();
    // About 55% of attempts fail; with 3 attempts each most prompts get an answer.
    assert!(failed < 20, "{failed} of 40 failed: {stats:?}");
    assert_eq!(stats.failed, failed);
    assert_eq!(stats.client.failures, failed);
    assert!(stats.client.retries > 0, "{stats:?}");
    assert!(stats.client.server_errors > 0, "{stats:?}");
    assert!(stats.client.timeouts > 0, "{stats:?}");
    assert!(stats.client.connection_errors > 0, "{stats:?}");
}
