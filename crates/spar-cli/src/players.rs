//! Built-in players, named on the command line.
//!
//! | name | player |
//! |---|---|
//! | `random`, `uniform` | every legal action with equal probability |
//! | `minimax` | full-depth minimax (perfect-information games without chance) |
//! | `alphabeta[:DEPTH]` | depth-limited alpha-beta (default depth 4) with the game's heuristic |
//! | `tabular:FILE`, `cfr:FILE` | a tabular policy file (e.g. written by `spar solve --out`) |
//! | `cfr+[:ITERATIONS]` | the average policy of CFR+ run now (default 1,000 iterations; games whose tree spar can enumerate) |
//! | `model:PATH` | a language model in this process: a checkpoint directory or a `.gguf` file ([`make_any_player`]) |
//! | `remote:URL[#NAME]` | a model behind an OpenAI-compatible server, e.g. `remote:http://127.0.0.1:8000/v1#smollm2` (`NAME` defaults to the server's first model) |

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use spar_core::{Action, Game, Policy, TextGame, TextOptions, UniformRandom};
use spar_eval::{AlphaBeta, Minimax};
use spar_games::heuristic::Heuristic;
use spar_games::text::TextView;
use spar_lm::sample::SamplingParams;
use spar_rl::lm_player::{Counter, LmPlayer, LocalAnswerer, RemoteAnswerer, RemoteApi};
use spar_rl::rollout::Decode;
use spar_rl::PromptStyle;

use crate::evaluate::{ModelPrompting, PromptArgs};
use crate::UsageError;

/// Options of language-model players (`model:`, `remote:`) on the command line.
#[derive(Debug, clap::Args)]
pub struct LmArgs {
    #[command(flatten)]
    pub prompt: PromptArgs,
    /// Most tokens per answer of a language-model player [default: the checkpoint's
    /// prompting.json, else 64].
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// How `model:` players answer: sample (free text, parsed) or legal (the exact
    /// distribution over the legal actions' canonical answers) [default: prompting.json, else
    /// sample]. `remote:` players always sample.
    #[arg(long)]
    pub policy: Option<String>,
    /// Seconds before a remote call times out (it is then retried).
    #[arg(long, default_value_t = 120.0)]
    pub remote_timeout: f64,
    /// Retries of a failed remote call (timeouts, resets, 429 and 5xx answers) before the
    /// player forfeits the game.
    #[arg(long, default_value_t = 4)]
    pub remote_retries: u32,
}

/// The language-model players of a command, with their counts.
pub type LmCounters = Vec<(String, Arc<Counter>)>;

/// Prints each language-model player's decisions, invalid answers and failed calls to stderr.
pub fn report_counters(counters: &LmCounters) {
    for (name, counter) in counters {
        let c = counter.snapshot();
        eprintln!(
            "{name}: {} decisions, {} invalid answers, {} failed calls (each a forfeit)",
            c.decisions, c.invalid, c.failed
        );
    }
}

