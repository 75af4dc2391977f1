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
    /// `(batch, longest completion)`: the entropy `-sum_v p(v) log p(v)` of the whole
    /// next-token distribution at each completion position (0 past the end), when asked for
    /// ([`score_with_entropy`]). Differentiable like `token_logprobs`.
    pub entropy: Option<Tensor>,
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
    score_at_temperature(model, pairs, 1.0)
}

/// [`score`] under the sampling distribution at `temperature`: `log softmax(logits / T)`, the
/// log-probability that sampling at `T` (no top-k/top-p) produces each completion token.
pub fn score_at_temperature(
    model: &Llama,
    pairs: &[(Vec<u32>, Vec<u32>)],
    temperature: f64,
) -> Result<Scores> {
    score_with_entropy(model, pairs, temperature, false)
}

/// [`score_at_temperature`], and with `entropy` the entropy of the next-token distribution
/// (at `temperature`) at every completion position, for an entropy bonus.
pub fn score_with_entropy(
    model: &Llama,
    pairs: &[(Vec<u32>, Vec<u32>)],
    temperature: f64,
    entropy: bool,
) -> Result<Scores> {
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(LmError::InvalidArgument(format!(
            "scoring temperature must be positive, got {temperature}"
        )));
    }
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
    // (At least one position: when every completion is empty there is nothing to predict, and
    // the mask zeroes the one row kept.)
    let hidden = hidden
        .narrow(1, start, (total - 1 - start).max(1))?
        .contiguous()?;
    let hidden = hidden.gather(
        &Tensor::from_vec(positions, (b_sz, longest, 1), device)?
            .broadcast_as((b_sz, longest, model.config().hidden_size))?
            .contiguous()?,
        1,
    )?;
    let mut logits = model.logits(&hidden)?;
    if temperature != 1.0 {
        logits = (logits / temperature)?;
    }
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let targets = Tensor::from_vec(targets, (b_sz, longest, 1), device)?;
    let picked = log_probs.gather(&targets, 2)?.squeeze(2)?;
    let mask = Tensor::from_vec(mask, (b_sz, longest), device)?.to_dtype(picked.dtype())?;
    let entropy = if entropy {
        let h = (log_probs.exp()? * &log_probs)?.sum(D::Minus1)?.neg()?;
        Some((h * &mask)?)
    } else {
        None
    };
    Ok(Scores {
        token_logprobs: (picked * &mask)?,
        mask,
        entropy,
    })
}

/// [`score`] without a gradient: the per-token log-probabilities of each completion.
pub fn score_values(model: &Llama, pairs: &[(Vec<u32>, Vec<u32>)]) -> Result<Vec<Vec<f32>>> {
    score_values_at_temperature(model, pairs, 1.0)
}

/// [`score_at_temperature`] without a gradient.
pub fn score_values_at_temperature(
    model: &Llama,
    pairs: &[(Vec<u32>, Vec<u32>)],
    temperature: f64,
) -> Result<Vec<Vec<f32>>> {
    let scores = score_at_temperature(model, pairs, temperature)?;
    let detached = Scores {
        token_logprobs: scores.token_logprobs.detach().to_dtype(DType::F32)?,
        mask: scores.mask.detach(),
        entropy: None,
    };
    Ok(detached.to_vecs()?)
}

