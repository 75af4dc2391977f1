//! DPH-RL's reference answers ("The Choice of Divergence", arXiv 2509.07430): answers of the
//! initial model to problems it masters, sampled once and saved in the run directory, and the
//! divergence term computed on them.

use std::sync::Arc;

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use spar_games::tasks::{Split, Task};
use spar_lm::sample::SamplingParams;
use spar_lm::score::score_values_at_temperature;
use spar_lm::Llama;

use super::evaluate::{problem_prompt, sample_answers};
use super::update::aggregation;
use super::CHUNK;
use crate::config::tasks::TaskTrainConfig;
use crate::error::Result;
use crate::objectives::losses::{self, TokenInputs, TokenLoss};
use crate::rollout::prompt::PromptStyle;
use crate::trainer::Learner;

/// A stored answer of the reference model to a problem it masters (DPH-RL's pre-sampling).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct ReferenceAnswer {
    prompt: Vec<u32>,
    completion: Vec<u32>,
    /// The reference's per-token log-probabilities of `completion` (at the rollout
    /// temperature).
    logprobs: Vec<f32>,
}

/// DPH-RL's pre-sampling (Sec. 3 of "The Choice of Divergence"): `reference_samples` answers
/// to each of the first `reference_problems` training problems from the reference model; a
/// problem all of whose answers are right is mastered, and its first answer is kept with the
/// reference's log-probabilities.
pub(super) fn presample_reference(
    learner: &Learner,
    task: &Arc<dyn Task>,
    config: &TaskTrainConfig,
    style: PromptStyle,
) -> Result<Vec<ReferenceAnswer>> {
    let a = &config.algorithm;
    let mut drawn = Vec::new();
    for p in 0..a.reference_problems {
        drawn.push(problem_prompt(
            &learner.tokenizer,
            task,
            Split::Train,
            p as u64,
            config.task.seed,
            style,
        )?);
    }
    let prompts: Vec<Vec<u32>> = drawn.iter().map(|(_, ids)| ids.clone()).collect();
    let params = SamplingParams {
        temperature: config.rollout.temperature,
        max_tokens: config.rollout.max_tokens,
        ..SamplingParams::default()
    };
    let n = a.reference_samples;
    let completions = sample_answers(
        &learner.model.detached(),
        &learner.tokenizer,
        &prompts,
        n,
        &params,
        config.run.seed ^ 0xd9a5_0000,
    )?;
    let mut kept = Vec::new();
    for (p, (problem, prompt)) in drawn.iter().enumerate() {
        let answers = &completions[p * n..(p + 1) * n];
        if answers
            .iter()
            .all(|c| task.verify(problem, &c.text).is_correct())
        {
            kept.push((prompt.clone(), answers[0].token_ids.clone()));
        }
    }
    let mut out = Vec::with_capacity(kept.len());
    for chunk in kept.chunks(CHUNK) {
        let values = score_values_at_temperature(
            &learner.model.detached(),
            chunk,
            config.rollout.temperature,
        )?;
        for ((prompt, completion), logprobs) in chunk.iter().zip(values) {
            out.push(ReferenceAnswer {
                prompt: prompt.clone(),
                completion: completion.clone(),
                logprobs,
            });
        }
    }
    Ok(out)
}

/// The divergence term on a rotating minibatch of reference answers (coefficient applied).
pub(super) fn divergence_term(
    model: &Llama,
    divergence: &dyn TokenLoss,
    reference: &[ReferenceAnswer],
    offset: usize,
    size: usize,
    config: &TaskTrainConfig,
) -> Result<(Tensor, f64)> {
    let picked: Vec<&ReferenceAnswer> = (0..size.min(reference.len()))
        .map(|i| &reference[(offset + i) % reference.len()])
        .collect();
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = picked
        .iter()
        .map(|r| (r.prompt.clone(), r.completion.clone()))
        .collect();
    let scores = spar_lm::score::score_at_temperature(model, &pairs, config.rollout.temperature)?;
    let width = scores.token_logprobs.dim(1)?;
    let rows: Vec<&[f32]> = picked.iter().map(|r| r.logprobs.as_slice()).collect();
    let ref_logp = losses::token_grid(&rows, width, scores.mask.device())?;
    let inputs = TokenInputs {
        logp: &scores.token_logprobs,
        mask: &scores.mask,
        old_logp: None,
        ref_logp: Some(&ref_logp),
        advantages: None,
        correct: None,
        group_rate: None,
        entropy: None,
    };
    let (per_token, _) = divergence.per_token(&inputs)?;
    let term = losses::aggregate(&per_token, &scores.mask, aggregation(config))?;
    let value = f64::from(term.to_dtype(DType::F32)?.to_scalar::<f32>()?);
    Ok(((term * config.algorithm.divergence_coef)?, value))
}
