//! What an update optimises: losses, advantage estimators and baselines.
//!
//! * [`losses`]: token losses on a `(batch, width)` grid (policy gradient, PPO-clip, KL
//!   penalties, DPH-RL's divergences, NFT/RFT, SFT) and preference losses (DPO, IPO);
//! * [`estimators`]: advantages from rewards and group keys (GRPO, Dr. GRPO, RLOO, TRLOO,
//!   REINFORCE++ normalisation);
//! * [`rae`]: SPIRAL's role-conditioned baselines (RAE) and plain REINFORCE;
//! * [`ppo`]: self-play's PPO-clip on free-text tokens or on the legal actions' normalised
//!   probabilities (GLAM).

pub mod estimators;
pub mod losses;
pub mod ppo;
pub mod rae;
