//! The HTTP side of `spar serve`, on hyper's HTTP/1.1 over a tokio runtime: keep-alive,
//! `Content-Length` and chunked request bodies, `Expect: 100-continue` (hyper sends the interim
//! `100 Continue` when the body is first read, so a refused request is answered before its body
//! is sent) and chunked server-sent events are hyper's.
//!
//! This file: the accept loop (its connection limit and graceful stop), one request from its head
//! to its answer (the API key, injected faults, the body limit, one log line), and the bodies
//! answers are sent with. The endpoints themselves are synchronous code in `routes`, run on
//! tokio's blocking pool: they wait on the worker thread that owns the model, never on the async
//! runtime.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE,
    WWW_AUTHENTICATE,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, oneshot, watch};

use super::routes::{changes_model, route, Answer, Request};
use super::{ApiError, Job, Shared};

/// How long a client may take to send a request's line and headers (idle keep-alive
/// connections included) before the connection is closed.
const HEADER_TIMEOUT: Duration = Duration::from_secs(300);
/// How long open connections get to finish the request they are on after a stop.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// Server-sent events buffered between the sampling thread and a slow client.
const SSE_BUFFER: usize = 64;

/// Accepts connections until `stop` turns true, then lets open ones finish their request.
pub(super) async fn run(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    jobs: Sender<Job>,
    mut stop: watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("spar serve cannot listen: {e}");
            return;
        }
    };
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait a little instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let open = Open::new(&shared);
        let over_limit = open.count > shared.config.max_connections;
        let service = {
            let shared = shared.clone();
            let jobs = jobs.clone();
            service_fn(move |request| {
                let shared = shared.clone();
                let jobs = jobs.clone();
                async move { Ok::<_, Infallible>(answer(request, shared, jobs, over_limit).await) }
            })
        };
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(open);
        });
    }
    let _ = tokio::time::timeout(STOP_GRACE, graceful.shutdown()).await;
}

/// One open connection, counted while it lives.
struct Open {
    shared: Arc<Shared>,
    count: usize,
}

impl Open {
    fn new(shared: &Arc<Shared>) -> Open {
        let count = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
        Open {
            shared: shared.clone(),
            count,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.shared.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers one request and logs it: method, path, status, milliseconds to the answer's head.
async fn answer(
    request: hyper::Request<Incoming>,
    shared: Arc<Shared>,
    jobs: Sender<Job>,
    over_limit: bool,
) -> Response<AnswerBody> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = respond(request, shared, jobs, over_limit).await;
    let latency_ms = (started.elapsed().as_secs_f64() * 1e4).round() / 10.0;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        latency_ms,
        "request"
    );
    response
}

async fn respond(
    request: hyper::Request<Incoming>,
    shared: Arc<Shared>,
    jobs: Sender<Job>,
    over_limit: bool,
) -> Response<AnswerBody> {
    if over_limit {
        let error = ApiError::new(
            503,
            format!(
                "the server has {} connections open, its limit (spar serve --max-connections); \
                 retry later",
                shared.config.max_connections
            ),
        );
        return error_response(&error, true);
    }
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let (head, body) = request.into_parts();
    let method = head.method.as_str().to_string();
    let path = head.uri.path().to_string();
    if changes_model(&path) {
        if let Err(error) = authorize(&head.headers, &shared, &path) {
            // The body is left unread (an `Expect: 100-continue` client never sends it).
            return error_response(&error, true);
        }
    }
    let body = match read_body(body, shared.config.max_body_bytes).await {
        Ok(body) => body,
        Err((error, unread)) => return error_response(&error, unread),
    };
    let generation = method == "POST"
        && matches!(
            path.trim_end_matches('/'),
            "/v1/completions" | "/v1/chat/completions"
        );
    if generation {
        match draw_fault(&shared) {
            Some(Fault::Drop) => return cut_answer(),
            Some(Fault::Stall) => tokio::time::sleep(shared.config.faults.stall_for).await,
            Some(Fault::Error) => {
                // The request is answered; the connection is closed (clients reconnect).
                let error = ApiError::new(500, "injected fault (spar serve --faults)");
                return error_response(&error, true);
            }
            None => {}
        }
    }
    let (tx, rx) = oneshot::channel();
    let request = Request { method, path, body };
    tokio::task::spawn_blocking(move || {
        let mut reply = Replier { tx: Some(tx) };
        let answer = route(&request, &shared, &jobs, &mut reply);
        reply.answer(answer);
    });
    rx.await.unwrap_or_else(|_| {
        error_response(
            &ApiError::new(500, "the request's handler stopped without an answer"),
            true,
        )
    })
}

/// Reads a whole request body of at most `max` bytes: a declared `Content-Length` over it is
/// refused before anything is read (so no `100 Continue` is sent), a chunked body as soon as it
/// passes it. The error says whether the body was left unread.
async fn read_body(body: Incoming, max: usize) -> Result<Bytes, (ApiError, bool)> {
    let too_large = |what: String| {
        ApiError::new(
            413,
            format!(
                "the request body has {what} bytes; this server accepts at most {max} \
                 (spar serve --max-body-bytes)"
            ),
        )
    };
    let declared = http_body::Body::size_hint(&body).lower();
    if declared > max as u64 {
        return Err((too_large(declared.to_string()), true));
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err((too_large(format!("more than {max}")), true)),
        Err(e) => Err((
            ApiError::new(400, format!("the request body could not be read: {e}")),
            true,
        )),
    }
}

/// Checks the API key of a request that changes the served model. Without `--api-key`, such
/// requests are open on loopback only: anyone who can reach a wider address could otherwise
/// make the server load any checkpoint or adapter directory its user can read.
fn authorize(headers: &HeaderMap, shared: &Shared, path: &str) -> Result<(), ApiError> {
    let Some(key) = &shared.config.api_key else {
        if shared.loopback {
            return Ok(());
        }
        return Err(ApiError::new(
            403,
            format!(
                "{path} changes the served model, and this server listens beyond loopback \
                 ({}) without an API key; restart spar serve with --api-key KEY (or the \
                 environment variable SPAR_API_KEY) and send `Authorization: Bearer KEY`",
                shared.config.addr
            ),
        ));
    };
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match given {
        Some(token) if key.matches(token) => Ok(()),
        Some(_) => Err(ApiError::new(
            401,
            format!(
                "{path} needs spar serve's API key; the `Authorization: Bearer` key sent is wrong"
            ),
        )),
        None => Err(ApiError::new(
            401,
            format!(
                "{path} needs spar serve's API key: send the header `Authorization: Bearer KEY` \
                 (spar's client sends SPAR_API_KEY)"
            ),
        )),
    }
}

enum Fault {
    Drop,
    Stall,
    Error,
}

/// Draws this request's fault (`spar serve --faults`): the `k`-th draw is the first number of
/// stream `k` of a ChaCha8 generator seeded with the faults' seed.
fn draw_fault(shared: &Shared) -> Option<Fault> {
    let f = &shared.config.faults;
    if f.drop + f.stall + f.error <= 0.0 {
        return None;
    }
    let draw = shared.fault_draws.fetch_add(1, Ordering::SeqCst);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(f.seed);
    rng.set_stream(draw);
    let u: f64 = rng.gen();
    if u < f.drop {
        Some(Fault::Drop)
    } else if u < f.drop + f.stall {
        Some(Fault::Stall)
    } else if u < f.drop + f.stall + f.error {
        Some(Fault::Error)
    } else {
        None
    }
}

/// Half an answer, then the connection is cut: a 200 head promising 4096 bytes, a few of them,
/// then a body error, on which hyper closes the connection.
fn cut_answer() -> Response<AnswerBody> {
    let (tx, rx) = mpsc::channel(2);
    let _ = tx.try_send(Ok(Bytes::from_static(b"{\"id\":")));
    let _ = tx.try_send(Err(io::Error::other(
        "injected fault: the connection is cut (spar serve --faults)",
    )));
    let mut response = Response::new(AnswerBody::Channel(rx));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(4096));
    response
}

