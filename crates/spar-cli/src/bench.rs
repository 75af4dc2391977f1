//! `spar bench`: random playouts per second (`spar bench --game G`), and `spar bench serve`:
//! an OpenAI-compatible server (`spar serve`, vLLM, ...) under concurrent clients.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::Rng as _;
use serde::Serialize;
use spar_core::{sample_action, Game, GameSpec, State, Turn};
use spar_remote::client::{Client, ClientConfig};
use spar_remote::protocol::{CompletionRequest, Prompt};

use crate::report::{print_json, progress};
use crate::UsageError;

/// Arguments of `spar bench`: `--game G` for playouts, or the `serve` subcommand.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    #[command(flatten)]
    playouts: PlayoutArgs,
}

#[derive(Debug, clap::Subcommand)]
enum BenchCommand {
    /// An OpenAI-compatible server under concurrent clients: requests/s, completion
    /// tokens/s, latency percentiles, failed requests.
    #[command(after_help = crate::examples::BENCH_SERVE)]
    Serve(ServeBenchArgs),
}

/// Arguments of `spar bench --game G`.
#[derive(Debug, clap::Args)]
struct PlayoutArgs {
    /// The game, e.g. `kuhn`, `leduc`, `kuhn(hands=5)`.
    #[arg(long, required = true, value_parser = crate::choices::game())]
    game: Option<String>,
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

/// Arguments of `spar bench serve`.
#[derive(Debug, clap::Args)]
struct ServeBenchArgs {
    /// The server's OpenAI base URL, e.g. `http://127.0.0.1:8000/v1`.
    #[arg(long)]
    url: String,
    /// The model requests name [default: the server's first model].
    #[arg(long)]
    model: Option<String>,
    /// Concurrent clients (threads, each with one request in flight).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Requests in all (shared among the clients).
    #[arg(long, default_value_t = 64)]
    requests: usize,
    /// max_tokens of every request.
    #[arg(long, default_value_t = 16)]
    max_tokens: usize,
    /// The prompt of every request.
    #[arg(long, default_value = "Once upon a time")]
    prompt: String,
    /// Sampling temperature.
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Request `i` samples with seed `seed + i`.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Requests sent (one at a time) before the measured ones.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Seconds a request may take before it counts as failed.
    #[arg(long, default_value_t = 300.0)]
    timeout: f64,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `spar bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    match &args.command {
        Some(BenchCommand::Serve(serve)) => bench_serve(serve),
        None => bench_playouts(&args.playouts),
    }
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

fn bench_playouts(args: &PlayoutArgs) -> anyhow::Result<()> {
    let game = args
        .game
        .as_deref()
        .expect("clap requires --game without a subcommand");
    let spec = GameSpec::parse(game)?;
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

fn bench<G: Game>(game: &G, args: &PlayoutArgs) -> BenchReport {
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

#[derive(Debug, Serialize)]
struct ServeBenchReport {
    url: String,
    model: String,
    clients: usize,
    requests: usize,
    max_tokens: usize,
    /// Requests answered with 2xx.
    ok: usize,
    /// Requests that failed (no retries: every failure counts).
    failed: usize,
    /// Wall time of the measured requests, first sent to last answered.
    seconds: f64,
    /// Answered requests per second.
    requests_per_second: f64,
    /// Completion tokens of the answered requests (the server's `usage`).
    completion_tokens: usize,
    completion_tokens_per_second: f64,
    /// Latency of the answered requests, in milliseconds.
    latency_ms: Latency,
}

#[derive(Debug, Default, PartialEq, Serialize)]
struct Latency {
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Latency {
    fn of(samples_ms: &mut [f64]) -> Latency {
        if samples_ms.is_empty() {
            return Latency::default();
        }
        samples_ms.sort_by(f64::total_cmp);
        Latency {
            mean: samples_ms.iter().sum::<f64>() / samples_ms.len() as f64,
            p50: percentile(samples_ms, 50.0),
            p90: percentile(samples_ms, 90.0),
            p99: percentile(samples_ms, 99.0),
            max: samples_ms[samples_ms.len() - 1],
        }
    }
}

/// The nearest-rank percentile of sorted, non-empty `sorted`: the smallest sample with at
/// least `p`% of the samples at or below it.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One measured request: its latency, and its completion tokens when it was answered.
struct Outcome {
    latency: Duration,
    tokens: Result<usize, String>,
}

fn bench_serve(args: &ServeBenchArgs) -> anyhow::Result<()> {
    if args.clients == 0 || args.requests == 0 {
        return Err(UsageError("--clients and --requests must be at least 1".into()).into());
    }
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        return Err(UsageError(format!(
            "--timeout {} must be a positive number",
            args.timeout
        ))
        .into());
    }
    // No retries: a benchmark counts failures instead of hiding them behind backoffs.
    let client = Client::new(ClientConfig {
        concurrency: args.clients,
        max_retries: 0,
        timeout: Duration::from_secs_f64(args.timeout),
        ..ClientConfig::new(&args.url)
    })
    .map_err(|e| UsageError(format!("--url: {e}")))?;
    let model = match &args.model {
        Some(model) => model.clone(),
        None => {
            let models = client.models().context("listing the server's models")?;
            let first = models.data.first().with_context(|| {
                format!(
                    "{} serves no model (GET /models returned an empty list)",
                    args.url
                )
            })?;
            first.id.clone()
        }
    };
    let request = |i: usize| CompletionRequest {
        model: model.clone(),
        prompt: Some(Prompt::Text(args.prompt.clone())),
        max_tokens: Some(args.max_tokens),
        temperature: Some(args.temperature),
        seed: Some(args.seed.wrapping_add(i as u64)),
        ..CompletionRequest::default()
    };
    for i in 0..args.warmup {
        client
            .completions(&request(args.requests + i))
            .context("the warm-up request failed")?;
    }

    let bar = progress(args.requests as u64, args.json, "requests");
    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::with_capacity(args.requests));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..args.clients {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= args.requests {
                    break;
                }
                let sent = Instant::now();
                let answer = client.completions(&request(i));
                let outcome = Outcome {
                    latency: sent.elapsed(),
                    tokens: answer
                        .map(|r| r.usage.map_or(0, |u| u.completion_tokens))
                        .map_err(|e| e.to_string()),
                };
                outcomes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(outcome);
                bar.inc(1);
            });
        }
    });
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());

    let mut latencies = Vec::new();
    let (mut completion_tokens, mut errors) = (0, Vec::new());
    for outcome in &outcomes {
        match &outcome.tokens {
            Ok(tokens) => {
                completion_tokens += tokens;
                latencies.push(outcome.latency.as_secs_f64() * 1e3);
            }
            Err(message) => errors.push(message),
        }
    }
    if latencies.is_empty() {
        anyhow::bail!(
            "all {} requests failed; the first: {}",
            outcomes.len(),
            errors.first().map_or("", |m| m.as_str())
        );
    }
    if let Some(first) = errors.first() {
        eprintln!(
            "warning: {} of {} requests failed; the first: {first}",
            errors.len(),
            outcomes.len()
        );
    }
    let ok = latencies.len();
    let report = ServeBenchReport {
        url: args.url.clone(),
        model,
        clients: args.clients,
        requests: args.requests,
        max_tokens: args.max_tokens,
        ok,
        failed: errors.len(),
        seconds,
        requests_per_second: ok as f64 / seconds,
        completion_tokens,
        completion_tokens_per_second: completion_tokens as f64 / seconds,
        latency_ms: Latency::of(&mut latencies),
    };
    if args.json {
        return print_json(&report);
    }
    let l = &report.latency_ms;
    println!(
        "{}: {} requests ({} failed) from {} clients in {:.2} s: {:.2} requests/s, {:.1} \
         completion tokens/s; latency ms: p50 {:.0}, p90 {:.0}, p99 {:.0}, max {:.0}",
        report.model,
        report.requests,
        report.failed,
        report.clients,
        report.seconds,
        report.requests_per_second,
        report.completion_tokens_per_second,
        l.p50,
        l.p90,
        l.p99,
        l.max
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let l = Latency::of(&mut samples);
        assert_eq!(
            l,
            Latency {
                mean: 50.5,
                p50: 50.0,
                p90: 90.0,
                p99: 99.0,
                max: 100.0
            }
        );
        // Ten samples: p99 is the largest, p50 the fifth, p90 the ninth.
        let sorted: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(
            [50.0, 90.0, 99.0].map(|p| percentile(&sorted, p)),
            [5.0, 9.0, 10.0]
        );
        assert_eq!(percentile(&[7.0], 50.0), 7.0);
        assert_eq!(percentile(&[7.0], 0.0), 7.0);
        assert_eq!(Latency::of(&mut []), Latency::default());
    }
}
