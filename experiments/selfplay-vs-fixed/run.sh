#!/usr/bin/env bash
# Self-play vs training against a fixed opponent (uniform random, as SPIRAL's fixed-opponent
# baseline) on Kuhn Poker, 3 seeds per arm, evaluated against held-out players.
#   bash experiments/selfplay-vs-fixed/run.sh        (JOBS=2 runs side by side; ~8 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p spar-cli
E=experiments/selfplay-vs-fixed
RUNS=${RUNS:-runs/experiments/selfplay-vs-fixed}
for opponent in self random; do
    for seed in 0 1 2; do
        echo "$RUNS/$opponent/seed$seed $E/kuhn.toml --set rollout.opponent=$opponent --set run.seed=$seed"
    done
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
target/release/spar compare --title "Kuhn Poker: self-play vs a fixed random opponent" \
    --out $E/report --arm self-play=$RUNS/self --arm vs-random=$RUNS/random \
    --metric eval/kuhn/exploitability --metric eval/kuhn/player0/exact_vs_cfr --metric eval/kuhn/player1/exact_vs_cfr --metric eval/kuhn/player0/vs_cfr --metric eval/kuhn/player1/vs_cfr \
    --metric "eval/kuhn/player0/vs_players/cfr+:3" --metric "eval/kuhn/player1/vs_players/cfr+:3" \
    --metric eval/kuhn/player0/exact_vs_random --metric eval/kuhn/player1/exact_vs_random --metric eval/kuhn/player0/vs_random --metric eval/kuhn/player1/vs_random
