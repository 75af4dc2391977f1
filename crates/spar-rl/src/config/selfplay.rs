//! The typed configuration of `spar train` (TOML). Every field has a default; an unknown or
//! ill-typed key is an error that names it. `--set section.key=value` overrides a field.

use serde::{Deserialize, Serialize};
use spar_core::{InvalidMoveRule, ProtocolKind, View};

use super::choice::{self, Choice};
use super::{apply_overrides, from_table, ModelConfig, RunConfig};
use crate::error::Result;
use crate::objectives::advantages::{EstimatorKind, EstimatorSettings};
use crate::objectives::losses::{Aggregation, KlEstimator};
use crate::objectives::rae::RaeUpdate;
use crate::rollout::prompt::PromptStyle;
use crate::rollout::Decode;
use crate::trainer::LrSchedule;

mod validate;

/// A self-play run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Seeds and length.
    pub run: RunConfig,
    /// The game and its text protocol.
    pub game: GameConfig,
    /// The model: trained from scratch or loaded.
    pub model: ModelConfig,
    /// Supervised warm start on random legal play (teaches the answer protocol).
    pub warm_start: WarmStartConfig,
    /// Self-play rollouts.
    pub rollout: RolloutConfig,
    /// Advantage estimation.
    pub advantage: AdvantageConfig,
    /// The PPO update.
    pub ppo: PpoConfig,
    /// Evaluation during the run.
    pub eval: EvalConfig,
    /// How language-model opponents (`model:`, `remote:` in `rollout.opponent` and
    /// `eval.opponents`) are prompted.
    pub opponents: OpponentsConfig,
}

/// `[opponents]`: prompting of language-model opponents. A `remote:` opponent sees the run's
/// own text view unless told otherwise (`game.protocol`, `game.view`, `model.prompt_style`,
/// `rollout.temperature`, `rollout.max_tokens`); a `model:` opponent its checkpoint's
/// `prompting.json`. Fields set here override both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OpponentsConfig {
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Answer protocol: boxed, bracketed or bare.
    #[serde(with = "choice::optional")]
    pub protocol: Option<ProtocolKind>,
    /// auto, chat or raw.
    #[serde(with = "choice::optional")]
    pub prompt_style: Option<PromptStyle>,
    /// full, norules or compact.
    #[serde(with = "choice::optional")]
    pub view: Option<View>,
    /// Most tokens per answer.
    pub max_tokens: Option<usize>,
    /// `model:` opponents: sample or legal.
    #[serde(with = "choice::optional")]
    pub policy: Option<Decode>,
    /// Seconds before a remote call times out (default 120).
    pub remote_timeout: Option<f64>,
    /// Retries of a failed remote call before the opponent forfeits (default 4).
    pub remote_retries: Option<u32>,
}

impl TrainConfig {
    /// The settings of the language-model opponent `spec` (see [`OpponentsConfig`]).
    pub fn opponent_options(&self, spec: &str) -> crate::players::PlayerOptions {
        let o = &self.opponents;
        let remote = spec.starts_with("remote:");
        // The opponent's own setting, else (remote opponents) the run's, by name.
        fn or_run<T: Choice>(own: Option<T>, run: T, remote: bool) -> Option<String> {
            own.or(remote.then_some(run)).map(|v| v.name().to_string())
        }
        let defaults = crate::players::PlayerOptions::default();
        crate::players::PlayerOptions {
            prompt: crate::players::PromptFlags {
                temperature: o
                    .temperature
                    .or_else(|| remote.then_some(self.rollout.temperature)),
                protocol: or_run(o.protocol, self.game.protocol, remote),
                prompt_style: or_run(o.prompt_style, self.model.prompt_style, remote),
                view: or_run(o.view, self.game.view, remote),
            },
            max_tokens: o
                .max_tokens
                .or_else(|| remote.then_some(self.rollout.max_tokens)),
            policy: o.policy.map(|p| p.name().to_string()),
            remote_timeout: o.remote_timeout.unwrap_or(defaults.remote_timeout),
            remote_retries: o.remote_retries.unwrap_or(defaults.remote_retries),
        }
    }
}

