"""Verifiable tasks: their problems, prompts and verifiers (docs/tasks.md).

``spar.dataset`` writes a task's problems as rows a trainer reads (TRL's ``prompt`` column
and the ``question`` and ``answer`` columns the reward function reads); the problems are the
ones ``spar train`` draws: problem ``i`` of a split is a pure function of the task, the
split, ``i`` and the generator seed, and the train and test splits never share a question.
"""

from __future__ import annotations

import json
from functools import lru_cache

from . import _spar


class Task:
    """A verifiable task: a family of problems with a verifier (build one with
    ``spar.task``)."""

    def __init__(self, native):
        self._task = native

    def __repr__(self) -> str:
        return f"spar.Task({self.name!r})"

    @property
    def name(self) -> str:
        """The canonical specification with every parameter."""
        return self._task.name

    @property
    def system(self) -> str:
        """The rules (the system prompt)."""
        return self._task.system

    @property
    def answer_format(self) -> str:
        return self._task.answer_format

    def split_size(self, split: str = "train") -> int | None:
        """How many problems ``split`` holds; ``None`` for generated (unbounded) tasks."""
        return self._task.split_size(split)

    def problems(self, n: int, split: str = "train", start: int = 0, seed: int = 0) -> list[dict]:
        """Problems ``start .. start + n`` of ``split`` for generator ``seed``: ``id``,
        ``question``, ``answer``, ``difficulty``, ``solution`` (a reference completion),
        ``split``, ``index``, and the ``system``, ``prompt`` and ``full_prompt`` a model reads."""
        return json.loads(self._task.problems_json(split, start, n, seed))

    def verify(self, question: str, answer: str, completion: str) -> dict:
        """The verifier's verdict on ``completion`` for the problem with this question and
        reference answer: ``{"verdict": "correct"}``, ``{"verdict": "wrong", "got",
        "reason"}`` or ``{"verdict": "unparsable", "reason"}``."""
        return json.loads(self._task.verify_json(question, answer, completion))

    def rewards(self, questions: list[str], answers: list[str], completions: list[str]) -> list[float]:
        """1.0 for each correct completion, else 0.0 (the reward of ``spar train``)."""
        return self._task.rewards(list(questions), list(answers), list(completions))

    def extract_answer(self, completion: str) -> str | None:
        """The normalised answer the verifier reads from ``completion``, if any."""
        return self._task.extract_answer(completion)


@lru_cache(maxsize=64)
def task(spec: str) -> Task:
    """The task named ``spec``: ``arithmetic``, ``arithmetic(digits=1..3,ops=+-*)``,
    ``countdown(numbers=3..4)``, ``wordproblem(steps=1..3)``, ``jsonl:PATH``,
    ``choice:SPEC`` (``spar tasks`` lists them)."""
    return Task(_spar.task(spec))


def tasks() -> list[str]:
    """The names of the tasks spar ships."""
    return _spar.task_names()


def dataset(
    spec: str,
    n: int,
    split: str = "train",
    start: int = 0,
    seed: int = 0,
    chat: bool = False,
) -> list[dict]:
    """``n`` problems of task ``spec`` as dataset rows: ``prompt`` (the full prompt as one
    string, or with ``chat=True`` a list of chat messages: the task's rules as the system
    message and the question as the user message), ``question``, ``answer``,
    ``difficulty``, ``id`` and ``task``. ``datasets.Dataset.from_list(rows)`` makes a
    dataset TRL's ``GRPOTrainer`` trains on with ``spar.reward_function(spec)``."""
    the_task = task(spec)
    rows = []
    for p in the_task.problems(n, split=split, start=start, seed=seed):
        if chat:
            prompt = [{"role": "user", "content": p["prompt"]}]
            if p["system"].strip():
                prompt.insert(0, {"role": "system", "content": p["system"]})
        else:
            prompt = p["full_prompt"]
        rows.append(
            {
                "prompt": prompt,
                "question": p["question"],
                "answer": p["answer"],
                "difficulty": p["difficulty"],
                "id": p["id"],
                "task": the_task.name,
            }
        )
    return rows
