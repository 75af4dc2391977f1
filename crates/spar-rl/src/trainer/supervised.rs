//! Supervised steps (maximum likelihood on prompt/completion pairs): the warm start of every
//! loop and the PPO-ptx term of self-play.

use candle_core::Tensor;
use spar_lm::score::score;
use spar_lm::Llama;

use super::{AdamW, Learner};
use crate::error::Result;

/// `steps` AdamW steps of maximum likelihood on `data` (cycled in order, `batch_size` pairs a
/// step, gradient norm clipped to 1; a non-finite step is skipped). Returns the last loss.
pub fn supervised_steps(
    learner: &Learner,
    data: &[(Vec<u32>, Vec<u32>)],
    steps: usize,
    batch_size: usize,
    learning_rate: f64,
) -> Result<Option<f64>> {
    let mut opt = AdamW::new(learner.named_vars(), learning_rate, 0.0)?;
    let mut last = None;
    for step in 0..steps {
        let batch: Vec<(Vec<u32>, Vec<u32>)> = (0..batch_size)
            .map(|i| data[(step * batch_size + i) % data.len()].clone())
            .collect();
        let loss = nll(&learner.model, &batch)?;
        if let Some(applied) = opt.apply(&loss, 1.0)? {
            last = Some(applied.loss);
        }
    }
    Ok(last)
}

/// Mean negative log-likelihood per completion token of `pairs` (differentiable).
pub fn nll(model: &Llama, pairs: &[(Vec<u32>, Vec<u32>)]) -> Result<Tensor> {
    let scores = score(model, pairs)?;
    let tokens = scores.mask.sum_all()?;
    Ok(scores.token_logprobs.sum_all()?.neg()?.div(&tokens)?)
}
