//! In-process language models on candle.
//!
//! * [`model`]: a trainable Llama-family decoder ([`Llama`]) with Hugging Face tensor names and
//!   a caller-owned [`KvCache`];
//! * [`ops`]: RMSNorm, softmax and rotary embeddings with hand-written backward passes (candle's
//!   fused kernels cut the autograd graph);
//! * [`config`]: Hugging Face `config.json` ([`Config`]).
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod linear;
pub mod model;
pub mod ops;
pub mod rng;

pub use config::Config;
pub use error::{LmError, Result};
pub use model::{KvCache, Llama};
