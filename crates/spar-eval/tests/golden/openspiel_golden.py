"""Golden values for spar-eval's tests, computed with OpenSpiel (PyPI `open_spiel` 2.0.2).

Run with `python openspiel_golden.py` in an environment with `pip install open_spiel`; the
output is pasted into `crates/spar-eval/tests/openspiel_golden.rs`. Not run in CI.
"""
import pyspiel
from open_spiel.python import policy as policy_lib
from open_spiel.python.algorithms import cfr, exploitability


def trace(game, solver, checkpoints, nash_conv):
    values = {}
    for i in range(1, max(checkpoints) + 1):
        solver.evaluate_and_update_policy()
        if i in checkpoints:
            values[i] = nash_conv(game, solver.average_policy())
    return values


kuhn = pyspiel.load_game("kuhn_poker")
leduc = pyspiel.load_game("leduc_poker")
kuhn_points = [1, 2, 3, 5, 10, 100]
print("kuhn CFRSolver", trace(kuhn, cfr.CFRSolver(kuhn), kuhn_points, exploitability.nash_conv))
print("kuhn CFRPlusSolver", trace(kuhn, cfr.CFRPlusSolver(kuhn), kuhn_points, exploitability.nash_conv))
simultaneous = cfr._CFRSolver(kuhn, regret_matching_plus=False, alternating_updates=False,
                              linear_averaging=False)
print("kuhn simultaneous", trace(kuhn, simultaneous, kuhn_points, exploitability.nash_conv))
print("leduc uniform", exploitability.nash_conv(leduc, policy_lib.UniformRandomPolicy(leduc)))
print("leduc first action", exploitability.nash_conv(leduc, policy_lib.FirstActionPolicy(leduc)))
print("leduc CFRSolver (C++)",
      trace(leduc, pyspiel.CFRSolver(leduc), [1, 10, 100, 1000], pyspiel.nash_conv))
print("leduc CFRPlusSolver (C++)",
      trace(leduc, pyspiel.CFRPlusSolver(leduc), [1, 10, 100], pyspiel.nash_conv))
