#!/usr/bin/env bash
# CoSC on arithmetic with a tiny model (configs/selfcorrect/cosc.toml), 3 seeds per arm:
#   pot     (a) single-stage program of thought: SFT on one-stage teacher trajectories
#               (cosc.stages = 1), the same problems and steps as phase 1;
#   phase1  (b) CoSC phase 1: SFT on the teacher's staged trajectories (slips at
#               cosc.slip_rate, verified and corrected), up to 3 stages;
#   phase2  (c) CoSC phases 1 + 2: phase 1's model, then run.steps of rejection-sampled SFT
#               on its own right trajectories.
#   bash experiments/cosc-stages/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/cosc/ (RUNS to change); the report to
# experiments/cosc-stages/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/experiments/cosc}
BASE=configs/selfcorrect/cosc.toml
SEEDS=${SEEDS:-0 1 2}
cargo build --release -p spar-cli
for seed in $SEEDS; do
    echo "$RUNS/pot/seed$seed $BASE --set run.seed=$seed --set run.steps=0 --set cosc.stages=1"
    echo "$RUNS/phase1/seed$seed $BASE --set run.seed=$seed --set run.steps=0"
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
for seed in $SEEDS; do
    echo "$RUNS/phase2/seed$seed $BASE --set run.seed=$seed --set warm_start.steps=0 --set model.init=$RUNS/phase1/seed$seed/checkpoints/step-000000"
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
metrics=()
for m in accuracy first_program_accuracy mean_stages revision_rate invalid_rate \
    accuracy_by_difficulty/1 accuracy_by_difficulty/2 stages_by_difficulty/1 stages_by_difficulty/2; do
    metrics+=(--metric "eval/arithmetic/$m")
done
target/release/spar compare --title "CoSC on arithmetic: program of thought vs phase 1 vs phases 1+2" \
    --out experiments/cosc-stages/report \
    --arm pot=$RUNS/pot --arm phase1=$RUNS/phase1 --arm phase2=$RUNS/phase2 \
    "${metrics[@]}" --metric selfcorrect/kept_episodes --metric selfcorrect/accuracy
# PNG copies of the plots (with CairoSVG, `pip install cairosvg`, where it is installed).
if python3 -c "import cairosvg" 2> /dev/null; then
    for svg in experiments/cosc-stages/report/*.svg; do
        python3 -c "import cairosvg, sys; cairosvg.svg2png(url=sys.argv[1], write_to=sys.argv[2], dpi=110)" \
            "$svg" "${svg%.svg}.png" || echo "no PNG for $svg" >&2
    done
else
    echo "no PNG copies: pip install cairosvg" >&2
fi
