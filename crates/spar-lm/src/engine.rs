//! Where completions come from: the model in this process, or a server.
//!
//! Rollouts ask an [`Engine`] for completions of token-id prompts and for log-probabilities of
//! given completions. [`LocalEngine`] runs the in-process model; `spar_remote::RemoteEngine`
//! sends the same requests to an OpenAI-compatible server (`spar serve`, vLLM, SGLang). One
//! prompt's request may fail on a server (timeout, connection reset, a 5xx after every retry):
//! that is an `Err` for that prompt only, which the caller counts and treats as an invalid
//! answer; an `Err` of the whole call is a failure of the caller's own set-up.

use crate::error::Result;
use crate::model::Llama;
use crate::sample::{generate_streams, Completion, SamplingParams};
use crate::score::score_values_at_temperature;
use crate::tokenizer::TextTokenizer;

/// Why one prompt got no answer.
pub type Failure = String;

/// A source of completions and log-probabilities for token-id prompts.
pub trait Engine: Send + Sync {
    /// A completion of every prompt, sampled with `params`; prompt `i` draws from its own
    /// random stream `streams[i] = (seed, stream)` (ChaCha8's stream of that seed), so a
    /// prompt's answer does not depend on what else is in the call. `params.seed` is ignored.
    fn generate_streams(
        &self,
        prompts: &[Vec<u32>],
        params: &SamplingParams,
        streams: &[(u64, u64)],
    ) -> Result<Vec<std::result::Result<Completion, Failure>>>;

    /// [`Engine::generate_streams`] with prompt `i` on stream `i` of `params.seed`.
    fn generate(
        &self,
        prompts: &[Vec<u32>],
        params: &SamplingParams,
    ) -> Result<Vec<std::result::Result<Completion, Failure>>> {
        let streams: Vec<(u64, u64)> = (0..prompts.len() as u64)
            .map(|i| (params.seed, i))
            .collect();
        self.generate_streams(prompts, params, &streams)
    }

    /// For every `(prompt, completion)` pair, the log-probability of each completion token at
    /// `temperature` (logits divided by it).
    fn score(
        &self,
        pairs: &[(Vec<u32>, Vec<u32>)],
        temperature: f64,
    ) -> Result<Vec<std::result::Result<Vec<f32>, Failure>>>;
}

/// The in-process model.
#[derive(Debug, Clone, Copy)]
pub struct LocalEngine<'a> {
    /// The model.
    pub model: &'a Llama,
    /// Its tokenizer.
    pub tokenizer: &'a TextTokenizer,
}

impl Engine for LocalEngine<'_> {
    fn generate_streams(
        &self,
        prompts: &[Vec<u32>],
        params: &SamplingParams,
        streams: &[(u64, u64)],
    ) -> Result<Vec<std::result::Result<Completion, Failure>>> {
        Ok(generate_streams(
            self.model,
            self.tokenizer,
            prompts,
            params,
            streams,
            &mut |_, _, _| {},
        )?
        .into_iter()
        .map(Ok)
        .collect())
    }

    fn score(
        &self,
        pairs: &[(Vec<u32>, Vec<u32>)],
        temperature: f64,
    ) -> Result<Vec<std::result::Result<Vec<f32>, Failure>>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        Ok(score_values_at_temperature(self.model, pairs, temperature)?
            .into_iter()
            .map(Ok)
            .collect())
    }
}
