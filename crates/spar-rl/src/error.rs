//! The crate's error type.

/// What can go wrong in `spar-rl`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The language model failed (loading, tokenising, a tensor op).
    #[error(transparent)]
    Lm(#[from] spar_lm::LmError),
    /// Exact evaluation failed (e.g. the game tree is too large).
    #[error(transparent)]
    Eval(#[from] spar_eval::Error),
    /// A game spec or game-level error, or a file that could not be written
    /// (`spar_core::atomic::write_atomic`).
    #[error(transparent)]
    Core(#[from] spar_core::Error),
    /// A rollout server could not be reached or refused the learner's weights.
    #[error("rollout server: {0}")]
    Remote(#[from] spar_remote::RemoteError),
    /// A TensorBoard event file could not be created or written ([`spar_report::tensorboard`]).
    #[error(transparent)]
    Report(#[from] spar_report::Error),
    /// A file or directory of the run could not be written (a full disk, a read-only
    /// directory); `target` was left as it was.
    #[error(
        "cannot write {}: {source}; it was left as it was (free some space or make the \
         directory writable, then continue with spar train --resume)",
        target.display()
    )]
    Write {
        /// What was being written (a checkpoint directory).
        target: std::path::PathBuf,
        /// Why it failed (names the file).
        #[source]
        source: Box<Error>,
    },
    /// A setting is out of range or inconsistent (the message names it and how to fix it).
    #[error("{0}")]
    Invalid(String),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Lm(spar_lm::LmError::Candle(e))
    }
}

impl Error {
    /// A file-system error on `path` (the message names the path).
    pub fn io(path: &std::path::Path, e: std::io::Error) -> Error {
        Error::Lm(spar_lm::LmError::io(path, e))
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
