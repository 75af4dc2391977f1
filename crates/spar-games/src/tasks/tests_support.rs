//! Checks shared by the generated tasks' tests.

use std::collections::{BTreeSet, HashSet};

use super::{split_of, task_from_spec, Split, Verdict};

/// The exact value of an expression of integers and `+ - * /`, printed (`46`, `46/3`):
/// an evaluator independent of the generators', for cross-checks.
pub(crate) fn parse_and_evaluate(expression: &str) -> String {
    super::countdown::parse(expression)
        .unwrap_or_else(|e| panic!("{expression:?}: {e}"))
        .evaluate()
        .unwrap_or_else(|e| panic!("{expression:?}: {e}"))
        .to_string()
}

/// For the task `spec`, over `draws` problems per split:
/// * the same `(split, index, seed)` gives the same problem, and other seeds other problems;
/// * every question lies in its split by the hash rule, and no question is in both splits
///   (over seeds 0 and 1);
/// * every difficulty level of the task occurs in both splits;
/// * ids read `<base>/<split>/<index>`;
/// * the answer and the solution of the first 500 problems of each split verify correct,
///   and `extract_answer` reads an answer from the solution.
pub(crate) fn check_generated_task(spec: &str, draws: u64) {
    let task = task_from_spec(spec).unwrap();
    let base = spec.split('(').next().unwrap();
    let mut questions: [HashSet<String>; 2] = [HashSet::new(), HashSet::new()];
    let mut levels: [BTreeSet<u32>; 2] = [BTreeSet::new(), BTreeSet::new()];
    let mut differing_seeds = 0;
    for (slot, split) in Split::ALL.into_iter().enumerate() {
        for index in 0..draws {
            let problem = task.problem(split, index, 0);
            assert_eq!(
                problem,
                task.problem(split, index, 0),
                "{spec}: deterministic"
            );
            assert_eq!(problem.id, format!("{base}/{split}/{index}"));
            let other_seed = task.problem(split, index, 1);
            differing_seeds += usize::from(other_seed.question != problem.question);
            for p in [&problem, &other_seed] {
                assert_eq!(split_of(&p.question), split, "{spec}: {p:?}");
                questions[slot].insert(p.question.clone());
                levels[slot].insert(p.difficulty);
            }
            if index < 500 {
                assert_eq!(
                    task.verify(&problem, &problem.answer),
                    Verdict::Correct,
                    "{problem:?}"
                );
                assert_eq!(
                    task.verify(&problem, &problem.solution),
                    Verdict::Correct,
                    "{problem:?}"
                );
                assert!(task.extract_answer(&problem.solution).is_some());
            }
        }
    }
    let shared = questions[0].intersection(&questions[1]).count();
    assert_eq!(shared, 0, "{spec}: train and test share {shared} questions");
    let name = task.name();
    let (low, high) = difficulty_range(&name);
    let all: BTreeSet<u32> = (low..=high).collect();
    assert_eq!(levels[0], all, "{spec}: train levels");
    assert_eq!(levels[1], all, "{spec}: test levels");
    // Seeds change problems (up to chance collisions in small spaces).
    assert!(
        differing_seeds as u64 > draws,
        "{spec}: only {differing_seeds} of {} problems differ between seeds 0 and 1",
        2 * draws
    );
}

/// The difficulty range printed in a generated task's canonical name (its first parameter).
fn difficulty_range(name: &str) -> (u32, u32) {
    let first = name.split(['(', ',', ')']).nth(1).unwrap();
    let value = first.split_once('=').unwrap().1;
    match value.split_once("..") {
        Some((low, high)) => (low.parse().unwrap(), high.parse().unwrap()),
        None => (value.parse().unwrap(), value.parse().unwrap()),
    }
}
