//! The one error type of `spar-core`.

use std::path::{Path, PathBuf};

/// Errors raised by the core contracts (bad game specifications and bad parameters) and by
/// [`crate::atomic::write_atomic`] (a file that cannot be written).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A game specification string could not be parsed.
    #[error("malformed game specification {spec:?}: {reason} (expected `name` or `name(key=value,...)`)")]
    MalformedSpec {
        /// The text that was given.
        spec: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A game name that no registry knows.
    #[error("unknown game {name:?}; known games: {known}")]
    UnknownGame {
        /// The name that was given.
        name: String,
        /// The accepted names, comma separated.
        known: String,
    },
    /// A parameter a game does not accept, or a value it cannot use.
    #[error("game {game:?}: bad parameter {key:?}={value:?}: {reason}")]
    BadParameter {
        /// The game the parameter was given to.
        game: String,
        /// The parameter name.
        key: String,
        /// The value given.
        value: String,
        /// Why it was refused and what is accepted.
        reason: String,
    },
    /// Writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
