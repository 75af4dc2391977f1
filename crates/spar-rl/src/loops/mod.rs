//! The loops that run on the kernel ([`crate::trainer`]): each is a [`crate::trainer::Loop`]
//! and a few hundred lines of what is its own (its environments, rewards, evaluation).
//!
//! * [`selfplay`]: SPIRAL's self-play on two-player games (one game or several), against
//!   itself, a pool of its past checkpoints or a fixed player;
//! * [`tasks`]: verifiable tasks (arithmetic, Countdown, word problems, JSONL files): a group
//!   of answers per problem, verified, any estimator and loss, held-out pass@k;
//! * [`selfcorrect`]: self-correction on those tasks (SCoRe, naive multi-turn RL,
//!   single-turn RL): episodes of several attempts, per-attempt rewards and KL;
//! * [`agent_r`]: Agent-R's revision trajectories: tree search over a step-by-step
//!   environment's steps, good and bad paths spliced through a revision turn, supervised
//!   training;
//! * [`propose`]: proposer/solver self-play (Dr. Zero): the model writes the arithmetic
//!   problems it answers, rewarded by their difficulty to it (HRPO grouping by hop count).

pub mod agent_r;
pub mod propose;
pub mod selfcorrect;
pub mod selfplay;
pub mod tasks;
