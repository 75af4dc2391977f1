//! `spar eval`: a language model against a built-in player, in every seat, through the text
//! environment (the same prompts and parsing as training).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;
use spar_core::{GameSpec, TextGame, TextOptions};
use spar_games::heuristic::Heuristic;
use spar_games::text::TextView;
use spar_lm::sample::SamplingParams;
use spar_rl::rollout::{play_batch, Decode, Seat};

use crate::evaluate::{ModelPrompting, PromptArgs};
use crate::report::{print_json, progress};
use crate::UsageError;

/// Arguments of `spar eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The model: a checkpoint directory (e.g. `runs/k/checkpoints/step-000030`) or a .gguf
    /// file.
    #[arg(long)]
    model: PathBuf,
    /// The game [default: the one in the checkpoint's prompting.json].
    #[arg(long)]
    game: Option<String>,
    /// The opponent, a built-in player: random, minimax, alphabeta[:DEPTH], tabular:FILE,
    /// cfr+[:ITERATIONS], ...
    #[arg(long, default_value = "random")]
    vs: String,
    /// Games per seat of the model.
    #[arg(long, default_value_t = 100)]
    games: usize,
    /// Seed of chance, sampling and the opponent.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Games played side by side (one sampling batch per round).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[command(flatten)]
    prompt: PromptArgs,
    /// Most tokens per answer [default: the checkpoint's prompting.json, else 64].
    #[arg(long)]
    max_tokens: Option<usize>,
    /// How the model answers: sample (free text, parsed) or legal (one of the legal actions'
    /// canonical completions, by normalised probability) [default: the checkpoint's
    /// prompting.json, else sample].
    #[arg(long)]
    policy: Option<String>,
    /// What an invalid answer costs: spiral, textarena, retry:N.
    #[arg(long, default_value = "spiral")]
    invalid_move_rule: String,
    /// Write every game's transcript here as JSONL (prompts, completions, outcomes).
    #[arg(long)]
    transcript: Option<PathBuf>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    /// A verifiable task (`arithmetic`, `countdown(numbers=3)`, `wordproblem`, `jsonl:PATH`;
    /// `spar tasks` lists them): report pass@k on its test split instead of playing a game
    /// [default for a checkpoint of a task run: its task.json].
    #[arg(long, conflicts_with = "game")]
    task: Option<String>,
    /// With a task: answers sampled per test problem (the n of the unbiased pass@k).
    #[arg(long, default_value_t = 16)]
    k: usize,
    /// With a task: test problems evaluated (the first ones of the test split).
    #[arg(long, default_value_t = 100)]
    problems: usize,
    /// With a task: the k of pass@k, comma-separated [default: 1, 2, 4, ... and --k].
    #[arg(long, value_delimiter = ',')]
    pass_at: Option<Vec<usize>>,
}

/// The model's results in one seat.
#[derive(Debug, Serialize)]
struct SeatResult {
    seat: usize,
    games: usize,
    mean_return: f64,
    /// Half-width of the normal-approximation 95% confidence interval of the mean.
    ci95: f64,
    win_rate: f64,
    draw_rate: f64,
    loss_rate: f64,
    /// Fraction of the model's answers that named no legal action.
    invalid_rate: f64,
    mean_response_tokens: f64,
}

#[derive(Debug, Serialize)]
struct EvalReport {
    model: String,
    game: String,
    opponent: String,
    temperature: f64,
    protocol: String,
    prompt_style: String,
    view: &'static str,
    seats: Vec<SeatResult>,
    seconds: f64,
}

/// Runs `spar eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let task_checkpoint = args.game.is_none() && args.model.join("task.json").exists();
    if args.task.is_some() || task_checkpoint {
        return crate::task_eval::run(&crate::task_eval::TaskEvalSettings {
            model: &args.model,
            task: args.task.as_deref(),
            samples: args.k,
            problems: args.problems,
            pass_at: args.pass_at.clone(),
            temperature: args.prompt.temperature.unwrap_or(1.0),
            max_tokens: args.max_tokens,
            prompt_style: args.prompt.prompt_style.as_deref(),
            seed: args.seed,
            json: args.json,
        });
    }
    if args.games == 0 || args.batch == 0 {
        return Err(UsageError("--games and --batch must be at least 1".into()).into());
    }
    let prompting = ModelPrompting::resolve(&args.model, &args.prompt.flags())?;
    let saved = &prompting.saved;
    let game = args
        .game
        .clone()
        .or(saved.as_ref().map(|s| s.game.clone()))
        .ok_or_else(|| {
            UsageError(format!(
                "{} has no prompting.json naming its game (nor task.json naming its task): pass \
                 --game or --task",
                args.model.display()
            ))
        })?;
    let spec = GameSpec::parse(&game)?;
    let max_tokens = args
        .max_tokens
        .or(saved.as_ref().map(|s| s.max_tokens))
        .unwrap_or(64);
    let decode: Decode = args
        .policy
        .clone()
        .or(saved.as_ref().map(|s| s.policy.clone()))
        .unwrap_or_else(|| "sample".into())
        .parse()
        .map_err(|e: spar_rl::Error| UsageError(e.to_string()))?;
    let report = spar_games::with_game!(&spec, |game| eval_game(
        &game, args, &prompting, max_tokens, decode
    ))?;
    if args.json {
        return print_json(&report);
    }
    println!(
        "{} vs {} on {} (temperature {}, {} games per seat, {:.1} s)",
        report.model, report.opponent, report.game, report.temperature, args.games, report.seconds
    );
    println!("seat  mean return (95% CI)   win    draw   loss   invalid  tokens");
    for s in &report.seats {
        println!(
            "{:>4}  {:+.3} ± {:.3}        {:.3}  {:.3}  {:.3}  {:.3}    {:.1}",
            s.seat,
            s.mean_return,
            s.ci95,
            s.win_rate,
            s.draw_rate,
            s.loss_rate,
            s.invalid_rate,
            s.mean_response_tokens
        );
    }
    Ok(())
}

