"""Exact evaluation from Python: known values, the CLI's numbers for the same policy, and
every form a policy may take (dict, callable, policy file, pyspiel-shaped tables)."""

import json

import pytest

import spar

# Kuhn Poker's equilibrium family at alpha = 1/3 (Kuhn 1950; spar_games::kuhn's reference
# policies): information states are OpenSpiel's (card 0=J 1=Q 2=K, then p/b), actions
# 0 = pass (check/fold) and 1 = bet (bet/call). Player 0 bets J with alpha, checks Q, bets
# K with 3 alpha, calls with Q with alpha + 1/3; player 1 bets J after a check 1/3 of the
# time, calls with Q 1/3 of the time, always bets and calls with K.
A = 1 / 3
NASH = {
    "0": [[0, 1 - A], [1, A]],
    "1": [[0, 1.0], [1, 0.0]],
    "2": [[0, 1 - 3 * A], [1, 3 * A]],
    "0pb": [[0, 1.0], [1, 0.0]],
    "1pb": [[0, 1 - (A + 1 / 3)], [1, A + 1 / 3]],
    "2pb": [[0, 0.0], [1, 1.0]],
    "0p": [[0, 2 / 3], [1, 1 / 3]],
    "1p": [[0, 1.0], [1, 0.0]],
    "2p": [[0, 0.0], [1, 1.0]],
    "0b": [[0, 1.0], [1, 0.0]],
    "1b": [[0, 2 / 3], [1, 1 / 3]],
    "2b": [[0, 0.0], [1, 1.0]],
}

# A lopsided policy in the three looser forms a dict may use.
LOOSE = {
    "0": [[0, 0.8], [1, 0.2]],  # pairs, as policy files and pyspiel's policy_table()
    "1b": {0: 0.25, 1: 0.75},  # {action: probability}
    "2p": [0.1, 0.9],  # a row indexed by action (OpenSpiel's action_probability_array)
}


def test_uniform_kuhn_is_11_over_24_exploitable():
    # OpenSpiel's and spar's known value: NashConv of uniform Kuhn Poker is 11/12.
    report = spar.nash_conv("kuhn")
    assert report["nash_conv"] == pytest.approx(11 / 12, abs=1e-12)
    assert spar.exploitability("kuhn") == pytest.approx(11 / 24, abs=1e-12)
    assert spar.exploitability("kuhn", "uniform") == spar.exploitability("kuhn", {})


def test_the_equilibrium_is_not_exploitable_and_worth_minus_one_eighteenth():
    report = spar.nash_conv("kuhn", NASH)
    assert report["exploitability"] == pytest.approx(0.0, abs=1e-12)
    # The game value for the first player is -1/18 (Kuhn 1950).
    assert report["on_policy_values"][0] == pytest.approx(-1 / 18, abs=1e-12)


def test_a_dict_policy_gets_the_cli_numbers(cli, tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"game": "kuhn", "policy": spar.policy_table("kuhn", LOOSE)}))
    from_cli = json.loads(cli("exploitability", "--game", "kuhn", "--policy", str(path), "--json"))
    from_python = spar.nash_conv("kuhn", LOOSE)
    for key in ("nash_conv", "exploitability", "best_response_values", "on_policy_values"):
        assert from_python[key] == from_cli[key], key
    assert from_python["exploitability"] != pytest.approx(11 / 24)  # not the uniform policy
    # The policy file itself, read by path, gives the same.
    assert spar.exploitability("kuhn", str(path)) == from_cli["exploitability"]


def test_cfr_plus_matches_spar_solve(cli, tmp_path):
    out = tmp_path / "avg.json"
    from_cli = json.loads(
        cli("solve", "--game", "kuhn", "--algo", "cfr+", "--iterations", "100", "--out", str(out), "--json")
    )
    solved = spar.solve("kuhn", "cfr+", iterations=100)
    assert solved["exploitability"] == from_cli["exploitability"]
    assert json.loads(out.read_text())["policy"] == solved["policy"]
    # The average policy, handed back, evaluates to the number solve reported.
    assert spar.exploitability("kuhn", solved["policy"]) == solved["exploitability"]


def test_a_callable_policy_is_asked_once_per_information_set():
    asked = []

    def policy(info_state, legal_actions):
        asked.append((info_state, tuple(legal_actions)))
        return NASH[info_state]

    assert spar.exploitability("kuhn", policy) == spar.exploitability("kuhn", NASH)
    assert sorted(s for s, _ in asked) == sorted(NASH)
    assert all(legal == (0, 1) for _, legal in asked)
    # One probability per legal action, in order, is accepted too.
    assert spar.exploitability("kuhn", lambda s, legal: [0.5, 0.5]) == pytest.approx(11 / 24, abs=1e-12)


def test_pyspiel_shaped_tabular_policies_are_read():
    class CppTabular:  # pyspiel.TabularPolicy: policy_table() of (action, probability) tuples
        def policy_table(self):
            return {k: [tuple(p) for p in v] for k, v in NASH.items()}

    class PythonTabular:  # open_spiel.python.policy.TabularPolicy: to_dict()
        def to_dict(self):
            return {k: [tuple(p) for p in v] for k, v in LOOSE.items() if isinstance(v, list) and isinstance(v[0], list)}

    assert spar.exploitability("kuhn", CppTabular()) == spar.exploitability("kuhn", NASH)
    assert spar.exploitability("kuhn", PythonTabular()) == spar.exploitability("kuhn", {"0": LOOSE["0"]})


def test_best_response_is_consistent_with_nash_conv_and_expected_returns():
    report = spar.nash_conv("kuhn", LOOSE)
    for player in (0, 1):
        response = spar.best_response("kuhn", LOOSE, player=player)
        assert response["value"] == pytest.approx(report["best_response_values"][player], abs=1e-12)
        # Playing the best response against the policy earns exactly its value.
        profile = [LOOSE, LOOSE]
        profile[player] = response["policy"]
        assert spar.expected_returns("kuhn", profile)[player] == pytest.approx(response["value"], abs=1e-12)
    assert spar.expected_returns("kuhn", NASH)[0] == pytest.approx(-1 / 18, abs=1e-12)


def test_leduc_uses_openspiel_information_states():
    states = spar.info_states("leduc")
    assert len(states) == 936  # OpenSpiel's Leduc Hold'em has 936 information states
    assert spar.exploitability("leduc") > 0


def test_bad_policies_raise_the_cli_messages():
    with pytest.raises(ValueError, match=r'policy\["0x"\]: no decision node of kuhn has this information state'):
        spar.exploitability("kuhn", {"0x": [[0, 1.0]]})
    with pytest.raises(ValueError, match=r"probabilities sum to 0.9"):
        spar.exploitability("kuhn", {"0": [[0, 0.5], [1, 0.4]]})
    with pytest.raises(ValueError, match="unknown game"):
        spar.exploitability("chess")
    with pytest.raises(ValueError, match="cannot read a policy"):
        spar.exploitability("kuhn", 3.5)
    with pytest.raises(ValueError, match="unknown algo"):
        spar.solve("kuhn", "fictitious")
