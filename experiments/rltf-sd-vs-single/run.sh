#!/usr/bin/env bash
# RLTF-SD and RLTF-FM vs single-turn RL on arithmetic with text feedback during training only,
# tiny model, 3 seeds per arm, every arm from the same warm-started model per seed
# (configs/selfcorrect/rltf.toml). The test metric is the first attempt's accuracy, which
# never reads feedback.
#   bash experiments/rltf-sd-vs-single/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/rltf/ (RUNS to change); the report to
# experiments/rltf-sd-vs-single/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/experiments/rltf}
bash experiments/selfcorrect-arms.sh configs/selfcorrect/rltf.toml "$RUNS" single rltf_sd rltf_fm
target/release/spar compare --title "RLTF on arithmetic: self-distillation and feedback modelling vs single-turn RL" \
    --out experiments/rltf-sd-vs-single/report \
    --arm single=$RUNS/single --arm rltf_sd=$RUNS/rltf_sd --arm rltf_fm=$RUNS/rltf_fm \
    --metric eval/arithmetic/accuracy_t1 --metric eval/arithmetic/accuracy_t2 \
    --metric selfcorrect/accuracy_t1 --metric selfcorrect/accuracy_t2 \
    --metric eval/arithmetic/unparsable_rate --metric learner/loss
