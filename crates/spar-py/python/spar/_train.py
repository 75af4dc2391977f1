"""``spar.train`` and ``spar.eval``: the Rust training loops and held-out evaluation.

``spar.train`` is ``spar train``: the config's shape picks the loop (self-play on games, a
verifiable task with a ``[task]`` table, self-correction with a ``[selfcorrect]`` table;
docs/training.md, docs/tasks.md, docs/self-correction.md), overrides are ``--set``'s, every
key is checked before the run directory is made, and the run directory gets what the CLI
writes (``config.toml``, ``metrics.jsonl``, checkpoints, the report). It returns every line
of ``metrics.jsonl`` (docs/metrics.md) as a dict.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import _spar


def _override(key: str, value: Any) -> str:
    """``KEY=VALUE`` with the value written as TOML (JSON's scalars, strings and arrays are
    valid TOML values)."""
    return f"{key}={json.dumps(value)}"


def _overrides(overrides: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [_override(str(k), v) for k, v in overrides.items()]
    return [str(o) for o in overrides]


def _toml(table: Mapping[str, Any], prefix: str = "") -> str:
    """A nested dict as TOML text: scalars and arrays first, then one ``[section]`` per
    nested dict."""
    lines, sections = [], []
    for key, value in table.items():
        if isinstance(value, Mapping):
            sections.append((key, value))
        elif value is None:
            raise ValueError(f"config: {prefix}{key}: None has no TOML value; leave the key out")
        else:
            lines.append(f"{json.dumps(str(key))} = {json.dumps(value)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in sections:
        name = f"{prefix}{key}"
        text += f"\n[{name}]\n" + _toml(value, prefix=f"{name}.")
    return text


def _utc_stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")


def train(
    config: str | os.PathLike | Mapping[str, Any] | None = None,
    *,
    out: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> list[dict]:
    """Trains as ``spar train CONFIG --out OUT --set KEY=VALUE ...`` does.

    ``config`` is a TOML file (``configs/kuhn-spiral-tiny.toml``) or the same as a dict of
    sections (``{"run": {"steps": 2}, "task": {"name": "arithmetic"}}``); ``overrides`` are
    ``--set``'s, as ``{"run.steps": 2}`` or ``["run.steps=2"]``. ``out`` is the run
    directory (default ``runs/<config name>-<UTC date-time>``). With ``resume=True``, ``out``
    is a run to continue from its latest checkpoint with its ``config.toml``. With
    ``progress``, a line per step goes to stderr.

    Returns the run's metrics, one dict per step (step 0 is the model after the warm start).
    A bad key or value raises ``ValueError`` naming it, and nothing is written."""
    if resume:
        if out is None:
            raise ValueError("resume=True continues the run in out: give out=DIR")
        out = Path(out)
        config_path = out / "config.toml"
        if not config_path.is_file():
            raise ValueError(f"{out} holds no run to resume: no {config_path}")
        text, name = config_path.read_text(encoding="utf-8"), str(config_path)
    elif isinstance(config, Mapping):
        text, name = _toml(config), "config"
        out = Path(out) if out is not None else Path("runs") / f"run-{_utc_stamp()}"
    elif isinstance(config, (str, os.PathLike)):
        path = Path(config)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ValueError(f"cannot read config {path}: {e}") from None
        name = str(path)
        out = Path(out) if out is not None else Path("runs") / f"{path.stem}-{_utc_stamp()}"
    else:
        raise ValueError("give a config (a TOML file or a dict of sections), or resume=True with out")
    history = _spar.train(text, _overrides(overrides), str(out), resume, name, progress)
    return json.loads(history)


def eval(  # noqa: A001 - spar.eval is the public name
    model: str | os.PathLike,
    task: str | None = None,
    *,
    game: str | None = None,
    problems: int = 100,
    samples: int = 16,
    pass_at: Sequence[int] | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    prompt_style: str | None = None,
    seed: int = 0,
) -> dict:
    """Held-out evaluation of a language model on a task's test split, as ``spar eval
    --model MODEL --task TASK --json``: ``samples`` answers (at ``temperature``, default 1.0) to each of the first
    ``problems`` test problems, unbiased ``pass_at`` (``{"1": ..., "16": ...}``; by default
    k = 1, 2, 4, ... and ``samples``), ``majority_accuracy``, ``unparsable_rate``,
    ``accuracy_by_difficulty``. ``model`` is a checkpoint directory (a task run's carries its
    task, answer length and prompt style in ``task.json``) or a .gguf file.

    On a game (``game="kuhn"``, or by default for a self-play checkpoint, whose
    ``prompting.json`` names its game) the model's policy is evaluated exactly instead, as
    ``spar exploitability --policy model:DIR --json``: ``exploitability``, ``nash_conv``,
    ``best_response_values``, ``on_policy_values``, and the probability mass outside the
    legal answers (``outside_mass_mean``, ``outside_mass_max``); ``temperature`` and
    ``prompt_style`` override the checkpoint's prompting."""
    model = Path(model)
    if game is None and task is None and not (model / "task.json").is_file():
        prompting = model / "prompting.json"
        if prompting.is_file():
            game = json.loads(prompting.read_text(encoding="utf-8"))["game"]
    if game is not None:
        if task is not None:
            raise ValueError("give a task or a game, not both")
        from ._exact import model_policy, nash_conv

        table = model_policy(
            game,
            model,
            temperature=temperature,
            prompt_style=prompt_style,
        )
        report = nash_conv(game, table["policy"])
        for key in ("information_sets", "outside_mass_mean", "outside_mass_max"):
            report[key] = table[key]
        report["model"] = str(model)
        return report
    report = _spar.eval_task(
        str(model),
        task,
        problems,
        samples,
        None if pass_at is None else [int(k) for k in pass_at],
        1.0 if temperature is None else temperature,
        max_tokens,
        prompt_style,
        seed,
    )
    return json.loads(report)
