//! `spar exploitability`, `spar solve` and `spar tournament`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;
use spar_core::{Game, GameSpec, Policy, UniformRandom};
use spar_eval::{policy_file, CfrSolver, CfrVariant, HeadToHead, Record, RoundRobin};
use spar_games::heuristic::Heuristic;
use spar_games::text::TextView;

use crate::players::{ModelPrompting, PromptArgs, PLAYERS};
use crate::report::{print_json, progress};
use crate::UsageError;

/// Arguments of `spar exploitability`.
#[derive(Debug, clap::Args)]
pub struct ExploitabilityArgs {
    /// The game (two-player zero-sum), e.g. `kuhn`, `leduc`.
    #[arg(long, value_parser = crate::choices::game())]
    game: String,
    /// `uniform`, a tabular policy file (see docs/policy-format.md), or `model:PATH` (a
    /// language model: checkpoint directory or .gguf file, evaluated exactly at every
    /// information set).
    #[arg(long)]
    policy: String,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    prompt: PromptArgs,
    /// model: a LoRA adapter directory to apply.
    #[arg(long)]
    lora: Option<PathBuf>,
    /// model: write the model's tabulated policy to this file (docs/policy-format.md).
    #[arg(long)]
    save_policy: Option<PathBuf>,
}

/// What exact evaluation of a language-model policy adds to the report.
#[derive(Debug, Serialize)]
struct ModelPolicyReport {
    temperature: f64,
    protocol: String,
    prompt_style: String,
    view: &'static str,
    information_sets: usize,
    /// Mean over information sets of the probability of answers outside the canonical legal
    /// completions (other wordings, invalid answers).
    outside_mass_mean: f64,
    outside_mass_max: f64,
}

#[derive(Debug, Serialize)]
struct ExploitabilityReport {
    game: String,
    policy: String,
    nash_conv: f64,
    exploitability: f64,
    best_response_values: Vec<f64>,
    on_policy_values: Vec<f64>,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<ModelPolicyReport>,
}

/// Runs `spar exploitability`.
pub fn exploitability(args: &ExploitabilityArgs) -> anyhow::Result<()> {
    let spec = GameSpec::parse(&args.game)?;
    let report = spar_games::with_game!(&spec, |game| exploitability_of(&game, args))?;
    if args.json {
        return print_json(&report);
    }
    println!(
        "{} / {}: NashConv {:.6}, exploitability {:.6} ({:.3} s)",
        report.game, report.policy, report.nash_conv, report.exploitability, report.seconds
    );
    if let Some(m) = &report.model {
        println!(
            "  model at temperature {}: {} information sets, mass outside the legal answers \
             {:.4} mean, {:.4} max",
            m.temperature, m.information_sets, m.outside_mass_mean, m.outside_mass_max
        );
    }
    Ok(())
}

/// The exact policy of the language model at `path` on `game`.
fn model_policy<G: TextView + Clone>(
    game: &G,
    path: &Path,
    args: &ExploitabilityArgs,
) -> anyhow::Result<(spar_core::TabularPolicy, ModelPolicyReport)> {
    let p = ModelPrompting::resolve(path, &args.prompt.flags())?;
    crate::lm::set_threads();
    let device = spar_lm::device::default_device();
    let loaded = spar_lm::load::load_model_with_lora(
        path,
        spar_lm::load::GgufMode::Quantized,
        args.lora.as_deref(),
        &device,
    )
    .with_context(|| format!("loading the model {}", path.display()))?;
    let table = crate::players::tabulate_model(game, &loaded, &p, args.json)?;
    if let Some(out) = &args.save_policy {
        policy_file::save(out, &table.policy, game.info())?;
    }
    let report = ModelPolicyReport {
        temperature: p.temperature,
        protocol: p.protocol.clone(),
        prompt_style: p.prompt_style.clone(),
        view: p.view.name(),
        information_sets: table.legal_mass.len(),
        outside_mass_mean: table.mean_outside_mass(),
        outside_mass_max: table.max_outside_mass(),
    };
    Ok((table.policy, report))
}

fn exploitability_of<G: TextView + Clone>(
    game: &G,
    args: &ExploitabilityArgs,
) -> anyhow::Result<ExploitabilityReport> {
    let policy = args.policy.as_str();
    let loaded;
    let mut model_report = None;
    let policy_ref: &dyn Policy<G::State> = if let Some(path) = policy.strip_prefix("model:") {
        let (table, report) = model_policy(game, Path::new(path), args)?;
        loaded = table;
        model_report = Some(report);
        &loaded
    } else if policy == "uniform" {
        &UniformRandom
    } else {
        let path = Path::new(policy);
        if !path.exists() {
            return Err(UsageError(format!(
                "policy {policy:?} is neither `uniform`, `model:PATH` nor an existing policy file"
            ))
            .into());
        }
        loaded = policy_file::load(path, game)?;
        &loaded
    };
    let start = Instant::now();
    let result = spar_eval::nash_conv(game, policy_ref)?;
    Ok(ExploitabilityReport {
        game: game.info().spec.clone(),
        policy: policy.to_string(),
        nash_conv: result.nash_conv,
        exploitability: result.exploitability,
        best_response_values: result.best_response_values,
        on_policy_values: result.on_policy_values,
        seconds: start.elapsed().as_secs_f64(),
        model: model_report,
    })
}

