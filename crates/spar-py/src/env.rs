//! Games and tasks as text environments for Python (`spar.make`).
//!
//! A [`TextEnv`] holds any [`spar_core::Env`]: a tree game through `spar_games::text::text_env`
//! (what `spar play` and the self-play loop use) or a verifiable task through
//! [`spar_games::tasks::TaskEnv`] (what the task loop uses). Observations, steps and
//! transcripts cross to Python as the JSON of their `serde` types; the Python class
//! `spar.Env` decodes them.
//!
//! The Rust contract says `step` after the end of an episode is a programmer error (it may
//! panic); from Python it is a `ValueError`, as are a step before the first `reset` and a
//! player index out of range.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use serde::Serialize;
use spar_core::text::protocol_by_name;
use spar_core::{Env, GameSpec, InvalidMoveRule, Observation, TextGame, TextOptions};
use spar_games::tasks::{task_from_spec, Split, TaskEnv};
use spar_games::text::TextView;

use crate::error::{input, Result};

/// A text environment: a game or a task, one episode at a time.
#[pyclass(module = "spar._spar")]
pub struct TextEnv {
    env: Mutex<Box<dyn Env>>,
    /// Whether this is a verifiable task (one seat, free-text answers).
    is_task: bool,
    /// Whether `reset` has been called (a task has no problem before it).
    started: Mutex<bool>,
}

impl std::fmt::Debug for TextEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEnv")
            .field("is_task", &self.is_task)
            .finish_non_exhaustive()
    }
}

/// An observation with its assembled prompts, as Python receives it (the role as its key).
#[derive(Serialize)]
struct ObservationView {
    player: usize,
    role: String,
    system: String,
    role_text: String,
    state_text: String,
    legal_actions: Option<Vec<String>>,
    answer_format: String,
    /// [`Observation::prompt`]: the user message.
    prompt: String,
    /// [`Observation::full_prompt`]: system text and user message in one string.
    full_prompt: String,
}

impl ObservationView {
    fn new(player: usize, observation: Observation) -> Self {
        ObservationView {
            player,
            role: observation.role.key(),
            prompt: observation.prompt(),
            full_prompt: observation.full_prompt(),
            system: observation.system,
            role_text: observation.role_text,
            state_text: observation.state_text,
            legal_actions: observation.legal_actions,
            answer_format: observation.answer_format,
        }
    }
}

impl TextEnv {
    fn with<T>(&self, f: impl FnOnce(&mut dyn Env) -> T) -> T {
        // A panic cannot happen while the lock is held (every call below is checked first),
        // so the lock is never poisoned; recover the guard anyway rather than panic.
        let mut guard = self.env.lock().unwrap_or_else(|e| e.into_inner());
        f(guard.as_mut())
    }

    fn started(&self) -> bool {
        *self.started.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_player(&self, env: &dyn Env, player: usize) -> Result<()> {
        if player >= env.num_players() {
            return Err(input(format!(
                "player {player} does not exist: {} has {} player(s)",
                env.name(),
                env.num_players()
            )));
        }
        Ok(())
    }

    /// `player`, or the player to move when `None`.
    fn seat(&self, env: &dyn Env, player: Option<usize>) -> Result<usize> {
        match player {
            Some(p) => self.check_player(env, p).map(|()| p),
            None => env.current_player().ok_or_else(|| {
                input(if self.started() {
                    "the episode is over: no player is to move (pass player=N, or reset)"
                } else {
                    "call reset(seed) first"
                })
            }),
        }
    }
}

#[pymethods]
impl TextEnv {
    /// The environment's name: a game specification (`kuhn`, `kuhn(hands=5)`) or a task's.
    #[getter]
    fn name(&self) -> String {
        self.with(|env| env.name())
    }

    /// The number of seats.
    #[getter]
    fn num_players(&self) -> usize {
        self.with(|env| env.num_players())
    }

    /// Whether this is a verifiable task rather than a game.
    #[getter]
    fn is_task(&self) -> bool {
        self.is_task
    }

    /// Every seat's role key (`kuhn/player0`, `arithmetic/solver`).
    #[getter]
    fn roles(&self) -> Vec<String> {
        self.with(|env| (0..env.num_players()).map(|p| env.role(p).key()).collect())
    }

