//! Verifiable tasks for Python: problems, prompts and verifiers (`spar.task`), the base of
//! the TRL and verl reward functions in `python/spar/rewards.py`.
//!
//! A verifier judges a completion against a [`Problem`]; every verifier spar ships reads
//! only the problem's question (countdown's numbers and target, a multiple-choice
//! question's options) and its reference answer, so a reward function needs exactly those
//! two dataset columns. The problem is rebuilt from them here, and the verdict is the one
//! `spar train` and `spar eval --task` give the same completion.

use std::sync::Arc;

use pyo3::prelude::*;
use serde::Serialize;
use spar_core::Env;
use spar_games::tasks::{task_from_spec, Problem, Split, Task, TaskEnv};

use crate::error::{input, Failure, Result};

/// A verifiable task (`spar tasks`): its problems and its verifier.
#[pyclass(module = "spar._spar", frozen)]
#[derive(Debug)]
pub struct TaskHandle {
    task: Arc<dyn Task>,
}

/// A problem with the prompt a model reads for it (through [`TaskEnv`], as the loops).
#[derive(Serialize)]
struct ProblemView {
    #[serde(flatten)]
    problem: Problem,
    split: Split,
    index: u64,
    /// The task's rules (the system prompt).
    system: String,
    /// The user message: the question and the answer format.
    prompt: String,
    /// System text and user message in one string (for models without a system role).
    full_prompt: String,
}

/// The problem a verifier judges against, from the two fields it reads.
fn problem(question: &str, answer: &str) -> Problem {
    Problem {
        id: String::new(),
        question: question.to_string(),
        answer: answer.to_string(),
        difficulty: 0,
        solution: String::new(),
    }
}

fn parse_split(split: &str) -> Result<Split> {
    split.parse().map_err(input)
}

#[pymethods]
impl TaskHandle {
    /// The canonical specification with every parameter.
    #[getter]
    fn name(&self) -> String {
        self.task.name()
    }

    /// The rules (system prompt).
    #[getter]
    fn system(&self) -> String {
        self.task.system()
    }

    /// How to write the answer.
    #[getter]
    fn answer_format(&self) -> String {
        self.task.answer_format()
    }

    /// How many problems `split` holds (`None`: generated, unbounded).
    fn split_size(&self, split: &str) -> PyResult<Option<usize>> {
        Ok(self.task.split_size(parse_split(split)?))
    }

    /// The JSON list of problems `start .. start + count` of `split` for generator `seed`,
    /// each with its prompt.
    fn problems_json(&self, split: &str, start: u64, count: u64, seed: u64) -> PyResult<String> {
        let split = parse_split(split)?;
        let mut env = TaskEnv::new(self.task.clone(), split, seed);
        let mut problems = Vec::new();
        for index in start..start.saturating_add(count) {
            env.reset(index);
            let observation = env.observation(0);
            let Some(problem) = env.problem().cloned() else {
                return Err(
                    Failure::Running(format!("task {} drew no problem", self.task.name())).into(),
                );
            };
            problems.push(ProblemView {
                problem,
                split,
                index,
                system: observation.system.clone(),
                prompt: observation.prompt(),
                full_prompt: observation.full_prompt(),
            });
        }
        Ok(serde_json::to_string(&problems).map_err(Failure::from)?)
    }

    /// The JSON verdict (`spar_games::tasks::Verdict`) on `completion` as an answer to the
    /// problem with this question and reference answer.
    fn verify_json(&self, question: &str, answer: &str, completion: &str) -> PyResult<String> {
        let verdict = self.task.verify(&problem(question, answer), completion);
        Ok(serde_json::to_string(&verdict).map_err(Failure::from)?)
    }

    /// The reward (1.0 correct, 0.0 otherwise) of each completion against its question and
    /// answer; the three lists have one entry per completion.
    fn rewards(
        &self,
        py: Python<'_>,
        questions: Vec<String>,
        answers: Vec<String>,
        completions: Vec<String>,
    ) -> PyResult<Vec<f64>> {
        let n = completions.len();
        if questions.len() != n || answers.len() != n {
            return Err(input(format!(
                "one question and one answer per completion: {n} completions, {} questions, \
                 {} answers",
                questions.len(),
                answers.len()
            ))
            .into());
        }
        let task = &self.task;
        Ok(py.detach(|| {
            (0..n)
                .map(|i| {
                    task.verify(&problem(&questions[i], &answers[i]), &completions[i])
                        .reward()
                })
                .collect()
        }))
    }

    /// The normalised answer the verifier reads from `completion`, if any.
    fn extract_answer(&self, completion: &str) -> Option<String> {
        self.task.extract_answer(completion)
    }
}

/// The task named by `spec` (`arithmetic`, `countdown(numbers=3)`, `jsonl:PATH`,
/// `choice:arithmetic`).
#[pyfunction]
pub fn task(spec: &str) -> PyResult<TaskHandle> {
    let task = task_from_spec(spec).map_err(input)?;
    Ok(TaskHandle {
        task: Arc::from(task),
    })
}

/// The names of the tasks spar ships.
#[pyfunction]
pub fn task_names() -> Vec<String> {
    spar_games::tasks::TASKS
        .iter()
        .map(|t| t.name.to_string())
        .collect()
}
