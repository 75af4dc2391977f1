#!/usr/bin/env bash
# D-HUMOR's role-reversal self-loop vs naive multi-turn RL on two-attempt arithmetic episodes,
# tiny model, 3 seeds per arm, both arms from the same warm-started model per seed
# (configs/selfcorrect/role_reversal.toml: the warm start's corrections carry a critique, the
# verifier's text feedback on another problem's answer). The role_reversal arm critiques each
# first attempt from the asker's side before the second; the naive arm answers again after
# the instruction alone. Both learn every message on its own reward.
#   bash experiments/role-reversal/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/role-reversal/ (RUNS to change); the report to
# experiments/role-reversal/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/experiments/role-reversal}
# 20 policy steps (the config's 40 halved to fit a two-core session), evaluated every 5.
export ARM_SETTINGS="--set run.steps=20 --set eval.every=5 --set run.checkpoint_every=10"
bash experiments/selfcorrect-arms.sh configs/selfcorrect/role_reversal.toml "$RUNS" role_reversal naive
metrics=()
for m in accuracy_t1 accuracy_t2 delta delta_i_to_c delta_c_to_i identical_rate; do
    metrics+=(--metric "eval/arithmetic/$m")
done
target/release/spar compare --title "Role reversal vs naive multi-turn RL on arithmetic" \
    --out experiments/role-reversal/report \
    --arm role_reversal=$RUNS/role_reversal --arm naive=$RUNS/naive "${metrics[@]}"
