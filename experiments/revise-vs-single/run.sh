#!/usr/bin/env bash
# ReVISE (an answer ends, or writes the refine marker and tries again within the same answer;
# DPO + NLL pairs in two stages: verify, then correct; confidence-aware voting at evaluation)
# vs single-attempt RL (RLOO on the same one-answer episodes), arithmetic, tiny model, 3 seeds
# per arm, every arm from the same warm-started model per seed
# (configs/selfcorrect/revise.toml). ReVISE in three arms: the config as shipped (marker
# "[refine]", 8 bytes for this byte-level model), a one-character marker "?" (the paper's
# marker is one new token), and "?" at learning rate 2e-3 (4x the config's).
#   bash experiments/revise-vs-single/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/revise/ (RUNS to change); the report to
# experiments/revise-vs-single/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/experiments/revise}
# The config's 30 policy steps (15 per ReVISE stage), evaluated every 10 (every 5 for
# revise_fast) on 64 test problems x 4 answers.
ARM_SETTINGS= bash experiments/selfcorrect-arms.sh configs/selfcorrect/revise.toml "$RUNS" \
    revise single1 revise_short
ARM_SETTINGS="--set eval.every=5" bash experiments/selfcorrect-arms.sh \
    configs/selfcorrect/revise.toml "$RUNS" revise_fast
metrics=()
for m in accuracy_t1 accuracy_t2 refine/majority_accuracy refine/weighted_accuracy \
    refine/auroc refine/p_refine refine/refine_rate; do
    metrics+=(--metric "eval/arithmetic/$m")
done
target/release/spar compare --title "ReVISE vs single-attempt RL on arithmetic" \
    --out experiments/revise-vs-single/report \
    --arm single1=$RUNS/single1 --arm revise=$RUNS/revise \
    --arm revise_short=$RUNS/revise_short --arm revise_fast=$RUNS/revise_fast \
    "${metrics[@]}" --metric selfcorrect/accuracy_t1 --metric learner/pair_accuracy \
    --metric selfcorrect/pairs/refine --metric selfcorrect/pairs/stop
