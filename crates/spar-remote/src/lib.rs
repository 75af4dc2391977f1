//! OpenAI-compatible models over HTTP.
//!
//! * [`protocol`]: the wire format of `/v1/completions`, `/v1/chat/completions` and the
//!   weight-update endpoints of vLLM and SGLang;
//! * [`client`]: a blocking client with timeouts, retries with backoff, a concurrency limit
//!   and failure counts ([`Client`]);
//! * [`engine`]: a server as a rollout [`spar_lm::Engine`] ([`RemoteEngine`]);
//! * [`server`]: `spar serve`, an OpenAI-compatible server for spar's own models.
#![warn(missing_docs)]

pub mod client;
pub mod engine;
pub mod protocol;
pub mod server;

pub use client::{Client, ClientConfig, RemoteError};
pub use engine::RemoteEngine;
pub use server::{start, RunningServer, ServeConfig};
