//! ReVISE (Lee et al. 2025, "ReVISE: Learning to Refine at Test-Time via Intrinsic
//! Self-Verification", arXiv 2502.14565; the authors' `revise/make_dataset.py` and
//! `revise/dpo_trainer.py`): an answer either ends (end of sequence) or is followed by the
//! refine marker and a new attempt, so one answer holds attempts `y_1 [refine] y_2 ...`.
//!
//! * Pairs ([`revise_pairs`]): the answer is split at the marker and its attempts graded in
//!   order, stopping at the first wrong one; a right attempt `y` prefers ending (`y` EOS) to
//!   refining (`y [refine]`); a wrong one prefers refining, in stage 1 as `y [refine]` (the
//!   model learns to verify) and in stage 2 as `y [refine] gold` (it learns to correct),
//!   against `y` EOS. The chosen sequence's NLL (RPO's term) covers the tokens after the
//!   marker when it has one, so only the correction is imitated.
//! * Confidence-aware decoding ([`evaluate_refine`]): after an answer, `P(end)` against
//!   `P([refine])` is the model's confidence in it; several sampled answers vote with those
//!   weights.
//!
//! The marker is text (`selfcorrect.refine_marker`, [`REFINE_MARKER`] by default), not a new
//! vocabulary entry: spar's tokenizers are byte-level or a model's own, so the marker is scored
//! as the sequence of its tokens (`P([refine] | x, y)` is the product of their probabilities)
//! and generated as text. The paper's marker is one new token; for a byte-level model a
//! one-character marker is the closest match (docs/self-correction.md).

use serde::{Deserialize, Serialize};
use spar_games::tasks::{AttemptsEnv, Problem, Task, Verdict};
use spar_lm::tokenizer::TextTokenizer;
use spar_lm::Llama;

use super::evaluate::{play_test_episodes, AttemptsEvaluation, AttemptsSetup, EvalSampling};
use crate::error::{Error, Result};
use crate::objectives::preference::PreferencePair;
use crate::rollout::prompt::{stop_token, PromptStyle};
use crate::trainer::Scope;

/// The default refine marker: after an attempt, the model writes it to start a new one.
pub const REFINE_MARKER: &str = "[refine]";

/// Scored sequences per forward pass of the confidence scoring.
const SCORE_CHUNK: usize = 64;

/// An answer's attempts: its text split at every `marker` (an answer without the marker is
/// one attempt).
pub(super) fn attempts_of<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
    text.split(marker).collect()
}

/// An answer's attempts, each with whether the verifier accepts it.
pub(super) fn graded<'a>(
    task: &dyn Task,
    problem: &Problem,
    text: &'a str,
    marker: &str,
) -> Vec<(bool, &'a str)> {
    attempts_of(text, marker)
        .into_iter()
        .map(|a| (task.verify(problem, a).is_correct(), a))
        .collect()
}

/// Per episode of `envs` (one answer each), its attempts graded: the outcomes of SCoRe's
/// metrics, so Acc@t1 is the first attempt's accuracy and Acc@t2 the final answer's.
pub(super) fn outcomes<'a>(
    task: &dyn Task,
    envs: &'a [AttemptsEnv],
    marker: &str,
) -> Vec<Vec<(bool, &'a str)>> {
    envs.iter()
        .map(|e| match (e.problem(), e.answers().first()) {
            (Some(p), Some(text)) => graded(task, p, text, marker),
            _ => Vec::new(),
        })
        .collect()
}

/// The token ids of `attempts` joined by `marker`, each piece encoded on its own, with a
/// marker after the last one too when `trailing_marker`.
fn joined(
    tokenizer: &TextTokenizer,
    attempts: &[&str],
    trailing_marker: bool,
    marker: &str,
) -> Result<Vec<u32>> {
    let marker = tokenizer.encode(marker)?;
    let mut ids = Vec::new();
    for (i, a) in attempts.iter().enumerate() {
        ids.extend(tokenizer.encode(a)?);
        if i + 1 < attempts.len() || trailing_marker {
            ids.extend(&marker);
        }
    }
    Ok(ids)
}

