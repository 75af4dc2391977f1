#!/usr/bin/env bash
# Re-ReST vs STaR-style self-training on arithmetic with a tiny model, 3 seeds per arm, both
# arms from the same warm-started model per seed (configs/selfcorrect/rerest.toml: two attempts,
# the second reading the verifier's text feedback; Pair-SFT warm start with corrections).
#   bash experiments/rerest-vs-star/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/multiturn/ (RUNS to change; experiments/refuel-vs-naive shares
# its warm starts); the report to experiments/rerest-vs-star/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/experiments/multiturn}
# 20 policy steps (the config's 40 halved to fit a two-core session), evaluated every 5.
export ARM_SETTINGS="--set run.steps=20 --set eval.every=5 --set run.checkpoint_every=10"
bash experiments/selfcorrect-arms.sh configs/selfcorrect/rerest.toml "$RUNS" rerest star
metrics=()
for m in accuracy_t1 accuracy_t2 delta identical_rate; do
    metrics+=(--metric "eval/arithmetic/$m")
done
target/release/spar compare --title "Re-ReST vs STaR self-training on arithmetic" \
    --out experiments/rerest-vs-star/report \
    --arm rerest=$RUNS/rerest --arm star=$RUNS/star \
    "${metrics[@]}" --metric selfcorrect/accepted/first \
    --metric selfcorrect/accepted/corrections --metric selfcorrect/accuracy_t1
