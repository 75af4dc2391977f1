#!/usr/bin/env bash
# REFUEL vs naive multi-turn RL (RLOO on each attempt's own reward, and TRLOO on turn returns)
# on two-attempt arithmetic episodes with text feedback, tiny model, 3 seeds per arm, every arm
# from the same warm-started model per seed (configs/selfcorrect/refuel.toml).
#   bash experiments/refuel-vs-naive/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/multiturn/ (RUNS to change; experiments/rerest-vs-star shares
# its warm starts); the report to experiments/refuel-vs-naive/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/experiments/multiturn}
# 20 policy steps (the config's 40 halved to fit a two-core session), evaluated every 5.
export ARM_SETTINGS="--set run.steps=20 --set eval.every=5 --set run.checkpoint_every=10"
bash experiments/selfcorrect-arms.sh configs/selfcorrect/refuel.toml "$RUNS" refuel naive naive_trloo
metrics=()
for m in accuracy_t1 accuracy_t2 delta delta_i_to_c delta_c_to_i; do
    metrics+=(--metric "eval/arithmetic/$m")
done
target/release/spar compare --title "REFUEL vs naive multi-turn RL on arithmetic" \
    --out experiments/refuel-vs-naive/report \
    --arm refuel=$RUNS/refuel --arm naive=$RUNS/naive --arm naive_trloo=$RUNS/naive_trloo \
    "${metrics[@]}" --metric learner/pair_accuracy --metric selfcorrect/accuracy_t2
