//! A language model's exact policy on a game, for Python (`spar.model_policy`): the table
//! `spar exploitability --policy model:DIR --save-policy FILE` writes
//! (`spar_rl::players::ModelPrompting::tabulate`, which the CLI calls too). At every information set the model
//! scores the legal actions' canonical answers, prompted as it was trained (the checkpoint's
//! `prompting.json`, unless overridden), and the normalised probabilities are its policy,
//! which `spar.exploitability` and the other exact functions then evaluate.

use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use serde::Serialize;
use spar_core::{GameSpec, TabularPolicy};
use spar_games::text::TextView;
use spar_rl::players::{ModelPrompting, PromptFlags};

use crate::error::Result;

/// What `model_policy` returns (JSON): the table and how much of the model's probability
/// its canonical legal answers hold (the rest is other wordings and invalid answers).
#[derive(Serialize)]
struct ModelPolicy {
    game: String,
    policy: TabularPolicy,
    information_sets: usize,
    outside_mass_mean: f64,
    outside_mass_max: f64,
}

/// The exact policy of the model at `model` (a checkpoint directory or a .gguf file) on
/// `game` (JSON), with the prompting flags of `spar exploitability`.
#[pyfunction]
#[pyo3(signature = (game, model, temperature=None, protocol=None, prompt_style=None, view=None))]
pub fn model_policy(
    py: Python<'_>,
    game: &str,
    model: PathBuf,
    temperature: Option<f64>,
    protocol: Option<String>,
    prompt_style: Option<String>,
    view: Option<String>,
) -> PyResult<String> {
    let spec = GameSpec::parse(game).map_err(crate::error::Failure::from)?;
    let flags = PromptFlags {
        temperature,
        protocol,
        prompt_style,
        view,
    };
    let text = py.detach(|| spar_games::with_game!(&spec, |g| tabulate(&g, &model, &flags)))?;
    Ok(text)
}

fn tabulate<G: TextView + Clone>(game: &G, path: &Path, flags: &PromptFlags) -> Result<String> {
    let prompting = ModelPrompting::resolve(path, flags)?;
    let device = spar_lm::device::default_device();
    let loaded = spar_lm::load::load_model(path, spar_lm::load::GgufMode::Quantized, &device)?;
    let table = prompting.tabulate(game, &loaded.model, &loaded.tokenizer, |_, _| {})?;
    Ok(serde_json::to_string(&ModelPolicy {
        game: game.info().spec.clone(),
        information_sets: table.legal_mass.len(),
        outside_mass_mean: table.mean_outside_mass(),
        outside_mass_max: table.max_outside_mass(),
        policy: table.policy,
    })?)
}
