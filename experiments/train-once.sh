#!/usr/bin/env bash
# train-once.sh OUT CONFIG [spar train options...]: trains the run OUT unless it has finished
# (OUT/.done); an unfinished run (a killed experiment) is resumed from its last checkpoint.
# One thread per run: the experiments run several runs side by side.
set -euo pipefail
out=$1
config=$2
shift 2
spar=${SPAR:-target/release/spar}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}
if [ -f "$out/.done" ]; then
    exit 0
fi
mkdir -p "$(dirname "$out")"
if [ -d "$out/checkpoints" ]; then
    "$spar" train --resume "$out" > "$out.log" 2>&1
else
    "$spar" train "$config" --out "$out" "$@" > "$out.log" 2>&1
fi
touch "$out/.done"
echo "done: $out"
