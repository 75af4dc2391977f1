#!/usr/bin/env bash
# propose-arms.sh RUNS ARM... : trains the named arms of a proposer/solver experiment on
# configs/curriculum/propose.toml for seeds 0-2 (SEEDS to change), each from its seed's
# warm-started model (RUNS/warm/seedN, made first), skipping runs that have finished. Runs go
# to RUNS/ARM/seedN; JOBS runs side by side. SETTINGS (e.g. "--set propose.hops=[1,2]") is
# added to every run, the warm starts included; STEPS to the arm runs only.
# Arms (propose.source): model, fixed, evolve, eva, eva_uniform (eva drawing uniformly).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=$1
shift
BASE=configs/curriculum/propose.toml
SETTINGS=${SETTINGS:-}
STEPS=${STEPS:-}
SEEDS=${SEEDS:-0 1 2}
cargo build --release -p spar-cli
# (No line may end in a blank: xargs -L joins such a line with the next.)
for seed in $SEEDS; do
    echo "$RUNS/warm/seed$seed $BASE --set run.seed=$seed --set run.steps=0${SETTINGS:+ $SETTINGS}"
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
source_of() {
    case $1 in
        model | fixed | evolve | eva) echo "--set propose.source=$1" ;;
        eva_uniform) echo "--set propose.source=eva --set propose.eva_sampling=uniform" ;;
        *) echo "unknown arm $1" >&2; exit 2 ;;
    esac
}
for arm in "$@"; do
    extra=$(source_of "$arm")
    for seed in $SEEDS; do
        echo "$RUNS/$arm/seed$seed $BASE${SETTINGS:+ $SETTINGS} --set run.seed=$seed --set warm_start.steps=0 --set model.init=$RUNS/warm/seed$seed/checkpoints/step-000000 $extra${STEPS:+ $STEPS}"
    done
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
