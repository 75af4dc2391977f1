#!/usr/bin/env bash
# SPOC vs single-attempt RL on arithmetic with a tiny model, 3 seeds per arm, both arms from
# the same SPOC-warm-started model per seed (configs/selfcorrect/spoc.toml: SPOC's SFT data,
# D_correct and D_pair, on one-digit additions and subtractions of two numbers).
#   bash experiments/spoc-vs-single/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/spoc/ (RUNS to change); the report to
# experiments/spoc-vs-single/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/experiments/spoc}
# 20 policy steps (the config's 40 halved to fit a two-core session shared with builds),
# evaluated every 5.
export ARM_SETTINGS="--set run.steps=20 --set eval.every=5 --set run.checkpoint_every=10"
bash experiments/selfcorrect-arms.sh configs/selfcorrect/spoc.toml "$RUNS" spoc single1
metrics=()
for m in accuracy_t1 accuracy_t2 response_tokens; do
    metrics+=(--metric "eval/arithmetic/$m")
done
for m in accuracy false_yes_rate false_no_rate precision_wrong recall_wrong mean_attempts; do
    metrics+=(--metric "eval/arithmetic/verify/$m")
done
target/release/spar compare --title "SPOC vs single-attempt RL on arithmetic" \
    --out experiments/spoc-vs-single/report \
    --arm spoc=$RUNS/spoc --arm single=$RUNS/single1 \
    "${metrics[@]}" --metric selfcorrect/response_tokens --metric learner/kl_ref
# PNG copies of the plots (with CairoSVG, `pip install cairosvg`, where it is installed).
if python3 -c "import cairosvg" 2> /dev/null; then
    for svg in experiments/spoc-vs-single/report/*.svg; do
        python3 -c "import cairosvg, sys; cairosvg.svg2png(url=sys.argv[1], write_to=sys.argv[2], dpi=110)" \
            "$svg" "${svg%.svg}.png" || echo "no PNG for $svg" >&2
    done
else
    echo "no PNG copies: pip install cairosvg" >&2
fi
