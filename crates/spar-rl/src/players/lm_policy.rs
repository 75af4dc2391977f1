//! A language model as a policy of a tree game, tabulated exactly.
//!
//! At every information set of the game, the prompt the model would see there
//! ([`TextGame::observation_at`], written by [`crate::prompt`]) is followed by the canonical
//! completion of each legal action (the protocol's rendering of its name, e.g.
//! `\boxed{check}`, then the stop token), and the model scores each completion at the
//! sampling temperature `T`: `log p_T(c_a) = sum_j log softmax(logits_j / T)[c_a,j]`. The
//! policy is `pi(a) = p_T(c_a) / sum_b p_T(c_b)` over the legal actions, and
//! `legal mass = sum_b p_T(c_b)` is the probability that sampling produces exactly one of
//! the canonical completions. The rest (`1 - legal mass`: other wordings, invalid answers,
//! answers that do not stop) is reported separately, never folded into the policy.
//!
//! The table feeds spar's best response unchanged: NashConv and exploitability of the model.

use std::collections::BTreeMap;

use serde::Serialize;
use spar_core::{Game, GameText, TabularPolicy, TextGame};
use spar_eval::GameTree;
use spar_lm::score::score_values_at_temperature;
use spar_lm::{Llama, TextTokenizer};

use crate::error::{Error, Result};
use crate::rollout::prompt::{completion_ids, prompt_ids, PromptStyle};

/// How a model is turned into a policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LmPolicyOptions {
    /// Sampling temperature the policy is evaluated at (SPIRAL samples at 1.0).
    pub temperature: f64,
    /// How observations are written for the model.
    pub style: PromptStyle,
    /// Completions scored per forward pass.
    pub batch_size: usize,
}

impl Default for LmPolicyOptions {
    fn default() -> Self {
        LmPolicyOptions {
            temperature: 1.0,
            style: PromptStyle::Auto,
            batch_size: 32,
        }
    }
}

/// A model's exact policy on a game.
#[derive(Debug, Clone)]
pub struct LmPolicyTable {
    /// The action distribution at every information set (keyed by information-state string).
    pub policy: TabularPolicy,
    /// Per information state: the probability that sampling writes exactly one of the
    /// canonical legal completions.
    pub legal_mass: BTreeMap<String, f64>,
}

impl LmPolicyTable {
    /// The mean over information sets of `1 - legal mass`.
    pub fn mean_outside_mass(&self) -> f64 {
        let n = self.legal_mass.len().max(1) as f64;
        self.legal_mass.values().map(|m| 1.0 - m).sum::<f64>() / n
    }

    /// The largest `1 - legal mass` over information sets.
    pub fn max_outside_mass(&self) -> f64 {
        self.legal_mass
            .values()
            .map(|m| 1.0 - m)
            .fold(0.0, f64::max)
    }
}

/// Normalises log-probabilities into a distribution, and returns it with the total mass
/// `sum exp(logp)` (computed stably: the distribution is exact even when the mass underflows).
pub fn normalise(logps: &[f64]) -> (Vec<f64>, f64) {
    let max = logps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        let p = 1.0 / logps.len().max(1) as f64;
        return (vec![p; logps.len()], 0.0);
    }
    let weights: Vec<f64> = logps.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = weights.iter().sum();
    let mass = (max + sum.ln()).exp();
    (weights.into_iter().map(|w| w / sum).collect(), mass)
}

/// The exact policy of `model` on the game of `env` (its protocol renders the canonical
/// completions). `on_progress(done, total)` counts scored completions.
pub fn tabulate<G: Game, T: GameText<G::State>>(
    env: &TextGame<G, T>,
    model: &Llama,
    tokenizer: &TextTokenizer,
    options: &LmPolicyOptions,
    mut on_progress: impl FnMut(usize, usize),
) -> Result<LmPolicyTable> {
    if options.batch_size == 0 {
        return Err(Error::Invalid("batch size must be at least 1".into()));
    }
    let tree = GameTree::build(env.game())?;
    // One (prompt, completion) pair per legal action of every information set.
    let mut pairs: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    for (set_id, set) in tree.info_sets().iter().enumerate() {
        let state = &set.representative;
        let observation = env.observation_at(state, set.player);
        let prompt = prompt_ids(tokenizer, &observation, options.style)?;
        for &action in &set.legal_actions {
            let name = env.text().action_name(state, set.player, action);
            let completion = env.options().protocol.render(&name);
            pairs.push((prompt.clone(), completion_ids(tokenizer, &completion)?));
            owners.push(set_id);
        }
    }
    let context = model.config().max_position_embeddings;
    if let Some((i, (p, c))) = pairs
        .iter()
        .enumerate()
        .find(|(_, (p, c))| p.len() + c.len() > context)
    {
        return Err(Error::Invalid(format!(
            "the prompt at information state {:?} and its answer take {} tokens, more than the \
             model's context of {context} (max_position_embeddings): use a model with a longer \
             context (e.g. `spar lm pretrain --seq-len`) or a shorter prompt",
            tree.info_sets()[owners[i]].key,
            p.len() + c.len()
        )));
    }
    let mut logps: Vec<f64> = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(options.batch_size) {
        let scores = score_values_at_temperature(model, chunk, options.temperature)?;
        logps.extend(
            scores
                .iter()
                .map(|tokens| tokens.iter().map(|&v| f64::from(v)).sum::<f64>()),
        );
        on_progress(logps.len(), pairs.len());
    }
    let mut policy = TabularPolicy::default();
    let mut legal_mass = BTreeMap::new();
    let mut at = 0;
    for set in tree.info_sets() {
        let n = set.legal_actions.len();
        debug_assert!(owners[at..at + n]
            .iter()
            .all(|&o| tree.info_sets()[o].key == set.key));
        let (probs, mass) = normalise(&logps[at..at + n]);
        at += n;
        policy.insert(
            set.key.clone(),
            set.legal_actions.iter().copied().zip(probs).collect(),
        );
        legal_mass.insert(set.key.clone(), mass);
    }
    Ok(LmPolicyTable { policy, legal_mass })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_is_a_stable_softmax_with_its_mass() {
        let (p, mass) = normalise(&[0.5f64.ln(), 0.25f64.ln()]);
        assert!((p[0] - 2.0 / 3.0).abs() < 1e-12 && (p[1] - 1.0 / 3.0).abs() < 1e-12);
        assert!((mass - 0.75).abs() < 1e-12);
        // Far below f64's range: the distribution survives, the mass underflows to 0.
        let (p, mass) = normalise(&[-2000.0, -2000.0 - 2f64.ln()]);
        assert!((p[0] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(mass, 0.0);
        let (p, _) = normalise(&[f64::NEG_INFINITY, f64::NEG_INFINITY]);
        assert_eq!(p, vec![0.5, 0.5]);
    }
}