fn eval_game<G: TextView + Heuristic + Clone + 'static>(
    game: &G,
    args: &EvalArgs,
    prompting: &ModelPrompting,
    max_tokens: usize,
    decode: Decode,
) -> anyhow::Result<EvalReport> {
    let n = game.info().num_players;
    let lm = spar_rl::players::PlayerOptions {
        prompt: args.prompt.flags(),
        max_tokens: args.max_tokens,
        ..spar_rl::players::PlayerOptions::default()
    };
    let mut counters = Vec::new();
    let opponent =
        crate::players::make_any_player(game, &args.vs, &lm, args.seed ^ 0x0990, &mut counters)?;
    let rule: spar_core::InvalidMoveRule = args
        .invalid_move_rule
        .parse()
        .map_err(|message: String| UsageError(message))?;
    prompting.protocol_box()?;
    crate::lm::set_threads();
    let device = spar_lm::device::default_device();
    let loaded = load(&args.model, &device)?;
    let make_env = || -> TextGame<G, G::Text> {
        TextGame::new(
            game.clone(),
            game.text_view(),
            TextOptions {
                protocol: prompting.protocol_box().expect("checked"),
                invalid_move_rule: rule,
                view: prompting.view,
                ..TextOptions::default()
            },
        )
    };
    let params = SamplingParams {
        temperature: prompting.temperature,
        max_tokens,
        ..SamplingParams::default()
    };
    let start = Instant::now();
    let bar = progress((args.games * n) as u64, args.json, "games");
    let mut seats = Vec::with_capacity(n);
    let mut transcripts = String::new();
    for seat in 0..n {
        let players: Vec<Seat<G::State>> = (0..n)
            .map(|p| {
                if p == seat {
                    Seat::Model
                } else {
                    Seat::Policy(opponent.as_ref())
                }
            })
            .collect();
        let mut returns = Vec::with_capacity(args.games);
        let (mut turns, mut invalid, mut tokens) = (0usize, 0usize, 0usize);
        let mut done = 0;
        while done < args.games {
            let count = args.batch.min(args.games - done);
            let seed = args
                .seed
                .wrapping_add((seat as u64) << 40)
                .wrapping_add(done as u64);
            let batch = play_batch(
                &make_env,
                &spar_lm::LocalEngine {
                    model: &loaded.model,
                    tokenizer: &loaded.tokenizer,
                },
                &loaded.tokenizer,
                prompting.style,
                &players,
                count,
                &params,
                decode,
                seed,
            )?;
            returns.extend(batch.returns.iter().map(|r| r[seat]));
            if args.transcript.is_some() {
                for t in &batch.transcripts {
                    transcripts.push_str(&serde_json::to_string(t)?);
                    transcripts.push('\n');
                }
            }
            turns += batch.turns.len();
            invalid += batch.turns.iter().filter(|t| t.invalid).count();
            tokens += batch
                .turns
                .iter()
                .map(|t| t.completion.len())
                .sum::<usize>();
            done += count;
            bar.inc(count as u64);
        }
        let games = returns.len() as f64;
        let mean = returns.iter().sum::<f64>() / games;
        let var = if returns.len() > 1 {
            returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (games - 1.0)
        } else {
            0.0
        };
        let rate =
            |f: &dyn Fn(f64) -> bool| returns.iter().filter(|&&r| f(r)).count() as f64 / games;
        seats.push(SeatResult {
            seat,
            games: returns.len(),
            mean_return: mean,
            ci95: 1.96 * (var / games).sqrt(),
            win_rate: rate(&|r| r > 0.0),
            draw_rate: rate(&|r| r == 0.0),
            loss_rate: rate(&|r| r < 0.0),
            invalid_rate: invalid as f64 / turns.max(1) as f64,
            mean_response_tokens: tokens as f64 / turns.max(1) as f64,
        });
    }
    bar.finish_and_clear();
    if let Some(path) = &args.transcript {
        std::fs::write(path, transcripts)
            .with_context(|| format!("writing transcripts to {}", path.display()))?;
    }
    Ok(EvalReport {
        model: args.model.display().to_string(),
        game: game.info().spec.clone(),
        opponent: args.vs.clone(),
        temperature: prompting.temperature,
        protocol: prompting.protocol.clone(),
        prompt_style: prompting.prompt_style.clone(),
        view: prompting.view.name(),
        seats,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn load(path: &Path, device: &candle_core::Device) -> anyhow::Result<spar_lm::load::LoadedModel> {
    spar_lm::load::load_model(path, spar_lm::load::GgufMode::Quantized, device)
        .with_context(|| format!("loading the model {}", path.display()))
}
