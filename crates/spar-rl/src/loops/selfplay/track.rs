//! One game of a self-play run behind a trait object ([`Track`]), so that a run can
//! interleave games of different types; the loop is game-free.

use std::collections::BTreeMap;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use spar_core::{Env, Game, GameSpec, GameText, TabularPolicy, TextGame};
use spar_games::heuristic::Heuristic;
use spar_games::text::TextView;
use spar_lm::sample::SamplingParams;
use spar_lm::Llama;

use super::evaluate::{average_exploitability, cfr_opponent, evaluate, vs_opponent};
use super::evaluate::{BoxedPlayer, NamedPlayer};
use super::metrics::{Evaluation, GameRollouts, Metrics};
use super::{game_text_options, sampling};
use crate::config::{Opponent, TrainConfig};
use crate::error::{Error, Result};
use crate::players::lm_player::{LmPlayer, LocalAnswerer};
use crate::players::make_any_player;
use crate::rollout::prompt::{completion_ids, prompt_ids, PromptStyle};
use crate::rollout::{Batch, Decode, PolicySeat, Rollout, Seat};
use crate::trainer::Learner;

/// What the loop asks of one game of a run, whatever its type: the game-specific parts of
/// SPIRAL's loop (text environment, opponents, CFR+ policy, evaluation) behind one object, so
/// that a run can interleave several games.
pub(super) trait Track {
    /// The game's name (the prefix of its roles: `kuhn/player0`).
    fn name(&self) -> &str;
    /// The warm start's supervised data for this game.
    fn warm_start_data(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
    ) -> Result<Vec<(Vec<u32>, Vec<u32>)>>;
    /// This step's games: the batch and, per episode, the return of each role the model
    /// played.
    fn rollout(&mut self, step: &StepContext) -> Result<TrackRollout>;
    /// Exploitability and returns against the evaluation opponents at step `step`, into `e`.
    fn evaluate(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
        step: usize,
        e: &mut Evaluation,
    ) -> Result<()>;
    /// The invalid-move rate of the model in games against the random player (before the
    /// warm start: `initial_invalid_rate`).
    fn invalid_vs_random(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
    ) -> Result<f64>;
    /// The exploitability of the average of the run's policies (`eval.average`).
    fn average_exploitability(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
        out: &Path,
    ) -> Result<Option<f64>>;
}

/// What every game's rollouts of one step share.
pub(super) struct StepContext<'a> {
    pub(super) engine: &'a dyn spar_lm::Engine,
    pub(super) learner: &'a Learner,
    pub(super) config: &'a TrainConfig,
    pub(super) style: PromptStyle,
    pub(super) params: &'a SamplingParams,
    pub(super) decode: Decode,
    /// The step's seed (already distinct per game).
    pub(super) seed: u64,
    /// `rollout.opponent = "pool"`: the member's step and its frozen model.
    pub(super) pool: Option<(usize, &'a Llama)>,
}

/// One game's rollouts of a step.
pub(super) struct TrackRollout {
    pub(super) batch: Batch,
    pub(super) returns: Vec<BTreeMap<String, f64>>,
    /// The model played a fixed or pool opponent (not itself).
    pub(super) against_opponent: bool,
}

/// A game of the run and its fixed players.
pub(super) struct GameTrack<G: TextView> {
    game: G,
    name: String,
    /// `[game]`: the text protocol, rule, turn limit and view (checked when the track is
    /// built).
    text: crate::config::GameConfig,
    /// `rollout.opponent` when it names a player (not self or pool).
    opponent: Option<BoxedPlayer<G::State>>,
    /// `eval.opponents` that apply to this game.
    eval_opponents: Vec<NamedPlayer<G::State>>,
    /// The CFR+ opponent of the evaluation (games spar can enumerate).
    cfr: Option<TabularPolicy>,
    /// The current pool opponent, kept while it is picked again.
    pool_player: Option<(usize, BoxedPlayer<G::State>)>,
    /// Seeds of game `index > 0` are xored with this (0 for the first game, so a one-game
    /// run draws exactly what it drew before multi-game runs existed).
    salt: u64,
    /// One of several games of the run.
    multi: bool,
    /// Exact evaluations (exploitability, CFR+) of this game (`eval.exact_games`).
    exact: bool,
}

