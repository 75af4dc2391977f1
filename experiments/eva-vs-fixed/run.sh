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
BASE=configs/curriculum/propose.toml
SETTINGS="--set propose.hops=[1,2] --set propose.hop_weights=[1.0,1.0] --set eval.hops=[1,2,3] --set warm_start.steps=1500"
SEEDS=${SEEDS:-0 1 2}
# 20 policy steps, evaluated every 5 (as propose-vs-fixed).
STEPS="--set run.steps=20 --set eval.every=5 --set run.checkpoint_every=10"
cargo build --release -p spar-cli
for seed in $SEEDS; do
    echo "$RUNS/warm/seed$seed $BASE --set run.seed=$seed --set run.steps=0 $SETTINGS"
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
arm_settings() {
    case $1 in
        eva) echo "--set propose.source=eva" ;;
        eva_uniform) echo "--set propose.source=eva --set propose.eva_sampling=uniform" ;;
        fixed) echo "--set propose.source=fixed" ;;
    esac
}
for arm in eva eva_uniform fixed; do
    for seed in $SEEDS; do
        echo "$RUNS/$arm/seed$seed $BASE $SETTINGS --set run.seed=$seed --set warm_start.steps=0 --set model.init=$RUNS/warm/seed$seed/checkpoints/step-000000 $(arm_settings $arm) $STEPS"
    done
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
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