/// CFR variants on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Algo {
    /// OpenSpiel's CFRSolver: alternating updates, uniform averaging.
    Cfr,
    /// CFR+: regret matching+, alternating updates, linear averaging.
    #[value(name = "cfr+")]
    CfrPlus,
    /// The original CFR with simultaneous updates.
    Simultaneous,
}

/// Arguments of `spar solve`.
#[derive(Debug, clap::Args)]
pub struct SolveArgs {
    /// The game (two-player zero-sum), e.g. `kuhn`, `leduc`.
    #[arg(long, value_parser = crate::choices::game())]
    game: String,
    /// The algorithm.
    #[arg(long, value_enum, default_value = "cfr+")]
    algo: Algo,
    /// Iterations to run.
    #[arg(long, default_value_t = 1000)]
    iterations: usize,
    /// Measure exploitability every this many iterations (0: only at the end).
    #[arg(long, default_value_t = 100)]
    report_every: usize,
    /// Write the average policy to this file (tabular policy JSON).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct TracePoint {
    iteration: usize,
    nash_conv: f64,
    exploitability: f64,
}

#[derive(Debug, Serialize)]
struct SolveReport {
    game: String,
    algo: CfrVariant,
    iterations: usize,
    nash_conv: f64,
    exploitability: f64,
    /// Time spent in CFR iterations, excluding exploitability measurements.
    seconds: f64,
    iterations_per_second: f64,
    trace: Vec<TracePoint>,
    out: Option<PathBuf>,
}

/// Runs `spar solve`.
pub fn solve(args: &SolveArgs) -> anyhow::Result<()> {
    let spec = GameSpec::parse(&args.game)?;
    let report = spar_games::with_game!(&spec, |game| solve_game(&game, args))?;
    if args.json {
        return print_json(&report);
    }
    println!(
        "{} {}: {} iterations in {:.3} s ({:.0} it/s): NashConv {:.6}, exploitability {:.6}",
        report.game,
        match report.algo {
            CfrVariant::Cfr => "CFR",
            CfrVariant::CfrPlus => "CFR+",
            CfrVariant::Simultaneous => "simultaneous CFR",
        },
        report.iterations,
        report.seconds,
        report.iterations_per_second,
        report.nash_conv,
        report.exploitability
    );
    if let Some(out) = &report.out {
        println!("average policy written to {}", out.display());
    }
    Ok(())
}

fn solve_game<G: Game>(game: &G, args: &SolveArgs) -> anyhow::Result<SolveReport> {
    let variant = match args.algo {
        Algo::Cfr => CfrVariant::Cfr,
        Algo::CfrPlus => CfrVariant::CfrPlus,
        Algo::Simultaneous => CfrVariant::Simultaneous,
    };
    let mut solver = CfrSolver::new(game, variant)?;
    let bar = progress(args.iterations as u64, args.json, "solving");
    let mut trace = Vec::new();
    let mut seconds = 0.0;
    for iteration in 1..=args.iterations {
        let start = Instant::now();
        solver.iterate();
        seconds += start.elapsed().as_secs_f64();
        bar.inc(1);
        let report_now = args.report_every > 0 && iteration % args.report_every == 0;
        if report_now || iteration == args.iterations {
            let result = solver.nash_conv()?;
            bar.set_message(format!("exploitability {:.6}", result.exploitability));
            if !args.json {
                bar.suspend(|| {
                    eprintln!(
                        "iteration {iteration}: exploitability {:.6}",
                        result.exploitability
                    )
                });
            }
            trace.push(TracePoint {
                iteration,
                nash_conv: result.nash_conv,
                exploitability: result.exploitability,
            });
        }
    }
    bar.finish_and_clear();
    let last = match trace.last() {
        Some(point) => (point.nash_conv, point.exploitability),
        None => {
            let result = solver.nash_conv()?;
            (result.nash_conv, result.exploitability)
        }
    };
    if let Some(out) = &args.out {
        policy_file::save(out, &solver.average_policy(), game.info())
            .with_context(|| format!("writing the average policy to {}", out.display()))?;
    }
    Ok(SolveReport {
        game: game.info().spec.clone(),
        algo: variant,
        iterations: args.iterations,
        nash_conv: last.0,
        exploitability: last.1,
        seconds,
        iterations_per_second: if seconds > 0.0 {
            args.iterations as f64 / seconds
        } else {
            0.0
        },
        trace,
        out: args.out.clone(),
    })
}