/// ReVISE's pairs of one sampled answer to `prompt` whose attempts are `graded`, in
/// `stage` (1 or 2), `gold` the reference solution, `marker` the refine marker. The `i`-th attempt's pairs complete the
/// prompt followed by the earlier attempts and their markers; attempts are taken in order up
/// to and including the first wrong one (`make_dataset.py`). With `y` the attempt's tokens,
/// `M` the marker's, `E` the end token (ReVISE's pair table):
/// * `y` right: chosen `y E`, rejected `y M`; the NLL covers all of `y E`;
/// * `y` wrong, stage 1: chosen `y M`, rejected `y E`; no NLL (nothing follows the marker);
/// * `y` wrong, stage 2: chosen `y M gold E`, rejected `y E`; the NLL covers `gold E`.
///
/// Each pair comes with whether its chosen answer ends (a "stop" pair) or refines.
pub(super) fn revise_pairs(
    tokenizer: &TextTokenizer,
    prompt: &[u32],
    graded: &[(bool, &str)],
    stage: usize,
    gold: &str,
    marker_text: &str,
) -> Result<Vec<(PreferencePair, bool)>> {
    let end = stop_token(tokenizer)?;
    let marker = tokenizer.encode(marker_text)?;
    let texts: Vec<&str> = graded.iter().map(|(_, a)| *a).collect();
    let mut out = Vec::new();
    for (i, &(right, attempt)) in graded.iter().enumerate() {
        let mut context = prompt.to_vec();
        if i > 0 {
            context.extend(joined(tokenizer, &texts[..i], true, marker_text)?);
        }
        let y = tokenizer.encode(attempt)?;
        let ended: Vec<u32> = y.iter().copied().chain([end]).collect();
        let refined: Vec<u32> = y.iter().chain(&marker).copied().collect();
        let pair = if right {
            PreferencePair {
                prompt: context,
                nll_from: 0,
                chosen: ended,
                rejected: refined,
            }
        } else {
            let mut chosen = refined;
            let nll_from = chosen.len();
            if stage >= 2 {
                chosen.extend(tokenizer.encode(gold)?);
                chosen.push(end);
            }
            PreferencePair {
                prompt: context,
                chosen,
                rejected: ended,
                nll_from,
            }
        };
        out.push((pair, right));
        if !right {
            break;
        }
    }
    Ok(out)
}

/// Confidence-aware decoding over held-out answers (ReVISE's inference): each answer's
/// final attempt is weighed by the model's confidence in ending there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RefineVote {
    /// Accuracy of the plain majority vote over each problem's final answers.
    pub majority_accuracy: f64,
    /// Accuracy of the vote weighted by each answer's confidence `1 - p_refine`.
    pub weighted_accuracy: f64,
    /// AUROC of `p_refine` as a predictor of a wrong final answer (absent when every answer
    /// is right or every answer wrong).
    pub auroc: Option<f64>,
    /// Mean `p_refine = P([refine]) / (P(end) + P([refine]))` after the final attempts.
    pub p_refine: f64,
    /// Fraction of answers that refined at least once.
    pub refine_rate: f64,
}

impl RefineVote {
    /// The values as `eval/<task>/refine/<name>`.
    pub fn write(&self, task: &str, out: &mut Scope) {
        let key = |name: &str| format!("{task}/refine/{name}");
        out.eval(&key("majority_accuracy"), self.majority_accuracy);
        out.eval(&key("weighted_accuracy"), self.weighted_accuracy);
        out.eval_some(&key("auroc"), self.auroc);
        out.eval(&key("p_refine"), self.p_refine);
        out.eval(&key("refine_rate"), self.refine_rate);
    }
}

/// `p_refine = P(M | c) / (P(E | c) + P(M | c)) = sigmoid(log P(M | c) - log P(E | c))`: how
/// much more the model would refine than end after the context `c` (ReVISE's confidence is
/// `1 - p_refine`).
fn p_refine(log_end: f64, log_marker: f64) -> f64 {
    1.0 / (1.0 + (log_end - log_marker).exp())
}

