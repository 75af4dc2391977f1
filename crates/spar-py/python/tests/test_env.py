"""Games and tasks as text environments (spar.make): episodes, roles, rewards, invalid moves
as data, and errors."""

import pytest

import spar


def card(env, player):
    """A Kuhn player's card (0 = J, 1 = Q, 2 = K): the compact view's state text is the
    information-state string, whose first character is the card."""
    return int(env.observation(player).state_text[0])


def test_kuhn_episode_check_check_goes_to_the_higher_card():
    env = spar.make("kuhn", view="compact")
    assert env.roles == ["kuhn/player0", "kuhn/player1"]
    assert env.num_players == 2 and not env.is_task
    for seed in range(6):
        env.reset(num_players=2, seed=seed)
        cards = [card(env, 0), card(env, 1)]
        assert cards[0] != cards[1]
        player, prompt = env.get_observation()
        assert player == 0
        assert "Legal actions: [check], [bet]" in prompt
        assert env.legal_answers() == ["\\boxed{check}", "\\boxed{bet}"]
        done, info = env.step("I check. \\boxed{check}")
        assert not done and not info["invalid"]
        assert info["outcome"] == {"kind": "move", "action_text": "check", "action": 0}
        assert env.current_player() == 1
        done, info = env.step("\\boxed{check}")
        assert done and env.done and env.current_player() is None
        # Both checked: the ante (1 chip) goes to the higher card.
        winner = 0 if cards[0] > cards[1] else 1
        expected = [1.0, -1.0] if winner == 0 else [-1.0, 1.0]
        assert env.returns() == expected
        rewards, game_info = env.close()
        assert rewards == {0: expected[0], 1: expected[1]}
        assert game_info[0] == {"role": "kuhn/player0", "invalid_moves": 0, "truncated": False}
        transcript = env.transcript()
        assert [t["completion"] for t in transcript["turns"]] == ["I check. \\boxed{check}", "\\boxed{check}"]
        assert transcript["returns"] == expected and transcript["seed"] == seed


def test_full_view_has_rules_role_and_answer_format():
    env = spar.make("kuhn")
    env.reset(seed=1)
    observation = env.observation()
    assert observation.role == "kuhn/player0" and observation.player == 0
    assert observation.system  # SPIRAL's rules as the system prompt
    assert observation.legal_actions == ["check", "bet"]
    assert "\\boxed{}" in observation.answer_format
    assert observation.full_prompt == observation.system.rstrip() + "\n\n" + observation.prompt
    assert [m["role"] for m in observation.messages()] == ["system", "user"]


def test_invalid_moves_are_data_under_each_rule():
    # SPIRAL's rule: an invalid move ends the game, -1.5 to the offender, +0.5 to the other.
    env = spar.make("kuhn", invalid_move_rule="spiral")
    env.reset(seed=0)
    done, info = env.step("I bet everything")
    assert done and info["invalid"]
    assert info["outcome"]["kind"] == "invalid" and info["outcome"]["retry"] is False
    assert "is not a legal action; legal actions: check, bet" in info["outcome"]["reason"]
    assert env.returns() == [-1.5, 0.5]
    assert env.close()[1][0]["invalid_moves"] == 1
    # retry:1 (TextArena-style): one retry, the same player answers again.
    env = spar.make("kuhn", invalid_move_rule="retry:1", protocol="bracketed")
    env.reset(seed=0)
    done, info = env.step("\\boxed{raise}")
    assert not done and info["invalid"] and info["outcome"]["retry"] is True
    assert env.current_player() == 0
    done, info = env.step("[bet]")
    assert not info["invalid"] and env.current_player() == 1


def test_a_step_by_the_wrong_player_is_an_invalid_move():
    env = spar.make("tictactoe", invalid_move_rule="retry:2")
    env.reset(seed=0)
    done, info = env.step("\\boxed{0}", player=1)
    assert info["invalid"] and "not to move" in info["outcome"]["reason"]


def test_task_episode_scores_the_verifier():
    spec = "arithmetic(digits=1,terms=2,ops=+-)"
    problem = spar.task(spec).problems(1, split="train", start=3, seed=7)[0]
    env = spar.make(spec, split="train", task_seed=7)
    assert env.is_task and env.roles == ["arithmetic/solver"]
    env.reset(seed=3)
    observation = env.observation()
    assert observation.state_text == problem["question"]
    assert observation.legal_actions is None
    done, info = env.step(f"Answer: {problem['answer']}")
    assert done and not info["invalid"] and env.returns() == [1.0]
    env.reset(seed=3)
    wrong = str(int(problem["answer"]) + 1)
    done, info = env.step(wrong)
    assert done and info["outcome"]["action_text"] == wrong and env.returns() == [0.0]
    env.reset(seed=3)
    done, info = env.step("no idea")
    assert info["invalid"] and env.returns() == [0.0]


def test_bad_input_raises_value_error_with_the_cli_message():
    with pytest.raises(ValueError, match=r'"chess" is neither a game \(kuhn, leduc'):
        spar.make("chess")
    with pytest.raises(ValueError, match="unknown protocol"):
        spar.make("kuhn", protocol="xml")
    with pytest.raises(ValueError, match="retry:N"):
        spar.make("kuhn", invalid_move_rule="forgive")
    with pytest.raises(ValueError, match="applies to games"):
        spar.make("arithmetic", view="compact")
    with pytest.raises(ValueError, match="has 2 player"):
        spar.make("kuhn").reset(num_players=3)
    env = spar.make("arithmetic")
    with pytest.raises(ValueError, match="reset"):
        env.step("1")
    env.reset(seed=0)
    env.step("1")
    with pytest.raises(ValueError, match="the episode is over"):
        env.step("2")
    with pytest.raises(ValueError, match="player 5 does not exist"):
        spar.make("kuhn").observation(5)
