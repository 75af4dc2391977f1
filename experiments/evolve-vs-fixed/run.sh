#!/usr/bin/env bash
# C2-Evo's difficulty-matched problem pool (propose.source = "evolve": problems solved by 20%
# to 80% of the solver's answers stay a second step, easier ones gain an operation, harder
# ones lose one; fresh task problems fill the rest) vs a fixed problem distribution (the
# arithmetic task's own problems, the same count per step), the same solver compute, on
# arithmetic with a tiny model, 3 seeds per arm from the same warm-started model per seed.
# The setting is experiments/propose-vs-fixed's second attempt (requests for 1 or 2
# operations, held-out evaluation at 1, 2 and 3), so its warm starts and fixed arm are
# reused when present.
#   bash experiments/evolve-vs-fixed/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/propose-hops1-2/ (RUNS to change); the report to
# experiments/evolve-vs-fixed/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/experiments/propose-hops1-2}
# 20 policy steps, evaluated every 5 (as propose-vs-fixed).
SETTINGS="--set propose.hops=[1,2] --set propose.hop_weights=[1.0,1.0] --set eval.hops=[1,2,3] --set warm_start.steps=1500" \
    STEPS="--set run.steps=20 --set eval.every=5 --set run.checkpoint_every=10" \
    bash experiments/propose-arms.sh "$RUNS" evolve fixed
metrics=(--metric eval/arithmetic/accuracy)
for h in 1 2 3; do
    metrics+=(--metric "eval/arithmetic/hops-$h/accuracy")
done
target/release/spar compare --title "C2-Evo's evolving pool vs a fixed distribution" \
    --out experiments/evolve-vs-fixed/report \
    --arm evolve=$RUNS/evolve --arm fixed=$RUNS/fixed \
    "${metrics[@]}" --metric propose/solver/accuracy --metric propose/problems/mean_hops \
    --metric propose/problems/unsolved_rate --metric propose/problems/trivial_rate \
    --metric propose/evolve/in_band --metric propose/evolve/up --metric propose/evolve/down
