//! What an update optimises: losses, advantage estimators and baselines.
//!
//! * [`losses`]: token losses on a `(batch, width)` grid (policy gradient, PPO-clip, KL
//!   penalties, DPH-RL's divergences, NFT/RFT, SFT) and preference losses (DPO, IPO);
//! * [`advantages`]: the [`advantages::AdvantageEstimator`] trait every loop sets its
//!   samples' advantages through (RAE, REINFORCE, GRPO, Dr. GRPO, RLOO, TRLOO, REINFORCE++
//!   normalisation on top), its one constructor from config and the rule of which fits a
//!   loop's batches;
//! * [`estimators`]: the math of the group estimators, pure functions of rewards and group
//!   keys (GRPO, Dr. GRPO, RLOO, TRLOO, REINFORCE++ normalisation);
//! * [`logprobs`]: the behaviour and reference log-probabilities of a step's samples;
//! * [`policy_update`]: the minibatch policy-gradient update on rewarded samples (with a
//!   per-sample KL coefficient) that the self-correction and proposer/solver loops share;
//! * [`rae`]: the math of SPIRAL's role-conditioned baselines (RAE) and plain REINFORCE;
//! * [`preference`]: the update on preference pairs (DPO/IPO, RPO's NLL term) that the task
//!   and self-correction loops share;
//! * [`ppo`]: self-play's PPO-clip on free-text tokens or on the legal actions' normalised
//!   probabilities (GLAM).

pub mod advantages;
pub mod estimators;
pub mod logprobs;
pub mod losses;
pub mod policy_update;
pub mod ppo;
pub mod preference;
pub mod rae;
