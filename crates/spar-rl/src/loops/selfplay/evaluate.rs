//! Self-play's evaluation: exact exploitability of the model's policy, returns against the
//! evaluation opponents per seat, and the exploitability of the run's average policy.

use std::collections::BTreeMap;
use std::path::Path;

use spar_core::{seeds, Game, GameText, TabularPolicy, TextGame};
use spar_eval::{CfrSolver, CfrVariant};
use spar_lm::sample::SamplingParams;

use super::metrics::Evaluation;
use super::{policy_options, sampling};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::players::lm_policy::tabulate;
use crate::rollout::prompt::PromptStyle;
use crate::rollout::{episodes, Decode, PolicySeat, Rollout, Seat};
use crate::trainer::{complete_checkpoints, Learner};

/// The exploitability of the reach-weighted average of the policies of the run's checkpoints
/// after step 0 and of the current model; the average is saved as `file` in the run directory
/// (`average_policy.json`; `average_policy-GAME.json` in a multi-game run).
pub(super) fn average_exploitability<G: Game, T: GameText<G::State>>(
    make_env: &dyn Fn() -> TextGame<G, T>,
    learner: &Learner,
    config: &TrainConfig,
    style: PromptStyle,
    out: &Path,
    file: &str,
) -> Result<Option<f64>> {
    let env = make_env();
    let Ok(tree) = spar_eval::GameTree::build(env.game()) else {
        return Ok(None);
    };
    let options = policy_options(config, style);
    let mut policies = Vec::new();
    for (_, dir) in complete_checkpoints(out)
        .iter()
        .filter(|(step, _)| *step > 0)
    {
        let model = learner.load_frozen(dir)?;
        let table = tabulate(&env, &model, &learner.tokenizer, &options, |_, _| {})?;
        policies.push(tree.tabulate(&table.policy)?);
    }
    let table = tabulate(
        &env,
        &learner.model.detached(),
        &learner.tokenizer,
        &options,
        |_, _| {},
    )?;
    policies.push(tree.tabulate(&table.policy)?);
    let average = tree.average(&policies);
    let nc = spar_eval::best_response::nash_conv_on_tree(&tree, &average);
    spar_eval::policy_file::save(
        &out.join(file),
        &tree.to_tabular(&average),
        env.game().info(),
    )?;
    Ok(Some(nc.exploitability))
}

/// The average policy of `eval.cfr_iterations` of CFR+ (None when not asked for, or when
/// the game's tree is too large to enumerate).
pub(super) fn cfr_opponent<G: Game>(game: &G, config: &TrainConfig) -> Option<TabularPolicy> {
    if config.eval.games_vs_cfr == 0 || config.eval.every == 0 || game.info().num_players != 2 {
        return None;
    }
    let mut solver = CfrSolver::new(game, CfrVariant::CfrPlus).ok()?;
    solver.run(config.eval.cfr_iterations);
    Some(solver.average_policy())
}

/// Exploitability (when the game tree can be enumerated) and mean returns against the random
/// player and the CFR+ policy, per seat.
/// A boxed player.
pub(super) type BoxedPlayer<S> = Box<dyn spar_core::Policy<S>>;

/// A player and the name it was given.
pub(super) type NamedPlayer<S> = (String, BoxedPlayer<S>);

