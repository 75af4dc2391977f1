//! Players named by a string, for tournaments, evaluation opponents and training opponents
//! (`spar tournament --players`, `spar eval --vs`, `rollout.opponent`, `eval.opponents`).
//!
//! | name | player |
//! |---|---|
//! | `random`, `uniform` | every legal action with equal probability |
//! | `minimax` | full-depth minimax (perfect-information games without chance) |
//! | `alphabeta[:DEPTH]` | depth-limited alpha-beta (default depth 4) with the game's heuristic |
//! | `tabular:FILE`, `cfr:FILE` | a tabular policy file (e.g. written by `spar solve --out`) |
//! | `cfr+[:ITERATIONS]` | the average policy of CFR+ run now (default 1,000 iterations; games whose tree spar can enumerate) |
//! | `model:PATH` | a language model in this process: a checkpoint directory or a `.gguf` file |
//! | `remote:URL[#NAME]` | a model behind an OpenAI-compatible server, e.g. `remote:http://127.0.0.1:8000/v1#smollm2` (`NAME` defaults to the server's first model) |
//!
//! Any of them may be written `ALIAS=SPEC` to be shown as `ALIAS` in tables.

pub mod lm_player;
pub mod lm_policy;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spar_core::text::protocol_by_name;
use spar_core::{Action, Game, Policy, TextGame, TextOptions, UniformRandom};
use spar_eval::{AlphaBeta, Minimax};
use spar_games::heuristic::Heuristic;
use spar_games::text::TextView;
use spar_lm::sample::SamplingParams;

use crate::error::{Error, Result};
use crate::players::lm_player::{
    Answerer, Counter, LmPlayer, LocalAnswerer, RemoteAnswerer, RemoteApi,
};
use crate::rollout::prompt::{PromptStyle, Prompting};
use crate::rollout::Decode;

/// The accepted player names, for error messages and help.
pub const PLAYERS: &str = "random, uniform, minimax, alphabeta[:DEPTH], tabular:FILE, cfr:FILE, \
     cfr+[:ITERATIONS], model:PATH, remote:URL[#NAME]";

/// How a language model is prompted, each field overriding the checkpoint's `prompting.json`
/// (written by `spar train`); `None` takes it from there, then from the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptFlags {
    /// Sampling temperature [default: 1.0].
    pub temperature: Option<f64>,
    /// Answer protocol: boxed, bracketed, bare [default: boxed].
    pub protocol: Option<String>,
    /// auto, chat or raw [default: auto].
    pub prompt_style: Option<String>,
    /// full, norules or compact [default: full].
    pub view: Option<String>,
}

/// How a language model is prompted, resolved: flags, then `prompting.json`, then defaults.
#[derive(Debug, Clone)]
pub struct ModelPrompting {
    /// The checkpoint's `prompting.json`, when it has one.
    pub saved: Option<Prompting>,
    /// Sampling temperature.
    pub temperature: f64,
    /// Protocol name.
    pub protocol: String,
    /// Prompt style name.
    pub prompt_style: String,
    /// The parsed prompt style.
    pub style: PromptStyle,
    /// The observation view.
    pub view: spar_core::View,
}

impl ModelPrompting {
    /// Resolves the prompting of the model at `path` (a path without `prompting.json`, e.g.
    /// a remote model's empty path, takes the flags and defaults).
    pub fn resolve(path: &Path, flags: &PromptFlags) -> Result<ModelPrompting> {
        let saved = Prompting::load(path).map_err(|e| {
            Error::Invalid(format!(
                "{e}; pass --temperature, --protocol, --prompt-style and --view instead, or \
                 remove it"
            ))
        })?;
        let temperature = flags
            .temperature
            .or(saved.as_ref().map(|s| s.temperature))
            .unwrap_or(1.0);
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(Error::Invalid(format!(
                "the temperature (--temperature, or `temperature` in a config) must be positive, \
                 got {temperature}"
            )));
        }
        let protocol = flags
            .protocol
            .clone()
            .or(saved.as_ref().map(|s| s.protocol.clone()))
            .unwrap_or_else(|| "boxed".into());
        let prompt_style = flags
            .prompt_style
            .clone()
            .or(saved.as_ref().map(|s| s.prompt_style.clone()))
            .unwrap_or_else(|| "auto".into());
        let style: PromptStyle = prompt_style.parse()?;
        let view: spar_core::View = flags
            .view
            .clone()
            .or(saved.as_ref().map(|s| s.view.clone()))
            .unwrap_or_else(|| "full".into())
            .parse()
            .map_err(Error::Invalid)?;
        let p = ModelPrompting {
            saved,
            temperature,
            protocol,
            prompt_style,
            style,
            view,
        };
        p.protocol_box()?;
        Ok(p)
    }

    /// The protocol object.
    pub fn protocol_box(&self) -> Result<Box<dyn spar_core::text::Protocol>> {
        protocol_by_name(&self.protocol).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown protocol {:?}; accepted: boxed, bracketed, bare",
                self.protocol
            ))
        })
    }

    /// `game` as the text environment the model plays in: its protocol and view.
    pub fn text_env<G: TextView + Clone>(&self, game: &G) -> Result<TextGame<G, G::Text>> {
        Ok(TextGame::new(
            game.clone(),
            game.text_view(),
            TextOptions {
                protocol: self.protocol_box()?,
                view: self.view,
                ..TextOptions::default()
            },
        ))
    }

    /// The model's exact policy on `game`, tabulated as training tabulates it
    /// ([`lm_policy::tabulate`] on [`ModelPrompting::text_env`], at this temperature and prompt
    /// style): at every information set, the normalised probabilities of the legal actions'
    /// canonical answers (`spar exploitability --policy model:DIR`, `spar eval`, the Python
    /// package's `spar.model_policy`). `on_progress(done, total)` counts scored answers.
    pub fn tabulate<G: TextView + Clone>(
        &self,
        game: &G,
        model: &spar_lm::Llama,
        tokenizer: &spar_lm::tokenizer::TextTokenizer,
        on_progress: impl FnMut(usize, usize),
    ) -> Result<lm_policy::LmPolicyTable> {
        let options = lm_policy::LmPolicyOptions {
            temperature: self.temperature,
            style: self.style,
            ..lm_policy::LmPolicyOptions::default()
        };
        lm_policy::tabulate(
            &self.text_env(game)?,
            model,
            tokenizer,
            &options,
            on_progress,
        )
    }
}