/// The next-token logits after `ids` (one forward pass without a cache kept; `spar lm
/// logits` prints them for comparisons with other implementations, tests compare models
/// with them). An empty `ids` is an [`LmError::InvalidArgument`].
pub fn next_token_logits(model: &Llama, ids: &[u32]) -> Result<Vec<f32>> {
    if ids.is_empty() {
        return Err(LmError::InvalidArgument(
            "next-token logits need at least one token of context".into(),
        ));
    }
    let input = Tensor::new(ids, model.device())?.unsqueeze(0)?;
    let logits = model.forward(&input, &mut model.new_cache())?;
    Ok(logits.get(0)?.get(ids.len() - 1)?.to_vec1()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::init_weights;
    use candle_core::{Device, Var};
    use candle_nn::{VarBuilder, VarMap};

    fn model(trainable: bool) -> (Llama, VarMap) {
        let mut cfg = Config::tiny(30, 16, 2, 4);
        cfg.num_key_value_heads = Some(2);
        let weights = init_weights(&cfg, 0.3, 17, &Device::Cpu).unwrap();
        let varmap = VarMap::new();
        let vb = if trainable {
            let mut data = varmap.data().lock().unwrap();
            for (name, t) in &weights {
                data.insert(name.clone(), Var::from_tensor(t).unwrap());
            }
            drop(data);
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)
        } else {
            VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu)
        };
        (Llama::new(&cfg, &vb).unwrap(), varmap)
    }

    /// log p(completion | prompt) token by token from full forward passes, one sequence at a
    /// time: the definition `score` must reproduce in its batched form.
    fn by_hand(model: &Llama, prompt: &[u32], completion: &[u32]) -> Vec<f32> {
        let seq: Vec<u32> = prompt.iter().chain(completion).copied().collect();
        let ids = Tensor::new(seq.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits: Vec<Vec<f32>> = model
            .forward(&ids, &mut model.new_cache())
            .unwrap()
            .get(0)
            .unwrap()
            .to_vec2()
            .unwrap();
        (0..completion.len())
            .map(|j| {
                let row = &logits[prompt.len() + j - 1];
                let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
                row[completion[j] as usize] - lse
            })
            .collect()
    }

    #[test]
    fn a_detached_view_scores_alike_and_follows_updates() {
        let (model, varmap) = model(true);
        let pairs = vec![(vec![1u32, 2, 3], vec![4u32, 5])];
        let view = model.detached();
        assert_eq!(
            score_values(&model, &pairs).unwrap(),
            score_values(&view, &pairs).unwrap()
        );
        // An optimiser writes into the variables: the view sees it (shared storage).
        let data = varmap.data().lock().unwrap();
        let var = &data["model.norm.weight"];
        var.set(&(var.as_tensor() * 2.0).unwrap()).unwrap();
        drop(data);
        assert_eq!(
            score_values(&model, &pairs).unwrap(),
            score_values(&view, &pairs).unwrap()
        );
        // The view's outputs carry no graph back to the variables.
        let scores = score(&view, &pairs).unwrap();
        let grads = scores
            .sums()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(varmap
            .all_vars()
            .iter()
            .all(|v| grads.get(v.as_tensor()).is_none()));
    }

    #[test]
    fn batched_scores_equal_one_sequence_at_a_time() {
        let (model, _) = model(false);
        let pairs = vec![
            (vec![1, 2, 3], vec![4, 5]),
            (vec![7], vec![8, 9, 10, 11]),
            (vec![12, 13, 14, 15, 16], vec![17]),
            (vec![2, 2], vec![]),
        ];
        let got = score_values(&model, &pairs).unwrap();
        for ((prompt, completion), values) in pairs.iter().zip(&got) {
            let want = by_hand(&model, prompt, completion);
            assert_eq!(values.len(), want.len());
            for (a, b) in values.iter().zip(&want) {
                assert!(
                    (a - b).abs() < 1e-5,
                    "{prompt:?} {completion:?}: {a} vs {b}"
                );
            }
        }
        // At temperature 2 the scores are log softmax(logits / 2).
        let hot = score_values_at_temperature(&model, &pairs[..1], 2.0).unwrap();
        let seq = Tensor::new(&[1u32, 2, 3, 4], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits: Vec<Vec<f32>> = model
            .forward(&seq, &mut model.new_cache())
            .unwrap()
            .get(0)
            .unwrap()
            .to_vec2()
            .unwrap();
        for (j, target) in [4usize, 5].iter().enumerate() {
            let row: Vec<f32> = logits[2 + j].iter().map(|v| v / 2.0).collect();
            let lse = row.iter().map(|v| v.exp()).sum::<f32>().ln();
            assert!((hot[0][j] - (row[*target] - lse)).abs() < 1e-5);
        }
        assert!(score_at_temperature(&model, &pairs, 0.0).is_err());
        // Only empty completions: nothing to predict, no error.
        let empty = score_values(&model, &[(vec![1, 2], vec![]), (vec![3, 4], vec![])]).unwrap();
        assert_eq!(empty, vec![Vec::<f32>::new(), Vec::new()]);
        assert!(score(&model, &[]).is_err());
        assert!(score(&model, &[(vec![], vec![1])]).is_err());
    }

    #[test]
    fn scores_carry_the_gradient_of_every_weight() {
        let (model, varmap) = model(true);
        let scores = score(&model, &[(vec![1, 2], vec![3, 4]), (vec![5], vec![6])]).unwrap();
        let loss = scores.sums().unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        for (name, var) in varmap.data().lock().unwrap().iter() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{name}: no gradient"));
            let n: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
            assert!(n > 0.0 && n.is_finite(), "{name}: gradient norm {n}");
        }
    }

    #[test]
    fn next_token_logits_are_the_last_positions_row() {
        let (model, _) = model(false);
        let ids = [3u32, 7, 11];
        let input = Tensor::new(&ids[..], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let rows: Vec<Vec<f32>> = model
            .forward(&input, &mut model.new_cache())
            .unwrap()
            .get(0)
            .unwrap()
            .to_vec2()
            .unwrap();
        let logits = next_token_logits(&model, &ids).unwrap();
        assert_eq!(logits.len(), 30);
        assert_eq!(logits, rows[2]);
        assert_ne!(logits, rows[1]);
        assert!(matches!(
            next_token_logits(&model, &[]),
            Err(LmError::InvalidArgument(_))
        ));
    }
}