/// One evaluation of the model on one game at step `step`, into `e`: on games spar can
/// enumerate, the exact exploitability of the model's policy and its exact expected return
/// per seat against the uniform random player and the CFR+ policy; sampled games against each
/// evaluation opponent, every deal played in each seat, fresh deals at every evaluation step,
/// with 95% intervals.
#[allow(clippy::too_many_arguments)]
pub(super) fn evaluate<G: Game, T: GameText<G::State>>(
    make_env: &dyn Fn() -> TextGame<G, T>,
    learner: &Learner,
    config: &TrainConfig,
    style: PromptStyle,
    cfr: Option<&TabularPolicy>,
    opponents: &[NamedPlayer<G::State>],
    salt: u64,
    exact: bool,
    step: usize,
    e: &mut Evaluation,
) -> Result<()> {
    let env = make_env();
    if exact && config.eval.exploitability && env.game().info().num_players == 2 {
        let options = policy_options(config, style);
        match tabulate(
            &env,
            &learner.model.detached(),
            &learner.tokenizer,
            &options,
            |_, _| {},
        ) {
            Ok(table) => {
                let game = env.game();
                if let Ok(nc) = spar_eval::nash_conv(game, &table.policy) {
                    e.nash_conv = Some(nc.nash_conv);
                    e.exploitability = Some(nc.exploitability);
                }
                e.outside_mass = Some(table.mean_outside_mass());
                let uniform = spar_core::UniformRandom;
                e.exact_vs_random = spar_eval::returns_by_seat(game, &table.policy, &uniform).ok();
                if let Some(policy) = cfr {
                    e.exact_vs_cfr = spar_eval::returns_by_seat(game, &table.policy, policy).ok();
                }
            }
            Err(Error::Eval(_)) => {} // tree too large to enumerate: no exact value
            Err(err) => return Err(err),
        }
    }
    let params = sampling(config);
    let decode: Decode = config.rollout.policy;
    let run_seed = config.run.seed;
    let games = |salt2: u64| seeds::evaluation_games(run_seed, salt2 ^ salt, step as u64);
    if config.eval.games_vs_random > 0 {
        let r = vs_opponent(
            make_env,
            learner,
            style,
            Seat::Random,
            config.eval.games_vs_random,
            &params,
            decode,
            games(0xe7a1_0000),
        )?;
        e.vs_random = Some(r.means);
        e.vs_random_ci95 = Some(r.ci95);
        e.invalid_vs_random = Some(r.invalid);
    }
    if let (Some(policy), true) = (cfr, config.eval.games_vs_cfr > 0) {
        let r = vs_opponent(
            make_env,
            learner,
            style,
            Seat::Scripted(&PolicySeat(policy)),
            config.eval.games_vs_cfr,
            &params,
            decode,
            games(0xcf2_0000),
        )?;
        e.vs_cfr = Some(r.means);
        e.vs_cfr_ci95 = Some(r.ci95);
        e.win_rate_vs_cfr = Some(r.win_rates);
    }
    if config.eval.games_vs_opponents > 0 && !opponents.is_empty() {
        let (mut returns, mut win_rates) = (BTreeMap::new(), BTreeMap::new());
        for (i, (name, policy)) in opponents.iter().enumerate() {
            let r = vs_opponent(
                make_env,
                learner,
                style,
                Seat::Scripted(&PolicySeat(policy.as_ref())),
                config.eval.games_vs_opponents,
                &params,
                decode,
                games(0x0990_0000 ^ ((i as u64) << 40)),
            )?;
            returns.insert(name.clone(), r.means);
            win_rates.insert(name.clone(), r.win_rates);
        }
        e.vs_players = Some(returns);
        e.win_rate_vs_players = Some(win_rates);
    }
    Ok(())
}

/// The model's sampled games against one opponent.
pub(super) struct VsOpponent {
    /// Mean return per model seat.
    pub(super) means: Vec<f64>,
    /// Half-width of the 95% normal interval of each mean.
    pub(super) ci95: Vec<f64>,
    /// Win rate (return > 0) per model seat.
    pub(super) win_rates: Vec<f64>,
    /// Fraction of the model's turns that named no legal action.
    pub(super) invalid: f64,
}

/// The model in each seat in turn against `opponent` in the others, `games` games per seat
/// on the same deals (game `g` of every seat is reset with `seed + g`, so the seats are
/// compared on common deals).
#[allow(clippy::too_many_arguments)]
pub(super) fn vs_opponent<G: Game, T: GameText<G::State>>(
    make_env: &dyn Fn() -> TextGame<G, T>,
    learner: &Learner,
    style: PromptStyle,
    opponent: Seat<TextGame<G, T>>,
    games: usize,
    params: &SamplingParams,
    decode: Decode,
    seed: u64,
) -> Result<VsOpponent> {
    let n = make_env().game().info().num_players;
    let mut r = VsOpponent {
        means: Vec::with_capacity(n),
        ci95: Vec::with_capacity(n),
        win_rates: Vec::with_capacity(n),
        invalid: 0.0,
    };
    let (mut turns, mut invalid) = (0usize, 0usize);
    let inference = learner.model.detached();
    let engine = spar_lm::LocalEngine {
        model: &inference,
        tokenizer: &learner.tokenizer,
    };
    let rollout = Rollout {
        decode,
        ..Rollout::new(&engine, &learner.tokenizer, style, params)
    };
    for seat in 0..n {
        let seats: Vec<Seat<TextGame<G, T>>> = (0..n)
            .map(|p| if p == seat { Seat::Model } else { opponent })
            .collect();
        let batch = rollout.play(&mut episodes(make_env, games, seed), &seats, seed)?;
        let returns: Vec<f64> = batch.returns.iter().map(|r| r[seat]).collect();
        let (mean, interval) = spar_eval::tournament::mean_interval(&returns);
        r.means.push(mean);
        r.ci95
            .push(interval.map_or(f64::NAN, |i| (i.high - i.low) / 2.0));
        let count = returns.len().max(1) as f64;
        r.win_rates
            .push(returns.iter().filter(|&&v| v > 0.0).count() as f64 / count);
        turns += batch.turns.len();
        invalid += batch.turns.iter().filter(|t| t.invalid).count();
    }
    r.invalid = invalid as f64 / turns.max(1) as f64;
    Ok(r)
}
