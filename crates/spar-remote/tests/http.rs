//! `spar serve` on the wire, with raw requests: `Expect: 100-continue` is answered with the
//! interim `100 Continue` before the body is sent (and a refused request with its final answer
//! instead), chunked request bodies are read and limited, two requests share one connection,
//! the endpoints that change the served model need the API key (401), or, without one, answer
//! only on loopback (403), and connections over `--max-connections` are answered 503.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use spar_lm::TextTokenizer;
use spar_remote::protocol::{ErrorBody, TokenizeResponse, UpdateWeightsRequest};
use spar_remote::server::ApiKey;
use spar_remote::{Client, ClientConfig, RemoteError, RunningServer, ServeConfig};

mod support;
use support::{scratch, tiny_model};

/// A server on `addr` for a tiny model; returns it with the model's tokenizer and directory.
fn server(name: &str, addr: &str, edit: impl FnOnce(&mut ServeConfig)) -> Server {
    let dir = scratch(name);
    let tokenizer = tiny_model(&dir, 1).tokenizer.unwrap();
    let mut config = ServeConfig::new(&dir, addr);
    edit(&mut config);
    let running = spar_remote::start(&config).unwrap();
    // Reached on loopback whatever address it listens on.
    let port = running.addr().port();
    Server {
        running,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        tokenizer,
        dir: dir.display().to_string(),
    }
}

struct Server {
    running: RunningServer,
    addr: SocketAddr,
    tokenizer: TextTokenizer,
    dir: String,
}

impl Server {
    fn connect(&self) -> BufReader<TcpStream> {
        let stream = TcpStream::connect(self.addr).unwrap();
        // A guard against a hung test, not a measurement: nothing asserts on time.
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        BufReader::new(stream)
    }

    fn client(&self, key: Option<&str>) -> Client {
        let mut config = ClientConfig::new(&format!("http://{}/v1", self.addr));
        config.api_key = key.map(str::to_string);
        config.max_retries = 0;
        Client::new(config).unwrap()
    }
}

/// One response read off `conn`: status, headers (lower-cased names) and body, whether the
/// body has a `Content-Length` or is chunked.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn error(&self) -> String {
        serde_json::from_str::<ErrorBody>(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
            .error
            .message
    }
}

fn read_head(conn: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut status_line = String::new();
    conn.read_line(&mut status_line).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            return (status, headers);
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
}

