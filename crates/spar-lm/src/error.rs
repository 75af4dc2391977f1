//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in `spar-lm` outside tensor code (which returns
/// `candle_core::Result`).
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Writing a file whole failed (`spar_core::atomic::write_atomic`; the error names the
    /// file).
    #[error(transparent)]
    Write(#[from] spar_core::Error),
    /// Reading or writing a file failed (other than a whole file written atomically:
    /// [`LmError::Write`]).
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON file did not parse or did not have the expected fields.
    #[error("{path}: {source}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// A model, adapter or checkpoint file is damaged: truncated, not the format its name
    /// says, or not what the directory's `manifest.json` lists (the message says which).
    #[error("{path}: {message}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it, and how to get past it.
        message: String,
    },
    /// The tokenizer library failed, or a tokenizer file is not usable.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A model configuration is invalid or unsupported (the message names the field and value).
    #[error("config: {0}")]
    Config(String),
    /// A GGUF file lacks something spar needs (the message names the key or tensor).
    #[error("gguf {path}: {message}")]
    Gguf {
        /// The GGUF file.
        path: PathBuf,
        /// What is missing or unsupported.
        message: String,
    },
    /// A sampling or scoring argument is out of range (the message names it).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl LmError {
    /// A damaged file ([`LmError::Corrupt`]).
    pub fn corrupt(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        LmError::Corrupt {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LmError::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`LmError`].
pub type Result<T> = std::result::Result<T, LmError>;
