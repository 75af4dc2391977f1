//! What self-play measures in a step ([`Metrics`]), each game's share of it ([`GameMetrics`])
//! and the evaluation of a game ([`Evaluation`]), and their names in `metrics.jsonl`
//! (`docs/metrics.md`): rollouts under `selfplay/` (loop-wide, per game of a multi-game run
//! as `selfplay/<game>/...`, per role as `selfplay/<role key>/...`), a game's evaluation
//! under `eval/<game>/...` and, per model seat, `eval/<role key>/...`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spar_core::Role;

use crate::trainer::{Scope, StepMetrics};

/// What self-play measured in one step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// Mean return of each role over the step's self-play games
    /// (`selfplay/<role key>/mean_return`).
    pub mean_return: BTreeMap<String, f64>,
    /// RAE baseline of each role after the step (`selfplay/<role key>/baseline`).
    pub baseline: BTreeMap<String, f64>,
    /// Fraction of model turns that named no legal action (`selfplay/invalid_rate`).
    pub invalid_rate: f64,
    /// Fraction of model turns cut by `rollout.max_tokens` (`selfplay/truncation_rate`).
    pub truncation_rate: f64,
    /// Mean answer length in tokens (`selfplay/response_tokens`).
    pub response_tokens: f64,
    /// `rollout.servers`: model turns whose server call failed after every retry (each an
    /// invalid answer) in this step's rollouts.
    pub failed_calls: Option<usize>,
    /// `rollout.servers`: retried server calls in this step (timeouts, resets, 429, 5xx).
    pub server_retries: Option<u64>,
    /// `rollout.opponent = "pool"`: the step of the checkpoint the learner played.
    pub pool_opponent: Option<usize>,
    /// `rollout.opponent = "pool"`: the learner's win rate against it in this step's games.
    pub pool_win_rate: Option<f64>,
    /// A fixed opponent (`rollout.opponent`): its turns that named no action (a language-model
    /// opponent's invalid answer or failed call), each an invalid move under the game's rule.
    pub opponent_failures: Option<usize>,
    /// `rollout.servers`: the weight version the servers sampled this step's rollouts with.
    pub weight_version: Option<String>,
    /// Each game's share: its rollouts in a multi-game run, its evaluation at evaluation
    /// steps (one-game runs too).
    pub games: BTreeMap<String, GameMetrics>,
}

/// One game's share of a step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GameMetrics {
    /// Multi-game runs (`game.names`): the game's own rollouts (`selfplay/<game>/...`); the
    /// loop-wide values then hold the rollouts of all games together.
    pub rollouts: Option<GameRollouts>,
    /// The game's evaluation (`eval/<game>/...`).
    pub eval: Evaluation,
}

/// One game's rollouts in a step of a multi-game run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GameRollouts {
    /// Episodes of this game played in the step's rollouts.
    pub episodes: usize,
    /// Fraction of the model's turns in this game that named no legal action.
    pub invalid_rate: f64,
    /// Fraction of the model's turns in this game cut by `rollout.max_tokens`.
    pub truncation_rate: f64,
    /// Mean answer length in tokens in this game.
    pub response_tokens: f64,
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

impl StepMetrics for Metrics {
    fn write(&self, out: &mut Scope) {
        for (role, v) in &self.mean_return {
            out.put(&format!("{role}/mean_return"), *v);
        }
        for (role, v) in &self.baseline {
            out.put(&format!("{role}/baseline"), *v);
        }
        out.put("invalid_rate", self.invalid_rate);
        out.put("truncation_rate", self.truncation_rate);
        out.put("response_tokens", self.response_tokens);
        out.put_some("failed_calls", self.failed_calls);
        out.put_some("server_retries", self.server_retries);
        out.put_some("pool_opponent", self.pool_opponent);
        out.put_some("pool_win_rate", self.pool_win_rate);
        out.put_some("opponent_failures", self.opponent_failures);
        out.put_some("weight_version", self.weight_version.clone());
        for (game, g) in &self.games {
            if let Some(r) = &g.rollouts {
                out.put(&format!("{game}/episodes"), r.episodes);
                out.put(&format!("{game}/invalid_rate"), r.invalid_rate);
                out.put(&format!("{game}/truncation_rate"), r.truncation_rate);
                out.put(&format!("{game}/response_tokens"), r.response_tokens);
            }
            g.eval.write(game, out);
        }
    }
}

impl Evaluation {
    /// The evaluation of `game` as `eval/<game>/<metric>`, its per-seat values as
    /// `eval/<role key>/<metric>` (seat `i` is the role `<game>/player<i>`), the per-opponent
    /// ones as `eval/<role key>/vs_players/<opponent>`.
    pub fn write(&self, game: &str, out: &mut Scope) {
        let scalars = [
            ("nash_conv", self.nash_conv),
            ("exploitability", self.exploitability),
            ("outside_mass", self.outside_mass),
            ("invalid_vs_random", self.invalid_vs_random),
            ("initial_invalid_rate", self.initial_invalid_rate),
            ("avg_exploitability", self.avg_exploitability),
        ];
        for (name, value) in scalars {
            out.eval_some(&format!("{game}/{name}"), value);
        }
        let role = |seat: usize| Role::player(game, seat).key();
        let per_seat = [
            ("exact_vs_random", &self.exact_vs_random),
            ("exact_vs_cfr", &self.exact_vs_cfr),
            ("vs_random", &self.vs_random),
            ("vs_random_ci95", &self.vs_random_ci95),
            ("vs_cfr", &self.vs_cfr),
            ("vs_cfr_ci95", &self.vs_cfr_ci95),
            ("win_rate_vs_cfr", &self.win_rate_vs_cfr),
        ];
        for (name, values) in per_seat {
            for (seat, v) in values.iter().flatten().enumerate() {
                out.eval(&format!("{}/{name}", role(seat)), *v);
            }
        }
        let per_opponent = [
            ("vs_players", &self.vs_players),
            ("win_rate_vs_players", &self.win_rate_vs_players),
        ];
        for (name, players) in per_opponent {
            for (opponent, values) in players.iter().flatten() {
                for (seat, v) in values.iter().enumerate() {
                    out.eval(&format!("{}/{name}/{opponent}", role(seat)), *v);
                }
            }
        }
    }
}
