#!/usr/bin/env bash
# Single-game vs multi-game training: Kuhn Poker alone, TicTacToe alone, and both in one run,
# 3 seeds per arm. The Kuhn-alone runs are the self-play arm of selfplay-vs-fixed (same
# config, same directory: trained once).
#   bash experiments/single-vs-multi/run.sh          (JOBS=2 runs side by side; ~30 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p spar-cli
E=experiments/single-vs-multi
RUNS=${RUNS:-runs/experiments}
for seed in 0 1 2; do
    echo "$RUNS/selfplay-vs-fixed/self/seed$seed experiments/selfplay-vs-fixed/kuhn.toml --set rollout.opponent=self --set run.seed=$seed"
    echo "$RUNS/single-vs-multi/tictactoe/seed$seed $E/tictactoe.toml --set run.seed=$seed"
    echo "$RUNS/single-vs-multi/multi/seed$seed $E/multi.toml --set run.seed=$seed"
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
spar=target/release/spar
$spar compare --title "Kuhn Poker: alone vs with TicTacToe" --out $E/report/kuhn \
    --arm kuhn-only=$RUNS/selfplay-vs-fixed/self --arm kuhn+tictactoe=$RUNS/single-vs-multi/multi \
    --metric games/kuhn/exploitability --metric games/kuhn/vs_cfr/seat0 \
    --metric games/kuhn/vs_cfr/seat1 --metric games/kuhn/vs_random/seat0 \
    --metric games/kuhn/vs_random/seat1
$spar compare --title "TicTacToe: alone vs with Kuhn Poker" --out $E/report/tictactoe \
    --arm tictactoe-only=$RUNS/single-vs-multi/tictactoe --arm kuhn+tictactoe=$RUNS/single-vs-multi/multi \
    --metric games/tictactoe/vs_players/minimax/seat0 --metric games/tictactoe/vs_players/minimax/seat1 \
    --metric games/tictactoe/vs_random/seat0 --metric games/tictactoe/vs_random/seat1
