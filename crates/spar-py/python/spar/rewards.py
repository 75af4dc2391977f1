"""spar's verifiers as reward functions for TRL and verl.

TRL (``GRPOTrainer(reward_funcs=[...])``): a reward function is called as
``reward(prompts=..., completions=..., completion_ids=..., **columns)`` with one entry per
completion in every list, each extra dataset column passed as a keyword, and returns a
``list[float]`` (TRL's "Using a custom reward function" section of the GRPO trainer docs).
A completion is a string (standard datasets) or a list of messages ending with the
assistant's (conversational datasets); spar reads the last message's ``content``.

verl (``custom_reward_function.path`` and ``.name``): ``compute_score(data_source,
solution_str, ground_truth, extra_info=None) -> float`` (verl's "Implement Reward Function
for Dataset", docs/preparation/reward_function.rst). spar's ``compute_score`` reads the task
from ``data_source`` (a task specification, as ``spar.verl_dataset`` writes it), the
reference answer from ``ground_truth`` and the question from ``extra_info["question"]``.

Both score exactly as ``spar train`` does: 1.0 when the verifier accepts the completion,
0.0 otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._tasks import task as _task
from ._tasks import dataset as _dataset


def _text(completion: Any) -> str:
    """A completion's text: the string, or the content of a conversation's last message."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    raise ValueError(
        f"a completion must be a string or a list of chat messages, got {type(completion).__name__}"
    )


def reward_function(
    spec: str, question_key: str = "question", answer_key: str = "answer"
) -> Callable[..., list[float]]:
    """Task ``spec``'s verifier as a TRL reward function: ``reward(prompts, completions,
    **kwargs)`` with the dataset's ``question`` and ``answer`` columns (named by
    ``question_key`` and ``answer_key``) among the keyword arguments, returning 1.0 for each
    correct completion and 0.0 for the others. Its ``__name__`` (``spar_<task>``) is the name
    TRL logs its mean under."""
    the_task = _task(spec)

    def reward(prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **kwargs) -> list[float]:
        missing = [key for key in (question_key, answer_key) if key not in kwargs]
        if missing:
            raise ValueError(
                f"the reward function of {the_task.name} reads the dataset columns "
                f"{question_key!r} and {answer_key!r}; missing: {', '.join(map(repr, missing))} "
                f"(columns given: {', '.join(sorted(kwargs)) or 'none'}); spar.dataset writes both"
            )
        questions = [str(q) for q in kwargs[question_key]]
        answers = [str(a) for a in kwargs[answer_key]]
        return the_task.rewards(questions, answers, [_text(c) for c in completions])

    reward.__name__ = "spar_" + the_task.name.split("(")[0].split(":")[0]
    reward.__qualname__ = reward.__name__
    reward.__doc__ = f"spar's verifier of {the_task.name} as a TRL reward function."
    return reward


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None
) -> float:
    """verl's reward-function signature over spar's verifiers: ``data_source`` is the task
    specification, ``ground_truth`` the reference answer (or a dict with ``answer`` and
    ``question``), ``extra_info["question"]`` the question (countdown's and multiple-choice
    verifiers read it). 1.0 when the verifier accepts ``solution_str``, else 0.0."""
    if isinstance(ground_truth, dict):
        answer = ground_truth.get("answer")
        question = ground_truth.get("question")
    else:
        answer, question = ground_truth, None
    if question is None and extra_info is not None:
        question = extra_info.get("question")
    if answer is None or question is None:
        raise ValueError(
            "spar.compute_score needs the reference answer (ground_truth) and the question "
            "(extra_info['question'] or ground_truth['question']); spar.verl_dataset writes both"
        )
    return _task(data_source).rewards([str(question)], [str(answer)], [solution_str])[0]


def verl_dataset(spec: str, n: int, split: str = "train", start: int = 0, seed: int = 0) -> list[dict]:
    """``n`` problems of task ``spec`` as verl's dataset rows (verl's "Prepare Data",
    docs/preparation/prepare_data.rst): ``data_source`` (the task's specification, which
    ``compute_score`` reads), ``prompt`` (chat messages), ``ability``, ``reward_model``
    (``{"style": "rule", "ground_truth": answer}``) and ``extra_info`` (split, index,
    question). Write them to Parquet with pandas for verl's ``data.train_files``."""
    rows = []
    for index, row in enumerate(_dataset(spec, n, split=split, start=start, seed=seed, chat=True)):
        rows.append(
            {
                "data_source": row["task"],
                "prompt": row["prompt"],
                "ability": "spar-task",
                "reward_model": {"style": "rule", "ground_truth": row["answer"]},
                "extra_info": {
                    "split": split,
                    "index": start + index,
                    "question": row["question"],
                    "id": row["id"],
                },
            }
        )
    return rows
