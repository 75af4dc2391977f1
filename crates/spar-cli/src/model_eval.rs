//! `spar eval`: a language model against a built-in player, in every seat, through the text
//! environment (the same prompts and parsing as training), and, where the game tree is small
//! enough and the opponent's policy is exact, the model's exact expected return in every
//! seat beside the sampled one.
//!
//! Sampled games draw fresh deals: game `i` of seat `s` resets the environment with seed
//! `--seed + (s << 40) + i`, so every game is independent of the others and the per-seat
//! confidence interval of the mean is the plain one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;
use spar_core::{GameSpec, Policy, TextGame, TextOptions};
use spar_eval::GameTree;
use spar_games::heuristic::Heuristic;
use spar_games::text::TextView;
use spar_lm::sample::SamplingParams;
use spar_rl::rollout::{episodes, Decode, PolicySeat, Rollout, Seat};

use crate::players::{ModelPrompting, PromptArgs};
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
    #[arg(long, value_parser = crate::choices::game())]
    game: Option<String>,
    /// The opponent: a built-in player (`alphabeta:3` is depth-limited alpha-beta, `cfr+:200`
    /// a CFR+ solution after 200 iterations, `tabular:FILE` a policy file).
    #[arg(long, default_value = "random", value_parser = crate::choices::player())]
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
    #[arg(long, value_parser = crate::choices::decode())]
    policy: Option<String>,
    /// What an invalid answer costs (spiral: -1.5 to the offender, +0.5 to the others;
    /// textarena: one retry, then a forfeit; retry:N: N retries, then a forfeit).
    #[arg(long, default_value = "spiral", value_parser = crate::choices::invalid_move_rule())]
    invalid_move_rule: String,
    /// Skip the exact values (which score every legal answer at every information set once).
    #[arg(long)]
    no_exact: bool,
    /// Write every game's transcript here as JSONL (prompts, completions, outcomes).
    #[arg(long)]
    transcript: Option<PathBuf>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    /// A verifiable task (`arithmetic`, `countdown(numbers=3)`, `wordproblem`, `jsonl:PATH`;
    /// `spar tasks` lists them): report pass@k on its test split instead of playing a game
    /// [default for a checkpoint of a task run: its task.json].
    #[arg(long, conflicts_with = "game", value_parser = crate::choices::task())]
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
    /// With a task: episodes of this many attempts, each after reading the earlier ones
    /// (self-correction): prints the accuracy per attempt, Delta(t1, t2), the wrong-to-right
    /// and right-to-wrong transitions and the rate of unchanged answers; --k is then the
    /// episodes per problem [default: the checkpoint's task.json, else 1].
    #[arg(long)]
    attempts: Option<usize>,
    /// With --attempts: what the model reads after each attempt (none; verdict: right or
    /// wrong; text: the verifier's reason, "12 is too high") [default: the checkpoint's
    /// task.json, else none].
    #[arg(long, value_parser = crate::choices::feedback())]
    feedback: Option<String>,
    /// With --attempts: the model verifies each attempt (yes or no) and tries again after a
    /// "no", as SPOC trains it; prints the verifier's accuracy, false-yes and false-no rates
    /// and the attempts per episode [default: the checkpoint's task.json, else false].
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    self_verify: Option<bool>,
    /// With --attempts: D-HUMOR's role-reversal self-loop. After each attempt but the last
    /// the model critiques it from the asker's side, and the next attempt reads the critique
    /// [default: the checkpoint's task.json, else false].
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    role_reversal: Option<bool>,
    /// With a task: ReVISE's confidence-aware decoding. Each of the --k answers per problem
    /// is split at the `[refine]` marker and its attempts graded; the model's P(end) against
    /// P([refine]) after the final attempt weighs its vote. Prints the first and final
    /// attempts' accuracy, plain majority and confidence-weighted vote accuracy, and the
    /// AUROC of P([refine]) as a predictor of a wrong answer.
    #[arg(long, conflicts_with_all = ["attempts", "self_verify", "role_reversal"])]
    refine_vote: bool,
    /// With --refine-vote: the refine marker the model was trained with
    /// (`selfcorrect.refine_marker` of its run's config.toml).
    #[arg(long, requires = "refine_vote", default_value = spar_rl::loops::selfcorrect::REFINE_MARKER)]
    refine_marker: String,
    /// With a task: CoSC's staged episodes (program, tool output, verification, conclusion),
    /// --k per problem: prints accuracy with its 95% interval, the first program's
    /// accuracy, mean stages (per difficulty), the revision rate after a wrong output and
    /// the invalid rate [default: on for a checkpoint with a cosc.json].
    #[arg(long, conflicts_with_all = ["attempts", "self_verify", "refine_vote"])]
    cosc: bool,
    /// With --cosc: the stage limit [default: the checkpoint's cosc.json, else 3].
    #[arg(long, conflicts_with_all = ["attempts", "self_verify", "refine_vote"])]
    stages: Option<usize>,
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
    /// The model's exact expected return in this seat (`None` when not computed; see
    /// [`EvalReport::exact`]).
    exact_return: Option<f64>,
}

