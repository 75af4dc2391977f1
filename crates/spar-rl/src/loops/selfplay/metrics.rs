//! Self-play's metrics line ([`Metrics`]), each game's share of it ([`GameMetrics`]) and the
//! evaluation both carry ([`Evaluation`], flattened into the line: its fields are top-level
//! keys of `metrics.jsonl`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::trainer::{Line, UpdateStats};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Policy-improvement steps done (0: after the warm start).
    pub step: usize,
    /// Mean return of each role over the step's self-play games.
    #[serde(default)]
    pub mean_return: BTreeMap<String, f64>,
    /// RAE baseline of each role after the step.
    #[serde(default)]
    pub baseline: BTreeMap<String, f64>,
    /// Fraction of model turns that named no legal action.
    #[serde(default)]
    pub invalid_rate: f64,
    /// Fraction of model turns cut by `rollout.max_tokens`.
    #[serde(default)]
    pub truncation_rate: f64,
    /// Mean answer length in tokens.
    #[serde(default)]
    pub response_tokens: f64,
    /// Samples trained on (after dropping zero advantages).
    #[serde(default)]
    pub samples: usize,
    /// Mean PPO loss over minibatches.
    #[serde(default)]
    pub loss: f64,
    /// Mean fraction of clipped token ratios: tokens where the clipped surrogate binds
    /// (verl's `pg_clipfrac`; [`crate::objectives::losses::PpoClip`]).
    #[serde(default)]
    pub clip_fraction: f64,
    /// Mean k1 estimate of KL(old policy || new policy) per token.
    #[serde(default)]
    pub approx_kl: f64,
    /// Mean gradient norm before clipping.
    #[serde(default)]
    pub grad_norm: f64,
    /// Learning rate of the step's updates.
    #[serde(default)]
    pub learning_rate: f64,
    /// Mean per-token KL estimate to the frozen reference (with a KL penalty).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kl_ref: Option<f64>,
    /// Mean per-token entropy of the next-token distribution (with an entropy bonus).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub entropy: Option<f64>,
    /// Mean supervised loss on the warm-start data (with `ppo.sft_coef`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sft_loss: Option<f64>,
    /// Optimiser steps skipped for a non-finite loss or gradient (cumulative).
    #[serde(default)]
    pub skipped_updates: usize,
    /// `rollout.servers`: model turns whose server call failed after every retry (each an
    /// invalid answer) in this step's rollouts.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub failed_calls: Option<usize>,
    /// `rollout.servers`: retried server calls in this step (timeouts, resets, 429, 5xx).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub server_retries: Option<u64>,
    /// `rollout.opponent = "pool"`: the step of the checkpoint the learner played.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pool_opponent: Option<usize>,
    /// `rollout.opponent = "pool"`: the learner's win rate against it in this step's games.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pool_win_rate: Option<f64>,
    /// A fixed opponent (`rollout.opponent`): its turns that named no action (a language-model
    /// opponent's invalid answer or failed call), each an invalid move under the game's rule.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub opponent_failures: Option<usize>,
    /// `rollout.servers`: the weight version the servers sampled this step's rollouts with.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub weight_version: Option<String>,
    /// Warm-start loss (step 0 only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub warm_start_loss: Option<f64>,
    /// A one-game run's evaluation (evaluation steps); empty in a multi-game run, whose games
    /// are evaluated in `games`.
    #[serde(flatten)]
    pub eval: Evaluation,
    /// Multi-game runs (`game.names`): each game's rollouts and evaluation. The fields above
    /// then hold the rollouts of all games together and no evaluation.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub games: BTreeMap<String, GameMetrics>,
    /// Wall-clock seconds of the step.
    #[serde(default)]
    pub seconds: f64,
}

