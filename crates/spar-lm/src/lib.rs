//! In-process language models on candle.
//!
//! * [`model`]: a trainable Llama-family decoder ([`Llama`]) with Hugging Face tensor names and
//!   a caller-owned [`KvCache`];
//! * [`ops`]: RMSNorm, softmax and rotary embeddings with hand-written backward passes (candle's
//!   fused kernels cut the autograd graph);
//! * [`config`]: Hugging Face `config.json` ([`Config`]); [`family`]: the model families
//!   (`llama`, `qwen2`, `qwen3`) and rotary scaling;
//! * [`tokenizer`]: byte-level, Hugging Face `tokenizer.json` and GGUF tokenizers, chat
//!   templates ([`TextTokenizer`]); [`jinja`]: a model's own Jinja chat template rendered
//!   through minijinja as `transformers` renders it;
//! * [`sample`]: batched, seeded sampling with a KV cache; [`score`]: log-probabilities of
//!   given completions;
//! * [`checkpoint`]: Hugging Face checkpoint directories ([`Checkpoint`]); [`gguf`]: GGUF
//!   files, quantised or dequantised (both write through `spar_core::atomic::write_atomic`);
//! * [`load`]: a model to run or train from any of those or a LoRA checkpoint directory
//!   ([`load::load_model`], [`load::load_checkpoint`], `base.json`); [`device`]: the default
//!   device;
//! * [`engine`]: where completions come from ([`engine::Engine`]: this process or a server);
//! * [`lora`]: LoRA adapters in PEFT layout, trainable over a frozen base, mergeable;
//! * [`manifest`]: `manifest.json`, the size and SHA-256 of every file of a checkpoint
//!   directory, and its verification;
//! * [`train`]: next-token pretraining of a small byte-level model;
//! * [`mlm`]: masked language modelling on the same blocks with bidirectional attention
//!   (masking, the loss, filling blanks);
//! * [`reversal`]: the reversal suite (synthetic fact corpora, SPT, the concept-level model,
//!   training and evaluating each arm; `docs/reversal.md`);
//! * [`cli`]: the logic of `spar lm ...` commands (it re-exports the loading and device
//!   helpers under their old `spar_lm::cli::` paths).
#![warn(missing_docs)]

pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod device;
pub mod engine;
pub mod error;
pub mod family;
pub mod gguf;
pub mod jinja;
pub mod linear;
pub mod load;
pub mod lora;
pub mod manifest;
pub mod mlm;
pub mod model;
pub mod ops;
pub mod reversal;
pub mod rng;
pub mod sample;
pub mod score;
pub mod tokenizer;
pub mod train;

pub use checkpoint::Checkpoint;
pub use config::Config;
pub use engine::{Engine, LocalEngine};
pub use error::{LmError, Result};
pub use lora::{Lora, LoraConfig};
pub use model::{KvCache, Llama};
pub use tokenizer::TextTokenizer;
