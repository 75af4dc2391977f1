//! `spar play`: a game as text, exactly as a language model sees it.
//!
//! Each seat is `human` (reads completions from stdin, one line per answer, after seeing
//! the very prompt a model would see) or a built-in player (its chosen action is written
//! as the protocol's canonical completion, e.g. `\boxed{bet}`). Invalid input is handled by
//! the invalid-move rule in force. Transcripts go to a JSONL file, one episode per line.

use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use serde::Serialize;
use spar_core::text::protocol_by_name;
use spar_core::{
    sample_action, Env, Game, GameSpec, InvalidMoveRule, Policy, StepOutcome, TextOptions,
};
use spar_games::heuristic::Heuristic;
use spar_games::text::{text_env, TextView};

use crate::players::{make_player, PLAYERS};
use crate::report::print_json;
use crate::UsageError;

/// Arguments of `spar play`.
#[derive(Debug, clap::Args)]
pub struct PlayArgs {
    /// The game, e.g. `tictactoe`, `kuhn`, `kuhn(hands=5)`.
    #[arg(long, value_parser = crate::choices::game())]
    game: String,
    /// Player 0: `human` (answers typed on stdin) or a built-in player.
    #[arg(long, default_value = "human", value_parser = crate::choices::seat())]
    p0: String,
    /// Player 1: `human` or a built-in player.
    #[arg(long, default_value = "random", value_parser = crate::choices::seat())]
    p1: String,
    /// Seed of chance and of the built-in players; episode `i` uses `seed + i`.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of episodes.
    #[arg(long, default_value_t = 1)]
    games: u64,
    /// Write transcripts here as JSONL (one episode per line).
    #[arg(long)]
    transcript: Option<PathBuf>,
    /// How completions carry answers (boxed: SPIRAL's `\boxed{...}`; bracketed: TextArena's
    /// `[...]`; bare: the action alone).
    #[arg(long, default_value = "boxed", value_parser = crate::choices::protocol())]
    protocol: String,
    /// What an invalid move costs (spiral: -1.5 to the offender, +0.5 to the others;
    /// textarena: one retry, then a forfeit; retry:N: N retries, then a forfeit).
    #[arg(long, default_value = "spiral", value_parser = crate::choices::invalid_move_rule())]
    invalid_move_rule: String,
    /// Player turns before the episode is truncated as a draw (SPIRAL: 50).
    #[arg(long, default_value_t = 50)]
    max_turns: usize,
    /// What observations hold (full: rules, role, state, legal actions, answer format;
    /// norules: the same without the rules; compact: the information-state string and the
    /// legal actions).
    #[arg(long, default_value = "full", value_parser = crate::choices::view())]
    view: String,
    /// Print a JSON summary on stdout at the end (prompts still go to stdout for humans).
    #[arg(long)]
    json: bool,
}

enum Seat<S> {
    Human,
    Player(Box<dyn Policy<S>>),
}

#[derive(Debug, Serialize)]
struct PlaySummary {
    game: String,
    players: [String; 2],
    episodes: Vec<EpisodeSummary>,
}

#[derive(Debug, Serialize)]
struct EpisodeSummary {
    seed: u64,
    returns: Vec<f64>,
    invalid_moves: Vec<usize>,
    truncated: bool,
    turns: usize,
}

/// Runs `spar play`.
pub fn run(args: &PlayArgs) -> anyhow::Result<()> {
    let spec = GameSpec::parse(&args.game)?;
    let protocol = protocol_by_name(&args.protocol).ok_or_else(|| {
        UsageError(format!(
            "unknown protocol {:?}; accepted: boxed, bracketed, bare",
            args.protocol
        ))
    })?;
    let rule: InvalidMoveRule = args
        .invalid_move_rule
        .parse()
        .map_err(|message: String| UsageError(message))?;
    let options = TextOptions {
        protocol,
        invalid_move_rule: rule,
        max_turns: Some(args.max_turns),
        view: args.view.parse().map_err(UsageError)?,
    };
    let summary = spar_games::with_game!(&spec, |game| play_game(game, options, args))?;
    if args.json {
        print_json(&summary)?;
    }
    Ok(())
}