/// Arguments of `spar tournament`.
#[derive(Debug, Clone, clap::Args)]
pub struct TournamentArgs {
    /// The game, e.g. `tictactoe`, `kuhn(hands=5)` [default with --run: the run's game].
    #[arg(long, value_parser = crate::choices::game())]
    game: Option<String>,
    /// A training run directory: every complete checkpoint (every --every-th, and the last)
    /// joins the players as `step-N=model:DIR/checkpoints/step-N`, so a round robin's Elo
    /// table shows progress over training.
    #[arg(long)]
    run: Option<PathBuf>,
    /// With --run: keep every this-many-th checkpoint (and the last).
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// Comma-separated players, each optionally named (`NAME=PLAYER`): built-in players,
    /// `model:PATH` (a language model here) or `remote:URL[#NAME]` (a model behind an
    /// OpenAI-compatible server). Two players play head to head; three or more play a round
    /// robin with Elo.
    #[arg(long, value_delimiter = ',', value_parser = crate::choices::player())]
    players: Vec<String>,
    /// Games per pair of players (seats alternate).
    #[arg(long, default_value_t = 100)]
    games: usize,
    /// Seed of chance and of the players' sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    lm: crate::players::LmArgs,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum TournamentReport {
    HeadToHead(Box<HeadToHead>),
    RoundRobin(RoundRobin),
}

/// Runs `spar tournament`.
pub fn tournament(args: &TournamentArgs) -> anyhow::Result<()> {
    let mut players = args.players.clone();
    let mut game = args.game.clone();
    if let Some(run) = &args.run {
        let checkpoints = spar_rl::trainer::complete_checkpoints(run);
        if checkpoints.is_empty() {
            return Err(UsageError(format!(
                "--run {}: no complete checkpoint in {}/checkpoints",
                run.display(),
                run.display()
            ))
            .into());
        }
        let every = args.every.max(1);
        let last = checkpoints.len() - 1;
        for (i, (step, dir)) in checkpoints.iter().enumerate() {
            if i % every == 0 || i == last {
                players.push(format!("step-{step}=model:{}", dir.display()));
            }
        }
        if game.is_none() {
            game = spar_rl::rollout::prompt::Prompting::load(&checkpoints[last].1)
                .map_err(|e| UsageError(e.to_string()))?
                .map(|p| p.game);
        }
    }
    let Some(game) = game else {
        return Err(
            UsageError("--game is required (or --run with a prompting.json)".into()).into(),
        );
    };
    let args = &TournamentArgs {
        game: Some(game),
        players,
        ..args.clone()
    };
    if args.players.len() < 2 {
        return Err(UsageError(format!(
            "a tournament needs at least two players (got {:?}); accepted players: {PLAYERS}",
            args.players
        ))
        .into());
    }
    let spec = GameSpec::parse(args.game.as_deref().unwrap_or_default())?;
    let report = spar_games::with_game!(&spec, |game| run_tournament(&game, args))?;
    if args.json {
        return print_json(&report);
    }
    match &report {
        TournamentReport::HeadToHead(series) => print_series(series),
        TournamentReport::RoundRobin(robin) => {
            for series in &robin.matches {
                print_series(series);
                println!();
            }
            println!("Elo (mean 1500):");
            let mut order: Vec<usize> = (0..robin.players.len()).collect();
            order.sort_by(|&a, &b| robin.elo[b].total_cmp(&robin.elo[a]));
            for i in order {
                println!("  {:<24} {:>7.1}", robin.players[i], robin.elo[i]);
            }
        }
    }
    Ok(())
}

fn run_tournament<G: Game + Heuristic + TextView + Clone + 'static>(
    game: &G,
    args: &TournamentArgs,
) -> anyhow::Result<TournamentReport> {
    let mut counters = Vec::new();
    let players = args
        .players
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let seed = args.seed.wrapping_add((i as u64) << 32);
            crate::players::make_any_player(game, spec, &args.lm.options(), seed, &mut counters)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let refs: Vec<&dyn Policy<G::State>> = players.iter().map(|p| p.as_ref()).collect();
    let report = if refs.len() == 2 {
        TournamentReport::HeadToHead(Box::new(spar_eval::head_to_head(
            game, refs[0], refs[1], args.games, args.seed,
        )?))
    } else {
        TournamentReport::RoundRobin(spar_eval::round_robin(game, &refs, args.games, args.seed)?)
    };
    crate::players::report_counters(&counters);
    Ok(report)
}

fn print_series(series: &HeadToHead) {
    println!(
        "{}: {} vs {}, {} games (seed {})",
        series.game, series.players[0], series.players[1], series.games, series.seed
    );
    println!(
        "  {:<24} {:<6} {:>6} {:>6} {:>6} {:>9} {:>17} {:>12}",
        "player", "seat", "wins", "draws", "losses", "win rate", "95% CI", "mean return"
    );
    let row = |name: &str, seat: &str, record: &Record| {
        println!(
            "  {:<24} {:<6} {:>6} {:>6} {:>6} {:>9.3} {:>17} {:>12.3}",
            name,
            seat,
            record.wins,
            record.draws,
            record.losses,
            record.win_rate,
            format!(
                "[{:.3}, {:.3}]",
                record.win_rate_ci95.low, record.win_rate_ci95.high
            ),
            record.mean_return
        );
    };
    for (i, name) in series.players.iter().enumerate() {
        row(name, "all", &series.overall[i]);
        for seat in 0..2 {
            row(name, &seat.to_string(), &series.by_seat[i][seat]);
        }
    }
}