/// Builds any player, language models included: `model:PATH` and `remote:URL[#NAME]` become
/// [`LmPlayer`]s seeing `game`'s text view (their counts are pushed to `counters`); other
/// names go to [`make_player`]. `seed` seeds the language models' sampling.
pub fn make_any_player<G: Game + Heuristic + TextView + Clone + 'static>(
    game: &G,
    spec: &str,
    lm: &LmArgs,
    seed: u64,
    counters: &mut LmCounters,
) -> anyhow::Result<Box<dyn Policy<G::State>>> {
    let (kind, argument) = spec.split_once(':').unwrap_or((spec, ""));
    if kind != "model" && kind != "remote" {
        return make_player(game, spec);
    }
    if argument.is_empty() {
        return Err(UsageError(format!(
            "player {spec:?} names no model; write model:PATH or remote:URL[#NAME]"
        ))
        .into());
    }
    let (prompting, default_tokens, default_policy) = if kind == "model" {
        let p = ModelPrompting::resolve(Path::new(argument), &lm.prompt)?;
        let tokens = p.saved.as_ref().map(|s| s.max_tokens).unwrap_or(64);
        let policy = p.saved.as_ref().map(|s| s.policy.clone());
        (p, tokens, policy)
    } else {
        // A remote model has no prompting.json here: flags or defaults.
        (
            ModelPrompting::resolve(Path::new(""), &lm.prompt)?,
            64,
            None,
        )
    };
    let max_tokens = lm.max_tokens.unwrap_or(default_tokens);
    let decode: Decode = lm
        .policy
        .clone()
        .or(default_policy)
        .unwrap_or_else(|| "sample".into())
        .parse()
        .map_err(|e: spar_rl::Error| UsageError(e.to_string()))?;
    let params = SamplingParams {
        temperature: prompting.temperature,
        max_tokens,
        ..SamplingParams::default()
    };
    let env = TextGame::new(
        game.clone(),
        game.text_view(),
        TextOptions {
            protocol: prompting.protocol_box()?,
            view: prompting.view,
            ..TextOptions::default()
        },
    );
    let answerer: Box<dyn spar_rl::lm_player::Answerer> = if kind == "model" {
        crate::lm::set_threads();
        let device = spar_lm::cli::default_device();
        let loaded = spar_lm::cli::load_model(
            Path::new(argument),
            spar_lm::cli::GgufMode::Quantized,
            &device,
        )
        .with_context(|| format!("loading the model of player {spec:?}"))?;
        Box::new(LocalAnswerer {
            model: loaded.model,
            tokenizer: loaded.tokenizer,
            style: prompting.style,
            params,
        })
    } else {
        if decode == Decode::Legal {
            return Err(UsageError(format!(
                "player {spec:?}: --policy legal needs the model's own scores; remote players \
                 sample (use --policy sample)"
            ))
            .into());
        }
        let (url, name) = match argument.rsplit_once('#') {
            Some((url, name)) => (url, name.to_string()),
            None => (argument, String::new()),
        };
        let mut config = spar_remote::ClientConfig::new(url);
        config.timeout = Duration::from_secs_f64(lm.remote_timeout.max(0.001));
        config.max_retries = lm.remote_retries;
        let client = spar_remote::Client::new(config)
            .map_err(|e| UsageError(format!("player {spec:?}: {e}")))?;
        let name = if name.is_empty() {
            let models = client
                .models()
                .with_context(|| format!("asking {url} for its models (player {spec:?})"))?;
            models
                .data
                .first()
                .map(|m| m.id.clone())
                .ok_or_else(|| anyhow::anyhow!("the server at {url} lists no model"))?
        } else {
            name
        };
        let api = match prompting.style {
            PromptStyle::Raw => RemoteApi::Completions,
            PromptStyle::Auto | PromptStyle::Chat => RemoteApi::Chat,
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

/// The accepted player names, for error messages and help.
pub const PLAYERS: &str = "random, uniform, minimax, alphabeta[:DEPTH], tabular:FILE, cfr:FILE, \
     cfr+[:ITERATIONS], model:PATH, remote:URL[#NAME]";

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
pub fn make_player<G: Game + Heuristic>(
    game: &G,
    spec: &str,
) -> anyhow::Result<Box<dyn Policy<G::State>>> {
    let info = game.info();
    let (kind, argument) = match spec.split_once(':') {
        Some((kind, argument)) => (kind, Some(argument)),
        None => (spec, None),
    };
    let inner: Box<dyn Policy<G::State>> = match (kind, argument) {
        ("random" | "uniform", None) => Box::new(UniformRandom),
        ("minimax", None) => {
            let minimax =
                Minimax::new(info).with_context(|| format!("player {spec:?} on {}", info.spec))?;
            // Full-depth search must fit in memory: refuse games whose tree is too large
            // (Connect Four, default Negotiation) instead of searching forever.
            if let Err(error) = spar_eval::GameTree::build(game) {
                return Err(UsageError(format!(
                    "player \"minimax\" searches the whole game tree, which {} cannot offer \
                     ({error}); use alphabeta[:DEPTH]",
                    info.spec
                ))
                .into());
            }
            Box::new(minimax)
        }
        ("alphabeta", depth) => {
            let depth = match depth {
                None => DEFAULT_DEPTH,
                Some(text) => text.parse().map_err(|_| {
                    UsageError(format!(
                        "player {spec:?}: the alpha-beta depth {text:?} is not a positive integer"
                    ))
                })?,
            };
            Box::new(
                AlphaBeta::new(info, depth, game.heuristic())
                    .with_context(|| format!("player {spec:?} on {}", info.spec))?,
            )
        }
        ("cfr+", iterations) => {
            let iterations = match iterations {
                None => 1000,
                Some(text) => text.parse().map_err(|_| {
                    UsageError(format!(
                        "player {spec:?}: the CFR+ iteration count {text:?} is not a positive integer"
                    ))
                })?,
            };
            let mut solver = spar_eval::CfrSolver::new(game, spar_eval::CfrVariant::CfrPlus)
                .map_err(|error| {
                    UsageError(format!(
                        "player {spec:?} solves the whole game tree, which {} cannot offer ({error})",
                        info.spec
                    ))
                })?;
            solver.run(iterations);
            Box::new(solver.average_policy())
        }
        ("tabular" | "cfr", Some(path)) if !path.is_empty() => Box::new(
            spar_eval::policy_file::load(Path::new(path), game)
                .with_context(|| format!("loading the policy of player {spec:?}"))?,
        ),
        _ => {
            return Err(UsageError(format!("unknown player {spec:?}; accepted: {PLAYERS}")).into())
        }
    };
    Ok(Box::new(Named {
        name: spec.to_string(),
        inner,
    }))
}
