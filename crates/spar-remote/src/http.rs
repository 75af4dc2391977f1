//! The HTTP/1.1 that `spar serve` speaks, on `std::net`: requests with a `Content-Length`
//! body, keep-alive, JSON answers and server-sent events in chunked encoding.
//!
//! Written by hand (about 200 lines) instead of taking a server framework so that the server
//! controls every byte on the wire: request-size limits are checked before a body is read, and
//! the fault injection of `spar serve --faults` can cut a connection mid-answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// Most bytes of a request's line and headers.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The query string (after `?`), possibly empty.
    pub query: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked to close the connection after this request.
    pub fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The connection closed (or timed out) between requests: not an error.
    Closed,
    /// The request is malformed or too large: answer `status` with `message`, then close.
    Bad {
        /// 400, 411, 413 or 431.
        status: u16,
        /// What was wrong.
        message: String,
    },
}

fn bad(status: u16, message: impl Into<String>) -> ReadError {
    ReadError::Bad {
        status,
        message: message.into(),
    }
}

/// Reads one request from `reader`, refusing heads over [`MAX_HEAD_BYTES`] and bodies over
/// `max_body` bytes (before reading them).
pub fn read_request(
    reader: &mut BufReader<TcpStream>,
    max_body: usize,
) -> Result<Request, ReadError> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader
            .by_ref()
            .take((MAX_HEAD_BYTES + 1 - head.len().min(MAX_HEAD_BYTES)) as u64)
            .read_until(b'\n', &mut line)
            .map_err(|_| ReadError::Closed)?;
        if n == 0 {
            if head.is_empty() {
                return Err(ReadError::Closed);
            }
            return Err(bad(400, "the request ended inside its headers"));
        }
        head.extend_from_slice(&line);
        if head.len() > MAX_HEAD_BYTES {
            return Err(bad(
                431,
                format!("request line and headers exceed {MAX_HEAD_BYTES} bytes"),
            ));
        }
        if line == b"\r\n" || line == b"\n" {
            if head.len() == line.len() {
                // Blank lines before a request line are allowed (RFC 9112 sec. 2.2).
                head.clear();
                continue;
            }
            break;
        }
    }
    let text = String::from_utf8(head).map_err(|_| bad(400, "the request head is not UTF-8"))?;
    let mut lines = text.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(400, format!("malformed request line {request_line:?}")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad(400, format!("unsupported protocol {version:?}")));
    }
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad(400, format!("malformed header line {line:?}")));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    let mut request = Request {
        method: method.to_string(),
        path,
        query,
        headers,
        body: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"))
    {
        return Err(bad(
            411,
            "chunked request bodies are not supported; send a Content-Length",
        ));
    }
    let length = match request.header("content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| bad(400, format!("Content-Length {v:?} is not a number")))?,
    };
    if length > max_body {
        return Err(bad(
            413,
            format!(
                "the request body has {length} bytes; this server accepts at most {max_body} \
                 (spar serve --max-body-bytes)"
            ),
        ));
    }
    request.body = vec![0; length];
    reader
        .read_exact(&mut request.body)
        .map_err(|_| bad(400, "the request body ended before its Content-Length"))?;
    Ok(request)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes a whole response with a `Content-Length`.
pub fn write_response(
    stream: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &[u8],
    close: bool,
) -> std::io::Result<()> {
    let connection = if close { "close" } else { "keep-alive" };
    write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: {connection}\r\n\r\n",
        reason(status),
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}

/// A server-sent-events answer in chunked encoding: [`SseWriter::start`], then one
/// [`SseWriter::event`] per chunk, then [`SseWriter::finish`].
#[derive(Debug)]
pub struct SseWriter<'a, W: Write> {
    stream: &'a mut W,
}

impl<'a, W: Write> SseWriter<'a, W> {
    /// Writes the head of a `200 text/event-stream` answer.
    pub fn start(stream: &'a mut W) -> std::io::Result<Self> {
        stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
              Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n",
        )?;
        stream.flush()?;
        Ok(SseWriter { stream })
    }

    /// Sends `data: {payload}` as one event.
    pub fn event(&mut self, payload: &str) -> std::io::Result<()> {
        let data = format!("data: {payload}\n\n");
        write!(self.stream, "{:x}\r\n{data}\r\n", data.len())?;
        self.stream.flush()
    }

    /// Sends `data: [DONE]` and ends the chunked body.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.event("[DONE]")?;
        self.stream.write_all(b"0\r\n\r\n")?;
        self.stream.flush()
    }
}