fn seat<G: Game + Heuristic>(game: &G, spec: &str) -> anyhow::Result<Seat<G::State>> {
    if spec == "human" {
        return Ok(Seat::Human);
    }
    make_player(game, spec)
        .map(Seat::Player)
        .with_context(|| format!("seats accept `human` or a player: {PLAYERS}"))
}

fn play_game<G: TextView + Heuristic>(
    game: G,
    options: TextOptions,
    args: &PlayArgs,
) -> anyhow::Result<PlaySummary> {
    if game.info().num_players != 2 {
        bail!(UsageError(format!(
            "spar play seats two players; {} has {}",
            game.info().spec,
            game.info().num_players
        )));
    }
    let seats = [seat(&game, &args.p0)?, seat(&game, &args.p1)?];
    let mut transcript = match &args.transcript {
        Some(path) => Some(BufWriter::new(File::create(path).with_context(|| {
            format!("creating the transcript file {}", path.display())
        })?)),
        None => None,
    };
    let mut env = text_env(game, options);
    let mut rng = spar_core::seeded_rng(args.seed);
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut episodes = Vec::new();
    for episode in 0..args.games {
        let seed = args.seed + episode;
        env.reset(seed);
        let mut shown_rules = [false, false];
        println!(
            "=== {} (episode {}, seed {seed}) ===",
            env.name(),
            episode + 1
        );
        while let Some(player) = env.current_player() {
            let completion = match &seats[player] {
                Seat::Human => {
                    let observation = env.observation(player);
                    if !shown_rules[player] {
                        println!("--- system (Player {player}) ---\n{}", observation.system);
                        shown_rules[player] = true;
                    }
                    println!("--- prompt (Player {player}) ---\n{}", observation.prompt());
                    print!("Player {player}> ");
                    std::io::stdout().flush()?;
                    let mut line = String::new();
                    if input.read_line(&mut line)? == 0 {
                        bail!("standard input closed before the game ended (player {player} was to answer)");
                    }
                    line.trim_end_matches(['\n', '\r']).to_string()
                }
                Seat::Player(policy) => {
                    let distribution = policy.action_probabilities(env.state());
                    let action = sample_action(&distribution, &mut rng);
                    let completion = env.completion_for(action);
                    println!("Player {player} ({}): {completion}", policy.name());
                    completion
                }
            };
            let step = env.step(player, &completion);
            match &step.outcome {
                StepOutcome::Move { action_text, .. } => {
                    if matches!(seats[player], Seat::Human) {
                        println!("Player {player} plays {action_text}.");
                    }
                }
                StepOutcome::Invalid { reason, retry } => {
                    let next = if *retry {
                        "try again"
                    } else {
                        "the rule in force ends the game"
                    };
                    println!("Invalid move by player {player}: {reason} ({next}).");
                }
            }
        }
        let record = env.transcript();
        println!(
            "Game over: returns {:?}{}",
            env.returns(),
            if record.truncated {
                " (turn limit: draw)"
            } else {
                ""
            }
        );
        if let Some(writer) = transcript.as_mut() {
            serde_json::to_writer(&mut *writer, record)?;
            writer.write_all(b"\n")?;
        }
        episodes.push(EpisodeSummary {
            seed,
            returns: env.returns(),
            invalid_moves: record.invalid_moves.clone(),
            truncated: record.truncated,
            turns: record.turns.len(),
        });
    }
    if let Some(mut writer) = transcript {
        writer.flush().context("writing the transcript")?;
    }
    Ok(PlaySummary {
        game: env.name(),
        players: [args.p0.clone(), args.p1.clone()],
        episodes,
    })
}
