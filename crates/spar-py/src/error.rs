//! Rust errors as Python exceptions: bad input is `ValueError`, a failure while running is
//! `RuntimeError`, split as `spar`'s `main` splits exit codes 2 and 1 (`is_usage_error` in
//! `crates/spar-cli/src/main.rs`). The message is the error's own, the one the CLI prints.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::PyErr;

/// An error on its way to Python.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The caller's input was wrong (a spec, a policy, a config key, a path): `ValueError`.
    Input(String),
    /// Something failed while running (a tensor op, a file that could not be read back):
    /// `RuntimeError`.
    Running(String),
}

/// The result type of this crate's internals.
pub(crate) type Result<T> = std::result::Result<T, Failure>;

/// Bad input, with its message.
pub(crate) fn input(message: impl Into<String>) -> Failure {
    Failure::Input(message.into())
}

impl From<Failure> for PyErr {
    fn from(failure: Failure) -> PyErr {
        match failure {
            Failure::Input(message) => PyValueError::new_err(message),
            Failure::Running(message) => PyRuntimeError::new_err(message),
        }
    }
}

impl From<spar_core::Error> for Failure {
    fn from(error: spar_core::Error) -> Self {
        Failure::Input(error.to_string())
    }
}

impl From<spar_eval::Error> for Failure {
    fn from(error: spar_eval::Error) -> Self {
        match error {
            // A policy that answered with something that is not a distribution is a bug of
            // the policy's code, not of the input (the CLI's exit code 1).
            spar_eval::Error::BadPolicyOutput { .. } => Failure::Running(error.to_string()),
            other => Failure::Input(other.to_string()),
        }
    }
}

impl From<spar_lm::LmError> for Failure {
    fn from(error: spar_lm::LmError) -> Self {
        match error {
            spar_lm::LmError::Candle(_) => Failure::Running(error.to_string()),
            other => Failure::Input(other.to_string()),
        }
    }
}

impl From<spar_rl::Error> for Failure {
    fn from(error: spar_rl::Error) -> Self {
        match error {
            spar_rl::Error::Invalid(_) | spar_rl::Error::Core(_) | spar_rl::Error::Write { .. } => {
                Failure::Input(error.to_string())
            }
            spar_rl::Error::Lm(inner) => inner.into(),
            spar_rl::Error::Eval(inner) => inner.into(),
            other => Failure::Running(other.to_string()),
        }
    }
}

impl From<serde_json::Error> for Failure {
    fn from(error: serde_json::Error) -> Self {
        Failure::Running(format!("encoding a result as JSON: {error}"))
    }
}
