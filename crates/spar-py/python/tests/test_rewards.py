"""spar's verifiers as TRL and verl reward functions: called as the trainers call them."""

import inspect

import pytest

import spar

SPEC = "arithmetic(digits=1,terms=2,ops=+-)"


def test_trl_reward_function_scores_completions_as_grpo_trainer_calls_it():
    rows = spar.dataset(SPEC, 4, seed=0)
    assert all(set(r) >= {"prompt", "question", "answer"} for r in rows)
    reward = spar.reward_function(SPEC)
    # TRL's contract: keyword arguments prompts, completions, completion_ids, every other
    # dataset column, and more it may add (trainer_state); a list of floats back.
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(reward).parameters.values())
    completions = [
        f"Answer: {rows[0]['answer']}",  # right
        str(int(rows[1]["answer"]) + 1),  # wrong
        "I am not sure.",  # unparsable
        f"{rows[3]['question']} {rows[3]['answer']}",  # right: the last number counts
    ]
    scores = reward(
        prompts=[r["prompt"] for r in rows],
        completions=completions,
        completion_ids=[[0]] * 4,
        question=[r["question"] for r in rows],
        answer=[r["answer"] for r in rows],
        difficulty=[r["difficulty"] for r in rows],
        trainer_state=None,
    )
    assert scores == [1.0, 0.0, 0.0, 1.0]
    assert reward.__name__ == "spar_arithmetic"


def test_conversational_completions_read_the_assistant_message():
    rows = spar.dataset(SPEC, 2, seed=0, chat=True)
    assert [m["role"] for m in rows[0]["prompt"]] == ["system", "user"]
    completions = [[{"role": "assistant", "content": rows[0]["answer"]}], [{"role": "assistant", "content": "x"}]]
    reward = spar.reward_function(SPEC)
    assert reward(
        prompts=[r["prompt"] for r in rows],
        completions=completions,
        question=[r["question"] for r in rows],
        answer=[r["answer"] for r in rows],
    ) == [1.0, 0.0]


def test_countdown_reads_the_question():
    spec = "countdown(numbers=3)"
    problem = spar.task(spec).problems(1, seed=0)[0]
    reward = spar.reward_function(spec)
    # The reference solution reaches the target with the given numbers...
    assert reward(completions=[problem["solution"]], question=[problem["question"]], answer=[problem["answer"]]) == [1.0]
    # ...and is judged against the question it is paired with, not the answer column.
    other = spar.task(spec).problems(1, start=1, seed=0)[0]
    verdict = spar.task(spec).verify(other["question"], other["answer"], problem["solution"])
    assert verdict["verdict"] in ("wrong", "unparsable") or problem["question"] == other["question"]


def test_missing_columns_are_named():
    reward = spar.reward_function(SPEC)
    with pytest.raises(ValueError, match="missing: 'question'"):
        reward(prompts=["p"], completions=["1"], answer=["1"])
    renamed = spar.reward_function(SPEC, question_key="problem", answer_key="solution")
    rows = spar.dataset(SPEC, 1)
    assert renamed(completions=[rows[0]["answer"]], problem=[rows[0]["question"]], solution=[rows[0]["answer"]]) == [1.0]


def test_verl_compute_score_on_verl_rows():
    rows = spar.verl_dataset(SPEC, 3, split="test", seed=0)
    for row in rows:
        assert row["data_source"] == spar.task(SPEC).name
        assert row["reward_model"]["style"] == "rule"
        answer = row["reward_model"]["ground_truth"]
        assert spar.compute_score(row["data_source"], f"Answer: {answer}", answer, row["extra_info"]) == 1.0
        assert spar.compute_score(row["data_source"], "Answer: -999", answer, row["extra_info"]) == 0.0
    with pytest.raises(ValueError, match="question"):
        spar.compute_score(SPEC, "1", "1")


def test_task_splits_are_disjoint_and_problems_reproducible():
    task = spar.task(SPEC)
    train = {p["question"] for p in task.problems(200, split="train")}
    test = {p["question"] for p in task.problems(50, split="test")}
    assert not train & test
    assert task.problems(3, start=5, seed=2) == task.problems(3, start=5, seed=2)
    assert task.verify("1+1=", "2", "3") == {"verdict": "wrong", "got": "3", "reason": "3 != 2"}
