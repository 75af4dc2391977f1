"""Side-by-side benchmarks: spar vs OpenSpiel (pyspiel) and TextArena.

Measures, in one run on the same machine:
  * uniformly random playouts per second per game (spar `bench`, a Python loop over pyspiel's
    C++ states, TextArena environments driven by random valid moves);
  * CFR+ iterations per second on Leduc (spar vs pyspiel.CFRPlusSolver, C++);
  * NashConv computation time on Leduc for the uniform policy (spar vs pyspiel.nash_conv, C++).
Prints a Markdown table of absolute numbers and ratios (spar / peer).
"""

import argparse
import json
import platform
import random
import re
import subprocess
import time

import pyspiel
import textarena as ta


def spar_json(spar, *args):
    out = subprocess.run([spar, *args, "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def spar_playouts(spar, game, seconds):
    return spar_json(spar, "bench", "--game", game, "--seconds", str(seconds))["playouts_per_second"]


def pyspiel_playouts(name, seconds, params=None):
    game = pyspiel.load_game(name, params or {})
    rng = random.Random(0)
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        state = game.new_initial_state()
        while not state.is_terminal():
            if state.is_chance_node():
                actions, probs = zip(*state.chance_outcomes())
                state.apply_action(rng.choices(actions, probs)[0])
            else:
                state.apply_action(rng.choice(state.legal_actions()))
        state.returns()
        done += 1
    return done / (time.perf_counter() - start)


def textarena_move(env_id, env, observation, rng):
    """A random valid move for the TextArena environments benchmarked here."""
    game_state = env.state.game_state
    if env_id.startswith("TicTacToe"):
        board = game_state["board"]
        free = [3 * r + c for r in range(3) for c in range(3) if board[r][c] not in ("X", "O")]
        return f"[{rng.choice(free)}]"
    if env_id.startswith("ConnectFour"):
        board = game_state["board"]
        free = [c for c in range(len(board[0])) if board[0][c] == "."]
        return f"[col {rng.choice(free)}]"
    if env_id.startswith("KuhnPoker"):
        line = [l for l in observation.splitlines() if "available actions" in l][-1]
        return rng.choice(re.findall(r"\[\w+\]", line))
    if env_id.startswith("SimpleNegotiation"):
        return rng.choice(["Let us trade.", "[Deny]", "[Offer: 1 Wheat -> 1 Wood]"])
    raise ValueError(env_id)


def textarena_playouts(env_id, seconds):
    env = ta.make(env_id)
    rng = random.Random(0)
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.reset(num_players=2, seed=done)
        finished = False
        while not finished:
            _, observation = env.get_observation()
            finished, _ = env.step(textarena_move(env_id, env, observation, rng))
        env.close()
        done += 1
    return done / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spar", required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--cfr-iterations", type=int, default=200)
    args = parser.parse_args()
    s = args.seconds

    rows = []
    # (spar game, pyspiel game, TextArena env)
    games = [
        ("kuhn", "kuhn_poker", None),
        ("kuhn(hands=3)", None, "KuhnPoker-v0"),
        ("leduc", "leduc_poker", None),
        ("tictactoe", "tic_tac_toe", "TicTacToe-v0"),
        ("connect_four", "connect_four", "ConnectFour-v0"),
        ("negotiation", None, "SimpleNegotiation-v0"),
    ]
    for spar_game, os_game, ta_env in games:
        ours = spar_playouts(args.spar, spar_game, s)
        theirs_os = pyspiel_playouts(os_game, s) if os_game else None
        theirs_ta = textarena_playouts(ta_env, s) if ta_env else None
        rows.append((spar_game, ours, theirs_os, theirs_ta))

    print(f"# spar vs peers, {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"pyspiel {pyspiel.__version__ if hasattr(pyspiel, '__version__') else '2.x'}, textarena {ta.__version__}\n")
    print("| game (spar) | spar playouts/s | pyspiel playouts/s | spar/pyspiel | TextArena playouts/s | spar/TextArena |")
    print("|---|---|---|---|---|---|")
    for game, ours, os_rate, ta_rate in rows:
        os_cells = f"{os_rate:,.0f} | {ours / os_rate:,.1f}x" if os_rate else "- | -"
        ta_cells = f"{ta_rate:,.0f} | {ours / ta_rate:,.0f}x" if ta_rate else "- | -"
        print(f"| {game} | {ours:,.0f} | {os_cells} | {ta_cells} |")

    # CFR+ on Leduc.
    n = args.cfr_iterations
    ours = spar_json(args.spar, "solve", "--game", "leduc", "--algo", "cfr+", "--iterations", str(n),
                     "--report-every", "0")
    game = pyspiel.load_game("leduc_poker")
    solver = pyspiel.CFRPlusSolver(game)
    start = time.perf_counter()
    for _ in range(n):
        solver.evaluate_and_update_policy()
    theirs_seconds = time.perf_counter() - start
    theirs_nash_conv = pyspiel.nash_conv(game, solver.average_policy())
    print(f"\n| Leduc CFR+, {n} iterations | spar | OpenSpiel C++ (pyspiel.CFRPlusSolver) | spar/OpenSpiel |")
    print("|---|---|---|---|")
    print(f"| iterations/s | {ours['iterations_per_second']:,.0f} | {n / theirs_seconds:,.0f} | "
          f"{ours['iterations_per_second'] / (n / theirs_seconds):.1f}x |")
    print(f"| final NashConv | {ours['nash_conv']:.6f} | {theirs_nash_conv:.6f} | |")

    # NashConv of the uniform policy on Leduc (best responses for both players).
    ours = spar_json(args.spar, "exploitability", "--game", "leduc", "--policy", "uniform")
    uniform = pyspiel.UniformRandomPolicy(game)
    start = time.perf_counter()
    theirs_value = pyspiel.nash_conv(game, uniform)
    theirs_seconds = time.perf_counter() - start
    print(f"\n| Leduc NashConv of uniform | spar | OpenSpiel C++ (pyspiel.nash_conv) | OpenSpiel/spar time |")
    print("|---|---|---|---|")
    print(f"| seconds | {ours['seconds']:.4f} | {theirs_seconds:.4f} | {theirs_seconds / ours['seconds']:.1f}x faster |")
    print(f"| value | {ours['nash_conv']:.6f} | {theirs_value:.6f} | |")


if __name__ == "__main__":
    main()