/// `[game]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GameConfig {
    /// The game spec (`kuhn`, `leduc`, `tictactoe`, `kuhn(hands=5)`, ...).
    pub name: String,
    /// Several game specs trained together in one run (SPIRAL's multi-game training:
    /// `["tictactoe", "kuhn", "negotiation"]`); when set, `name` is not used.
    pub names: Vec<String>,
    /// Answer protocol: `boxed` (SPIRAL), `bracketed`, `bare`.
    #[serde(with = "choice")]
    pub protocol: ProtocolKind,
    /// Invalid moves: `spiral` (-1.5 / +0.5, game over), `textarena`, `retry:N`.
    #[serde(with = "choice::invalid_move_rule")]
    pub invalid_move_rule: InvalidMoveRule,
    /// Turn limit (then a draw).
    pub max_turns: usize,
    /// What observations hold: `full` (rules, role, state, legal actions, answer format:
    /// SPIRAL's prompts), `norules` (all but the rules) or `compact` (`Player N`, the
    /// information-state string and the legal actions: for tiny models from scratch).
    #[serde(with = "choice")]
    pub view: View,
}

impl GameConfig {
    /// The games of the run: `names`, or `name` alone.
    pub fn games(&self) -> Vec<String> {
        if self.names.is_empty() {
            vec![self.name.clone()]
        } else {
            self.names.clone()
        }
    }

    /// The key the games come from, for error messages.
    pub fn names_key(&self) -> &'static str {
        if self.names.is_empty() {
            "game.name"
        } else {
            "game.names"
        }
    }
}

impl Default for GameConfig {
    fn default() -> Self {
        GameConfig {
            name: "kuhn".into(),
            names: Vec::new(),
            protocol: ProtocolKind::Boxed,
            invalid_move_rule: InvalidMoveRule::Spiral,
            max_turns: 50,
            view: View::Full,
        }
    }
}

/// `[warm_start]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarmStartConfig {
    /// Supervised steps on transcripts of random legal play (0 skips the warm start).
    pub steps: usize,
    /// Random-play episodes whose turns form the supervised data.
    pub episodes: usize,
    /// Turns per supervised batch.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
}

impl Default for WarmStartConfig {
    fn default() -> Self {
        WarmStartConfig {
            steps: 60,
            episodes: 200,
            batch_size: 16,
            learning_rate: 3e-3,
        }
    }
}

/// `[rollout]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutConfig {
    /// Self-play episodes per step (every turn of both seats is a sample).
    pub episodes: usize,
    /// Sampling temperature (SPIRAL: 1.0).
    pub temperature: f64,
    /// Most tokens per answer (a longer answer is cut and parsed as it stands).
    pub max_tokens: usize,
    /// How answers are produced: `sample` (free text, token by token, parsed: SPIRAL) or
    /// `legal` (one of the legal actions' canonical completions, drawn from the model's
    /// probabilities normalised over them: GLAM; the update is then action-level PPO).
    #[serde(with = "choice")]
    pub policy: Decode,
    /// OpenAI-compatible servers that sample the rollouts instead of this process (e.g.
    /// `["http://127.0.0.1:8000/v1"]`: `spar serve`, or vLLM/SGLang serving a model of the same
    /// architecture). The learner pushes its weights to each before every step: a LoRA run
    /// loads its base once with `/update_weights_from_disk`, then each new adapter with
    /// `/v1/load_lora_adapter`; a full fine-tuning run pushes every checkpoint with
    /// `/update_weights_from_disk`. Answers from another weight version count as failed
    /// calls. Empty: rollouts run in this process.
    pub servers: Vec<String>,
    /// The base model's name on the servers (`""`: the server's own default).
    pub server_model: String,
    /// Seconds before a server call times out (it is then retried).
    pub server_timeout: f64,
    /// Retries of a failed server call (timeouts, resets, 429 and 5xx); a call that still
    /// fails is an invalid answer under `game.invalid_move_rule` and is counted
    /// (`failed_calls`), never fatal to the run.
    pub server_retries: u32,
    /// Who the model plays: `self` (self-play: the model in every seat, SPIRAL) or a fixed
    /// opponent named like a `spar tournament` player (`random`, `alphabeta:2`, `cfr+`,
    /// `tabular:FILE`, `model:PATH`, `remote:URL#NAME`); against an opponent the model takes
    /// every seat in turn (half the episodes each for two players). `pool`: a past checkpoint
    /// of this run, frozen, picked each step by `pool_sampling` (the pool and the learner's
    /// record against each member are part of the checkpoint).
    pub opponent: Opponent,
    /// How `opponent = "pool"` picks: `latest`, `uniform`, or `prioritised` (by the learner's
    /// win rate against each member, AlphaStar's PFSP).
    #[serde(with = "choice")]
    pub pool_sampling: PoolSampling,
    /// The pool's most recent checkpoints kept (0: all).
    pub pool_size: usize,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        RolloutConfig {
            episodes: 32,
            temperature: 1.0,
            max_tokens: 24,
            policy: Decode::Sample,
            servers: Vec::new(),
            server_model: String::new(),
            server_timeout: 120.0,
            server_retries: 4,
            opponent: Opponent::SelfPlay,
            pool_sampling: PoolSampling::Uniform,
            pool_size: 0,
        }
    }
}