/// For each (prompt, attempts) answer, `p_refine` after its final attempt, given the earlier
/// attempts and their markers: the model scores `final E` and `final M` after them.
fn refine_probabilities(
    model: &Llama,
    tokenizer: &TextTokenizer,
    answers: &[(Vec<u32>, Vec<&str>)],
    marker_text: &str,
) -> Result<Vec<f64>> {
    let end = stop_token(tokenizer)?;
    let marker = tokenizer.encode(marker_text)?;
    let mut seqs = Vec::with_capacity(2 * answers.len());
    for (prompt, attempts) in answers {
        let (last, earlier) = attempts.split_last().expect("an answer has an attempt");
        let mut context = prompt.clone();
        if !earlier.is_empty() {
            context.extend(joined(tokenizer, earlier, true, marker_text)?);
        }
        let y = tokenizer.encode(last)?;
        seqs.push((context.clone(), y.iter().copied().chain([end]).collect()));
        seqs.push((context, y.iter().chain(&marker).copied().collect()));
    }
    let mut out = Vec::with_capacity(answers.len());
    for chunk in seqs.chunks(SCORE_CHUNK) {
        let scores = spar_lm::score::score(model, chunk)?;
        let rows: Vec<Vec<f32>> = scores.token_logprobs.to_vec2()?;
        for (k, pair) in chunk.chunks(2).enumerate() {
            // The end token is the last of `final E`; the marker the last |M| of `final M`.
            let ended = &rows[2 * k][..pair[0].1.len()];
            let refined = &rows[2 * k + 1][..pair[1].1.len()];
            let log_end = f64::from(*ended.last().expect("a completion"));
            let log_marker: f64 = refined[refined.len() - marker.len()..]
                .iter()
                .map(|&x| f64::from(x))
                .sum();
            out.push(p_refine(log_end, log_marker));
        }
    }
    Ok(out)
}

