//! The typed configurations of `spar train`: [`selfplay::TrainConfig`] (games) and
//! [`tasks::TaskTrainConfig`] (a config with a `[task]` table), and the sections both share.
//! Every field has a default and a doc comment; an unknown or ill-typed key is an error that
//! names it; `--set section.key=value` overrides a field before the config is checked. Keys
//! with a fixed set of values are typed ([`choice::Choice`]): an unknown value is an error that
//! names the key and lists the accepted values.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rollout::prompt::PromptStyle;

pub mod agent_r;
pub mod bstar;
pub mod choice;
pub mod cosc;
pub mod propose;
pub mod selfcorrect;
pub mod selfplay;
pub mod tasks;

pub use selfplay::*;

/// Checks that every named value is a positive finite number; the error names the first that
/// is not (`config: NAME must be a positive number, got V`).
pub(crate) fn check_positive(values: &[(&str, f64)]) -> Result<()> {
    match values.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
        Some((name, v)) => Err(Error::Invalid(format!(
            "config: {name} must be a positive number, got {v}"
        ))),
        None => Ok(()),
    }
}

/// Checks that every named value is a finite number >= 0; the error names the first that is
/// not.
pub(crate) fn check_non_negative(values: &[(&str, f64)]) -> Result<()> {
    match values.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
        Some((name, v)) => Err(Error::Invalid(format!(
            "config: {name} must be a finite number >= 0, got {v}"
        ))),
        None => Ok(()),
    }
}

/// Checks that every named count is at least 1; the error names the first that is 0.
pub(crate) fn check_at_least_one(values: &[(&str, usize)]) -> Result<()> {
    match values.iter().find(|(_, v)| *v == 0) {
        Some((name, _)) => Err(Error::Invalid(format!("config: {name} must be >= 1"))),
        None => Ok(()),
    }
}

/// `[run]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Seed of everything random (weights, games, sampling, minibatches).
    pub seed: u64,
    /// Policy-improvement steps (collect, estimate, update).
    pub steps: usize,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// Also write every metric as TensorBoard scalars to `tensorboard/` in the run directory.
    pub tensorboard: bool,
    /// Stop the run (exit code 2, its last checkpoint intact) after this many optimiser steps
    /// in a row were skipped for a non-finite loss or gradient; >= 1. A resume may change it.
    pub max_consecutive_skips: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            seed: 0,
            steps: 20,
            checkpoint_every: 5,
            tensorboard: true,
            max_consecutive_skips: 10,
        }
    }
}

/// `[model]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// `scratch` (a fresh byte-level model of the size below) or a checkpoint directory or
    /// `.gguf` file (dequantised and trained in full).
    pub init: String,
    /// Residual width (scratch models).
    pub hidden: usize,
    /// Decoder layers (scratch models).
    pub layers: usize,
    /// Attention heads (scratch models).
    pub heads: usize,
    /// How observations are written: `auto`, `chat`, `raw`.
    #[serde(with = "choice")]
    pub prompt_style: PromptStyle,
    /// `[model.lora]`: train a LoRA adapter over the frozen base instead of every weight
    /// (absent: full fine-tuning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraSettings>,
}

/// `[model.lora]`: a LoRA adapter (Hu et al. 2021) is the only thing trained; the base weights
/// stay frozen. Checkpoints then hold the adapter in PEFT layout and `base.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraSettings {
    /// Rank `r` of the update `B A`.
    pub r: usize,
    /// Scale numerator: the update is multiplied by `alpha / r`.
    pub alpha: f64,
    /// The adapted projections: some of `q_proj`, `k_proj`, `v_proj`, `o_proj`, `gate_proj`,
    /// `up_proj`, `down_proj`, or `["all-linear"]` (all seven).
    pub targets: Vec<String>,
}

impl Default for LoraSettings {
    fn default() -> Self {
        LoraSettings {
            r: 8,
            alpha: 16.0,
            targets: vec!["q_proj".into(), "v_proj".into()],
        }
    }
}

impl LoraSettings {
    /// The adapter's PEFT configuration.
    pub fn lora_config(&self) -> spar_lm::lora::LoraConfig {
        let targets: Vec<&str> = self.targets.iter().map(String::as_str).collect();
        spar_lm::lora::LoraConfig::new(self.r, self.alpha, &targets)
    }

    /// Checks the fields; errors name them (`model.lora.r`, ...).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("config: {m}")));
        if self.r == 0 {
            return bad("model.lora.r must be >= 1".into());
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return bad(format!(
                "model.lora.alpha must be a positive number, got {}",
                self.alpha
            ));
        }
        if let Err(e) = self.lora_config().validate() {
            return bad(format!("model.lora.targets: {e}"));
        }
        Ok(())
    }
}

impl ModelConfig {
    /// Checks the model to build: a scratch model's shape (`model.hidden`, `model.layers`,
    /// `model.heads` >= 1, a whole, even number of dimensions per head), then `[model.lora]`.
    /// Errors name the key. Whether a loaded model exists is [`ModelConfig::check_init`]'s
    /// (a config parses without its model file).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("config: {m}")));
        if self.init == "scratch" {
            check_at_least_one(&[
                ("model.hidden", self.hidden),
                ("model.layers", self.layers),
                ("model.heads", self.heads),
            ])?;
            let mut cfg = spar_lm::Config::tiny(259, self.hidden, self.layers, self.heads);
            cfg.eos_token_id = Some(256);
            if let Err(e) = cfg.validate() {
                return bad(format!(
                    "model.hidden = {} with model.heads = {}: {e}; pick model.hidden a multiple \
                     of 2 x model.heads (64 with 4 heads)",
                    self.hidden, self.heads
                ));
            }
        }
        if let Some(lora) = &self.lora {
            lora.validate()?;
        }
        Ok(())
    }

    /// Checks that `model.init` (when not `scratch`) names a file or directory that exists,
    /// relative to the working directory: the kernel's check before a run writes anything
    /// (`crate::trainer::Settings::validate`).
    pub fn check_init(&self) -> Result<()> {
        if self.init != "scratch" && !Path::new(&self.init).exists() {
            return Err(Error::Invalid(format!(
                "config: model.init: {:?} does not exist; give a checkpoint directory or a \
                 .gguf file (relative to the working directory), or \"scratch\"",
                self.init
            )));
        }
        Ok(())
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            init: "scratch".into(),
            hidden: 64,
            layers: 2,
            heads: 4,
            prompt_style: PromptStyle::Auto,
            lora: None,
        }
    }
}

