//! The reversal suite (`docs/reversal.md`): does a model trained on "The father of A is B."
//! answer "The child of B is ?" with A? Four arms on the same synthetic facts, the same
//! parameter count and the same training tokens:
//!
//! * `causal`: the Llama decoder, next-token prediction (the reversal curse, Berglund et al.
//!   2023);
//! * `masked`: the same blocks with bidirectional attention and the masked-LM objective
//!   ([`crate::mlm`]; Yang, Wu and Wang 2024: "not all LLMs succumb to the reversal curse");
//! * `spt`: the causal model on semantic-aware permutations of each sentence ([`spt`]; Guo et
//!   al. 2024);
//! * `concept`: the JEPA-style Wernicke-Broca model with an optional memory layer
//!   ([`concept`]; Wang and Sun 2025).
//!
//! Folders: [`data`] generates the corpora, [`spt`] the permutation transform, [`concept`] the
//! concept-level model, [`train`] trains one arm and writes its run directory, [`eval`] asks
//! every query and aggregates ranks.

pub mod concept;
pub mod data;
pub mod eval;
pub mod spt;
pub mod train;

use crate::error::{LmError, Result};
use crate::mlm::MaskingConfig;
use concept::ConceptConfig;
use data::CorpusConfig;
use serde::{Deserialize, Serialize};
use spt::SptConfig;

/// Which model and objective an arm trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// Next-token prediction with causal attention.
    Causal,
    /// Masked-token prediction with bidirectional attention.
    Masked,
    /// Next-token prediction on semantic-aware permutations of each sentence.
    Spt,
    /// Next-concept prediction in latent space (Wernicke-Broca, JEPA objective).
    Concept,
}

impl Arm {
    /// Every arm, in report order.
    pub const ALL: [Arm; 4] = [Arm::Causal, Arm::Masked, Arm::Spt, Arm::Concept];

    /// The arm's name in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Arm::Causal => "causal",
            Arm::Masked => "masked",
            Arm::Spt => "spt",
            Arm::Concept => "concept",
        }
    }

    /// The arm called `name`, or an error listing the arms.
    pub fn from_name(name: &str) -> Result<Arm> {
        Arm::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                LmError::InvalidArgument(format!(
                    "unknown arm {name:?}; arms: causal, masked, spt, concept"
                ))
            })
    }
}

/// The token models' shape (the concept arm splits `num_layers` per [`ConceptConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelShape {
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Decoder layers of the token models.
    pub num_layers: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Standard deviation of the initial weights.
    pub init_std: f64,
}

impl Default for ModelShape {
    fn default() -> Self {
        ModelShape {
            hidden_size: 64,
            num_layers: 4,
            num_heads: 4,
            init_std: 0.02,
        }
    }
}

/// Optimisation of one arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainShape {
    /// Optimiser steps.
    pub steps: usize,
    /// Training sentences per step (drawn uniformly with replacement, the same draws for every
    /// arm of a seed).
    pub batch_size: usize,
    /// AdamW learning rate (Loshchilov and Hutter 2019).
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Steps between two loss lines of `metrics.jsonl`.
    pub log_every: usize,
}

impl Default for TrainShape {
    fn default() -> Self {
        TrainShape {
            steps: 800,
            batch_size: 16,
            learning_rate: 3e-3,
            weight_decay: 0.01,
            log_every: 25,
        }
    }
}

/// One arm's run: `configs/reversal/<arm>.toml`, written back resolved to
/// `<run>/config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReversalConfig {
    /// The arm.
    pub arm: Arm,
    /// Seed of the weights, the batches, the masks and the permutations.
    #[serde(default)]
    pub seed: u64,
    /// The corpus (its own seed: the same corpus for every arm of an experiment seed).
    #[serde(default)]
    pub corpus: CorpusConfig,
    /// The token models' shape.
    #[serde(default)]
    pub model: ModelShape,
    /// Optimisation.
    #[serde(default)]
    pub train: TrainShape,
    /// The masked arm's masking.
    #[serde(default)]
    pub masking: MaskingConfig,
    /// The SPT arm's order probabilities.
    #[serde(default)]
    pub spt: SptConfig,
    /// The concept arm's shape.
    #[serde(default)]
    pub concept: ConceptConfig,
}

impl ReversalConfig {
    /// The default configuration of `arm`.
    pub fn new(arm: Arm) -> ReversalConfig {
        ReversalConfig {
            arm,
            seed: 0,
            corpus: CorpusConfig::default(),
            model: ModelShape::default(),
            train: TrainShape::default(),
            masking: MaskingConfig::default(),
            spt: SptConfig::default(),
            concept: ConceptConfig::default(),
        }
    }

    /// Checks every section (before anything is written).
    pub fn validate(&self) -> Result<()> {
        self.corpus.validate()?;
        self.masking.validate()?;
        self.spt.validate()?;
        self.concept.validate()?;
        let m = &self.model;
        if m.hidden_size == 0 || m.num_layers == 0 || m.num_heads == 0 {
            return Err(LmError::InvalidArgument(format!(
                "model: hidden_size {}, num_layers {}, num_heads {} must be at least 1",
                m.hidden_size, m.num_layers, m.num_heads
            )));
        }
        if !m.hidden_size.is_multiple_of(m.num_heads)
            || !(m.hidden_size / m.num_heads).is_multiple_of(2)
        {
            return Err(LmError::InvalidArgument(format!(
                "model: hidden_size {} must be num_heads {} times an even head width",
                m.hidden_size, m.num_heads
            )));
        }
        let t = &self.train;
        if t.steps == 0 || t.batch_size == 0 || t.log_every == 0 {
            return Err(LmError::InvalidArgument(format!(
                "train: steps {}, batch_size {}, log_every {} must be at least 1",
                t.steps, t.batch_size, t.log_every
            )));
        }
        if !(t.learning_rate > 0.0 && t.learning_rate.is_finite()) || t.weight_decay < 0.0 {
            return Err(LmError::InvalidArgument(format!(
                "train: learning_rate {} must be positive, weight_decay {} non-negative",
                t.learning_rate, t.weight_decay
            )));
        }
        Ok(())
    }
}
