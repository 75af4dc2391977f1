//! Self-play's evaluation: exact exploitability of the model's policy, returns against the
//! evaluation opponents per seat, and the exploitability of the run's average policy.

use std::collections::BTreeMap;
use std::path::Path;

use spar_core::{Game, GameText, TabularPolicy, TextGame};
use spar_eval::{CfrSolver, CfrVariant};
use spar_lm::sample::SamplingParams;

use super::metrics::GameMetrics;
use super::{policy_options, sampling};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::players::lm_policy::tabulate;
use crate::rollout::prompt::PromptStyle;
use crate::rollout::{play_batch, Decode, Seat};
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
    m: &mut GameMetrics,
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
                if let Ok(nc) = spar_eval::nash_conv(env.game(), &table.policy) {
                    m.nash_conv = Some(nc.nash_conv);
                    m.exploitability = Some(nc.exploitability);
                }
                m.outside_mass = Some(table.mean_outside_mass());
            }
            Err(Error::Eval(_)) => {} // tree too large to enumerate: no exact value
            Err(e) => return Err(e),
        }
    }
    let params = sampling(config);
    let decode: Decode = config.rollout.policy;
    if config.eval.games_vs_random > 0 {
        let (means, _, invalid) = vs_opponent(
            make_env,
            learner,
            style,
            Seat::Random,
            config.eval.games_vs_random,
            &params,
            decode,
            config.run.seed ^ 0xe7a1_0000 ^ salt,
        )?;
        m.vs_random = Some(means);
        m.invalid_vs_random = Some(invalid);
    }
    if let (Some(policy), true) = (cfr, config.eval.games_vs_cfr > 0) {
        let (means, wins, _) = vs_opponent(
            make_env,
            learner,
            style,
            Seat::Policy(policy),
            config.eval.games_vs_cfr,
            &params,
            decode,
            config.run.seed ^ 0xcf2_0000 ^ salt,
        )?;
        m.vs_cfr = Some(means);
        m.win_rate_vs_cfr = Some(wins);
    }
    if config.eval.games_vs_opponents > 0 && !opponents.is_empty() {
        let (mut returns, mut win_rates) = (BTreeMap::new(), BTreeMap::new());
        for (i, (name, policy)) in opponents.iter().enumerate() {
            let (means, wins, _) = vs_opponent(
                make_env,
                learner,
                style,
                Seat::Policy(policy.as_ref()),
                config.eval.games_vs_opponents,
                &params,
                decode,
                config.run.seed ^ 0x0990_0000 ^ ((i as u64) << 40) ^ salt,
            )?;
            returns.insert(name.clone(), means);
            win_rates.insert(name.clone(), wins);
        }
        m.vs_players = Some(returns);
        m.win_rate_vs_players = Some(win_rates);
    }
    Ok(())
}

/// The model in each seat in turn against `opponent` in the others: mean return and win rate
/// (return > 0) per model seat, and the fraction of the model's turns that were invalid.
#[allow(clippy::too_many_arguments)]
pub(super) fn vs_opponent<G: Game, T: GameText<G::State>>(
    make_env: &dyn Fn() -> TextGame<G, T>,
    learner: &Learner,
    style: PromptStyle,
    opponent: Seat<G::State>,
    games: usize,
    params: &SamplingParams,
    decode: Decode,
    seed: u64,
) -> Result<(Vec<f64>, Vec<f64>, f64)> {
    let n = make_env().game().info().num_players;
    let (mut means, mut wins) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut turns, mut invalid) = (0usize, 0usize);
    for seat in 0..n {
        let seats: Vec<Seat<G::State>> = (0..n)
            .map(|p| if p == seat { Seat::Model } else { opponent })
            .collect();
        let batch = play_batch(
            make_env,
            &spar_lm::LocalEngine {
                model: &learner.model.detached(),
                tokenizer: &learner.tokenizer,
            },
            &learner.tokenizer,
            style,
            &seats,
            games,
            params,
            decode,
            seed ^ seat as u64,
        )?;
        let count = batch.returns.len().max(1) as f64;
        means.push(batch.returns.iter().map(|r| r[seat]).sum::<f64>() / count);
        wins.push(batch.returns.iter().filter(|r| r[seat] > 0.0).count() as f64 / count);
        turns += batch.turns.len();
        invalid += batch.turns.iter().filter(|t| t.invalid).count();
    }
    Ok((means, wins, invalid as f64 / turns.max(1) as f64))
}