fn read_reply(conn: &mut BufReader<TcpStream>) -> Reply {
    let (status, headers) = read_head(conn);
    let mut reply = Reply {
        status,
        headers,
        body: String::new(),
    };
    let mut body = Vec::new();
    if let Some(n) = reply.header("content-length") {
        body = vec![0; n.parse().unwrap()];
        conn.read_exact(&mut body).unwrap();
    } else if reply.header("transfer-encoding") == Some("chunked") {
        loop {
            let mut size = String::new();
            conn.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            conn.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    reply.body = String::from_utf8(body).unwrap();
    reply
}

fn tokens(reply: &Reply) -> Vec<u32> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str::<TokenizeResponse>(&reply.body)
        .unwrap()
        .tokens
}

/// `POST /tokenize` of `prompt` with a `Content-Length` on `conn`; the token ids answered.
fn tokenize(conn: &mut BufReader<TcpStream>, prompt: &str) -> Vec<u32> {
    let body = serde_json::json!({ "prompt": prompt }).to_string();
    write!(
        conn.get_mut(),
        "POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    tokens(&read_reply(conn))
}

#[test]
fn expect_100_continue_gets_the_interim_answer_before_the_body_is_sent() {
    let s = server("expect", "127.0.0.1:0", |c| c.max_body_bytes = 4096);
    let body = r#"{"prompt":"expect me"}"#;
    let mut conn = s.connect();
    write!(
        conn.get_mut(),
        "POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    // Nothing of the body is sent until the server says to go on.
    let (status, _) = read_head(&mut conn);
    assert_eq!(status, 100);
    conn.get_mut().write_all(body.as_bytes()).unwrap();
    let reply = read_reply(&mut conn);
    assert_eq!(
        tokens(&reply),
        s.tokenizer.encode("expect me").unwrap(),
        "the answer after 100 Continue"
    );

    // A body over the limit is refused at once, with no 100 Continue: the client never sends it.
    let mut conn = s.connect();
    conn.get_mut()
        .write_all(
            b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 1500000\r\n\
              Expect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let reply = read_reply(&mut conn);
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert!(reply.error().contains("at most 4096"), "{}", reply.error());
}

#[test]
fn chunked_request_bodies_are_read_and_limited() {
    let s = server("chunked", "127.0.0.1:0", |c| c.max_body_bytes = 64);
    let mut conn = s.connect();
    let (a, b) = (r#"{"prompt":"#, r#""in two chunks"}"#);
    write!(
        conn.get_mut(),
        "POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    )
    .unwrap();
    let reply = read_reply(&mut conn);
    assert_eq!(tokens(&reply), s.tokenizer.encode("in two chunks").unwrap());

    // 40 + 40 bytes in two chunks pass the 64-byte limit: 413, whatever no header declared.
    let mut conn = s.connect();
    let chunk = "x".repeat(40);
    write!(
        conn.get_mut(),
        "POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         28\r\n{chunk}\r\n28\r\n{chunk}\r\n0\r\n\r\n"
    )
    .unwrap();
    let reply = read_reply(&mut conn);
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert!(reply.error().contains("more than 64"), "{}", reply.error());
}

#[test]
fn two_requests_share_one_kept_alive_connection() {
    let s = server("keepalive", "127.0.0.1:0", |_| {});
    let mut conn = s.connect();
    conn.get_mut()
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let first = read_reply(&mut conn);
    assert_eq!((first.status, first.body.as_str()), (200, "ok"));
    assert_ne!(first.header("connection"), Some("close"));
    assert_eq!(
        tokenize(&mut conn, "again"),
        s.tokenizer.encode("again").unwrap()
    );
    // A request asking to close is answered, then the connection ends.
    conn.get_mut()
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(read_reply(&mut conn).status, 200);
    let mut rest = Vec::new();
    assert_eq!(conn.read_to_end(&mut rest).unwrap(), 0);
}

fn update(s: &Server, client: &Client) -> Result<String, RemoteError> {
    client
        .update_weights_from_disk(&UpdateWeightsRequest {
            model_path: s.dir.clone(),
            weight_version: Some("v2".into()),
        })
        .map(|answer| answer.message)
}

fn status_and_message(result: Result<String, RemoteError>) -> (u16, String) {
    match result {
        Err(RemoteError::Status {
            status, message, ..
        }) => (status, message),
        other => panic!("expected an HTTP error status, got {other:?}"),
    }
}

#[test]
fn the_api_key_guards_the_endpoints_that_change_the_model() {
    let s = server("apikey", "127.0.0.1:0", |c| {
        c.api_key = Some(ApiKey::new("s3cret").unwrap());
    });
    assert!(!s.running.model_changes_open());
    let (status, message) = status_and_message(update(&s, &s.client(None)));
    assert_eq!(status, 401, "{message}");
    assert!(message.contains("Authorization: Bearer"), "{message}");
    let (status, message) = status_and_message(update(&s, &s.client(Some("guess"))));
    assert_eq!(status, 401, "{message}");
    assert!(message.contains("wrong"), "{message}");
    let (status, _) = status_and_message(s.client(None).unload_lora_adapter(
        &spar_remote::protocol::UnloadLoraRequest {
            lora_name: "ghost".into(),
        },
    ));
    assert_eq!(status, 401);
    // The right key: the update runs and the version changes.
    let keyed = s.client(Some("s3cret"));
    assert!(update(&s, &keyed).unwrap().contains("v2"));
    assert_eq!(
        keyed.models().unwrap().data[0].weight_version.as_deref(),
        Some("v2")
    );
    // Raw: a 401 names the scheme, and an `Expect: 100-continue` upload is refused before its
    // body is sent.
    let mut conn = s.connect();
    conn.get_mut()
        .write_all(
            b"POST /v1/load_lora_adapter HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\
              Expect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let reply = read_reply(&mut conn);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    // Generation and the token helpers need no key.
    assert_eq!(
        tokenize(&mut s.connect(), "free"),
        s.tokenizer.encode("free").unwrap()
    );
}

#[test]
fn beyond_loopback_without_a_key_the_model_cannot_be_changed() {
    let s = server("open", "0.0.0.0:0", |_| {});
    assert!(!s.running.model_changes_open());
    let (status, message) = status_and_message(update(&s, &s.client(Some("any"))));
    assert_eq!(status, 403, "{message}");
    assert!(message.contains("--api-key"), "{message}");
    // Reading is open.
    assert_eq!(s.client(None).models().unwrap().data.len(), 1);
    // With a key on the same wide address, the key opens them.
    let s = server("open-keyed", "0.0.0.0:0", |c| {
        c.api_key = Some(ApiKey::new("k").unwrap());
    });
    assert_eq!(status_and_message(update(&s, &s.client(None))).0, 401);
    assert!(update(&s, &s.client(Some("k"))).is_ok());
    // On loopback without a key they stay open, as before.
    let s = server("loopback", "127.0.0.1:0", |_| {});
    assert!(s.running.model_changes_open());
    assert!(update(&s, &s.client(None)).is_ok());
}

#[test]
fn connections_over_the_limit_are_answered_503_until_one_closes() {
    let s = server("limit", "127.0.0.1:0", |c| c.max_connections = 1);
    let health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut first = s.connect();
    first.get_mut().write_all(health).unwrap();
    assert_eq!(read_reply(&mut first).status, 200);
    // The first connection stays open (kept alive): a second one is over the limit.
    let mut second = s.connect();
    second.get_mut().write_all(health).unwrap();
    let refused = read_reply(&mut second);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.error().contains("--max-connections"));
    assert_eq!(refused.header("connection"), Some("close"));
    // Once the first closes, a new connection is served (the server notices the close when it
    // next reads, so the first attempts may still be refused).
    drop(first);
    let served = (0..200).any(|_| {
        let mut conn = s.connect();
        conn.get_mut().write_all(health).unwrap();
        let status = read_reply(&mut conn).status;
        if status != 200 {
            std::thread::sleep(Duration::from_millis(10));
        }
        status == 200
    });
    assert!(served, "no connection was served after the first closed");
}

#[test]
fn a_stopped_server_closes_idle_connections_and_accepts_no_more() {
    let s = server("stop", "127.0.0.1:0", |_| {});
    let mut idle = s.connect();
    idle.get_mut()
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_reply(&mut idle).status, 200);
    s.running.stop();
    // The kept-alive connection, idle between requests, is closed without another word.
    let mut rest = Vec::new();
    assert_eq!(idle.read_to_end(&mut rest).unwrap(), 0);
    // The listener closes as soon as the accept loop sees the stop.
    let refused = (0..500).any(|_| match TcpStream::connect(s.addr) {
        Err(_) => true,
        Ok(_) => {
            std::thread::sleep(Duration::from_millis(10));
            false
        }
    });
    assert!(refused, "the server still accepts connections after stop()");
}
