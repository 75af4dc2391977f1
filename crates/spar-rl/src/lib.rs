//! Learning for spar: one loop kernel, the loops that run on it, and what they share.
//!
//! The folders are the architecture (ARCHITECTURE.md, "Learning"):
//!
//! * [`trainer`]: the loop kernel. [`trainer::Loop`] is the contract a loop implements
//!   (its warm-start data, a step's episodes, its advantages, its update, its evaluation, its
//!   checkpointed state); [`trainer::run`] is the one training loop that drives any of them
//!   (resume or start, then per step collect, estimate, update, evaluate, log, checkpoint).
//!   The [`trainer::Learner`] (full weights or a LoRA adapter), the optimiser (AdamW with
//!   saved moments, learning-rate schedules, gradient clipping, the non-finite guard),
//!   supervised steps, checkpoints and the metrics sink live here once.
//! * [`loops`]: the loops. [`loops::selfplay`] is SPIRAL's self-play on any two-player game
//!   (one game or several); [`loops::tasks`] learns from verifiable tasks (the GRPO family,
//!   NFT, DPO/IPO, rejection sampling, DPH-RL's divergences) with held-out pass@k.
//! * [`objectives`]: what an update optimises. [`objectives::losses`] (one type per loss
//!   behind `TokenLoss`/`PairLoss`), [`objectives::advantages`] (the
//!   `AdvantageEstimator` trait both loops set advantages through, and its constructor from
//!   config), [`objectives::estimators`] (the math of the group-relative advantages: GRPO, Dr. GRPO, RLOO, TRLOO, which equals RLOO on one-turn episodes, HRPO's
//!   grouping by any key, REINFORCE++ batch normalisation), [`objectives::rae`] (SPIRAL's
//!   role baselines) and [`objectives::ppo`] (self-play's PPO on tokens or on legal actions).
//! * [`rollout`]: episodes of any `Env` with a language model in some or all seats (one
//!   function, [`rollout::Rollout::play`], with group sampling), the prompt of an observation ([`rollout::prompt`]) and rollouts on OpenAI-compatible servers
//!   ([`rollout::servers`]).
//! * [`players`]: language models as game players and as exact tabular policies
//!   ([`players::lm_policy::tabulate`]), and players named by a string (`random`, `cfr+`,
//!   `model:PATH`, `remote:URL#NAME`).
//! * [`config`]: the typed TOML configurations of both loops.
//!
//! Reports, comparisons and TensorBoard files are tensor-free and live in `spar-report`
//! (re-exported here as [`report`], [`compare`] and [`tensorboard`]).
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod loops;
pub mod objectives;
pub mod players;
pub mod rollout;
pub mod trainer;

pub use spar_report::{compare, report, tensorboard};

pub use config::TrainConfig;
pub use error::{Error, Result};
pub use players::lm_policy::{tabulate, LmPolicyOptions, LmPolicyTable};
pub use rollout::prompt::PromptStyle;