/// One game's share of a step of a multi-game run: its rollouts and, on evaluation steps,
/// the same evaluation a one-game run writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GameMetrics {
    /// Episodes of this game played in the step's rollouts.
    #[serde(default)]
    pub episodes: usize,
    /// Fraction of the model's turns in this game that named no legal action.
    #[serde(default)]
    pub invalid_rate: f64,
    /// Fraction of the model's turns in this game cut by `rollout.max_tokens`.
    #[serde(default)]
    pub truncation_rate: f64,
    /// Mean answer length in tokens in this game.
    #[serde(default)]
    pub response_tokens: f64,
    /// The game's evaluation.
    #[serde(flatten)]
    pub eval: Evaluation,
}

/// The evaluation of one game at an evaluation step. Exact values are computed on the game
/// tree where spar can enumerate it (Kuhn, Leduc), for the model's policy over the legal
/// answers (the probabilities of their canonical completions, normalised: what
/// exploitability measures); sampled values come from games played with the rollout
/// policy, every deal in each seat, fresh deals at every evaluation step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Exact NashConv of the model's policy.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nash_conv: Option<f64>,
    /// Exact exploitability (NashConv / 2).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exploitability: Option<f64>,
    /// Mean probability of answers outside the legal ones, over information sets.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub outside_mass: Option<f64>,
    /// Exact expected return against the uniform random player, per model seat.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exact_vs_random: Option<Vec<f64>>,
    /// Exact expected return against the CFR+ policy, per model seat (the model's target is
    /// the game value: Kuhn -1/18 as player 0, +1/18 as player 1).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exact_vs_cfr: Option<Vec<f64>>,
    /// Sampled mean return against the uniform random player, per model seat
    /// (`eval.games_vs_random` games in each seat).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vs_random: Option<Vec<f64>>,
    /// Half-width of the 95% interval of `vs_random`, per seat.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vs_random_ci95: Option<Vec<f64>>,
    /// Fraction of the model's turns in the games against the random player that named no
    /// legal action (the evaluation's invalid-move rate: measured alike at every evaluation
    /// step, step 0 included, where no rollouts have been played).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub invalid_vs_random: Option<f64>,
    /// Step 0 of a run with a warm start: the same invalid-move rate for the model as it was
    /// before the warm start (a pretrained model that does not know the answer protocol).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub initial_invalid_rate: Option<f64>,
    /// Sampled mean return against the CFR+ policy, per model seat.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vs_cfr: Option<Vec<f64>>,
    /// Half-width of the 95% interval of `vs_cfr`, per seat.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vs_cfr_ci95: Option<Vec<f64>>,
    /// Win rate (return > 0) against the CFR+ policy, per model seat.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub win_rate_vs_cfr: Option<Vec<f64>>,
    /// `eval.opponents`: sampled mean return per model seat against each opponent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vs_players: Option<BTreeMap<String, Vec<f64>>>,
    /// `eval.opponents`: win rate per model seat against each opponent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub win_rate_vs_players: Option<BTreeMap<String, Vec<f64>>>,
    /// Exploitability of the average of the run's policies (last step, `eval.average`): the
    /// checkpoints after step 0 and the final model, averaged by own reach (playing it = one
    /// of them, drawn uniformly at the start of each game). Written to `average_policy.json`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub avg_exploitability: Option<f64>,
}

impl Line for Metrics {
    fn new(step: usize) -> Metrics {
        Metrics {
            step,
            ..Metrics::default()
        }
    }

    fn step(&self) -> usize {
        self.step
    }

    fn set_warm_start_loss(&mut self, loss: Option<f64>) {
        self.warm_start_loss = loss;
    }

    fn set_update(&mut self, stats: &UpdateStats, skipped_total: usize, learning_rate: f64) {
        self.samples = stats.samples;
        self.loss = stats.loss;
        self.clip_fraction = stats.clip_fraction;
        self.approx_kl = stats.approx_kl;
        self.grad_norm = stats.grad_norm;
        self.learning_rate = learning_rate;
        self.kl_ref = stats.kl_ref;
        self.entropy = stats.entropy;
        self.sft_loss = stats.sft_loss;
        self.skipped_updates = skipped_total;
    }

    fn set_seconds(&mut self, seconds: f64) {
        self.seconds = seconds;
    }
}
