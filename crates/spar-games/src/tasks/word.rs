//! Word problems: a person's items after a few events (a synthetic GSM8K-style family).
//!
//! # Problems
//! `Ana has 5 pens. She buys 3 more. She gives away 2. How many pens does she have now?`
//! A name (with its pronoun) and an item come from fixed lists; the start count is drawn
//! from `2..=20`; then `steps` events, each drawn uniformly among those that keep the count
//! in `0..=99`:
//!
//! | event | text | effect |
//! |---|---|---|
//! | buy | `She buys k more.` | `+k`, `k` in `1..=9` |
//! | gift | `She is given k more.` | `+k` |
//! | give | `She gives away k.` | `-k`, `k` at most the count |
//! | lose | `She loses k.` | `-k` |
//! | double | `She doubles them.` | `*2` (when the count is 1..=49) |
//!
//! The difficulty is the number of events. The answer is the final count; the solution
//! shows one computation per event, then the answer: `5+3=8 8-2=6 Answer: 6`.
//!
//! # Parameters
//! | name | default | meaning |
//! |---|---|---|
//! | `steps` | `1..3` | events per problem, an inclusive range (1..8); the difficulty |
//!
//! # Answers
//! A number (see [`super::extract_number`]): the first number after `Answer:`, else the
//! last number, so both `6` and the solution's form verify.

use rand::Rng as _;

use super::{
    check_levels, extract_number, format_range, generate, verify_number, Candidate, Generator,
    Params, Problem, Split, Task, Verdict,
};

/// Names and their pronouns.
const PEOPLE: [(&str, &str); 8] = [
    ("Ana", "She"),
    ("Ben", "He"),
    ("Cleo", "She"),
    ("Dev", "He"),
    ("Eva", "She"),
    ("Finn", "He"),
    ("Gia", "She"),
    ("Hugo", "He"),
];

/// Things people count.
const ITEMS: [&str; 8] = [
    "apples", "pens", "cards", "coins", "books", "shells", "stamps", "marbles",
];

/// The word-problem task (built by [`super::task_from_spec`]).
#[derive(Debug, Clone)]
pub struct WordProblem {
    steps: (u32, u32),
}

impl WordProblem {
    pub(crate) fn from_params(params: &Params<'_>) -> Result<Self, String> {
        params.check_known(&["steps"])?;
        let task = Self {
            steps: params.range("steps", (1, 3), 1, 8)?,
        };
        check_levels(&task, &task.name())?;
        Ok(task)
    }
}

impl Generator for WordProblem {
    fn base(&self) -> &'static str {
        "wordproblem"
    }

    fn levels(&self) -> (u32, u32) {
        self.steps
    }

    fn candidate(&self, rng: &mut spar_core::Rng, steps: u32) -> Option<Candidate> {
        let (name, pronoun) = PEOPLE[rng.gen_range(0..PEOPLE.len())];
        let item = ITEMS[rng.gen_range(0..ITEMS.len())];
        let mut count: u32 = rng.gen_range(2..=20);
        let mut question = format!("{name} has {count} {item}.");
        let mut work = Vec::new();
        for _ in 0..steps {
            // Events that keep the count within 0..=99 from here.
            let mut events = Vec::with_capacity(5);
            if count <= 90 {
                events.extend(["buy", "gift"]);
            }
            if count >= 1 {
                events.extend(["give", "lose"]);
            }
            if (1..=49).contains(&count) {
                events.push("double");
            }
            let event = events[rng.gen_range(0..events.len())];
            let before = count;
            let text = match event {
                "buy" | "gift" => {
                    let k = rng.gen_range(1..=9);
                    count += k;
                    work.push(format!("{before}+{k}={count}"));
                    if event == "buy" {
                        format!(" {pronoun} buys {k} more.")
                    } else {
                        format!(" {pronoun} is given {k} more.")
                    }
                }
                "give" | "lose" => {
                    let k = rng.gen_range(1..=count.min(9));
                    count -= k;
                    work.push(format!("{before}-{k}={count}"));
                    if event == "give" {
                        format!(" {pronoun} gives away {k}.")
                    } else {
                        format!(" {pronoun} loses {k}.")
                    }
                }
                _ => {
                    count *= 2;
                    work.push(format!("{before}*2={count}"));
                    format!(" {pronoun} doubles them.")
                }
            };
            question.push_str(&text);
        }
        let object = if pronoun == "She" { "she" } else { "he" };
        question.push_str(&format!(" How many {item} does {object} have now?"));
        let answer = count.to_string();
        Some(Candidate {
            question,
            solution: format!("{} Answer: {answer}", work.join(" ")),
            answer,
        })
    }
}