/// Who the model plays (`rollout.opponent`), by the same strings as before it was typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Opponent {
    /// `self`: the model in every seat (SPIRAL's self-play).
    SelfPlay,
    /// `pool`: a frozen past checkpoint of the run, picked each step by
    /// `rollout.pool_sampling`.
    Pool,
    /// Any other string: a fixed player, named like a `spar tournament` player (`random`,
    /// `cfr+:3`, `model:PATH`); checked when the loop builds it, before anything is written.
    Player(String),
}

impl Opponent {
    /// The string in the config.
    pub fn name(&self) -> &str {
        match self {
            Opponent::SelfPlay => "self",
            Opponent::Pool => "pool",
            Opponent::Player(spec) => spec,
        }
    }
}

impl From<String> for Opponent {
    fn from(text: String) -> Self {
        match text.as_str() {
            "self" => Opponent::SelfPlay,
            "pool" => Opponent::Pool,
            _ => Opponent::Player(text),
        }
    }
}

impl From<Opponent> for String {
    fn from(opponent: Opponent) -> Self {
        opponent.name().to_string()
    }
}

/// How `rollout.opponent = "pool"` picks this step's member
/// (`crate::loops::selfplay`'s `pick_pool_member`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolSampling {
    /// `latest`: the newest checkpoint.
    Latest,
    /// `uniform`: every member alike (fictitious self-play over snapshots).
    Uniform,
    /// `prioritised`: by the learner's win rate against each member (AlphaStar's PFSP).
    Prioritised,
}

impl Choice for PoolSampling {
    const ALL: &'static [Self] = &[
        PoolSampling::Latest,
        PoolSampling::Uniform,
        PoolSampling::Prioritised,
    ];

    fn name(self) -> &'static str {
        match self {
            PoolSampling::Latest => "latest",
            PoolSampling::Uniform => "uniform",
            PoolSampling::Prioritised => "prioritised",
        }
    }
}

/// How self-play's PPO reduces per-token terms to a loss (`ppo.loss_aggregation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PpoAggregation {
    /// `token_sum`: sum over an answer's tokens divided by `ppo.normaliser` (Dr. GRPO,
    /// SPIRAL).
    TokenSum,
    /// `token_mean`: mean over an answer's tokens.
    TokenMean,
}

impl PpoAggregation {
    /// The loss library's aggregation (`normaliser`: the constant of `token_sum`).
    pub fn aggregation(self, normaliser: f64) -> Aggregation {
        match self {
            PpoAggregation::TokenSum => Aggregation::TokenSum(normaliser),
            PpoAggregation::TokenMean => Aggregation::TokenMean,
        }
    }
}

impl Choice for PpoAggregation {
    const ALL: &'static [Self] = &[PpoAggregation::TokenSum, PpoAggregation::TokenMean];

    fn name(self) -> &'static str {
        match self {
            PpoAggregation::TokenSum => "token_sum",
            PpoAggregation::TokenMean => "token_mean",
        }
    }
}

/// `[advantage]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdvantageConfig {
    /// `rae` (SPIRAL's role-conditioned EMA baseline), `reinforce` (no baseline), or a
    /// group-relative estimator whose group is a role's games in the step: `grpo`,
    /// `dr_grpo`, `rloo`, `trloo` (the role's `t`-th turns across the step's games;
    /// `crate::objectives::advantages`). The group-relative ones need `rollout.episodes >= 2`
    /// (against an opponent, two games per seat).
    #[serde(with = "choice")]
    pub estimator: EstimatorKind,
    /// EMA decay of the RAE baseline (SPIRAL: 0.95).
    pub decay: f64,
    /// RAE update rule: `per_game` (SPIRAL's oat code: one EMA update per finished game) or
    /// `batch_mean` (SPIRAL's Tinker code: one update per batch with the batch's mean return).
    #[serde(with = "choice")]
    pub update: RaeUpdate,
    /// Drop samples whose advantage is exactly 0 (SPIRAL: true).
    pub filter_zero: bool,
    /// REINFORCE++: normalise the advantages over the step's samples after the estimator
    /// (`reinforce` + `batch_norm` is REINFORCE++, `dr_grpo` + `batch_norm` its baseline
    /// variant).
    pub batch_norm: bool,
    /// Epsilon of GRPO's `std + eps` and of the batch normalisation.
    pub eps: f64,
}

