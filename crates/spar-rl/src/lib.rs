//! Learning for spar (SPIRAL and the self-improvement loops).
//!
//! * [`prompt`]: how an [`spar_core::Observation`] becomes the token ids a language model
//!   reads (chat template or plain text), and where its answer stops; rollouts and evaluation
//!   share it, so a policy is evaluated on exactly the prompts it plays with;
//! * [`lm_policy`]: a language model as a game policy, tabulated exactly at every information
//!   set (the probability it gives the canonical completion of each legal action), for
//!   NashConv and exploitability.
#![warn(missing_docs)]

pub mod error;
pub mod lm_policy;
pub mod prompt;

pub use error::{Error, Result};
pub use lm_policy::{tabulate, LmPolicyOptions, LmPolicyTable};
pub use prompt::PromptStyle;
