//! Built-in players, named on the command line.
//!
//! | name | player |
//! |---|---|
//! | `random`, `uniform` | every legal action with equal probability |
//! | `minimax` | full-depth minimax (perfect-information games without chance) |
//! | `alphabeta[:DEPTH]` | depth-limited alpha-beta (default depth 4) with the game's heuristic |
//! | `tabular:FILE`, `cfr:FILE` | a tabular policy file (e.g. written by `spar solve --out`) |
//! | `cfr+[:ITERATIONS]` | the average policy of CFR+ run now (default 1,000 iterations; games whose tree spar can enumerate) |

use std::path::Path;

use anyhow::Context as _;
use spar_core::{Action, Game, Policy, UniformRandom};
use spar_eval::{AlphaBeta, Minimax};
use spar_games::heuristic::Heuristic;

use crate::UsageError;

/// The accepted player names, for error messages and help.
pub const PLAYERS: &str =
    "random, uniform, minimax, alphabeta[:DEPTH], tabular:FILE, cfr:FILE, cfr+[:ITERATIONS]";

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
