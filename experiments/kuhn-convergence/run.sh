#!/usr/bin/env bash
# Converging self-play on Kuhn Poker (issue 21): SPIRAL as the README's main job runs it
# (configs/kuhn-spiral-tiny.toml) vs magnetic mirror descent with a moving magnet
# (configs/kuhn-mmd-tiny.toml), both 100 steps, exact exploitability every 10 steps, 3 seeds.
#   bash experiments/kuhn-convergence/run.sh        (JOBS=2 runs side by side, one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p spar-cli
E=experiments/kuhn-convergence
RUNS=${RUNS:-runs/experiments/kuhn-convergence}
for seed in 0 1 2; do
    echo "$RUNS/spiral/seed$seed configs/kuhn-spiral-tiny.toml --set run.steps=100 --set eval.every=10 --set run.seed=$seed"
    echo "$RUNS/mmd/seed$seed configs/kuhn-mmd-tiny.toml --set run.seed=$seed"
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
target/release/spar compare --title "Kuhn Poker: SPIRAL vs magnetic mirror descent with a moving magnet" \
    --out $E/report --arm spiral=$RUNS/spiral --arm mmd=$RUNS/mmd \
    --metric eval/kuhn/exploitability --metric learner/kl_ref \
    --metric eval/kuhn/player0/exact_vs_cfr --metric eval/kuhn/player1/exact_vs_cfr
