//! Learning for spar (SPIRAL and the self-improvement loops).
//!
//! * [`prompt`]: how an [`spar_core::Observation`] becomes the token ids a language model
//!   reads (chat template or plain text), and where its answer stops; rollouts and evaluation
//!   share it, so a policy is evaluated on exactly the prompts it plays with;
//! * [`lm_policy`]: a language model as a game policy, tabulated exactly at every information
//!   set (the probability it gives the canonical completion of each legal action), for
//!   NashConv and exploitability;
//! * [`lm_player`]: a language model (in this process or behind a server) as a game player
//!   for tournaments and opponents;
//! * [`players`]: players named by a string (`random`, `alphabeta:3`, `cfr+`, `model:PATH`,
//!   `remote:URL#NAME`) for tournaments, evaluation and training opponents;
//! * [`estimators`]: group-relative advantages for sampled answers (GRPO, Dr. GRPO, RLOO,
//!   TRLOO, HRPO by hop-class keys, REINFORCE++ batch normalisation);
//! * [`rollout`], [`advantage`] (RAE, REINFORCE), [`ppo`] (PPO-clip, AdamW with state) and
//!   [`selfplay`]: SPIRAL's self-play loop, configured by [`config::TrainConfig`];
//! * [`losses`]: policy losses on a token grid, one type per algorithm (REINFORCE, PPO-clip
//!   with DAPO's clip-higher, KL penalties, DPH-RL's forward-KL and JS terms, NFT/RFT, SFT)
//!   and preference losses (DPO, IPO);
//! * [`server_rollouts`]: rollouts sampled by OpenAI-compatible servers, with the learner's
//!   weights pushed to them (`rollout.servers`);
//! * [`task_config`] and [`task_train`]: learning from verifiable tasks (the GRPO family, NFT,
//!   DPO/IPO, rejection sampling, DPH-RL's divergences) with held-out pass@k;
//! * [`tensorboard`]: TensorBoard event files written by hand (metrics as scalars), and
//!   [`report`]: SVG plots and a Markdown summary of a run directory's `metrics.jsonl`.
#![warn(missing_docs)]

pub mod advantage;
pub use spar_report::{compare, report, tensorboard};
pub mod config;
pub mod error;
pub mod estimators;
pub mod lm_player;
pub mod lm_policy;
pub mod losses;
pub mod players;
pub mod ppo;
pub mod prompt;
pub mod rollout;
mod run_files;
pub mod selfplay;
pub mod server_rollouts;
pub mod task_config;
pub mod task_train;

pub use config::TrainConfig;
pub use error::{Error, Result};
pub use lm_policy::{tabulate, LmPolicyOptions, LmPolicyTable};
pub use prompt::PromptStyle;
