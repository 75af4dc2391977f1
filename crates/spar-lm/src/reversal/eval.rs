//! Asking a trained arm every query of a corpus: the rank of the right entity among all
//! entities (every arm), and greedy generation (left-to-right arms).
//!
//! Each arm asks a question the way its objective reads text:
//!
//! | arm | forward | reverse | reverse_infill | reverse_order |
//! |---|---|---|---|---|
//! | causal, SPT | score " B." after "The father of A is" | score " A." after "The child of B is" | — | score " A " after "B is" |
//! | masked | fill "The father of A is [MASK]." | fill "The child of B is [MASK]." | fill "The father of [MASK] is B." | — |
//! | concept | next concept after [The father of, A, is] | after [The child of, B, is] | — | — |
//!
//! A candidate's score is its log-probability (left-to-right: `sum_i log p(token_i | prompt,
//! earlier tokens)`; masked: [`crate::mlm::infill_scores`]) or, for the concept arm, its
//! logit. The rank of a query is `1 + the number of wrong entities scoring at least as high as
//! the best accepted one` (ties count against the model), so `top1` (rank 1) is exact match
//! over candidates, and chance is `accepted / entities`.

use crate::error::Result;
use crate::mlm::{infill_scores, MASK_TOKEN};
use crate::model::Llama;
use crate::reversal::concept::ConceptModel;
use crate::reversal::data::{Corpus, Direction, Query, RelationKind, Split, MASK_TEXT};
use crate::sample::{generate, SamplingParams};
use crate::tokenizer::TextTokenizer;
use candle_core::{DType, Tensor, D};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// A trained model that can score candidate answers to a query.
#[derive(Debug)]
pub enum Answerer<'a> {
    /// A left-to-right language model (causal and SPT arms).
    Causal(&'a Llama, &'a TextTokenizer),
    /// A bidirectional masked model.
    Masked(&'a Llama, &'a TextTokenizer),
    /// The concept-level model.
    Concept(&'a ConceptModel),
}

/// One query's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryResult {
    /// The query's fact.
    pub fact: usize,
    /// Its split.
    pub split: Split,
    /// Its relation kind.
    pub kind: RelationKind,
    /// Its direction.
    pub direction: Direction,
    /// Rank of the best accepted entity among all entities (1 is best).
    pub rank: usize,
    /// How many entities are accepted answers.
    pub accepted: usize,
    /// Whether greedy generation produced an accepted entity (left-to-right arms only).
    pub greedy: Option<bool>,
}

