//! spar-eval: exact evaluation.
#![warn(missing_docs)]
