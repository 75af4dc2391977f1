//! The log-probabilities an update compares against, computed once before it: the behaviour
//! policy's (the learner before the step, through its detached view) and the frozen
//! reference's, for every sample of a step.

use spar_lm::score::score_values_at_temperature;
use spar_lm::Llama;

use crate::error::Result;
use crate::rollout::Sample;

/// Sequences scored in one batch.
const CHUNK: usize = 256;

/// Sets `old_logprobs` of every sample from `model` (scored through `model.detached()`: no
/// autograd graph) and `ref_logprobs` from `reference` (left empty without one), at
/// `temperature`, in chunks of 256 sequences.
pub fn fill_old_and_reference(
    model: &Llama,
    reference: Option<&Llama>,
    samples: &mut [&mut Sample],
    temperature: f64,
) -> Result<()> {
    let inference = model.detached();
    for chunk in samples.chunks_mut(CHUNK) {
        let pairs: Vec<(Vec<u32>, Vec<u32>)> = chunk
            .iter()
            .map(|s| (s.prompt.clone(), s.completion.clone()))
            .collect();
        let old = score_values_at_temperature(&inference, &pairs, temperature)?;
        let refs = match reference {
            Some(r) => score_values_at_temperature(r, &pairs, temperature)?,
            None => vec![Vec::new(); pairs.len()],
        };
        for ((s, o), r) in chunk.iter_mut().zip(old).zip(refs) {
            s.old_logprobs = o;
            s.ref_logprobs = r;
        }
    }
    Ok(())
}
