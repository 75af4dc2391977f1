"""spar: self-play and self-improvement RL for language-model agents, from Python.

The Rust engine of the ``spar`` command-line tool, importable (docs/python.md):

* ``spar.make("kuhn")``: any game or verifiable task as a multi-agent text environment with
  TextArena's shape (``reset``, ``get_observation``, ``step``, ``close``), roles, rewards and
  invalid moves as data.
* ``spar.exploitability("kuhn", policy)``: exact evaluation of a policy given as a dict, a
  callable, a policy file or a ``pyspiel`` tabular policy; best responses, expected returns,
  CFR and CFR+. The numbers are the ones ``spar exploitability`` and ``spar solve`` print.
* ``spar.reward_function("arithmetic")``: a task's verifier as a reward function with the
  signature TRL's ``GRPOTrainer`` takes in ``reward_funcs``; ``spar.compute_score`` is the
  same verifiers as a verl reward function; ``spar.dataset`` writes the matching rows.
* ``spar.train(config)`` and ``spar.eval(model)``: the Rust training loops and held-out
  evaluation, returning their metrics.

Bad input raises ``ValueError`` with the message the CLI prints (where the CLI exits with
code 2); a failure while running raises ``RuntimeError``.
"""

from ._spar import __version__
from ._env import Env, Observation, games, make
from ._exact import (
    best_response,
    expected_returns,
    exploitability,
    info_states,
    model_policy,
    nash_conv,
    policy_table,
    solve,
)
from ._tasks import Task, dataset, task, tasks
from .rewards import compute_score, reward_function, verl_dataset
from ._train import eval, train  # noqa: A004 - spar.eval is the public name

__all__ = [
    "__version__",
    "Env",
    "Observation",
    "Task",
    "best_response",
    "compute_score",
    "dataset",
    "eval",
    "expected_returns",
    "exploitability",
    "games",
    "info_states",
    "make",
    "model_policy",
    "nash_conv",
    "policy_table",
    "reward_function",
    "solve",
    "task",
    "tasks",
    "train",
    "verl_dataset",
]