/// Settings of language-model players (`model:`, `remote:`).
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerOptions {
    /// Prompting (flags over `prompting.json`).
    pub prompt: PromptFlags,
    /// Most tokens per answer [default: prompting.json, else 64].
    pub max_tokens: Option<usize>,
    /// `model:` players: `sample` or `legal` [default: prompting.json, else sample].
    pub policy: Option<String>,
    /// Seconds before a remote call times out (it is then retried).
    pub remote_timeout: f64,
    /// Retries of a failed remote call before the player forfeits.
    pub remote_retries: u32,
}

impl Default for PlayerOptions {
    fn default() -> Self {
        PlayerOptions {
            prompt: PromptFlags::default(),
            max_tokens: None,
            policy: None,
            remote_timeout: 120.0,
            remote_retries: 4,
        }
    }
}

/// The language-model players built so far, with their live counts.
pub type LmCounters = Vec<(String, Arc<Counter>)>;

/// Builds any player, language models included: `model:PATH` and `remote:URL[#NAME]` become
/// [`LmPlayer`]s seeing `game`'s text view (their counts are pushed to `counters`); other
/// names go to [`make_player`]. `seed` seeds the language models' sampling.
pub fn make_any_player<G: Game + Heuristic + TextView + Clone + 'static>(
    game: &G,
    spec: &str,
    options: &PlayerOptions,
    seed: u64,
    counters: &mut LmCounters,
) -> Result<Box<dyn Policy<G::State>>> {
    // `NAME=SPEC` shows the player under NAME (`step-25=model:runs/x/checkpoints/step-000025`).
    if let Some((alias, inner)) = spec.split_once('=') {
        if !alias.is_empty() && !alias.contains(':') && !inner.is_empty() {
            let player = make_any_player(game, inner, options, seed, counters)?;
            if let Some(last) = counters.last_mut() {
                if last.0 == inner {
                    last.0 = alias.to_string();
                }
            }
            return Ok(Box::new(Named {
                name: alias.to_string(),
                inner: player,
            }));
        }
    }
    let (kind, argument) = spec.split_once(':').unwrap_or((spec, ""));
    if kind != "model" && kind != "remote" {
        return make_player(game, spec);
    }
    if argument.is_empty() {
        return Err(Error::Invalid(format!(
            "player {spec:?} names no model; write model:PATH or remote:URL[#NAME]"
        )));
    }
    let (prompting, default_tokens, default_policy) = if kind == "model" {
        let p = ModelPrompting::resolve(Path::new(argument), &options.prompt)?;
        let tokens = p.saved.as_ref().map(|s| s.max_tokens).unwrap_or(64);
        let policy = p.saved.as_ref().map(|s| s.policy.clone());
        (p, tokens, policy)
    } else {
        // A remote model has no prompting.json here: flags or defaults.
        (
            ModelPrompting::resolve(Path::new(""), &options.prompt)?,
            64,
            None,
        )
    };
    let max_tokens = options.max_tokens.unwrap_or(default_tokens);
    let decode: Decode = options
        .policy
        .clone()
        .or(default_policy)
        .unwrap_or_else(|| "sample".into())
        .parse()?;
    let params = SamplingParams {
        temperature: prompting.temperature,
        max_tokens,
        ..SamplingParams::default()
    };
    let env = prompting.text_env(game)?;
    let answerer: Box<dyn Answerer> = if kind == "model" {
        let device = spar_lm::device::default_device();
        let loaded = spar_lm::load::load_model(
            Path::new(argument),
            spar_lm::load::GgufMode::Quantized,
            &device,
        )
        .map_err(|e| Error::Invalid(format!("loading the model of player {spec:?}: {e}")))?;
        Box::new(LocalAnswerer {
            model: loaded.model,
            tokenizer: loaded.tokenizer,
            style: prompting.style,
            params,
        })
    } else {
        if decode == Decode::Legal {
            return Err(Error::Invalid(format!(
                "player {spec:?}: the legal policy needs the model's own scores; remote \
                 players sample (policy sample)"
            )));
        }
        let (url, name) = match argument.rsplit_once('#') {
            Some((url, name)) => (url, name.to_string()),
            None => (argument, String::new()),
        };
        let mut config = spar_remote::ClientConfig::new(url);
        config.timeout = Duration::from_secs_f64(options.remote_timeout.max(0.001));
        config.max_retries = options.remote_retries;
        let client = spar_remote::Client::new(config)
            .map_err(|e| Error::Invalid(format!("player {spec:?}: {e}")))?;
        let name = if name.is_empty() {
            let models = client.models()?;
            models
                .data
                .first()
                .map(|m| m.id.clone())
                .ok_or_else(|| Error::Invalid(format!("the server at {url} lists no model")))?
        } else {
            name
        };
        let api = match prompting.style {
            PromptStyle::Raw => RemoteApi::Completions,
            PromptStyle::Auto | PromptStyle::Chat | PromptStyle::Template => RemoteApi::Chat,
        };
        Box::new(RemoteAnswerer {
            client,
            model: name,
            api,
            params,
        })
    };
    let player = LmPlayer::new(spec, env, answerer, decode, seed);
    counters.push((spec.to_string(), player.counter()));
    Ok(Box::new(player))
}