/// ReVISE's held-out evaluation: `sampling.samples` answers to each of the first
/// `sampling.problems` test problems (one-attempt episodes of `setup`), each split at
/// `marker` and its attempts graded (SCoRe's metrics over them: Acc@t1 the first attempt's,
/// Acc@t2 the final answer's), and the confidence-aware vote over each problem's final
/// answers with the AUROC of `p_refine` as a predictor of a wrong one.
pub fn evaluate_refine(
    model: &Llama,
    tokenizer: &TextTokenizer,
    setup: &AttemptsSetup,
    style: PromptStyle,
    sampling: &EvalSampling,
    marker: &str,
) -> Result<(AttemptsEvaluation, RefineVote)> {
    let (envs, batch) = play_test_episodes(model, tokenizer, setup, style, sampling)?;
    let task = setup.task.as_ref();
    let outcomes = outcomes(task, &envs, marker);
    let mut prompts: Vec<Option<&[u32]>> = vec![None; envs.len()];
    for s in batch.turns.iter().filter(|s| s.role.seat == 0) {
        prompts[s.episode] = Some(&s.prompt);
    }
    let mut answers = Vec::with_capacity(envs.len());
    for (prompt, attempts) in prompts.into_iter().zip(&outcomes) {
        match (prompt, attempts.is_empty()) {
            (Some(prompt), false) => {
                answers.push((prompt.to_vec(), attempts.iter().map(|(_, a)| *a).collect()))
            }
            _ => {
                return Err(Error::Invalid(
                    "an evaluation episode played no answer".into(),
                ))
            }
        }
    }
    let p = refine_probabilities(model, tokenizer, &answers, marker)?;
    let n = sampling.samples.max(1);
    let (mut majority, mut weighted, mut unparsable, mut total) = (0usize, 0usize, 0usize, 0usize);
    let mut wrong = Vec::with_capacity(outcomes.len());
    for (problem_envs, (problem_outcomes, problem_p)) in
        envs.chunks(n).zip(outcomes.chunks(n).zip(p.chunks(n)))
    {
        let Some(problem) = problem_envs.first().and_then(AttemptsEnv::problem) else {
            continue;
        };
        let mut votes = Vec::with_capacity(n);
        let mut right_answers = std::collections::BTreeSet::new();
        for (attempts, &pr) in problem_outcomes.iter().zip(problem_p) {
            let (right, last) = attempts.last().copied().unwrap_or((false, ""));
            let answer = task.extract_answer(last);
            if right {
                right_answers.extend(answer.clone());
            }
            wrong.push(!right);
            votes.push((answer, 1.0 - pr));
            for (_, a) in attempts {
                total += 1;
                unparsable += usize::from(matches!(
                    task.verify(problem, a),
                    Verdict::Unparsable { .. }
                ));
            }
        }
        let plain: Vec<Option<String>> = votes.iter().map(|(a, _)| a.clone()).collect();
        let weights: Vec<(Option<&str>, f64)> =
            votes.iter().map(|(a, w)| (a.as_deref(), *w)).collect();
        let hit = |v: Option<String>| usize::from(v.is_some_and(|v| right_answers.contains(&v)));
        majority += hit(spar_eval::pass_at_k::majority_vote(&plain));
        weighted += hit(spar_eval::pass_at_k::weighted_vote(&weights));
    }
    let problems = (outcomes.len() / n).max(1) as f64;
    let refined = outcomes.iter().filter(|o| o.len() > 1).count();
    let evaluation = AttemptsEvaluation::of(
        &outcomes,
        sampling.samples,
        unparsable as f64 / total.max(1) as f64,
        batch.mean_response_tokens(),
        None,
    );
    let vote = RefineVote {
        majority_accuracy: majority as f64 / problems,
        weighted_accuracy: weighted as f64 / problems,
        auroc: spar_eval::pass_at_k::auroc(&p, &wrong),
        p_refine: p.iter().sum::<f64>() / p.len().max(1) as f64,
        refine_rate: refined as f64 / outcomes.len().max(1) as f64,
    };
    Ok((evaluation, vote))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> TextTokenizer {
        TextTokenizer::byte_level(&["<|end|>"]).unwrap()
    }

    fn bytes(s: &str) -> Vec<u32> {
        s.bytes().map(u32::from).collect()
    }

    #[test]
    fn pairs_follow_the_papers_table_and_stop_at_the_first_wrong_attempt() {
        let tok = tokenizer();
        let e = stop_token(&tok).unwrap();
        let m = bytes(REFINE_MARKER);
        let cat = |parts: &[&[u32]]| parts.concat();
        let prompt = vec![1, 2];
        // "7[refine]8[refine]9" with 7 wrong: one pair, at the first attempt.
        let graded = [(false, "7"), (true, "8"), (false, "9")];
        for (stage, chosen, nll_from) in [
            (1, cat(&[&bytes("7"), &m]), 9),
            (2, cat(&[&bytes("7"), &m, &bytes("8"), &[e]]), 9),
        ] {
            let pairs = revise_pairs(&tok, &prompt, &graded, stage, "8", REFINE_MARKER).unwrap();
            assert_eq!(pairs.len(), 1, "stage {stage}");
            let (p, stop) = &pairs[0];
            assert!(!stop);
            assert_eq!(p.prompt, prompt);
            assert_eq!(p.chosen, chosen, "stage {stage}");
            assert_eq!(p.rejected, cat(&[&bytes("7"), &[e]]));
            assert_eq!(p.nll_from, nll_from);
        }
        // "8[refine]9[refine]5": 8 right (stop pair), 9 wrong (refine pair, after "8[refine]"),
        // then nothing (5 is past the first wrong attempt).
        let graded = [(true, "8"), (false, "9"), (true, "5")];
        let pairs = revise_pairs(&tok, &prompt, &graded, 1, "8", REFINE_MARKER).unwrap();
        assert_eq!(pairs.len(), 2);
        let (p, stop) = &pairs[0];
        assert!(stop);
        assert_eq!(
            (&p.prompt, &p.chosen, &p.rejected, p.nll_from),
            (
                &prompt,
                &cat(&[&bytes("8"), &[e]]),
                &cat(&[&bytes("8"), &m]),
                0
            )
        );
        let (p, stop) = &pairs[1];
        assert!(!stop);
        assert_eq!(p.prompt, cat(&[&prompt, &bytes("8"), &m]));
        assert_eq!(p.chosen, cat(&[&bytes("9"), &m]));
        assert_eq!(p.rejected, cat(&[&bytes("9"), &[e]]));
        // A one-character marker: the stage-2 refine pair of a wrong "7" is "7?8" + end, its
        // NLL from the byte after the marker.
        let graded = [(false, "7")];
        let pairs = revise_pairs(&tok, &prompt, &graded, 2, "8", "?").unwrap();
        let (p, _) = &pairs[0];
        assert_eq!(p.chosen, cat(&[&bytes("7?8"), &[e]]));
        assert_eq!(p.nll_from, 2);
    }

    #[test]
    fn answers_split_at_the_marker_and_p_refine_is_a_sigmoid() {
        assert_eq!(attempts_of("12", REFINE_MARKER), vec!["12"]);
        assert_eq!(attempts_of("12[refine]13", REFINE_MARKER), vec!["12", "13"]);
        assert_eq!(attempts_of("12[refine]", REFINE_MARKER), vec!["12", ""]);
        assert_eq!(attempts_of("12?13?4", "?"), vec!["12", "13", "4"]);
        // P(E) = 0.6, P(M) = 0.2: p_refine = 0.2 / 0.8 = 1/4.
        assert!((p_refine(0.6f64.ln(), 0.2f64.ln()) - 0.25).abs() < 1e-12);
        assert_eq!(p_refine(0.0, 0.0), 0.5);
    }
}
