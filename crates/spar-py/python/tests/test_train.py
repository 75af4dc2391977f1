"""spar.train and spar.eval over the Rust loops: a short task run and its evaluation, and a
bad config refused before anything is written."""

import json
import tomllib

import pytest

import spar
from conftest import ROOT

CONFIG = ROOT / "configs" / "tasks" / "arithmetic-grpo-tiny.toml"

# The overrides the CLI's task tests use to train one step in seconds
# (crates/spar-cli/tests/tasks.rs, SMALL).
SMALL = {
    "run.steps": 1,
    "warm_start.steps": 3,
    "warm_start.problems": 16,
    "warm_start.batch_size": 8,
    "rollout.prompts": 2,
    "rollout.group_size": 2,
    "rollout.max_tokens": 8,
    "eval.problems": 2,
    "eval.samples": 2,
    "eval.pass_at": [1, 2],
}


def test_a_short_task_run_returns_its_metrics_and_evaluates(tmp_path):
    out = tmp_path / "run"
    history = spar.train(CONFIG, out=out, overrides=SMALL, progress=False)
    assert [m["step"] for m in history] == [0, 1]
    # What came back is what the run wrote, line for line.
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines == history
    assert "learner/loss" in history[1]
    for m in history:
        for k in (1, 2):
            assert 0.0 <= m[f"eval/arithmetic/pass_at/{k}"] <= 1.0
    resolved = tomllib.loads((out / "config.toml").read_text())
    assert resolved["run"]["steps"] == 1 and resolved["rollout"]["group_size"] == 2
    checkpoint = out / "checkpoints" / "step-000001"
    assert (checkpoint / "task.json").is_file()
    # The held-out evaluation of the checkpoint (the task comes from its task.json).
    report = spar.eval(checkpoint, problems=2, samples=2)
    assert report["task"] == "arithmetic(digits=1,terms=2..3,ops=+-)"
    assert set(report["pass_at"]) == {"1", "2"}
    assert report["pass_at"]["1"] <= report["pass_at"]["2"] <= 1.0
    # Resuming a finished run with one more step continues from its checkpoint.
    more = spar.train(out=out, resume=True, overrides={"run.steps": 2}, progress=False)
    assert [m["step"] for m in more] == [0, 1, 2]
    assert more[:2] == history
    # A run directory that holds a run is refused without resume.
    with pytest.raises(ValueError, match="already holds a run"):
        spar.train(CONFIG, out=out, overrides=SMALL, progress=False)


def test_a_bad_config_raises_value_error_naming_the_key_and_writes_nothing(tmp_path):
    config = tomllib.loads(CONFIG.read_text())
    out = tmp_path / "never"
    config["algorithm"]["loss"] = "gspo"
    with pytest.raises(ValueError, match=r'algorithm.loss: "gspo" is not one of pg, ppo, nft'):
        spar.train(config, out=out, overrides=SMALL, progress=False)
    assert not out.exists()
    with pytest.raises(ValueError, match="unknown field `batch`"):
        spar.train(CONFIG, out=out, overrides={"rollout.batch": 3}, progress=False)
    assert not out.exists()
    with pytest.raises(ValueError, match="cannot read config"):
        spar.train(tmp_path / "missing.toml", out=out)


def test_dict_configs_become_the_same_toml():
    from spar._train import _toml

    config = tomllib.loads(CONFIG.read_text())
    config["model"]["lora"] = {"rank": 4, "targets": ["q_proj", "v_proj"]}
    assert tomllib.loads(_toml(config)) == config


def test_eval_needs_a_task_for_a_model_without_task_json(tmp_path):
    with pytest.raises(ValueError):
        spar.eval(tmp_path)


# The overrides the CLI's self-play test uses (crates/spar-cli/tests/train.rs).
KUHN_TINY = {
    "run.steps": 1,
    "model.hidden": 16,
    "model.layers": 1,
    "model.heads": 2,
    "warm_start.steps": 2,
    "warm_start.episodes": 2,
    "rollout.episodes": 2,
    "rollout.max_tokens": 8,
    "eval.games_vs_random": 1,
    "eval.every": 1,
}


def test_self_play_and_the_exact_policy_of_its_model(tmp_path, cli):
    out = tmp_path / "kuhn"
    history = spar.train(ROOT / "configs" / "kuhn-spiral-tiny.toml", out=out, overrides=KUHN_TINY, progress=False)
    assert [m["step"] for m in history] == [0, 1]
    during = history[-1]["eval/kuhn/exploitability"]
    checkpoint = out / "checkpoints" / "step-000001"
    # spar.eval reads the game from the checkpoint's prompting.json and evaluates exactly.
    report = spar.eval(checkpoint)
    assert report["exploitability"] == pytest.approx(during, abs=1e-9)
    assert report["information_sets"] == 12
    from_cli = json.loads(cli("exploitability", "--game", "kuhn", "--policy", f"model:{checkpoint}", "--json"))
    assert report["exploitability"] == from_cli["exploitability"]
    # The tabulated policy is an ordinary table: every exact function takes it.
    table = spar.model_policy("kuhn", checkpoint)["policy"]
    assert spar.exploitability("kuhn", table) == report["exploitability"]
    assert spar.exploitability("kuhn", f"model:{checkpoint}") == report["exploitability"]
