//! Log-probabilities of given completions under a model: with gradient (for training) and
//! without (for evaluation; e.g. the probability a language-model policy gives each legal
//! action of a game).

use crate::error::{LmError, Result};
use crate::model::Llama;
use candle_core::{DType, Tensor, D};

/// Per-token log-probabilities of a batch of completions.
#[derive(Debug, Clone)]
pub struct Scores {
    /// `(batch, longest completion)`: `log p(completion[j] | prompt, completion[..j])`, 0 past
    /// the end of a completion. Carries the gradient when the model's weights are variables.
    pub token_logprobs: Tensor,
    /// `(batch, longest completion)`: 1 where a completion token is, 0 after its end.
    pub mask: Tensor,
}

impl Scores {
    /// `(batch,)`: the log-probability of each whole completion.
    pub fn sums(&self) -> candle_core::Result<Tensor> {
        self.token_logprobs.sum(1)
    }

    /// The per-token values as vectors (one per completion, its own length).
    pub fn to_vecs(&self) -> candle_core::Result<Vec<Vec<f32>>> {
        let values: Vec<Vec<f32>> = self.token_logprobs.to_vec2()?;
        let mask: Vec<Vec<f32>> = self.mask.to_vec2()?;
        Ok(values
            .into_iter()
            .zip(mask)
            .map(|(v, m)| {
                let n = m.iter().filter(|&&x| x > 0.0).count();
                v[..n].to_vec()
            })
            .collect())
    }
}

/// Scores `(prompt, completion)` pairs of token ids in one batch (right padding; every prompt
/// must have at least one token). Differentiable when the model trains.
pub fn score(model: &Llama, pairs: &[(Vec<u32>, Vec<u32>)]) -> Result<Scores> {
    if pairs.is_empty() {
        return Err(LmError::InvalidArgument("no completions to score".into()));
    }
    if pairs.iter().any(|(p, _)| p.is_empty()) {
        return Err(LmError::InvalidArgument("empty prompt".into()));
    }
    let b_sz = pairs.len();
    let total = pairs
        .iter()
        .map(|(p, c)| p.len() + c.len())
        .max()
        .unwrap_or(0);
    let longest = pairs.iter().map(|(_, c)| c.len()).max().unwrap_or(0).max(1);
    // Only positions from the shortest prompt's last token on predict completion tokens.
    let start = pairs.iter().map(|(p, _)| p.len()).min().unwrap_or(1) - 1;
    let mut ids = Vec::with_capacity(b_sz * total);
    let mut targets = Vec::with_capacity(b_sz * longest);
    let mut positions = Vec::with_capacity(b_sz * longest);
    let mut mask = Vec::with_capacity(b_sz * longest);
    for (prompt, completion) in pairs {
        let seq: Vec<u32> = prompt.iter().chain(completion).copied().collect();
        ids.extend(seq.iter().copied());
        ids.extend(std::iter::repeat_n(0, total - seq.len()));
        for j in 0..longest {
            let inside = j < completion.len();
            targets.push(if inside { completion[j] } else { 0 });
            positions.push(if inside {
                (prompt.len() + j - 1 - start) as u32
            } else {
                0
            });
            mask.push(if inside { 1f32 } else { 0.0 });
        }
    }
    let device = model.device();
    let ids = Tensor::from_vec(ids, (b_sz, total), device)?;
    // The last position predicts nothing inside the batch.
    let hidden = model.forward_hidden(&ids, &mut model.new_cache())?;
    let hidden = hidden.narrow(1, start, total - 1 - start)?;
    let hidden = hidden.gather(
        &Tensor::from_vec(positions, (b_sz, longest, 1), device)?
            .broadcast_as((b_sz, longest, model.config().hidden_size))?
            .contiguous()?,
        1,
    )?;
    let log_probs = candle_nn::ops::log_softmax(&model.logits(&hidden)?, D::Minus1)?;
    let targets = Tensor::from_vec(targets, (b_sz, longest, 1), device)?;
    let picked = log_probs.gather(&targets, 2)?.squeeze(2)?;
    let mask = Tensor::from_vec(mask, (b_sz, longest), device)?.to_dtype(picked.dtype())?;
    Ok(Scores {
        token_logprobs: (picked * &mask)?,
        mask,
    })
}

/// [`score`] without a gradient: the per-token log-probabilities of each completion.
pub fn score_values(model: &Llama, pairs: &[(Vec<u32>, Vec<u32>)]) -> Result<Vec<Vec<f32>>> {
    let scores = score(model, pairs)?;
    let detached = Scores {
        token_logprobs: scores.token_logprobs.detach().to_dtype(DType::F32)?,
        mask: scores.mask.detach(),
    };
    Ok(detached.to_vecs()?)
}