impl Default for AdvantageConfig {
    fn default() -> Self {
        AdvantageConfig {
            estimator: EstimatorKind::Rae,
            decay: 0.95,
            update: RaeUpdate::PerGame,
            filter_zero: true,
            batch_norm: false,
            eps: 1e-6,
        }
    }
}

impl AdvantageConfig {
    /// The estimator's settings ([`crate::objectives::advantages::estimator`]).
    pub fn estimator_settings(&self) -> EstimatorSettings {
        EstimatorSettings {
            kind: self.estimator,
            eps: self.eps,
            batch_norm: self.batch_norm,
            rae_decay: self.decay,
            rae_update: self.update,
        }
    }
}

/// `[ppo]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Passes over each step's samples (SPIRAL: 2).
    pub epochs: usize,
    /// Samples per minibatch (one optimiser step each).
    pub minibatch_size: usize,
    /// Clip range epsilon (SPIRAL: 0.2).
    pub clip: f64,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// `token_sum` (Dr. GRPO / SPIRAL: sum over tokens divided by `normaliser`) or
    /// `token_mean`.
    #[serde(with = "choice")]
    pub loss_aggregation: PpoAggregation,
    /// The constant of `token_sum` (SPIRAL uses its generation budget, 4096).
    pub normaliser: f64,
    /// Gradient-norm clipping (0 disables).
    pub max_grad_norm: f64,
    /// Learning-rate schedule over the run's steps: `constant`, `linear` or `cosine` (to 0
    /// at the last step).
    #[serde(with = "choice")]
    pub lr_schedule: LrSchedule,
    /// Steps of linear learning-rate warm-up before the schedule.
    pub warmup_steps: usize,
    /// Coefficient of the KL penalty to the frozen reference, the model right after the warm
    /// start (0: none; SPIRAL uses none). With `k2` this is the magnet of magnetic mirror
    /// descent (Sokota et al. 2023): a pull towards a fixed policy that makes self-play
    /// converge (to a regularised equilibrium) instead of cycling.
    pub kl_coef: f64,
    /// Estimator of the KL per token: `k1`, `k2` or `k3` (see docs/training.md).
    #[serde(with = "choice")]
    pub kl_estimator: KlEstimator,
    /// Coefficient of the entropy bonus (0: none).
    pub entropy_coef: f64,
    /// Coefficient of a supervised term on the warm-start data added to every minibatch's
    /// loss (PPO-ptx, Ouyang et al. 2022, eq. 2; 0: none). It anchors the answer format of a
    /// small model, and pulls each decision towards uniform legal play (a magnet).
    pub sft_coef: f64,
    /// Magnetic mirror descent's moving magnet (Sokota et al. 2023, app. H.5): after every
    /// step's update the magnet (the reference of `kl_coef`, at step 0 the warm-started
    /// model) moves this fraction of the way to the policy's weights, `zeta <- (1 - r) zeta +
    /// r theta`, so that the regularised equilibrium it pulls towards trails the policy
    /// towards a Nash equilibrium. 0: a fixed magnet. Needs `kl_coef > 0` and full
    /// fine-tuning; the magnet's weights are saved in every checkpoint (`magnet.safetensors`).
    pub magnet_rate: f64,
    /// With `rollout.policy = "legal"`: the KL to the magnet computed exactly over the legal
    /// actions, `sum_a pi(a) (log pi(a) - log rho(a))` (MMD eq. 10's `KL(pi, rho)`), instead
    /// of `kl_estimator` on the sampled action.
    pub kl_exact: bool,
}

