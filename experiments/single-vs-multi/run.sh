#!/usr/bin/env bash
# Single-game vs multi-game training: Kuhn Poker alone, TicTacToe alone, and both in one run,
# 3 seeds per arm (30 steps of 32 games per game: TicTacToe's action-level scoring of up to 9
# answers per turn is what the time goes to).
#   bash experiments/single-vs-multi/run.sh          (JOBS=2 runs side by side; ~16 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p spar-cli
E=experiments/single-vs-multi
RUNS=${RUNS:-runs/experiments/single-vs-multi}
for seed in 0 1 2; do
    echo "$RUNS/multi/seed$seed $E/multi.toml --set run.seed=$seed"
    echo "$RUNS/tictactoe/seed$seed $E/tictactoe.toml --set run.seed=$seed"
    echo "$RUNS/kuhn/seed$seed $E/kuhn.toml --set run.seed=$seed"
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
spar=target/release/spar
$spar compare --title "Kuhn Poker: alone vs with TicTacToe" --out $E/report/kuhn \
    --arm kuhn-only=$RUNS/kuhn --arm kuhn+tictactoe=$RUNS/multi \
    --metric eval/kuhn/exploitability --metric eval/kuhn/player0/vs_cfr \
    --metric eval/kuhn/player1/vs_cfr --metric eval/kuhn/player0/vs_random \
    --metric eval/kuhn/player1/vs_random
$spar compare --title "TicTacToe: alone vs with Kuhn Poker" --out $E/report/tictactoe \
    --arm tictactoe-only=$RUNS/tictactoe --arm kuhn+tictactoe=$RUNS/multi \
    --metric eval/tictactoe/player0/vs_players/minimax --metric eval/tictactoe/player1/vs_players/minimax \
    --metric eval/tictactoe/player0/vs_random --metric eval/tictactoe/player1/vs_random
