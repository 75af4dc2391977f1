//! `spar tasks`: the verifiable tasks as a table or JSON.

use serde::Serialize;
use spar_games::tasks::TASKS;

use crate::report::print_json;

/// Arguments of `spar tasks`.
#[derive(Debug, clap::Args)]
pub struct TasksArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Listing {
    name: &'static str,
    description: &'static str,
    parameters: &'static str,
}

/// Runs `spar tasks`.
pub fn run(args: &TasksArgs) -> anyhow::Result<()> {
    let listings: Vec<Listing> = TASKS
        .iter()
        .map(|t| Listing {
            name: t.name,
            description: t.description,
            parameters: t.parameters,
        })
        .collect();
    if args.json {
        return print_json(&listings);
    }
    for l in &listings {
        println!(
            "{:<12} {}\n{:<12} parameters: {}",
            l.name, l.description, "", l.parameters
        );
    }
    Ok(())
}