/// Default alpha-beta depth in plies.
const DEFAULT_DEPTH: usize = 4;

/// A policy shown under the name the user gave it.
struct Named<S> {
    name: String,
    inner: Box<dyn Policy<S>>,
}

impl<S: spar_core::State> Policy<S> for Named<S> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn action_probabilities(&self, state: &S) -> Vec<(Action, f64)> {
        self.inner.action_probabilities(state)
    }
}

/// Builds the player named `spec` for `game`.
pub fn make_player<G: Game + Heuristic>(game: &G, spec: &str) -> Result<Box<dyn Policy<G::State>>> {
    let info = game.info();
    let (kind, argument) = match spec.split_once(':') {
        Some((kind, argument)) => (kind, Some(argument)),
        None => (spec, None),
    };
    let inner: Box<dyn Policy<G::State>> = match (kind, argument) {
        ("random" | "uniform", None) => Box::new(UniformRandom),
        ("minimax", None) => {
            let minimax = Minimax::new(info)
                .map_err(|e| Error::Invalid(format!("player {spec:?} on {}: {e}", info.spec)))?;
            // Full-depth search must fit in memory: refuse games whose tree is too large
            // (Connect Four, default Negotiation) instead of searching forever.
            if let Err(error) = spar_eval::GameTree::build(game) {
                return Err(Error::Invalid(format!(
                    "player \"minimax\" searches the whole game tree, which {} cannot offer \
                     ({error}); use alphabeta[:DEPTH]",
                    info.spec
                )));
            }
            Box::new(minimax)
        }
        ("alphabeta", depth) => {
            let depth = match depth {
                None => DEFAULT_DEPTH,
                Some(text) => text.parse().map_err(|_| {
                    Error::Invalid(format!(
                        "player {spec:?}: the alpha-beta depth {text:?} is not a positive integer"
                    ))
                })?,
            };
            Box::new(
                AlphaBeta::new(info, depth, game.heuristic()).map_err(|e| {
                    Error::Invalid(format!("player {spec:?} on {}: {e}", info.spec))
                })?,
            )
        }
        ("cfr+", iterations) => {
            let iterations = match iterations {
                None => 1000,
                Some(text) => text.parse().map_err(|_| {
                    Error::Invalid(format!(
                        "player {spec:?}: the CFR+ iteration count {text:?} is not a positive integer"
                    ))
                })?,
            };
            let mut solver = spar_eval::CfrSolver::new(game, spar_eval::CfrVariant::CfrPlus)
                .map_err(|error| {
                    Error::Invalid(format!(
                        "player {spec:?} solves the whole game tree, which {} cannot offer ({error})",
                        info.spec
                    ))
                })?;
            solver.run(iterations);
            Box::new(solver.average_policy())
        }
        ("tabular" | "cfr", Some(path)) if !path.is_empty() => Box::new(
            spar_eval::policy_file::load(Path::new(path), game).map_err(|e| {
                Error::Invalid(format!("loading the policy of player {spec:?}: {e}"))
            })?,
        ),
        _ => {
            return Err(Error::Invalid(format!(
                "unknown player {spec:?}; accepted: {PLAYERS}"
            )))
        }
    };
    Ok(Box::new(Named {
        name: spec.to_string(),
        inner,
    }))
}
