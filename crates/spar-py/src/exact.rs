//! Exact evaluation for Python: the functions `spar exploitability` and `spar solve` run
//! (`crates/spar-cli/src/evaluate.rs`), on policies that arrive as policy-file JSON
//! (`docs/policy-format.md`). The Python side turns a dict, a callable or a `pyspiel`
//! policy into that JSON; here it is parsed and checked against the game tree exactly as a
//! policy file is (`spar_eval::policy_file::parse` and `check_against_tree`), so a policy
//! that the CLI rejects is rejected with the same message, and one it accepts gets the same
//! numbers.

use std::path::Path;

use pyo3::prelude::*;
use serde::Serialize;
use spar_core::{Game, GameSpec, Player, State, TabularPolicy};
use spar_eval::{policy_file, CfrSolver, CfrVariant, GameTree};

use crate::error::{input, Failure, Result};

/// The name a Python policy goes by in error messages (where the CLI names the file).
const POLICY_NAME: &str = "policy";

/// The JSON of `spar exploitability --json`'s numbers for `policy_json` (`None`: uniform).
#[derive(Serialize)]
struct NashConvReport {
    game: String,
    nash_conv: f64,
    exploitability: f64,
    best_response_values: Vec<f64>,
    on_policy_values: Vec<f64>,
}

/// Reads `text` as a policy for the game of `tree`: `None` is the uniform policy (an empty
/// table: every information state missing from a table is played uniformly).
fn policy_on_tree<S: State>(tree: &GameTree<S>, text: Option<&str>) -> Result<TabularPolicy> {
    let Some(text) = text else {
        return Ok(TabularPolicy::default());
    };
    let path = Path::new(POLICY_NAME);
    let policy = policy_file::parse(text, path, tree.info())?;
    policy_file::check_against_tree(path, &policy, tree)?;
    Ok(policy)
}

fn parse_spec(game: &str) -> Result<GameSpec> {
    Ok(GameSpec::parse(game)?)
}

/// NashConv, exploitability and their parts for the policy (JSON), as `spar exploitability
/// --game GAME --policy FILE --json` reports them.
#[pyfunction]
#[pyo3(signature = (game, policy_json=None))]
pub fn nash_conv(py: Python<'_>, game: &str, policy_json: Option<&str>) -> PyResult<String> {
    let spec = parse_spec(game)?;
    let report = py.detach(|| spar_games::with_game!(&spec, |g| nash_conv_of(&g, policy_json)))?;
    Ok(serde_json::to_string(&report).map_err(Failure::from)?)
}

fn nash_conv_of<G: Game>(game: &G, policy_json: Option<&str>) -> Result<NashConvReport> {
    let tree = GameTree::build(game)?;
    let policy = policy_on_tree(&tree, policy_json)?;
    let result = spar_eval::nash_conv(game, &policy)?;
    Ok(NashConvReport {
        game: game.info().spec.clone(),
        nash_conv: result.nash_conv,
        exploitability: result.exploitability,
        best_response_values: result.best_response_values,
        on_policy_values: result.on_policy_values,
    })
}

/// The best response of `player` to the policy (JSON) played by every other player: its
/// value and its deterministic policy table (`spar_eval::best_response`).
#[pyfunction]
#[pyo3(signature = (game, player, policy_json=None))]
pub fn best_response(
    py: Python<'_>,
    game: &str,
    player: Player,
    policy_json: Option<&str>,
) -> PyResult<String> {
    let spec = parse_spec(game)?;
    let text =
        py.detach(|| spar_games::with_game!(&spec, |g| best_response_of(&g, player, policy_json)))?;
    Ok(text)
}

fn best_response_of<G: Game>(
    game: &G,
    player: Player,
    policy_json: Option<&str>,
) -> Result<String> {
    let players = game.info().num_players;
    if player >= players {
        return Err(input(format!(
            "player {player} does not exist: {} has {players} players",
            game.info().spec
        )));
    }
    let tree = GameTree::build(game)?;
    let policy = policy_on_tree(&tree, policy_json)?;
    let response = spar_eval::best_response(game, &policy, player)?;
    Ok(serde_json::to_string(&response)?)
}

