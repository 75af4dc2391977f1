//! `spar`: self-play and exact evaluation from the command line.
//!
//! Results go to stdout (tables, or JSON with `--json`); logs and progress bars go to stderr.
//! Exit codes: 0 success, 1 failure while running, 2 bad input (unknown game, policy or
//! player, malformed file, bad option).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: candle's CPU tensors allocate and free large buffers on every op; the system
/// allocator returns them to the kernel, which then zeroes fresh pages (2.3x slower training
/// step, `docs/candle.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod choices;
mod cosc;
mod evaluate;
mod examples;
mod games;
mod lm;
mod model_eval;
mod play;
mod players;
mod report;
mod reversal;
mod serve;
mod task_eval;
mod tasks;
mod train;

/// spar: self-play and self-improvement RL for language-model agents, with exact
/// game-theoretic evaluation.
#[derive(Debug, Parser)]
#[command(name = "spar", version, about, long_about = None)]
#[command(after_long_help = train::accepted_values())]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the games and their properties.
    #[command(after_help = crate::examples::GAMES)]
    Games(games::GamesArgs),
    /// List the verifiable tasks and their parameters.
    #[command(after_help = crate::examples::TASKS)]
    Tasks(tasks::TasksArgs),
    /// NashConv and exploitability of a policy (two-player zero-sum games).
    #[command(after_help = crate::examples::EXPLOITABILITY)]
    Exploitability(evaluate::ExploitabilityArgs),
    /// Solve a game with CFR or CFR+, reporting exploitability as it goes.
    #[command(after_help = crate::examples::SOLVE)]
    Solve(evaluate::SolveArgs),
    /// Play policies against each other: head to head, or a round robin with Elo.
    #[command(after_help = crate::examples::TOURNAMENT)]
    Tournament(evaluate::TournamentArgs),
    /// Play a game as text, as a language model would: humans type completions.
    #[command(after_help = crate::examples::PLAY)]
    Play(play::PlayArgs),
    /// Random playouts per second (for benchmarks against other engines).
    #[command(after_help = crate::examples::BENCH)]
    Bench(bench::BenchArgs),
    /// Language models: sample, pretrain, inspect, compare, benchmark.
    #[command(after_help = crate::examples::LM)]
    Lm(lm::LmArgs),
    /// Training from a TOML config: self-play on games (SPIRAL), or a verifiable task (a
    /// `[task]` config: GRPO, Dr. GRPO, RLOO, NFT, DPO, ...); --resume continues a run exactly.
    #[command(after_help = train::after_help())]
    Train(train::TrainArgs),
    /// A language model against a built-in player in every seat (mean return, win rate,
    /// invalid answers), or on a task's test split (`--task`: pass@k).
    #[command(after_help = crate::examples::EVAL)]
    Eval(model_eval::EvalArgs),
    /// Plots (SVG and PNG) and a Markdown summary of a training run.
    #[command(after_help = crate::examples::REPORT)]
    Report(train::ReportArgs),
    /// Compare experiment arms over seeds: mean and min-max band per metric (SVG and PNG), and
    /// final values (mean ± std) in Markdown and JSON.
    #[command(after_help = crate::examples::COMPARE)]
    Compare(train::CompareArgs),
    /// Serve a model over an OpenAI-compatible HTTP API (chat, completions, log-probs,
    /// streaming, LoRA and weight updates).
    #[command(after_help = crate::examples::SERVE)]
    Serve(serve::ServeArgs),
    /// A shell completion script on stdout: flags, subcommands and the listed values of
    /// choice-valued flags (`spar completions bash > ~/.local/share/bash-completion/completions/spar`).
    #[command(after_help = crate::examples::COMPLETIONS)]
    Completions(CompletionsArgs),
}

/// Arguments of `spar completions`.
#[derive(Debug, clap::Args)]
struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Bad input: exits with code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Whether an error is the user's input rather than a failure while running.
fn is_usage_error(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if cause.is::<UsageError>() || cause.is::<spar_core::Error>() {
            return true;
        }
        // A bad setting, or a bad game spec or parameter (`Core` is transparent: the
        // spar-core error inside is not in the chain).
        match cause.downcast_ref::<spar_rl::Error>() {
            Some(
                spar_rl::Error::Invalid(_) | spar_rl::Error::Core(_) | spar_rl::Error::Write { .. },
            ) => return true,
            // `Lm` is transparent too: the model error inside is not in the chain.
            Some(spar_rl::Error::Lm(error)) => {
                return !matches!(error, spar_lm::LmError::Candle(_))
            }
            _ => {}
        }
        // A run directory, arm or metric name that is wrong, or a file of it that cannot be
        // read (as for model files below).
        if let Some(error) = cause.downcast_ref::<spar_report::Error>() {
            return !matches!(error, spar_report::Error::Render { .. });
        }
        // A model file, adapter, config or argument that is wrong; a failing tensor op is not.
        if let Some(error) = cause.downcast_ref::<spar_lm::LmError>() {
            return !matches!(error, spar_lm::LmError::Candle(_));
        }
        match cause.downcast_ref::<spar_eval::Error>() {
            Some(error) => !matches!(error, spar_eval::Error::BadPolicyOutput { .. }),
            None => false,
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Games(args) => games::run(&args),
        Command::Tasks(args) => tasks::run(&args),
        Command::Exploitability(args) => evaluate::exploitability(&args),
        Command::Solve(args) => evaluate::solve(&args),
        Command::Tournament(args) => evaluate::tournament(&args),
        Command::Play(args) => play::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Lm(args) => lm::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Eval(args) => model_eval::run(&args),
        Command::Report(args) => train::report(&args),
        Command::Compare(args) => train::compare(&args),
        Command::Serve(args) => serve::serve(&args),
        Command::Completions(args) => {
            use clap::CommandFactory as _;
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "spar",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if is_usage_error(&error) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
