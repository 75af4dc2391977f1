#!/usr/bin/env bash
# SCL (DPO on two-attempt episodes whose answers flipped, on the first attempt's prompt) vs its
# ablation (wrong-then-right pairs only) vs STaR-style SFT on the right first attempts of the
# same episodes, arithmetic, tiny model, 3 seeds per arm, every arm from the same warm-started
# model per seed (configs/selfcorrect/scl.toml).
#   bash experiments/scl-vs-star/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/scl/ (RUNS to change); the report to experiments/scl-vs-star/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/experiments/scl}
# 20 policy steps (the config's 30 cut to fit a two-core session), evaluated every 5 on 64 test
# problems x 4 episodes.
export ARM_SETTINGS=${ARM_SETTINGS:-"--set run.steps=20 --set eval.every=5 --set run.checkpoint_every=10"}
bash experiments/selfcorrect-arms.sh configs/selfcorrect/scl.toml "$RUNS" scl scl_i_to_c star
metrics=()
for m in accuracy_t1 accuracy_t2 delta delta_i_to_c delta_c_to_i; do
    metrics+=(--metric "eval/arithmetic/$m")
done
target/release/spar compare --title "SCL vs wrong-then-right pairs only vs STaR SFT on arithmetic" \
    --out experiments/scl-vs-star/report \
    --arm scl=$RUNS/scl --arm scl_i_to_c=$RUNS/scl_i_to_c --arm star=$RUNS/star \
    "${metrics[@]}" --metric selfcorrect/accuracy_t1 --metric learner/pair_accuracy \
    --metric selfcorrect/pairs/i_to_c --metric selfcorrect/pairs/c_to_i
