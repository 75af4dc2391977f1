//! `spar bench`: random playouts per second.

use std::time::{Duration, Instant};

use rand::Rng as _;
use serde::Serialize;
use spar_core::{sample_action, Game, GameSpec, State, Turn};

use crate::report::print_json;

/// Arguments of `spar bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The game, e.g. `kuhn`, `leduc`, `kuhn(hands=5)`.
    #[arg(long)]
    game: String,
    /// Number of playouts (default: as many as fit in `--seconds`).
    #[arg(long)]
    playouts: Option<u64>,
    /// Time budget when `--playouts` is not given.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Seed of the playouts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct BenchReport {
    game: String,
    playouts: u64,
    actions: u64,
    seconds: f64,
    playouts_per_second: f64,
    actions_per_second: f64,
}

/// Runs `spar bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let spec = GameSpec::parse(&args.game)?;
    let report = spar_games::with_game!(&spec, |game| Ok::<_, anyhow::Error>(bench(&game, args)))?;
    if args.json {
        return print_json(&report);
    }
    println!(
        "{}: {} playouts in {:.3} s: {:.0} playouts/s, {:.0} actions/s",
        report.game,
        report.playouts,
        report.seconds,
        report.playouts_per_second,
        report.actions_per_second
    );
    Ok(())
}

fn bench<G: Game>(game: &G, args: &BenchArgs) -> BenchReport {
    let mut rng = spar_core::seeded_rng(args.seed);
    let budget = Duration::from_secs_f64(args.seconds.max(0.0));
    let start = Instant::now();
    let (mut playouts, mut actions) = (0u64, 0u64);
    loop {
        match args.playouts {
            Some(limit) if playouts >= limit => break,
            None if playouts % 64 == 0 && start.elapsed() >= budget => break,
            _ => {}
        }
        let mut state = game.new_initial_state();
        loop {
            let action = match state.turn() {
                Turn::Terminal => break,
                Turn::Chance => sample_action(&state.chance_outcomes(), &mut rng),
                Turn::Player(_) => {
                    let legal = state.legal_actions();
                    legal[rng.gen_range(0..legal.len())]
                }
            };
            state.apply_action(action);
            actions += 1;
        }
        std::hint::black_box(state.returns());
        playouts += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    BenchReport {
        game: game.info().spec.clone(),
        playouts,
        actions,
        seconds,
        playouts_per_second: playouts as f64 / seconds,
        actions_per_second: actions as f64 / seconds,
    }
}
