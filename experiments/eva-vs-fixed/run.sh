#!/usr/bin/env bash
# eva's creator (propose.source = "eva": after each step, a quarter of its problems drawn
# weighted by the variance of their rewards, each evolved into 4 variants that make the next
# step's problems) vs the same evolution with problems drawn uniformly (eva's baseline b) vs
# a fixed problem distribution (baseline a), the same solver compute, on arithmetic with a
# tiny model, 3 seeds per arm from the same warm-started model per seed. The setting is
# experiments/propose-vs-fixed's second attempt (requests for 1 or 2 operations, held-out
# evaluation at 1, 2 and 3), so its warm starts and fixed arm are reused when present.
#   bash experiments/eva-vs-fixed/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/propose-hops1-2/ (RUNS to change); the report to
# experiments/eva-vs-fixed/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/experiments/propose-hops1-2}
# 20 policy steps, evaluated every 5 (as propose-vs-fixed).
SETTINGS="--set propose.hops=[1,2] --set propose.hop_weights=[1.0,1.0] --set eval.hops=[1,2,3] --set warm_start.steps=1500" \
    STEPS="--set run.steps=20 --set eval.every=5 --set run.checkpoint_every=10" \
    bash experiments/propose-arms.sh "$RUNS" eva eva_uniform fixed
metrics=(--metric eval/arithmetic/accuracy)
for h in 1 2 3; do
    metrics+=(--metric "eval/arithmetic/hops-$h/accuracy")
done
target/release/spar compare --title "eva vs uniform evolution vs a fixed distribution" \
    --out experiments/eva-vs-fixed/report \
    --arm eva=$RUNS/eva --arm eva_uniform=$RUNS/eva_uniform --arm fixed=$RUNS/fixed \
    "${metrics[@]}" --metric propose/solver/accuracy --metric propose/problems/mean_hops \
    --metric propose/problems/unsolved_rate --metric propose/eva/info \
    --metric propose/eva/selected_info
