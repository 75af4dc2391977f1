#!/usr/bin/env bash
# SCoRe vs naive multi-turn RL vs single-turn RL on two-attempt arithmetic with a tiny model,
# 3 seeds per arm, every arm from the same warm-started model per seed
# (configs/selfcorrect/score.toml: one-digit additions and subtractions of two numbers).
#   bash experiments/score-vs-naive-vs-single/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/selfcorrect/ (RUNS to change); the report to
# experiments/score-vs-naive-vs-single/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/experiments/selfcorrect}
bash experiments/selfcorrect-arms.sh configs/selfcorrect/score.toml "$RUNS" score naive single
metrics=()
for m in accuracy_t1 accuracy_t2 delta delta_i_to_c delta_c_to_i identical_rate; do
    metrics+=(--metric "eval/arithmetic/$m")
done
target/release/spar compare --title "Self-correction on arithmetic: SCoRe vs naive multi-turn RL vs single-turn RL" \
    --out experiments/score-vs-naive-vs-single/report \
    --arm score=$RUNS/score --arm naive=$RUNS/naive --arm single=$RUNS/single \
    "${metrics[@]}" --metric selfcorrect/identical_rate --metric selfcorrect/delta --metric learner/kl_ref