impl<G: TextView + Heuristic + Clone + 'static> GameTrack<G> {
    pub(super) fn new(
        game: G,
        registry_name: &str,
        config: &TrainConfig,
        index: usize,
        multi: bool,
    ) -> Result<GameTrack<G>> {
        let name = game.info().name.clone();
        let salt = (index as u64) << 56;
        let mut counters = Vec::new();
        let opponent = match &config.rollout.opponent {
            Opponent::SelfPlay | Opponent::Pool => None,
            Opponent::Player(spec) => Some(
                make_any_player(
                    &game,
                    spec,
                    &config.opponent_options(spec),
                    config.run.seed ^ 0x0990_0000 ^ salt,
                    &mut counters,
                )
                .map_err(|e| in_game(in_key(e, "rollout.opponent"), &name, multi))?,
            ),
        };
        let run_games: Vec<String> = config
            .game
            .games()
            .iter()
            .filter_map(|g| GameSpec::parse(g).ok().map(|s| s.name))
            .collect();
        let mut eval_opponents = Vec::new();
        for (i, entry) in config.eval.opponents.iter().enumerate() {
            // `SPEC@GAME`: this opponent only in that game of a multi-game run.
            let spec = match entry.rsplit_once('@') {
                Some((spec, only)) if run_games.iter().any(|g| g == only) => {
                    if only != registry_name {
                        continue;
                    }
                    spec
                }
                _ => entry.as_str(),
            };
            let player = make_any_player(
                &game,
                spec,
                &config.opponent_options(spec),
                config.run.seed ^ 0x0e7a_0000 ^ i as u64 ^ salt,
                &mut counters,
            )
            .map_err(|e| in_game(in_key(e, "eval.opponents"), &name, multi))?;
            eval_opponents.push((spec.to_string(), player));
        }
        let exact = config.eval.exact_games.is_empty()
            || config.eval.exact_games.iter().any(|g| g == registry_name);
        Ok(GameTrack {
            cfr: if exact {
                cfr_opponent(&game, config)
            } else {
                None
            },
            exact,
            text: config.game.clone(),
            game,
            name,
            opponent,
            eval_opponents,
            pool_player: None,
            salt,
            multi,
        })
    }

    fn env(&self) -> TextGame<G, G::Text> {
        let options = game_text_options(&self.text);
        TextGame::new(self.game.clone(), self.game.text_view(), options)
    }
}

/// An error building the player of config key `key`, naming the key.
fn in_key(e: Error, key: &str) -> Error {
    match e {
        Error::Invalid(m) => Error::Invalid(format!("config: {key}: {m}")),
        e => e,
    }
}

/// An error building a player, naming the game in a multi-game run.
fn in_game(e: Error, game: &str, multi: bool) -> Error {
    match e {
        Error::Invalid(m) if multi => Error::Invalid(format!(
            "{m} (in game {game:?}; to name an evaluation opponent for one game only, write \
             SPEC@GAME)"
        )),
        e => e,
    }
}

impl<G: TextView + Heuristic + Clone + 'static> Track for GameTrack<G> {
    fn name(&self) -> &str {
        &self.name
    }

    fn warm_start_data(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
    ) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
        warm_start_data(&|| self.env(), learner, config, style, self.salt)
    }

    fn rollout(&mut self, step: &StepContext) -> Result<TrackRollout> {
        if let Some((member, model)) = step.pool {
            if self.pool_player.as_ref().is_none_or(|(s, _)| *s != member) {
                let answerer = LocalAnswerer {
                    model: model.clone(),
                    tokenizer: step.learner.tokenizer.clone(),
                    style: step.style,
                    params: step.params.clone(),
                };
                let player: BoxedPlayer<G::State> = Box::new(LmPlayer::new(
                    &format!("step-{member}"),
                    self.env(),
                    Box::new(answerer),
                    step.decode,
                    step.seed ^ 0x9002_0000,
                ));
                self.pool_player = Some((member, player));
            }
        }
        let opponent: Option<&dyn spar_core::Policy<G::State>> =
            match (&self.pool_player, step.pool) {
                (Some((_, p)), Some(_)) => Some(p.as_ref()),
                _ => self.opponent.as_deref(),
            };
        // Self-play: the model in every seat. Against a fixed opponent: the model in each seat
        // in turn, the episodes split between the seats.
        let episodes = step.config.rollout.episodes;
        let num_players = self.game.info().num_players;
        let scripted = opponent.map(PolicySeat);
        type Seats<'a, G> = Vec<Seat<'a, TextGame<G, <G as TextView>::Text>>>;
        let seatings: Vec<(Seats<G>, usize)> = match &scripted {
            None => vec![(vec![Seat::Model; num_players], episodes)],
            Some(op) => (0..num_players)
                .map(|seat| {
                    let seats = (0..num_players)
                        .map(|p| {
                            if p == seat {
                                Seat::Model
                            } else {
                                Seat::Scripted(op)
                            }
                        })
                        .collect();
                    let share = episodes / num_players + usize::from(seat < episodes % num_players);
                    (seats, share)
                })
                .collect(),
        };
        let rollout = Rollout {
            decode: step.decode,
            ..Rollout::new(
                step.engine,
                &step.learner.tokenizer,
                step.style,
                step.params,
            )
        };
        let mut batch = Batch::default();
        let mut returns = Vec::new();
        for (i, (seats, n)) in seatings.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let seed = step.seed ^ ((i as u64) << 48);
            let mut envs = crate::rollout::episodes(&|| self.env(), *n, seed);
            let part = rollout.play(&mut envs, seats, seed)?;
            returns.extend(part.model_returns(seats));
            batch.append(part);
        }
        Ok(TrackRollout {
            batch,
            returns,
            against_opponent: opponent.is_some(),
        })
    }

    fn evaluate(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
        step: usize,
        e: &mut Evaluation,
    ) -> Result<()> {
        evaluate(
            &|| self.env(),
            learner,
            config,
            style,
            self.cfr.as_ref(),
            &self.eval_opponents,
            self.salt,
            self.exact,
            step,
            e,
        )
    }

    fn invalid_vs_random(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
    ) -> Result<f64> {
        let games = vs_opponent(
            &|| self.env(),
            learner,
            style,
            Seat::Random,
            config.eval.games_vs_random,
            &sampling(config),
            config.rollout.policy,
            spar_core::seeds::evaluation_games(config.run.seed, 0xe7a1_0000 ^ self.salt, 0),
        )?;
        Ok(games.invalid)
    }

    fn average_exploitability(
        &self,
        learner: &Learner,
        config: &TrainConfig,
        style: PromptStyle,
        out: &Path,
    ) -> Result<Option<f64>> {
        let file = if self.multi {
            format!("average_policy-{}.json", self.name)
        } else {
            "average_policy.json".to_string()
        };
        average_exploitability(&|| self.env(), learner, config, style, out, &file)
    }
}

