#!/usr/bin/env bash
# The reversal curse: causal vs masked LM vs causal + SPT vs the concept-level model (and the
# concept-level model with its memory layer), on the same synthetic facts
# (configs/reversal/<arm>.toml), 3 seeds per arm, one run at a time; then the masked arm with
# four times the steps (one seed).
#   bash experiments/reversal-curse/run.sh
# Runs go to runs/experiments/reversal/<arm>/seed<N> (RUNS to change; a finished run, one with
# metrics.json, is skipped); the report to experiments/reversal-curse/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/experiments/reversal}
ARMS=${ARMS:-causal masked spt concept concept-memory}
SEEDS=${SEEDS:-0 1 2}
OUT=experiments/reversal-curse/report
# One thread per run: on a shared 2-core machine two rayon threads per op made a training step
# 8x slower (0.68 s against 0.084 s, measured 2026-12-07 under a load of 8).
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}
cargo build --release -p spar-cli
for seed in $SEEDS; do
    for arm in $ARMS; do
        dir=$RUNS/$arm/seed$seed
        if [ -f "$dir/metrics.json" ]; then
            echo "skip $dir (done)" >&2
            continue
        fi
        mkdir -p "$RUNS/$arm"
        start=$(date +%s)
        target/release/spar lm reversal --config "configs/reversal/$arm.toml" --seed "$seed" \
            --out "$dir" > "$dir.json"
        echo "$arm seed $seed: $(( $(date +%s) - start )) s" >&2
    done
done
# Supplement: the masked arm with four times the steps, seed 0 (does it answer reverse blanks
# once it knows the forward facts?).
dir=$RUNS/masked-steps3200/seed0
if [ ! -f "$dir/metrics.json" ]; then
    mkdir -p "$RUNS/masked-steps3200"
    target/release/spar lm reversal --config configs/reversal/masked.toml --seed 0 --steps 3200 \
        --out "$dir" > "$dir.json"
fi
metrics=(--metric learner/loss)
for split in both one_way held_out; do
    for direction in forward reverse; do
        metrics+=(--metric "eval/$split/$direction/top1" --metric "eval/$split/$direction/mrr")
    done
done
# SPT's own reverse question (left-to-right arms only) and the mean rank on the test split.
metrics+=(--metric eval/one_way/reverse_order/top1 --metric eval/one_way/reverse/mean_rank)
arms=()
for arm in $ARMS; do arms+=(--arm "$arm=$RUNS/$arm"); done
target/release/spar compare --title "The reversal curse: causal vs masked vs SPT vs concept-level" \
    --out "$OUT" "${arms[@]}" "${metrics[@]}"
# The masked arm's reverse question asked as a blank in the forward sentence (its native
# query): only the masked arm has it.
target/release/spar compare --title "Masked LM: reverse questions as blanks in the forward sentence" \
    --out "$OUT/masked-infill" --arm "masked=$RUNS/masked" \
    --arm "masked-steps3200=$RUNS/masked-steps3200" \
    --metric eval/one_way/forward/top1 --metric eval/one_way/forward/mrr \
    --metric eval/one_way/reverse_infill/top1 --metric eval/one_way/reverse_infill/mrr \
    --metric eval/both/reverse_infill/top1 --metric eval/held_out/reverse_infill/top1
# PNG copies of the plots (with CairoSVG, `pip install cairosvg`, where it is installed).
if python3 -c "import cairosvg" 2> /dev/null; then
    for svg in "$OUT"/*.svg "$OUT"/masked-infill/*.svg; do
        python3 -c "import cairosvg, sys; cairosvg.svg2png(url=sys.argv[1], write_to=sys.argv[2], dpi=110)" \
            "$svg" "${svg%.svg}.png" || echo "no PNG for $svg" >&2
    done
else
    echo "no PNG copies: pip install cairosvg" >&2
fi