impl Default for PpoConfig {
    fn default() -> Self {
        PpoConfig {
            epochs: 2,
            minibatch_size: 32,
            clip: 0.2,
            learning_rate: 3e-4,
            weight_decay: 0.0,
            loss_aggregation: PpoAggregation::TokenSum,
            normaliser: 64.0,
            max_grad_norm: 1.0,
            lr_schedule: LrSchedule::Constant,
            warmup_steps: 0,
            kl_coef: 0.0,
            kl_estimator: KlEstimator::K3,
            entropy_coef: 0.0,
            sft_coef: 0.0,
            magnet_rate: 0.0,
            kl_exact: false,
        }
    }
}

/// `[eval]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate every this many steps (and after the last); 0 never.
    pub every: usize,
    /// Exact exploitability of the model's policy (games whose tree spar can enumerate).
    pub exploitability: bool,
    /// Games against the uniform random player, per seat.
    pub games_vs_random: usize,
    /// Games against a CFR+ policy, per seat (games spar can enumerate; 0: none).
    pub games_vs_cfr: usize,
    /// CFR+ iterations of that policy (Kuhn: 1,000 reach NashConv < 1e-3).
    pub cfr_iterations: usize,
    /// At the last step, also the exploitability of the average of the run's checkpointed
    /// policies (`avg_exploitability`, `average_policy.json`): self-play policy gradient
    /// cycles, and the average of the iterates is what fictitious play converges with.
    pub average: bool,
    /// More opponents played at each evaluation, named like `spar tournament` players
    /// (`alphabeta:2`, `tabular:FILE`, `model:PATH`, `remote:URL#NAME`, ...): mean return and
    /// win rate per seat in `vs_players` and `win_rate_vs_players`.
    pub opponents: Vec<String>,
    /// Games against each of `opponents`, per seat.
    pub games_vs_opponents: usize,
    /// The games (registry names: `kuhn`, `tictactoe`) whose exact evaluations
    /// (exploitability, the CFR+ opponent) are computed; empty: every game of the run. In a
    /// multi-game run, leave out games whose trees are large (TicTacToe's 5,478 information
    /// sets cost minutes of model calls per evaluation; CFR+ on its tree more).
    pub exact_games: Vec<String>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            every: 5,
            exploitability: true,
            games_vs_random: 32,
            games_vs_cfr: 32,
            cfr_iterations: 1000,
            average: true,
            opponents: Vec::new(),
            games_vs_opponents: 32,
            exact_games: Vec::new(),
        }
    }
}

impl TrainConfig {
    /// Parses TOML text, applies `key=value` overrides (`ppo.clip=0.1`), and checks the
    /// result. Errors name the key.
    pub fn parse(text: &str, overrides: &[String]) -> Result<TrainConfig> {
        let config: TrainConfig = from_table(apply_overrides(text, overrides)?)?;
        config.validate()?;
        Ok(config)
    }

    /// The keys whose values come from a fixed list, with that list, for `spar train --help`
    /// (built from the types, so it cannot drift from what the parser accepts).
    pub fn choices() -> Vec<(&'static str, String)> {
        use choice::names;
        let games: Vec<&str> = spar_games::registry::GAMES.iter().map(|g| g.name).collect();
        vec![
            (
                "game.name, game.names",
                format!("{} (with parameters: spar games)", games.join(", ")),
            ),
            ("game.protocol", names::<ProtocolKind>()),
            ("game.view", names::<View>()),
            ("game.invalid_move_rule", choice::invalid_move_rule::names()),
            ("model.prompt_style", names::<PromptStyle>()),
            ("rollout.policy", names::<Decode>()),
            (
                "rollout.opponent",
                format!("self, pool, or a player: {}", crate::players::PLAYERS),
            ),
            ("rollout.pool_sampling", names::<PoolSampling>()),
            (
                "eval.opponents",
                format!(
                    "players: {} (SPEC@GAME: in that game only)",
                    crate::players::PLAYERS
                ),
            ),
            ("advantage.estimator", names::<EstimatorKind>()),
            ("advantage.update", names::<RaeUpdate>()),
            ("ppo.loss_aggregation", names::<PpoAggregation>()),
            ("ppo.lr_schedule", names::<LrSchedule>()),
            ("ppo.kl_estimator", names::<KlEstimator>()),
            ("opponents.protocol", names::<ProtocolKind>()),
            ("opponents.prompt_style", names::<PromptStyle>()),
            ("opponents.view", names::<View>()),
            ("opponents.policy", names::<Decode>()),
        ]
    }

    /// The resolved configuration as TOML (written to the run directory first).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }
}

#[cfg(test)]
mod tests;
