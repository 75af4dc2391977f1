//! Held-out evaluation of a model on a task (unbiased pass@k, majority vote, accuracy per
//! difficulty), and the prompts and sampling the loop shares with it.

use std::collections::BTreeMap;
use std::sync::Arc;

use spar_core::Env;
use spar_games::tasks::{Problem, Split, Task, TaskEnv, Verdict};
use spar_lm::sample::{generate_streams, SamplingParams};
use spar_lm::tokenizer::TextTokenizer;
use spar_lm::Llama;

use super::metrics::TaskEvaluation;
use super::CHUNK;
use crate::error::{Error, Result};
use crate::rollout::prompt::{prompt_ids, PromptStyle};

/// The prompt a model reads for `problem` of `task` (through [`TaskEnv`]).
pub(super) fn problem_prompt(
    tokenizer: &TextTokenizer,
    task: &Arc<dyn Task>,
    split: Split,
    index: u64,
    task_seed: u64,
    style: PromptStyle,
) -> Result<(Problem, Vec<u32>)> {
    let mut env = TaskEnv::new(task.clone(), split, task_seed);
    env.reset(index);
    let observation = env.observation(0);
    let problem = env
        .problem()
        .cloned()
        .ok_or_else(|| Error::Invalid(format!("task {} drew no problem", task.name())))?;
    Ok((problem, prompt_ids(tokenizer, &observation, style)?))
}

/// Samples `n` answers to each prompt (stream `(seed, p * n + j)` for answer `j` of prompt
/// `p`), in chunks.
pub(super) fn sample_answers(
    model: &Llama,
    tokenizer: &TextTokenizer,
    prompts: &[Vec<u32>],
    n: usize,
    params: &SamplingParams,
    seed: u64,
) -> Result<Vec<spar_lm::sample::Completion>> {
    let flat: Vec<(Vec<u32>, (u64, u64))> = prompts
        .iter()
        .enumerate()
        .flat_map(|(p, ids)| (0..n).map(move |j| (ids.clone(), (seed, (p * n + j) as u64))))
        .collect();
    let mut out = Vec::with_capacity(flat.len());
    for chunk in flat.chunks(CHUNK) {
        let ids: Vec<Vec<u32>> = chunk.iter().map(|(p, _)| p.clone()).collect();
        let streams: Vec<(u64, u64)> = chunk.iter().map(|(_, s)| *s).collect();
        out.extend(generate_streams(
            model,
            tokenizer,
            &ids,
            params,
            &streams,
            &mut |_, _, _| {},
        )?);
    }
    Ok(out)
}

/// The k of pass@k reported by default (`spar eval --task`, `spar.eval`): 1, 2, 4, ... up to
/// `samples`, and `samples` itself.
pub fn default_pass_at(samples: usize) -> Vec<usize> {
    let mut ks: Vec<usize> = std::iter::successors(Some(1usize), |k| k.checked_mul(2))
        .take_while(|&k| k <= samples)
        .collect();
    if ks.last() != Some(&samples) {
        ks.push(samples);
    }
    ks
}

/// Held-out evaluation: `samples` answers at `temperature` to each of the first `problems`
/// test problems of `task`; unbiased pass@k for every k of `pass_at`, majority vote, pass@1
/// per difficulty, answer diversity. Answer `j` of problem `p` draws from stream
/// `(seed, p * samples + j)`, so evaluations of different models share their random numbers.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_task(
    model: &Llama,
    tokenizer: &TextTokenizer,
    task: &Arc<dyn Task>,
    task_seed: u64,
    style: PromptStyle,
    problems: usize,
    samples: usize,
    pass_at: &[usize],
    temperature: f64,
    max_tokens: usize,
    seed: u64,
) -> Result<TaskEvaluation> {
    let available = task.split_size(Split::Test).unwrap_or(usize::MAX);
    let problems = problems.min(available);
    let mut drawn = Vec::with_capacity(problems);
    for p in 0..problems {
        drawn.push(problem_prompt(
            tokenizer,
            task,
            Split::Test,
            p as u64,
            task_seed,
            style,
        )?);
    }
    let prompts: Vec<Vec<u32>> = drawn.iter().map(|(_, ids)| ids.clone()).collect();
    let params = SamplingParams {
        temperature,
        max_tokens,
        ..SamplingParams::default()
    };
    let completions = sample_answers(model, tokenizer, &prompts, samples, &params, seed)?;
    let mut counts = Vec::with_capacity(problems);
    let mut by_level = Vec::with_capacity(problems);
    let (mut majority, mut unparsable, mut tokens, mut distinct) = (0usize, 0usize, 0usize, 0usize);
    for (p, (problem, _)) in drawn.iter().enumerate() {
        let answers = &completions[p * samples..(p + 1) * samples];
        let mut correct = 0;
        let mut extracted = Vec::with_capacity(samples);
        let mut right_answers = std::collections::BTreeSet::new();
        for c in answers {
            let verdict = task.verify(problem, &c.text);
            tokens += c.token_ids.len();
            if matches!(verdict, Verdict::Unparsable { .. }) {
                unparsable += 1;
            }
            let answer = task.extract_answer(&c.text);
            if verdict.is_correct() {
                correct += 1;
                if let Some(a) = &answer {
                    right_answers.insert(a.clone());
                }
            }
            extracted.push(answer);
        }
        distinct += right_answers.len();
        if let Some(voted) = spar_eval::pass_at_k::majority_vote(&extracted) {
            // The voted answer is right if any answer with that text was verified right.
            if right_answers.contains(&voted) {
                majority += 1;
            }
        }
        counts.push((samples, correct));
        by_level.push((problem.difficulty, samples, correct));
    }
    let mut pass = BTreeMap::new();
    for &k in pass_at {
        let value = spar_eval::pass_at_k::mean_pass_at_k(&counts, k)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        pass.insert(k.to_string(), value);
    }
    let total = (problems * samples).max(1) as f64;
    let per_problem: Vec<f64> = counts
        .iter()
        .map(|&(n, c)| c as f64 / n.max(1) as f64)
        .collect();
    Ok(TaskEvaluation {
        problems,
        samples,
        pass_at: pass,
        pass1_ci95: mean_ci95(&per_problem),
        majority_accuracy: majority as f64 / problems.max(1) as f64,
        accuracy_by_difficulty: spar_eval::pass_at_k::per_difficulty(&by_level)
            .into_iter()
            .map(|l| (l.difficulty.to_string(), l.pass_at_1))
            .collect(),
        unparsable_rate: unparsable as f64 / total,
        distinct_correct: distinct as f64 / problems.max(1) as f64,
        response_tokens: tokens as f64 / total,
    })
}

/// Half-width of the normal 95% interval of the mean of `values` (1.96 times the sample
/// standard deviation over the square root of their number); 0 for fewer than two.
pub(crate) fn mean_ci95(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    1.96 * (var / n as f64).sqrt()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_interval_of_a_mean_by_hand() {
        // [0, 1, 0, 1]: mean 1/2, sample variance 1/3, standard error sqrt(1/12).
        let half = super::mean_ci95(&[0.0, 1.0, 0.0, 1.0]);
        assert!(
            (half - 1.96 * (1.0f64 / 12.0).sqrt()).abs() < 1e-15,
            "{half}"
        );
        assert_eq!(super::mean_ci95(&[0.5]), 0.0);
        assert_eq!(super::mean_ci95(&[0.25, 0.25, 0.25]), 0.0);
    }
}