fn full_response(status: u16, content_type: &'static str, body: Vec<u8>) -> Response<AnswerBody> {
    let mut response = Response::new(AnswerBody::Full(Some(Bytes::from(body))));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// An error's JSON answer; `close` ends the connection after it.
fn error_response(error: &ApiError, close: bool) -> Response<AnswerBody> {
    let mut response = full_response(error.status, "application/json", error.body());
    let headers = response.headers_mut();
    if error.status == 401 {
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// How an endpoint, running on the blocking pool, hands its answer to the connection: once,
/// whole ([`Replier::answer`]) or as server-sent events ([`Replier::stream`]).
pub(super) struct Replier {
    tx: Option<oneshot::Sender<Response<AnswerBody>>>,
}

impl Replier {
    /// Sends the head of a `200 text/event-stream` answer; its events follow through the
    /// returned writer.
    pub(super) fn stream(&mut self) -> Result<SseWriter, ApiError> {
        let (tx, rx) = mpsc::channel(SSE_BUFFER);
        let mut response = Response::new(AnswerBody::Channel(rx));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        self.tx
            .take()
            .ok_or_else(|| ApiError::new(500, "the answer was already sent"))?
            .send(response)
            .map_err(|_| ApiError::new(500, "the client is gone"))?;
        Ok(SseWriter { tx })
    }

    fn answer(mut self, answer: Result<Answer, ApiError>) {
        let response = match answer {
            Ok(Answer::Json(body)) => full_response(200, "application/json", body),
            Ok(Answer::Text(text)) => full_response(200, "text/plain", text.into_bytes()),
            Ok(Answer::Streamed) => return,
            Err(error) => error_response(&error, false),
        };
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(response);
        }
    }
}

/// Sends server-sent events (hyper writes them in chunked encoding). Dropping it ends the body.
pub(super) struct SseWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
}

impl SseWriter {
    /// Sends `data: {payload}` as one event; false once the client is gone.
    pub(super) fn event(&mut self, payload: &str) -> bool {
        let data = Bytes::from(format!("data: {payload}\n\n"));
        self.tx.blocking_send(Ok(data)).is_ok()
    }

    /// Sends `data: [DONE]` and ends the body.
    pub(super) fn finish(mut self) {
        self.event("[DONE]");
    }
}

/// An answer's body: whole, or frames from a channel (events, or a cut answer's error).
pub(super) enum AnswerBody {
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Result<Bytes, io::Error>>),
}

impl http_body::Body for AnswerBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            AnswerBody::Full(body) => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            AnswerBody::Channel(rx) => rx.poll_recv(cx).map(|f| f.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, AnswerBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            AnswerBody::Full(body) => {
                SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64))
            }
            AnswerBody::Channel(_) => SizeHint::default(),
        }
    }
}
