#!/usr/bin/env bash
# selfcorrect-arms.sh BASE RUNS ARM... : trains the named arms of a self-correction experiment
# on config BASE for seeds 0-2 (SEEDS to change), each from its seed's warm-started model
# (RUNS/warm/seedN, made first), skipping runs that have finished. Runs go to RUNS/ARM/seedN;
# JOBS runs side by side; ARM_SETTINGS (e.g. "--set run.steps=20") is added to every arm run.
# Arms (the settings each adds to BASE):
#   score, naive, single, rltf_sd   selfcorrect.method = the arm
#   rltf_fm                         single-turn RL + RLTF's feedback modelling (fm_coef 0.5)
#   spoc                            SPOC: the model verifies each attempt (selfcorrect.method = spoc)
#   single1                         single-attempt RL: one attempt, no verification
#   rerest, star, refuel, role_reversal   selfcorrect.method = the arm
#   naive_trloo                     naive multi-turn RL with TRLOO's turn returns
#   first_error, end, none          Agent-R (configs/selfcorrect/agent_r.toml): agent_r.splice = the arm
#   scl, scl_i_to_c                 SCL's DPO on both flip types / on wrong-then-right pairs only
#   revise                          ReVISE (configs/selfcorrect/revise.toml)
#   revise_short                    ReVISE with a one-character refine marker ("?")
#   revise_fast                     revise_short at learning rate 2e-3
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=$1
RUNS=$2
shift 2
cargo build --release -p spar-cli
SEEDS=${SEEDS:-0 1 2}
for seed in $SEEDS; do
    echo "$RUNS/warm/seed$seed $BASE --set run.seed=$seed --set run.steps=0"
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
# (No line may end in a blank: xargs -L joins such a line with the next.)
settings() {
    case $1 in
        score | naive | single | rltf_sd) echo "--set selfcorrect.method=$1" ;;
        rltf_fm) echo "--set selfcorrect.method=single --set selfcorrect.fm_coef=0.5" ;;
        spoc) echo "--set selfcorrect.method=spoc" ;;
        single1) echo "--set selfcorrect.method=single --set selfcorrect.attempts=1" ;;
        rerest | star | refuel | role_reversal) echo "--set selfcorrect.method=$1" ;;
        naive_trloo) echo "--set selfcorrect.method=naive --set algorithm.estimator=trloo" ;;
        first_error | end | none) echo "--set agent_r.splice=$1" ;;
        scl | revise) echo "--set selfcorrect.method=$1" ;;
        revise_short) echo "--set selfcorrect.method=revise --set selfcorrect.refine_marker=?" ;;
        revise_fast) echo "--set selfcorrect.method=revise --set selfcorrect.refine_marker=? --set algorithm.learning_rate=2e-3" ;;
        scl_i_to_c) echo "--set selfcorrect.method=scl --set selfcorrect.scl_pairs=i_to_c" ;;
        *) echo "unknown arm $1" >&2; exit 2 ;;
    esac
}
for arm in "$@"; do
    extra=$(settings "$arm")
    for seed in $SEEDS; do
        echo "$RUNS/$arm/seed$seed $BASE --set run.seed=$seed --set warm_start.steps=0 --set model.init=$RUNS/warm/seed$seed/checkpoints/step-000000 $extra${ARM_SETTINGS:+ $ARM_SETTINGS}"
    done
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
