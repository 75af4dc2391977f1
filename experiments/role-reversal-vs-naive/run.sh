#!/usr/bin/env bash
# D-HUMOR's Role-Reversal Self-Loop (answer, critique the answer from the asker's side, answer
# again) vs naive multi-turn RL (answer, answer again) on two-attempt arithmetic episodes, tiny
# model, 3 seeds per arm, both arms from the same warm-started model per seed: the role-reversal
# config's warm start, whose second attempts follow a critique (configs/selfcorrect/role_reversal.toml).
#   bash experiments/role-reversal-vs-naive/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/role-reversal/ (RUNS to change); the report to
# experiments/role-reversal-vs-naive/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/experiments/role-reversal}
# 10 policy steps (the config's 40 cut to a quarter to fit a two-core session shared with two
# other sessions), evaluated every 5 on 64 test problems x 4 episodes.
export ARM_SETTINGS="--set run.steps=10 --set eval.every=5 --set run.checkpoint_every=5"
bash experiments/selfcorrect-arms.sh configs/selfcorrect/role_reversal.toml "$RUNS" role_reversal naive
metrics=()
for m in accuracy_t1 accuracy_t2 delta delta_i_to_c delta_c_to_i identical_rate; do
    metrics+=(--metric "eval/arithmetic/$m")
done
target/release/spar compare --title "Role-reversal self-loop vs naive multi-turn RL on arithmetic" \
    --out experiments/role-reversal-vs-naive/report \
    --arm role_reversal=$RUNS/role_reversal --arm naive=$RUNS/naive \
    "${metrics[@]}" --metric selfcorrect/accuracy_t1 --metric selfcorrect/accuracy_t2
