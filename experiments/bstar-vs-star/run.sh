#!/usr/bin/env bash
# B-STaR vs STaR (rejection-sampling fine-tuning at a fixed temperature and sample count) on
# arithmetic with a tiny model trained from scratch; 3 seeds per arm, both arms from the same
# warm-started model per seed (the task experiments' warm starts, experiments/arithmetic-tiny.toml).
#   star   configs/curriculum/bstar.toml as a one-point grid: T = 0.7, n = 8, no dedup, no
#          confidence term (= loss "sft" at rollout.temperature 0.7, group_size 8, with the
#          monitors logged; docs/curriculum.md)
#   bstar  configs/curriculum/bstar.toml: T in {0.5, 0.7, 0.9, 1.1, 1.3} x n in {4, 8}
#   bstar-probe32  the same, its choice scored on all 32 of the step's problems instead of 8
#   bash experiments/bstar-vs-star/run.sh      (JOBS=2 side by side; an arm line must not end in a
#   blank: xargs -L would join it to the next)
# Runs go to runs/experiments/bstar/ (RUNS to change); the report to experiments/bstar-vs-star/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p spar-cli
RUNS=${RUNS:-runs/experiments/bstar}
WARM=${WARM:-runs/experiments/tasks/warm}
SEEDS=${SEEDS:-0 1 2}
CONFIG=configs/curriculum/bstar.toml
for seed in $SEEDS; do
    echo "$WARM/seed$seed experiments/arithmetic-tiny.toml --set run.seed=$seed --set run.steps=0"
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
settings() {
    case $1 in
        star) echo "--set bstar.temperatures=[0.7] --set bstar.counts=[8] --set bstar.dedup=false --set bstar.confidence_weight=0" ;;
        bstar) echo "--set bstar.dedup=true" ;;
        bstar-probe32) echo "--set bstar.probe_prompts=32" ;;
        *) echo "unknown arm $1" >&2; exit 2 ;;
    esac
}
for seed in $SEEDS; do
    for arm in star bstar bstar-probe32; do
        echo "$RUNS/$arm/seed$seed $CONFIG --set run.seed=$seed --set warm_start.steps=0 --set model.init=$WARM/seed$seed/checkpoints/step-000000 $(settings $arm)"
    done
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
target/release/spar compare --title "Arithmetic: B-STaR vs STaR (T = 0.7, n = 8)" \
    --out experiments/bstar-vs-star/report \
    --arm star=$RUNS/star --arm bstar=$RUNS/bstar \
    --metric eval/arithmetic/pass_at/1 --metric eval/arithmetic/pass_at/16 \
    --metric eval/arithmetic/majority_accuracy --metric eval/arithmetic/distinct_correct \
    --metric tasks/bstar/temperature --metric tasks/bstar/samples --metric tasks/bstar/tau \
    --metric tasks/bstar/pass_at_n --metric tasks/bstar/distinct_correct \
    --metric tasks/bstar/precision --metric tasks/bstar/selected --metric tasks/train_accuracy
target/release/spar compare --title "Arithmetic: B-STaR (probe of 8 or 32 problems) vs STaR" \
    --out experiments/bstar-vs-star/report-probe32 \
    --arm star=$RUNS/star --arm bstar=$RUNS/bstar --arm bstar-probe32=$RUNS/bstar-probe32 \
    --metric eval/arithmetic/pass_at/1 --metric eval/arithmetic/pass_at/16 \
    --metric eval/arithmetic/majority_accuracy --metric tasks/bstar/temperature \
    --metric tasks/bstar/samples --metric tasks/bstar/pass_at_n --metric tasks/bstar/selected
