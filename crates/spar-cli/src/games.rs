//! `spar games`: the registry as a table or JSON.

use serde::Serialize;
use spar_core::{GameInfo, Information, Utility};
use spar_games::registry::{game_info, GAMES};

use crate::report::print_json;

/// Arguments of `spar games`.
#[derive(Debug, clap::Args)]
pub struct GamesArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Listing {
    #[serde(flatten)]
    info: GameInfo,
    parameters: &'static str,
}

/// Runs `spar games`.
pub fn run(args: &GamesArgs) -> anyhow::Result<()> {
    let mut listings = Vec::new();
    for entry in GAMES {
        listings.push(Listing {
            info: game_info(entry.name)?,
            parameters: entry.parameters,
        });
    }
    if args.json {
        return print_json(&listings);
    }
    println!(
        "{:<14} {:<22} {:>7} {:<12} {:<10} {:>6} {:>7} {:>7}  parameters",
        "name", "long name", "players", "utility", "info", "chance", "actions", "max len"
    );
    for Listing { info, parameters } in &listings {
        let utility = match info.utility {
            Utility::ZeroSum => "zero-sum".to_string(),
            Utility::ConstantSum(c) => format!("constant {c}"),
            Utility::GeneralSum => "general".to_string(),
        };
        let information = match info.information {
            Information::Perfect => "perfect",
            Information::Imperfect => "imperfect",
        };
        println!(
            "{:<14} {:<22} {:>7} {:<12} {:<10} {:>6} {:>7} {:>7}  {}",
            info.name,
            info.long_name,
            info.num_players,
            utility,
            information,
            if info.has_chance { "yes" } else { "no" },
            info.num_distinct_actions,
            info.max_game_length,
            if parameters.is_empty() {
                "-"
            } else {
                parameters
            }
        );
    }
    Ok(())
}