    /// Starts an episode; all its randomness comes from `seed` (for a task, the seed is the
    /// problem's index).
    fn reset(&self, seed: u64) {
        self.with(|env| env.reset(seed));
        *self.started.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    /// The player to move, or `None` when the episode is over (or not started).
    fn current_player(&self) -> Option<usize> {
        self.with(|env| env.current_player())
    }

    /// Whether the episode is over.
    fn is_done(&self) -> bool {
        self.with(|env| env.is_done())
    }

    /// The JSON of what `player` (default: the player to move) sees.
    #[pyo3(signature = (player=None))]
    fn observation_json(&self, player: Option<usize>) -> PyResult<String> {
        Ok(self.with(|env| -> Result<String> {
            let player = self.seat(env, player)?;
            let view = ObservationView::new(player, env.observation(player));
            Ok(serde_json::to_string(&view)?)
        })?)
    }

    /// `player` (default: the player to move) answers `completion`; the JSON of the step
    /// (`spar_core::Step`: the move or the invalid move and why, whether it ended the
    /// episode).
    #[pyo3(signature = (completion, player=None))]
    fn step_json(&self, completion: &str, player: Option<usize>) -> PyResult<String> {
        Ok(self.with(|env| -> Result<String> {
            if !self.started() && env.current_player().is_none() {
                return Err(input("call reset(seed) first"));
            }
            if env.is_done() {
                return Err(input(
                    "the episode is over: call reset(seed) to start another",
                ));
            }
            let player = self.seat(env, player)?;
            Ok(serde_json::to_string(&env.step(player, completion))?)
        })?)
    }

    /// Per-player returns: final once the episode is over, zeros before.
    fn returns(&self) -> Vec<f64> {
        self.with(|env| env.returns())
    }

    /// The JSON of the episode's transcript (`spar_core::Transcript`).
    fn transcript_json(&self) -> PyResult<String> {
        Ok(self.with(|env| {
            serde_json::to_string(env.transcript()).map_err(crate::error::Failure::from)
        })?)
    }

    /// The canonical answers naming each legal move of the player to move (games), or
    /// `None` (tasks: free text).
    fn legal_answers(&self) -> Option<Vec<String>> {
        self.with(|env| env.legal_answers())
    }
}

/// Builds the environment named `spec`: a game (`spar games`) with its text options, or a
/// task (`spar tasks`) drawing problems from `split` with generator seed `task_seed`.
#[pyfunction]
#[pyo3(signature = (spec, protocol=None, invalid_move_rule=None, max_turns=None, view=None, split=None, task_seed=0))]
pub fn make(
    spec: &str,
    protocol: Option<&str>,
    invalid_move_rule: Option<&str>,
    max_turns: Option<usize>,
    view: Option<&str>,
    split: Option<&str>,
    task_seed: u64,
) -> PyResult<TextEnv> {
    let game = GameSpec::parse(spec)
        .ok()
        .filter(|g| spar_games::registry::GAMES.iter().any(|e| e.name == g.name));
    let Some(game) = game else {
        let game_options = [
            ("protocol", protocol.is_some()),
            ("invalid_move_rule", invalid_move_rule.is_some()),
            ("max_turns", max_turns.is_some()),
            ("view", view.is_some()),
        ];
        let task = task_from_spec(spec).map_err(|task_error| {
            input(format!(
                "{spec:?} is neither a game ({}) nor a task: {task_error}",
                games().join(", ")
            ))
        })?;
        if let Some((option, _)) = game_options.iter().find(|(_, given)| *given) {
            return Err(input(format!(
                "{option} applies to games; {spec:?} is a task (one seat, free-text answers)"
            ))
            .into());
        }
        let split: Split = split.unwrap_or("train").parse().map_err(input)?;
        let env = TaskEnv::new(Arc::from(task), split, task_seed);
        return Ok(TextEnv {
            env: Mutex::new(Box::new(env)),
            is_task: true,
            started: Mutex::new(false),
        });
    };
    if split.is_some() {
        return Err(input(format!("split applies to tasks; {spec:?} is a game")).into());
    }
    let mut options = TextOptions::default();
    if let Some(name) = protocol {
        options.protocol = protocol_by_name(name).ok_or_else(|| {
            input(format!(
                "unknown protocol {name:?}; accepted: boxed, bracketed, bare"
            ))
        })?;
    }
    if let Some(rule) = invalid_move_rule {
        options.invalid_move_rule = rule.parse::<InvalidMoveRule>().map_err(input)?;
    }
    if let Some(turns) = max_turns {
        options.max_turns = Some(turns);
    }
    if let Some(view) = view {
        options.view = view.parse().map_err(input)?;
    }
    let env: Result<Box<dyn Env>> = spar_games::with_game!(&game, |g| boxed_env(g, options));
    let env = env?;
    Ok(TextEnv {
        env: Mutex::new(env),
        is_task: false,
        // A game environment is reset with seed 0 when built (`TextGame::new`).
        started: Mutex::new(true),
    })
}

/// `game` as a text environment with `options`, boxed.
fn boxed_env<G: TextView>(game: G, options: TextOptions) -> Result<Box<dyn Env>>
where
    TextGame<G, G::Text>: Env + 'static,
{
    Ok(Box::new(spar_games::text::text_env(game, options)))
}

/// The names of the registered games.
#[pyfunction]
pub fn games() -> Vec<String> {
    spar_games::registry::GAMES
        .iter()
        .map(|e| e.name.to_string())
        .collect()
}
