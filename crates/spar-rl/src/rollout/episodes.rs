//! Episodes of any [`Env`] with the language model in every seat: the rollout of every loop
//! whose environment is not a tree game with opponents (verifiable tasks, and the loops built
//! on the kernel after them). Tree games with fixed or pool opponents and action-level play go
//! through [`super::play_batch`].

use spar_core::{Env, StepOutcome};
use spar_lm::sample::{generate_streams, FinishReason, SamplingParams};
use spar_lm::{Llama, TextTokenizer};

use super::prompt::{prompt_ids, PromptStyle};
use super::Sample;
use crate::error::{Error, Result};

/// Sequences sampled in one batch.
const CHUNK: usize = 256;

/// `size` copies of every environment, in order (environment `i`'s copies are `i * size ..
/// (i + 1) * size`): group sampling, GRPO's G answers to one prompt. Reset the originals
/// first; each copy then plays its own episode from the same start.
pub fn groups<E: Env + Clone>(envs: &[E], size: usize) -> Vec<E> {
    envs.iter()
        .flat_map(|e| std::iter::repeat_n(e, size).cloned())
        .collect()
}

/// Plays every environment of `envs` (already reset) to its end with `model` in every seat,
/// in rounds: each round, every environment waiting for a move gets one completion, all of a
/// round sampled in batches. Environment `e`'s answer in round `k` draws from random stream
/// `(seed ^ (k << 32), e)`, so an episode is a pure function of its environment, the weights
/// and `seed`, whatever else is in the batch. Returns one [`Sample`] per turn (its `episode`
/// the environment's index, `group` the index divided by `group_size`, `reward` the acting
/// player's return at the end) in the order played. `model` should be the learner's detached
/// view. Bad model output is an invalid move, handled by each environment's rule; an
/// environment still running after `max_rounds` rounds is an error (an environment that never
/// ends).
#[allow(clippy::too_many_arguments)]
pub fn play_envs<E: Env>(
    envs: &mut [E],
    model: &Llama,
    tokenizer: &TextTokenizer,
    style: PromptStyle,
    params: &SamplingParams,
    seed: u64,
    group_size: usize,
    max_rounds: u64,
) -> Result<Vec<Sample>> {
    let mut samples: Vec<(usize, Sample)> = Vec::new();
    for round in 0..=max_rounds {
        let waiting: Vec<(usize, usize)> = envs
            .iter()
            .enumerate()
            .filter_map(|(e, env)| env.current_player().map(|p| (e, p)))
            .collect();
        if waiting.is_empty() {
            break;
        }
        if round == max_rounds {
            return Err(Error::Invalid(format!(
                "{} episodes of {} still running after {max_rounds} rounds",
                waiting.len(),
                envs[waiting[0].0].name()
            )));
        }
        let mut asks = Vec::with_capacity(waiting.len());
        for &(e, player) in &waiting {
            let observation = envs[e].observation(player);
            let prompt = prompt_ids(tokenizer, &observation, style)?;
            let mut ask = Sample::new(observation.role, prompt, Vec::new());
            ask.episode = e;
            ask.group = (e / group_size.max(1)) as u64;
            ask.turn = envs[e].transcript().turns.len();
            asks.push((player, ask));
        }
        let round_seed = seed ^ (round << 32);
        for chunk in asks.chunks_mut(CHUNK) {
            let prompts: Vec<Vec<u32>> = chunk.iter().map(|(_, a)| a.prompt.clone()).collect();
            let streams: Vec<(u64, u64)> = chunk
                .iter()
                .map(|(_, a)| (round_seed, a.episode as u64))
                .collect();
            let completions = generate_streams(
                model,
                tokenizer,
                &prompts,
                params,
                &streams,
                &mut |_, _, _| {},
            )?;
            for ((player, ask), c) in chunk.iter_mut().zip(completions) {
                let step = envs[ask.episode].step(*player, &c.text);
                ask.invalid = matches!(step.outcome, StepOutcome::Invalid { .. });
                ask.truncated = c.finish_reason == FinishReason::Length;
                ask.completion = c.token_ids;
                ask.text = c.text;
            }
        }
        samples.extend(asks);
    }
    Ok(samples
        .into_iter()
        .map(|(player, mut s)| {
            s.reward = envs[s.episode].returns()[player];
            s
        })
        .collect())
}