/// The directions an answerer is asked.
pub fn directions(answerer: &Answerer<'_>) -> &'static [Direction] {
    match answerer {
        Answerer::Masked(..) => &[
            Direction::Forward,
            Direction::Reverse,
            Direction::ReverseInfill,
        ],
        Answerer::Causal(..) => &[
            Direction::Forward,
            Direction::Reverse,
            Direction::ReverseOrder,
        ],
        Answerer::Concept(..) => &[Direction::Forward, Direction::Reverse],
    }
}

/// Rank of the best accepted candidate (module docs).
pub fn rank_of(scores: &[f32], candidates: &[String], accepted: &[String]) -> usize {
    let accepted: HashSet<&str> = accepted.iter().map(String::as_str).collect();
    let best = candidates
        .iter()
        .zip(scores)
        .filter(|(c, _)| accepted.contains(c.as_str()))
        .map(|(_, &s)| s)
        .fold(f32::NEG_INFINITY, f32::max);
    1 + candidates
        .iter()
        .zip(scores)
        .filter(|(c, &s)| !accepted.contains(c.as_str()) && s >= best)
        .count()
}

/// Log-probabilities of every candidate continuation after `prompt` with a causal model: the
/// prompt once, then every candidate in batches over a copy of its cache.
fn continuation_scores(model: &Llama, prompt: &[u32], candidates: &[Vec<u32>]) -> Result<Vec<f32>> {
    let device = model.device();
    let mut cache = model.new_cache();
    let ids = Tensor::new(prompt, device)?.unsqueeze(0)?;
    let logits = model.forward(&ids, &mut cache)?;
    let first: Vec<f32> =
        candle_nn::ops::log_softmax(&logits.get(0)?.get(prompt.len() - 1)?, D::Minus1)?
            .to_dtype(DType::F32)?
            .to_vec1()?;
    let mut out = Vec::with_capacity(candidates.len());
    for chunk in candidates.chunks(256) {
        let longest = chunk.iter().map(Vec::len).max().unwrap_or(1);
        let mut flat = Vec::with_capacity(chunk.len() * longest);
        for c in chunk {
            flat.extend_from_slice(c);
            flat.extend(std::iter::repeat_n(0, longest - c.len()));
        }
        let input = Tensor::from_vec(flat, (chunk.len(), longest), device)?;
        let mut copies = cache.repeat_batch(chunk.len())?;
        let log_probs: Vec<Vec<Vec<f32>>> =
            candle_nn::ops::log_softmax(&model.forward(&input, &mut copies)?, D::Minus1)?
                .to_dtype(DType::F32)?
                .to_vec3()?;
        for (row, c) in chunk.iter().enumerate() {
            let rest: f32 = (1..c.len())
                .map(|i| log_probs[row][i - 1][c[i] as usize])
                .sum();
            out.push(first[c[0] as usize] + rest);
        }
    }
    Ok(out)
}

/// Scores of every entity as the answer to `query`.
fn entity_scores(
    answerer: &Answerer<'_>,
    query: &Query,
    entities: &[String],
    concept_vectors: Option<&Tensor>,
) -> Result<Vec<f32>> {
    match answerer {
        Answerer::Causal(model, tok) => {
            let prompt = tok.encode(&query.text())?;
            // In reversed order a space, not a full stop, follows the answer.
            let end = if query.direction == Direction::ReverseOrder {
                " "
            } else {
                "."
            };
            let candidates = entities
                .iter()
                .map(|e| tok.encode(&format!(" {e}{end}")))
                .collect::<Result<Vec<_>>>()?;
            continuation_scores(model, &prompt, &candidates)
        }
        Answerer::Masked(model, tok) => {
            let text = match query.direction {
                Direction::ReverseInfill => query.text(),
                _ => format!("{} {MASK_TEXT}.", query.text()),
            };
            let (before, after) = text.split_once(MASK_TEXT).expect("a blank");
            let left = tok.encode(before)?;
            let mut right = tok.encode(after)?;
            right.extend(tok.eos_ids().first());
            let mask_id = tok
                .token_to_id(MASK_TOKEN)
                .expect("a masked arm's tokenizer has the mask token");
            let candidates = entities
                .iter()
                .map(|e| tok.encode(e))
                .collect::<Result<Vec<_>>>()?;
            infill_scores(model, &left, &right, &candidates, mask_id)
        }
        Answerer::Concept(model) => model.next_concept_scores(
            &query.units,
            concept_vectors.expect("entity vectors for the concept arm"),
        ),
    }
}

/// Asks every query of `corpus` in the directions of `answerer` (only queries of facts in
/// `facts`, when given) and returns the outcome of each. `on_query` runs after each.
pub fn evaluate(
    answerer: &Answerer<'_>,
    corpus: &Corpus,
    facts: Option<&HashSet<usize>>,
    on_query: &mut dyn FnMut(),
) -> Result<Vec<QueryResult>> {
    let wanted = directions(answerer);
    let queries: Vec<Query> = corpus
        .queries()
        .into_iter()
        .filter(|q| wanted.contains(&q.direction))
        .filter(|q| facts.is_none_or(|f| f.contains(&q.fact)))
        .collect();
    let concept_vectors = match answerer {
        Answerer::Concept(model) => Some(model.encode(&corpus.entities)?.detach()),
        _ => None,
    };
    let greedy = match answerer {
        Answerer::Causal(model, tok) => Some(greedy_answers(model, tok, &queries)?),
        _ => None,
    };
    let mut out = Vec::with_capacity(queries.len());
    for (i, query) in queries.iter().enumerate() {
        let scores = entity_scores(answerer, query, &corpus.entities, concept_vectors.as_ref())?;
        out.push(QueryResult {
            fact: query.fact,
            split: query.split,
            kind: query.kind,
            direction: query.direction,
            rank: rank_of(&scores, &corpus.entities, &query.accepted),
            accepted: query.accepted.len(),
            greedy: greedy
                .as_ref()
                .map(|g| query.accepted.iter().any(|a| *a == g[i])),
        });
        on_query();
    }
    Ok(out)
}

/// Greedy completions of every query's prompt, up to the full stop, trimmed (for
/// [`Direction::ReverseOrder`], the first word).
fn greedy_answers(model: &Llama, tok: &TextTokenizer, queries: &[Query]) -> Result<Vec<String>> {
    let params = SamplingParams {
        stop: vec![".".to_string()],
        ..SamplingParams::greedy(24)
    };
    let mut out = Vec::with_capacity(queries.len());
    for chunk in queries.chunks(64) {
        let prompts = chunk
            .iter()
            .map(|q| tok.encode(&q.text()))
            .collect::<Result<Vec<_>>>()?;
        for (q, c) in chunk.iter().zip(generate(model, tok, &prompts, &params)?) {
            let text = c.text.trim();
            // In reversed order the answer is followed by the next unit: its first word.
            out.push(match q.direction {
                Direction::ReverseOrder => text.split(' ').next().unwrap_or("").to_string(),
                _ => text.to_string(),
            });
        }
    }
    Ok(out)
}

/// Mean and 95% half-width (normal approximation, `1.96 sqrt(p (1 - p) / n)`) of a rate.
fn rate(hits: usize, n: usize) -> (f64, f64) {
    let p = hits as f64 / n as f64;
    (p, 1.96 * (p * (1.0 - p) / n as f64).sqrt())
}

/// Aggregate metrics, flat and namespaced: `eval/<split>/<direction>/<metric>` with `top1`
/// (exact match over candidates) and its `top1_ci95`, `chance_top1`, `mrr`, `mean_rank`,
/// `greedy` (left-to-right arms), `n`, and `top1` per relation kind
/// (`eval/<split>/<direction>/<kind>/top1`).
pub fn summarize(results: &[QueryResult], entities: usize) -> BTreeMap<String, f64> {
    let mut groups: BTreeMap<(Split, Direction), Vec<&QueryResult>> = BTreeMap::new();
    for r in results {
        groups.entry((r.split, r.direction)).or_default().push(r);
    }
    let mut out = BTreeMap::new();
    for ((split, direction), rs) in groups {
        let key = |m: &str| format!("eval/{}/{}/{m}", split.name(), direction.name());
        let n = rs.len();
        let (top1, ci) = rate(rs.iter().filter(|r| r.rank == 1).count(), n);
        out.insert(key("top1"), top1);
        out.insert(key("top1_ci95"), ci);
        out.insert(
            key("chance_top1"),
            rs.iter()
                .map(|r| r.accepted as f64 / entities as f64)
                .sum::<f64>()
                / n as f64,
        );
        out.insert(
            key("mrr"),
            rs.iter().map(|r| 1.0 / r.rank as f64).sum::<f64>() / n as f64,
        );
        out.insert(
            key("mean_rank"),
            rs.iter().map(|r| r.rank as f64).sum::<f64>() / n as f64,
        );
        out.insert(key("n"), n as f64);
        if rs.iter().all(|r| r.greedy.is_some()) {
            let hits = rs.iter().filter(|r| r.greedy == Some(true)).count();
            out.insert(key("greedy"), hits as f64 / n as f64);
        }
        for kind in [RelationKind::OneToOne, RelationKind::ManyToOne] {
            let of_kind: Vec<_> = rs.iter().filter(|r| r.kind == kind).collect();
            if !of_kind.is_empty() {
                let name = serde_json::to_value(kind).expect("json");
                let hits = of_kind.iter().filter(|r| r.rank == 1).count();
                out.insert(
                    key(&format!("{}/top1", name.as_str().expect("a name"))),
                    hits as f64 / of_kind.len() as f64,
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_count_wrong_entities_at_least_as_good_as_the_best_right_one() {
        let names: Vec<String> = ["A", "B", "C", "D"].map(String::from).to_vec();
        let accept = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(rank_of(&[0.9, 0.1, 0.5, 0.2], &names, &accept(&["A"])), 1);
        assert_eq!(rank_of(&[0.9, 0.1, 0.5, 0.2], &names, &accept(&["D"])), 3);
        // The best of several accepted answers counts; a tie counts against the model.
        assert_eq!(
            rank_of(&[0.9, 0.1, 0.5, 0.2], &names, &accept(&["B", "C"])),
            2
        );
        assert_eq!(rank_of(&[0.5, 0.5, 0.5, 0.5], &names, &accept(&["A"])), 4);
    }

    #[test]
    fn summaries_count_by_split_and_direction() {
        let r = |split, direction, rank, greedy| QueryResult {
            fact: 0,
            split,
            kind: RelationKind::OneToOne,
            direction,
            rank,
            accepted: 1,
            greedy,
        };
        let results = vec![
            r(Split::OneWay, Direction::Forward, 1, Some(true)),
            r(Split::OneWay, Direction::Forward, 3, Some(false)),
            r(Split::OneWay, Direction::Reverse, 4, Some(false)),
        ];
        let m = summarize(&results, 10);
        assert_eq!(m["eval/one_way/forward/top1"], 0.5);
        // 1.96 * sqrt(0.25 / 2) = 0.692965
        assert!((m["eval/one_way/forward/top1_ci95"] - 0.692_965).abs() < 1e-6);
        assert_eq!(m["eval/one_way/forward/mrr"], (1.0 + 1.0 / 3.0) / 2.0);
        assert_eq!(m["eval/one_way/forward/mean_rank"], 2.0);
        assert_eq!(m["eval/one_way/forward/greedy"], 0.5);
        assert_eq!(m["eval/one_way/forward/chance_top1"], 0.1);
        assert_eq!(m["eval/one_way/reverse/top1"], 0.0);
        assert_eq!(m["eval/one_way/reverse/one_to_one/top1"], 0.0);
    }
}
