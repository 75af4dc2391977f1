//! Players on the command line: the names of [`spar_rl::players`] (built-in players,
//! `model:PATH`, `remote:URL[#NAME]`) and the flags of language-model players.

use spar_core::{Game, Policy};
use spar_games::heuristic::Heuristic;
use spar_games::text::TextView;
use spar_rl::players::PlayerOptions;
pub use spar_rl::players::{LmCounters, PLAYERS};

use crate::evaluate::PromptArgs;

/// Options of language-model players (`model:`, `remote:`) on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct LmArgs {
    #[command(flatten)]
    pub prompt: PromptArgs,
    /// Most tokens per answer of a language-model player [default: the checkpoint's
    /// prompting.json, else 64].
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// How `model:` players answer: sample (free text, parsed) or legal (the exact
    /// distribution over the legal actions' canonical answers) [default: prompting.json, else
    /// sample]. `remote:` players always sample.
    #[arg(long)]
    pub policy: Option<String>,
    /// Seconds before a remote call times out (it is then retried).
    #[arg(long, default_value_t = 120.0)]
    pub remote_timeout: f64,
    /// Retries of a failed remote call (timeouts, resets, 429 and 5xx answers) before the
    /// player forfeits the game.
    #[arg(long, default_value_t = 4)]
    pub remote_retries: u32,
}

impl LmArgs {
    /// The options as the library takes them.
    pub fn options(&self) -> PlayerOptions {
        PlayerOptions {
            prompt: self.prompt.flags(),
            max_tokens: self.max_tokens,
            policy: self.policy.clone(),
            remote_timeout: self.remote_timeout,
            remote_retries: self.remote_retries,
        }
    }
}

/// Prints each language-model player's decisions, invalid answers and failed calls to stderr.
pub fn report_counters(counters: &LmCounters) {
    for (name, counter) in counters {
        let c = counter.snapshot();
        eprintln!(
            "{name}: {} decisions, {} invalid answers, {} failed calls (each a forfeit)",
            c.decisions, c.invalid, c.failed
        );
    }
}

/// A built-in player (no language models).
pub fn make_player<G: Game + Heuristic>(
    game: &G,
    spec: &str,
) -> anyhow::Result<Box<dyn Policy<G::State>>> {
    Ok(spar_rl::players::make_player(game, spec)?)
}

/// Any player, language models included (see [`spar_rl::players::make_any_player`]).
pub fn make_any_player<G: Game + Heuristic + TextView + Clone + 'static>(
    game: &G,
    spec: &str,
    lm: &PlayerOptions,
    seed: u64,
    counters: &mut LmCounters,
) -> anyhow::Result<Box<dyn Policy<G::State>>> {
    if spec.starts_with("model:") {
        crate::lm::set_threads();
    }
    Ok(spar_rl::players::make_any_player(
        game, spec, lm, seed, counters,
    )?)
}
