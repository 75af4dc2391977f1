//! Players on the command line: the names of [`spar_rl::players`] (built-in players,
//! `model:PATH`, `remote:URL[#NAME]`), the flags of language-model players, and a language
//! model tabulated as an exact policy (`spar exploitability`, `spar eval`).

use spar_core::{Game, Policy};
use spar_games::heuristic::Heuristic;
use spar_games::text::TextView;

use crate::report::progress;
use spar_rl::players::PlayerOptions;
pub use spar_rl::players::{LmCounters, ModelPrompting, PLAYERS};
use spar_rl::LmPolicyTable;

/// How a language model is prompted (`spar exploitability --policy model:`, `spar eval`);
/// each flag defaults to the checkpoint's `prompting.json` (written by `spar train`), then to
/// the value named.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PromptArgs {
    /// Sampling temperature the model is evaluated at [default: prompting.json, else 1.0].
    #[arg(long)]
    pub temperature: Option<f64>,
    /// How answers are marked (boxed: SPIRAL's `\boxed{...}`; bracketed: TextArena's `[...]`;
    /// bare: the action alone) [default: prompting.json, else boxed].
    #[arg(long, value_parser = crate::choices::protocol())]
    pub protocol: Option<String>,
    /// How prompts are written (auto: the chat template when the model has one; chat; template:
    /// the Jinja chat template as `transformers` renders it; raw)
    /// [default: prompting.json, else auto].
    #[arg(long, value_parser = crate::choices::prompt_style())]
    pub prompt_style: Option<String>,
    /// What observations hold (full: rules, role, state, legal actions, answer format;
    /// norules: the same without the rules; compact: the information-state string and the
    /// legal actions) [default: prompting.json, else full].
    #[arg(long, value_parser = crate::choices::view())]
    pub view: Option<String>,
}

impl PromptArgs {
    /// The flags as the library takes them.
    pub fn flags(&self) -> spar_rl::players::PromptFlags {
        spar_rl::players::PromptFlags {
            temperature: self.temperature,
            protocol: self.protocol.clone(),
            prompt_style: self.prompt_style.clone(),
            view: self.view.clone(),
        }
    }
}

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
    #[arg(long, value_parser = crate::choices::decode())]
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

/// Whether the player named `spec` (as [`make_player`] and [`make_any_player`] read it,
/// `ALIAS=SPEC` included) plays a fixed distribution at every information state that
/// exact evaluation can tabulate: `random`, `uniform`, `tabular:FILE`, `cfr:FILE` and
/// `cfr+[:ITERATIONS]`. Language models (`model:`, `remote:`) sample free text, and the
/// searches (`minimax`, `alphabeta`) are left to sampled play.
pub fn has_exact_policy(spec: &str) -> bool {
    let spec = match spec.split_once('=') {
        Some((alias, inner)) if !alias.is_empty() && !alias.contains(':') && !inner.is_empty() => {
            inner
        }
        _ => spec,
    };
    let kind = spec.split_once(':').map_or(spec, |(kind, _)| kind);
    matches!(kind, "random" | "uniform" | "tabular" | "cfr" | "cfr+")
}

/// The exact policy of a loaded language model on `game`, tabulated as training tabulates
/// it ([`spar_rl::tabulate`] on the text environment of the model's protocol and view, at
/// its temperature and prompt style): at every information set, the normalised
/// probabilities of the legal actions' canonical answers. A progress bar counts the scored
/// answers unless `quiet`.
pub fn tabulate_model<G: TextView + Clone>(
    game: &G,
    loaded: &spar_lm::cli::LoadedModel,
    prompting: &ModelPrompting,
    quiet: bool,
) -> anyhow::Result<LmPolicyTable> {
    let bar = progress(0, quiet, "scoring legal completions");
    let table = prompting.tabulate(game, &loaded.model, &loaded.tokenizer, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_players_are_the_tabular_ones() {
        for spec in [
            "random",
            "uniform",
            "cfr+",
            "cfr+:50",
            "tabular:p.json",
            "cfr:p.json",
        ] {
            assert!(has_exact_policy(spec), "{spec}");
        }
        assert!(has_exact_policy("nash=cfr+:2000"));
        for spec in [
            "model:runs/k/checkpoints/step-000010",
            "remote:http://127.0.0.1:8000/v1#m",
            "minimax",
            "alphabeta:3",
            "cfr+=model:x",
            "nobody",
        ] {
            assert!(!has_exact_policy(spec), "{spec}");
        }
    }
}