/// A config table deserialised into `T`; the error names the key (`config: rollout.policy:
/// "smple" is not one of sample, legal`). With [`apply_overrides`], how every config type
/// parses (`TrainConfig::parse`, `TaskTrainConfig::parse`): public so that a loop's config
/// outside this crate parses the same way (`docs/adding-a-loop.md`'s `GuessConfig::parse`).
pub fn from_table<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| {
            // Deserialised from a table (no source text), toml names the key path of the failing
            // value on the message's last line: "in `rollout.policy`".
            let text = e.to_string();
            let key = text
                .trim_end()
                .rsplit_once('\n')
                .and_then(|(_, last)| last.strip_prefix("in `")?.strip_suffix('`'));
            match key {
                Some(key) => Error::Invalid(format!("config: {key}: {}", plain_types(e.message()))),
                None => Error::Invalid(format!("config: {}", text.trim_end())),
            }
        })
}

/// A serde message with Rust's type names in plain words: `expected usize` is `expected a
/// whole number >= 0`, `expected f64` is `expected a number`.
fn plain_types(message: &str) -> String {
    [
        ("expected usize", "expected a whole number >= 0"),
        ("expected u64", "expected a whole number >= 0"),
        ("expected u32", "expected a whole number >= 0"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
    ]
    .iter()
    .fold(message.to_string(), |m, (from, to)| m.replace(from, to))
}

/// Parses TOML text into a table and applies `key=value` overrides (`ppo.clip=0.1`; a value
/// that is not TOML is taken as a string): what `spar train --set` does, for any config type.
/// An override of a key the type does not have is caught by [`from_table`] afterwards, when
/// the type denies unknown fields.
pub fn apply_overrides(text: &str, overrides: &[String]) -> Result<toml::Table> {
    let mut value: toml::Table =
        toml::from_str(text).map_err(|e| Error::Invalid(format!("config: {e}")))?;
    for item in overrides {
        let (key, raw) = item
            .split_once('=')
            .ok_or_else(|| Error::Invalid(format!("--set {item:?}: expected section.key=value")))?;
        let parsed: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
            Ok(mut t) => t.remove("v").expect("parsed key"),
            Err(_) => toml::Value::String(raw.to_string()),
        };
        let mut table = &mut value;
        let parts: Vec<&str> = key.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            table = table
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| Error::Invalid(format!("--set {key}: {part} is not a section")))?;
        }
        table.insert(parts[parts.len() - 1].to_string(), parsed);
    }
    Ok(value)
}

/// A TOML table's values by dotted key (`ppo.clip`), nested tables flattened, arrays kept as
/// values.
pub(crate) fn leaves(table: &toml::Table) -> std::collections::BTreeMap<String, toml::Value> {
    fn walk(
        prefix: &str,
        table: &toml::Table,
        out: &mut std::collections::BTreeMap<String, toml::Value>,
    ) {
        for (key, value) in table {
            let key = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(t) => walk(&key, t, out),
                v => {
                    out.insert(key, v.clone());
                }
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk("", table, &mut out);
    out
}

/// Checks that a config type's `choices()` lists exactly the keys with a fixed set of values,
/// with exactly the values its parser accepts: every string-valued key of the default config
/// (and `extra`) is set to a value no key accepts, and an error of the fixed-set form must come
/// from a listed key and list its values.
#[cfg(test)]
pub(crate) fn check_choices(
    default_toml: &str,
    extra: &[&str],
    choices: &[(&'static str, String)],
    parse: impl Fn(&[String]) -> Result<()>,
) {
    let table: toml::Table = toml::from_str(default_toml).expect("the default config is TOML");
    let mut keys: Vec<String> = leaves(&table)
        .into_iter()
        .filter(|(_, v)| v.is_str())
        .map(|(k, _)| k)
        .collect();
    keys.extend(extra.iter().map(|k| k.to_string()));
    let listed = |key: &str| {
        choices
            .iter()
            .find(|(k, _)| k.split(", ").any(|k| k == key))
            .map(|(_, values)| values)
    };
    let mut fixed = 0;
    for key in &keys {
        let error = parse(&[format!("{key}=not-a-value")])
            .err()
            .map(|e| e.to_string());
        match (listed(key), error) {
            (Some(values), Some(e)) if e.contains("is not one of") => {
                let expected = format!("config: {key}: \"not-a-value\" is not one of {values}");
                assert!(e.starts_with(&expected), "{key}: {e}\nexpected: {expected}");
                fixed += 1;
            }
            (None, Some(e)) => assert!(
                !e.contains("is not one of"),
                "{key} takes a fixed set of values but choices() does not list it: {e}"
            ),
            _ => {}
        }
    }
    assert!(
        fixed >= 5,
        "only {fixed} fixed-set keys found among {keys:?}"
    );
}