/// The exact evaluation: the model's policy tabulated at every information set, the
/// opponent's read there, chance weighted exactly.
#[derive(Debug, Serialize)]
struct ExactReport {
    /// Per seat: the model's expected return when it sits there and the opponent in every
    /// other seat.
    returns: Vec<f64>,
    /// The mean over seats (the value when seats are drawn uniformly).
    mean_return: f64,
    /// Information sets the model was tabulated at.
    information_sets: usize,
    /// Mean and largest, over information sets, of the probability of answers outside the
    /// legal actions' canonical completions: the exact policy is the model's distribution
    /// normalised over those completions.
    outside_mass_mean: f64,
    outside_mass_max: f64,
    seconds: f64,
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
    /// How the model answered in the sampled games: `sample` or `legal`.
    policy: &'static str,
    seats: Vec<SeatResult>,
    /// The exact values, when the game tree has at most [`EXACT_MAX_NODES`] nodes and the
    /// opponent's policy is exact.
    exact: Option<ExactReport>,
    /// Why `exact` is missing (`None` when it is there).
    exact_unavailable: Option<String>,
    /// Seconds of the sampled games.
    seconds: f64,
}

/// The largest game tree on which `spar eval` computes exact values: Kuhn Poker has 58
/// nodes and Leduc Hold'em 9,457; TicTacToe (549,946) would mean scoring the model at
/// hundreds of thousands of information sets.
const EXACT_MAX_NODES: usize = 100_000;

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
            attempts: args.attempts,
            feedback: args.feedback.as_deref(),
            self_verify: args.self_verify,
            role_reversal: args.role_reversal,
            refine_vote: args.refine_vote,
            refine_marker: &args.refine_marker,
            cosc: args.cosc,
            stages: args.stages,
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
        "{} vs {} on {} (temperature {}, policy {}, {} games per seat, {:.1} s)",
        report.model,
        report.opponent,
        report.game,
        report.temperature,
        report.policy,
        args.games,
        report.seconds
    );
    println!("seat  mean return (95% CI)  exact    win    draw   loss   invalid  tokens");
    for s in &report.seats {
        let exact = s
            .exact_return
            .map_or_else(|| "   -   ".to_string(), |v| format!("{v:+.4}"));
        println!(
            "{:>4}  {:+.3} ± {:.3}        {exact}  {:.3}  {:.3}  {:.3}  {:.3}    {:.1}",
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
    match (&report.exact, &report.exact_unavailable) {
        (Some(e), _) => println!(
            "exact: the model tabulated at {} information sets, chance and the opponent \
             weighted exactly (mean over seats {:+.4}; mass outside the legal answers {:.4} \
             mean, {:.4} max; {:.1} s)",
            e.information_sets, e.mean_return, e.outside_mass_mean, e.outside_mass_max, e.seconds
        ),
        (None, Some(reason)) => println!("exact: not computed: {reason}"),
        (None, None) => {}
    }
    if report.exact.is_some() && report.policy == "sample" {
        println!(
            "  the exact values are of the model's distribution over the legal answers; free \
             text (--policy sample) matches them only as far as the model writes those answers \
             (--policy legal plays that distribution)"
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
    let (exact, exact_unavailable) =
        match exact_returns(game, args, opponent.as_ref(), &loaded, prompting)? {
            Ok(exact) => (Some(exact), None),
            Err(reason) => (None, Some(reason)),
        };
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
    let engine = spar_lm::LocalEngine {
        model: &loaded.model,
        tokenizer: &loaded.tokenizer,
    };
    let rollout = Rollout {
        decode,
        ..Rollout::new(&engine, &loaded.tokenizer, prompting.style, &params)
    };
    let scripted = PolicySeat(opponent.as_ref());
    let start = Instant::now();
    let bar = progress((args.games * n) as u64, args.json, "games");
    let mut seats = Vec::with_capacity(n);
    let mut transcripts = String::new();
    for seat in 0..n {
        let players: Vec<Seat<TextGame<G, G::Text>>> = (0..n)
            .map(|p| {
                if p == seat {
                    Seat::Model
                } else {
                    Seat::Scripted(&scripted)
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
            let batch = rollout.play(&mut episodes(&make_env, count, seed), &players, seed)?;
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
            exact_return: exact.as_ref().map(|e| e.returns[seat]),
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
        policy: match decode {
            Decode::Sample => "sample",
            Decode::Legal => "legal",
        },
        seats,
        exact,
        exact_unavailable,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The model's exact expected return in every seat against `opponent` (see [`ExactReport`]),
/// or why it is not computed: `--no-exact`, an opponent without an exact policy, or a game
/// tree above [`EXACT_MAX_NODES`].
fn exact_returns<G: TextView + Clone>(
    game: &G,
    args: &EvalArgs,
    opponent: &dyn Policy<G::State>,
    loaded: &spar_lm::load::LoadedModel,
    prompting: &ModelPrompting,
) -> anyhow::Result<Result<ExactReport, String>> {
    if args.no_exact {
        return Ok(Err("--no-exact".into()));
    }
    if !crate::players::has_exact_policy(&args.vs) {
        return Ok(Err(format!(
            "the opponent {:?} has no exact policy (exact values need random, uniform, \
             tabular:FILE, cfr:FILE or cfr+[:ITERATIONS])",
            args.vs
        )));
    }
    let tree = match GameTree::build_with_limit(game, EXACT_MAX_NODES) {
        Ok(tree) => tree,
        Err(spar_eval::Error::TreeTooLarge { .. }) => {
            return Ok(Err(format!(
                "the game tree of {} has more than {EXACT_MAX_NODES} nodes (exact values are \
                 computed up to that size: Kuhn Poker, Leduc Hold'em)",
                game.info().spec
            )))
        }
        Err(error) => return Err(error.into()),
    };
    let start = Instant::now();
    let table = crate::players::tabulate_model(game, loaded, prompting, args.json)?;
    let returns = spar_eval::returns_by_seat_on_tree(&tree, &table.policy, opponent)?;
    Ok(Ok(ExactReport {
        mean_return: returns.iter().sum::<f64>() / returns.len() as f64,
        returns,
        information_sets: table.legal_mass.len(),
        outside_mass_mean: table.mean_outside_mass(),
        outside_mass_max: table.max_outside_mass(),
        seconds: start.elapsed().as_secs_f64(),
    }))
}

fn load(path: &Path, device: &candle_core::Device) -> anyhow::Result<spar_lm::load::LoadedModel> {
    spar_lm::load::load_model(path, spar_lm::load::GgufMode::Quantized, device)
        .with_context(|| format!("loading the model {}", path.display()))
}