/// Each player's exact expected return when player `p` follows `policies_json[p]` (`None`:
/// uniform), chance weighted exactly (`spar_eval::profile_returns`).
#[pyfunction]
pub fn policy_returns(
    py: Python<'_>,
    game: &str,
    policies_json: Vec<Option<String>>,
) -> PyResult<Vec<f64>> {
    let spec = parse_spec(game)?;
    let returns =
        py.detach(|| spar_games::with_game!(&spec, |g| returns_of(&g, &policies_json)))?;
    Ok(returns)
}

fn returns_of<G: Game>(game: &G, policies_json: &[Option<String>]) -> Result<Vec<f64>> {
    let tree = GameTree::build(game)?;
    let policies = policies_json
        .iter()
        .map(|text| policy_on_tree(&tree, text.as_deref()))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&dyn spar_core::Policy<G::State>> = policies
        .iter()
        .map(|p| p as &dyn spar_core::Policy<G::State>)
        .collect();
    Ok(spar_eval::profile_returns_on_tree(&tree, &refs)?)
}

/// One decision point of a game as Python policies see it.
#[derive(Serialize)]
struct InfoStateView<'a> {
    /// The information-state string (the key of policy tables; OpenSpiel's for Kuhn and
    /// Leduc).
    key: &'a str,
    player: Player,
    legal_actions: &'a [usize],
}

/// Every information set of the game (JSON list of key, player and legal actions), in the
/// tree's depth-first order: what a Python callable policy is asked about.
#[pyfunction]
pub fn info_states(py: Python<'_>, game: &str) -> PyResult<String> {
    let spec = parse_spec(game)?;
    let text = py.detach(|| spar_games::with_game!(&spec, |g| info_states_of(&g)))?;
    Ok(text)
}

fn info_states_of<G: Game>(game: &G) -> Result<String> {
    let tree = GameTree::build(game)?;
    let sets: Vec<InfoStateView<'_>> = tree
        .info_sets()
        .iter()
        .map(|set| InfoStateView {
            key: &set.key,
            player: set.player,
            legal_actions: &set.legal_actions,
        })
        .collect();
    Ok(serde_json::to_string(&sets)?)
}

/// One measurement of a solve.
#[derive(Serialize)]
struct TracePoint {
    iteration: usize,
    nash_conv: f64,
    exploitability: f64,
}

/// What `solve` returns (JSON): `spar solve --json`'s numbers and the average policy.
#[derive(Serialize)]
struct SolveReport {
    game: String,
    algo: CfrVariant,
    iterations: usize,
    nash_conv: f64,
    exploitability: f64,
    trace: Vec<TracePoint>,
    policy: TabularPolicy,
}

/// CFR, CFR+ or simultaneous CFR for `iterations` iterations (`spar solve`): the average
/// policy's NashConv every `report_every` iterations and at the end, and the average policy.
#[pyfunction]
#[pyo3(signature = (game, algo="cfr+", iterations=1000, report_every=0))]
pub fn solve(
    py: Python<'_>,
    game: &str,
    algo: &str,
    iterations: usize,
    report_every: usize,
) -> PyResult<String> {
    let spec = parse_spec(game)?;
    let variant = match algo {
        "cfr" => CfrVariant::Cfr,
        "cfr+" => CfrVariant::CfrPlus,
        "simultaneous" => CfrVariant::Simultaneous,
        other => {
            return Err(input(format!(
                "unknown algo {other:?}; accepted: cfr, cfr+, simultaneous"
            ))
            .into())
        }
    };
    let text = py.detach(|| {
        spar_games::with_game!(&spec, |g| solve_game(&g, variant, iterations, report_every))
    })?;
    Ok(text)
}

fn solve_game<G: Game>(
    game: &G,
    variant: CfrVariant,
    iterations: usize,
    report_every: usize,
) -> Result<String> {
    let mut solver = CfrSolver::new(game, variant)?;
    let mut trace = Vec::new();
    for iteration in 1..=iterations {
        solver.iterate();
        if report_every > 0 && iteration % report_every == 0 {
            let result = solver.nash_conv()?;
            trace.push(TracePoint {
                iteration,
                nash_conv: result.nash_conv,
                exploitability: result.exploitability,
            });
        }
    }
    let last = solver.nash_conv()?;
    Ok(serde_json::to_string(&SolveReport {
        game: game.info().spec.clone(),
        algo: variant,
        iterations,
        nash_conv: last.nash_conv,
        exploitability: last.exploitability,
        trace,
        policy: solver.average_policy(),
    })?)
}