/// The warm-start data of every game, interleaved (one example of each in turn) so that
/// every warm-start batch mixes the games.
pub(super) fn mixed_warm_start_data(
    tracks: &[Box<dyn Track>],
    learner: &Learner,
    config: &TrainConfig,
    style: PromptStyle,
) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
    let per_game = tracks
        .iter()
        .map(|t| t.warm_start_data(learner, config, style))
        .collect::<Result<Vec<_>>>()?;
    let longest = per_game.iter().map(Vec::len).max().unwrap_or(0);
    let mut data = Vec::with_capacity(per_game.iter().map(Vec::len).sum());
    for i in 0..longest {
        for game in &per_game {
            if let Some(pair) = game.get(i) {
                data.push(pair.clone());
            }
        }
    }
    Ok(data)
}

/// Evaluates every game at step `step`, into its entry of `games`.
pub(super) fn evaluate_tracks(
    tracks: &[Box<dyn Track>],
    learner: &Learner,
    config: &TrainConfig,
    style: PromptStyle,
    step: usize,
    m: &mut Metrics,
) -> Result<()> {
    for track in tracks {
        let g = m.games.entry(track.name().to_string()).or_default();
        if tracks.len() > 1 {
            // A multi-game line has every game's rollouts; step 0's, of no rollouts, are 0.
            g.rollouts.get_or_insert_with(GameRollouts::default);
        }
        track.evaluate(learner, config, style, step, &mut g.eval)?;
    }
    Ok(())
}

/// The supervised data of the warm start (and of `ppo.sft_coef`): the prompt and canonical
/// completion of a uniformly random legal move at every turn of `warm_start.episodes` random
/// games. A function of `run.seed` (and `salt`, the game's in a multi-game run) only, so a
/// resumed run rebuilds the same data.
fn warm_start_data<G: Game, T: GameText<G::State>>(
    make_env: &dyn Fn() -> TextGame<G, T>,
    learner: &Learner,
    config: &TrainConfig,
    style: PromptStyle,
    salt: u64,
) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
    let w = &config.warm_start;
    let mut data: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.run.seed ^ 0xa11 ^ salt);
    for g in 0..w.episodes {
        let mut env = make_env();
        env.reset(config.run.seed.wrapping_add(1 << 48).wrapping_add(g as u64) ^ salt);
        while let Some(player) = env.current_player() {
            let observation = env.observation(player);
            let legal = env.legal_action_names();
            let (action, _) = legal.choose(&mut rng).expect("a legal action").clone();
            let completion = env.completion_for(action);
            data.push((
                prompt_ids(&learner.tokenizer, &observation, style)?,
                completion_ids(&learner.tokenizer, &completion)?,
            ));
            env.step(player, &completion);
        }
    }
    if data.is_empty() {
        return Err(Error::Invalid(
            "config: warm_start.episodes must be >= 1 when the warm start or ppo.sft_coef is on"
                .into(),
        ));
    }
    Ok(data)
}
