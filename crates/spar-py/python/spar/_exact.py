"""Exact evaluation of tabular policies: NashConv, exploitability, best responses, expected
returns, CFR and CFR+ (``spar exploitability``, ``spar solve``; docs/evaluation.md).

A policy is any of:

* ``None`` or ``"uniform"``: every legal action equally likely;
* a dict from information-state strings to distributions, in spar's policy-file format
  (docs/policy-format.md) or looser: each distribution a list of ``(action, probability)``
  pairs (OpenSpiel's ``policy_table()`` rows), a dict ``{action: probability}``, or a list of
  probabilities indexed by action (a row of OpenSpiel's ``action_probability_array``). The
  wrapped form ``{"game": ..., "policy": {...}}`` is accepted too. Information states left out
  are played uniformly, as a fresh OpenSpiel ``TabularPolicy`` plays them;
* a callable ``policy(info_state, legal_actions)`` returning one of those distributions (or
  a list of probabilities, one per legal action in order), asked once per information set;
* a ``pyspiel`` / ``open_spiel`` policy: a C++ ``TabularPolicy`` (its ``policy_table()``), a
  Python ``TabularPolicy`` (its ``to_dict()``), or any policy with ``to_tabular()``;
* a path to a policy file, or ``"model:PATH"``: a language model's exact policy (see
  ``model_policy``).

For Kuhn Poker and Leduc Hold'em the information-state strings are OpenSpiel's, so
OpenSpiel's tables evaluate here unchanged. Every table is checked as a policy file is
(unknown information states, illegal actions, probabilities that do not sum to 1 raise
``ValueError`` with the CLI's message).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from . import _spar

Policy = Any


def info_states(game: str) -> list[dict]:
    """Every information set of ``game``: its ``key`` (information-state string),
    ``player`` and ``legal_actions``, in depth-first order of the game tree."""
    return json.loads(_spar.info_states(game))


def _pairs(distribution: Any, legal: Sequence[int] | None = None) -> list[list]:
    """One distribution as ``[[action, probability], ...]``."""
    if isinstance(distribution, Mapping):
        return [[int(a), float(p)] for a, p in distribution.items()]
    if hasattr(distribution, "tolist"):  # a numpy row
        distribution = distribution.tolist()
    items = list(distribution)
    if all(isinstance(x, (list, tuple)) and len(x) == 2 for x in items):
        return [[int(a), float(p)] for a, p in items]
    probabilities = [float(p) for p in items]
    if legal is not None and len(probabilities) == len(legal):
        # A callable's answer: one probability per legal action, in order.
        return [[int(a), p] for a, p in zip(legal, probabilities)]
    # A dense row indexed by action (OpenSpiel's action_probability_array): zeros left out,
    # so that illegal actions with probability 0 are not listed.
    return [[a, p] for a, p in enumerate(probabilities) if p != 0.0]


def _table(mapping: Mapping) -> dict[str, list[list]]:
    return {str(key): _pairs(value) for key, value in mapping.items()}


def policy_table(game: str, policy: Policy) -> dict[str, list[list]] | None:
    """``policy`` as a table ``{info_state: [[action, probability], ...]}`` (``None`` for the
    uniform policy), without checking it against the game (the evaluation functions do)."""
    if policy is None or (isinstance(policy, str) and policy == "uniform"):
        return None
    if isinstance(policy, str) and policy.startswith("model:"):
        return model_policy(game, policy[len("model:"):])["policy"]
    if isinstance(policy, (str, os.PathLike)):
        with open(policy, encoding="utf-8") as f:
            document = json.load(f)
        return _table(document.get("policy", document))
    if isinstance(policy, Mapping):
        if set(policy) <= {"game", "policy"} and "policy" in policy:
            return _table(policy["policy"])
        return _table(policy)
    if hasattr(policy, "policy_table"):  # pyspiel.TabularPolicy (C++)
        return _table(policy.policy_table())
    if hasattr(policy, "to_dict"):  # open_spiel.python.policy.TabularPolicy
        return _table(policy.to_dict())
    if hasattr(policy, "to_tabular"):  # any open_spiel.python.policy.Policy
        return _table(policy.to_tabular().to_dict())
    if callable(policy):
        return {
            s["key"]: _pairs(policy(s["key"], list(s["legal_actions"])), s["legal_actions"])
            for s in info_states(game)
        }
    raise ValueError(
        f"cannot read a policy from {type(policy).__name__}: expected None or 'uniform', a "
        "dict of information states to distributions, a callable (info_state, legal_actions), "
        "a policy-file path, or a pyspiel/open_spiel tabular policy"
    )


def model_policy(
    game: str,
    model: str | os.PathLike,
    *,
    temperature: float | None = None,
    protocol: str | None = None,
    prompt_style: str | None = None,
    view: str | None = None,
) -> dict:
    """The exact policy of the language model at ``model`` (a checkpoint directory or a
    .gguf file) on ``game``, as ``spar exploitability --policy model:DIR --save-policy``
    tabulates it: at every information set, the normalised probabilities of the legal
    actions' canonical answers, prompted as the checkpoint's ``prompting.json`` says unless
    overridden. Returns ``policy`` (a table), ``information_sets`` and the probability mass
    outside the canonical answers (``outside_mass_mean``, ``outside_mass_max``)."""
    return json.loads(
        _spar.model_policy(game, str(model), temperature, protocol, prompt_style, view)
    )


def _policy_json(game: str, policy: Policy) -> str | None:
    table = policy_table(game, policy)
    return None if table is None else json.dumps({"policy": table})


def nash_conv(game: str, policy: Policy = None) -> dict:
    """NashConv of ``policy`` in a two-player zero-sum ``game`` with its parts:
    ``nash_conv``, ``exploitability`` (NashConv / players), ``best_response_values`` and
    ``on_policy_values`` per player, as ``spar exploitability --json`` reports them."""
    return json.loads(_spar.nash_conv(game, _policy_json(game, policy)))


def exploitability(game: str, policy: Policy = None) -> float:
    """The exploitability of ``policy`` (NashConv divided by the number of players;
    OpenSpiel's ``exploitability.exploitability``). Uniform Kuhn Poker: 11/24."""
    return nash_conv(game, policy)["exploitability"]


def best_response(game: str, policy: Policy = None, player: int = 0) -> dict:
    """The best response of ``player`` to ``policy`` played by the others: ``value`` (its
    expected return) and ``policy`` (deterministic, a table over its information states)."""
    return json.loads(_spar.best_response(game, player, _policy_json(game, policy)))


def expected_returns(game: str, policies: Sequence[Policy] | Policy = None) -> list[float]:
    """Each player's exact expected return when player ``p`` follows ``policies[p]`` (or
    everyone follows one ``policy``), chance weighted exactly."""
    if not isinstance(policies, (list, tuple)):
        policies = [policies] * _spar.make(game, None, None, None, None, None, 0).num_players
    return _spar.policy_returns(game, [_policy_json(game, p) for p in policies])


def solve(
    game: str, algo: str = "cfr+", iterations: int = 1000, report_every: int = 0
) -> dict:
    """CFR (``cfr``), CFR+ (``cfr+``) or simultaneous CFR for ``iterations`` iterations, as
    ``spar solve``: ``nash_conv`` and ``exploitability`` of the average policy, its ``trace``
    every ``report_every`` iterations, and the average ``policy`` as a table."""
    return json.loads(_spar.solve(game, algo, iterations, report_every))

