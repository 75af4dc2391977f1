"""Tabular policies move between OpenSpiel and spar unchanged, in both directions.

1. OpenSpiel -> spar: pyspiel's CFR average policy on Kuhn and Leduc is written in spar's
   policy-file format; `spar exploitability` must report OpenSpiel's own NashConv.
2. spar -> OpenSpiel: `spar solve --out` writes a CFR+ policy; pyspiel loads it as a
   `TabularPolicy` and its `nash_conv` must equal spar's.

Run by hand (after `bash scripts/bench_peers.sh` has created .venv-bench):
    .venv-bench/bin/python scripts/openspiel_interop.py --spar target/release/spar
Exits non-zero if any pair differs by more than 1e-9.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import pyspiel

GAMES = {"kuhn": "kuhn_poker", "leduc": "leduc_poker"}


def spar_json(spar, *args):
    out = subprocess.run([spar, *args, "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def decision_states(game):
    """Every decision information state with its legal actions, per player."""
    found = {}
    stack = [game.new_initial_state()]
    while stack:
        state = stack.pop()
        if state.is_terminal():
            continue
        if not state.is_chance_node():
            player = state.current_player()
            found[state.information_state_string(player)] = (state, player)
        for action in state.legal_actions():
            stack.append(state.child(action))
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spar", required=True)
    args = parser.parse_args()
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for spar_name, os_name in GAMES.items():
            game = pyspiel.load_game(os_name)
            # OpenSpiel -> spar.
            solver = pyspiel.CFRSolver(game)
            for _ in range(50):
                solver.evaluate_and_update_policy()
            policy = solver.average_policy()
            table = {
                key: [[a, p] for a, p in policy.action_probabilities(state).items()]
                for key, (state, _) in decision_states(game).items()
            }
            path = os.path.join(tmp, f"{spar_name}-openspiel.json")
            with open(path, "w") as f:
                json.dump({"game": os_name, "policy": table}, f)
            theirs = pyspiel.nash_conv(game, policy)
            ours = spar_json(args.spar, "exploitability", "--game", spar_name, "--policy", path)["nash_conv"]
            print(f"{spar_name}: OpenSpiel CFR(50) policy: NashConv OpenSpiel {theirs:.12f}, spar {ours:.12f}")
            worst = max(worst, abs(theirs - ours))
            # spar -> OpenSpiel.
            path = os.path.join(tmp, f"{spar_name}-spar.json")
            ours = spar_json(args.spar, "solve", "--game", spar_name, "--algo", "cfr+",
                             "--iterations", "50", "--report-every", "0", "--out", path)["nash_conv"]
            with open(path) as f:
                loaded = json.load(f)["policy"]
            tabular = pyspiel.TabularPolicy({k: [tuple(p) for p in v] for k, v in loaded.items()})
            theirs = pyspiel.nash_conv(game, tabular)
            print(f"{spar_name}: spar CFR+(50) policy: NashConv spar {ours:.12f}, OpenSpiel {theirs:.12f}")
            worst = max(worst, abs(theirs - ours))
    print(f"largest difference: {worst:.3e}")
    sys.exit(0 if worst <= 1e-9 else 1)


if __name__ == "__main__":
    main()