impl Task for WordProblem {
    fn name(&self) -> String {
        format!("wordproblem(steps={})", format_range(self.steps))
    }

    fn system(&self) -> String {
        "Solve the word problem step by step.".to_string()
    }

    fn answer_format(&self) -> String {
        "End with Answer: and the number.".to_string()
    }

    fn problem(&self, split: Split, index: u64, seed: u64) -> Problem {
        generate(self, split, index, seed)
    }

    fn split_size(&self, _split: Split) -> Option<usize> {
        None
    }

    fn verify(&self, problem: &Problem, completion: &str) -> Verdict {
        verify_number(&problem.answer, completion)
    }

    fn extract_answer(&self, completion: &str) -> Option<String> {
        extract_number(completion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::task_from_spec;
    use crate::tasks::tests_support::{check_generated_task, parse_and_evaluate};

    #[test]
    fn verifier_on_hand_written_completions() {
        let task = task_from_spec("wordproblem").unwrap();
        let p = Problem {
            id: "hand".into(),
            question: "Ana has 5 pens. She buys 3 more. She gives away 2. \
                       How many pens does she have now?"
                .into(),
            answer: "6".into(),
            difficulty: 2,
            solution: "5+3=8 8-2=6 Answer: 6".into(),
        };
        assert_eq!(task.verify(&p, &p.solution), Verdict::Correct);
        assert_eq!(task.verify(&p, "6"), Verdict::Correct);
        assert_eq!(task.verify(&p, "She has 6 pens."), Verdict::Correct);
        assert_eq!(
            task.verify(&p, "Answer: 6 pens, from 5+3-2"),
            Verdict::Correct
        );
        assert!(!task.verify(&p, "5+3=8 Answer: 8").is_correct());
        assert_eq!(task.verify(&p, "Answer: 6 (not 8)"), Verdict::Correct);
        assert!(matches!(task.verify(&p, "six"), Verdict::Unparsable { .. }));
        assert_eq!(task.extract_answer("8-2=6 Answer: 6"), Some("6".into()));
    }

    #[test]
    fn pinned_problems_are_deterministic() {
        // Golden values produced by this implementation (see the arithmetic test's note).
        let task = task_from_spec("wordproblem").unwrap();
        let p = task.problem(Split::Train, 1, 0);
        assert_eq!(
            p.question,
            "Dev has 12 shells. He is given 3 more. He is given 1 more. He gives away 9. \
             How many shells does he have now?"
        );
        assert_eq!((p.answer.as_str(), p.difficulty), ("7", 3));
        assert_eq!(p.solution, "12+3=15 15+1=16 16-9=7 Answer: 7");
        let p = task.problem(Split::Test, 0, 0);
        assert_eq!(
            p.question,
            "Cleo has 12 coins. She buys 1 more. She doubles them. She doubles them. \
             How many coins does she have now?"
        );
        assert_eq!(p.solution, "12+1=13 13*2=26 26*2=52 Answer: 52");
        assert_eq!(p, task.problem(Split::Test, 0, 0));
        assert_ne!(p, task.problem(Split::Test, 0, 1));
    }

    #[test]
    fn solutions_replay_the_events_of_the_question() {
        let task = task_from_spec("wordproblem(steps=1..8)").unwrap();
        for split in Split::ALL {
            for index in 0..500 {
                let p = task.problem(split, index, 11);
                assert_eq!(task.verify(&p, &p.solution), Verdict::Correct, "{p:?}");
                let (work, answer) = p.solution.split_once(" Answer: ").unwrap();
                assert_eq!(answer, p.answer);
                let lines: Vec<&str> = work.split(' ').collect();
                assert_eq!(lines.len() as u32, p.difficulty, "{p:?}");
                // Each step reads `a op k = b`: b is right, and chains from the last result.
                let start: &str = p.question.split(' ').nth(2).unwrap();
                let mut current = start.to_string();
                for line in lines {
                    let (expression, result) = line.split_once('=').unwrap();
                    let left = expression.split(['+', '-', '*']).next().unwrap();
                    assert_eq!(left, current, "{p:?}");
                    assert_eq!(parse_and_evaluate(expression), result);
                    let value: i64 = result.parse().unwrap();
                    assert!((0..=99).contains(&value), "{p:?}");
                    current = result.to_string();
                }
                assert_eq!(current, p.answer);
                // One sentence per event between the start and the question.
                assert_eq!(
                    p.question.matches('.').count() as u32,
                    1 + p.difficulty,
                    "{}",
                    p.question
                );
            }
        }
    }

    #[test]
    fn generated_problems_are_deterministic_disjoint_and_cover_every_level() {
        check_generated_task("wordproblem", 2_000);
        check_generated_task("wordproblem(steps=1..8)", 2_000);
    }
}
