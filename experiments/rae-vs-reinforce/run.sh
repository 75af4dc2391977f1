#!/usr/bin/env bash
# RAE vs plain REINFORCE (no baseline) on Kuhn Poker and TicTacToe, 3 seeds per arm.
#   bash experiments/rae-vs-reinforce/run.sh        (JOBS=2 runs side by side; ~3 min on 2 cores)
# Runs go to runs/experiments/rae-vs-reinforce/; the report to experiments/rae-vs-reinforce/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p spar-cli
E=experiments/rae-vs-reinforce
RUNS=${RUNS:-runs/experiments/rae-vs-reinforce}
for game in kuhn tictactoe; do
    for estimator in rae reinforce; do
        for seed in 0 1 2; do
            echo "$RUNS/$game-$estimator/seed$seed $E/$game.toml --set advantage.estimator=$estimator --set run.seed=$seed"
        done
    done
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
spar=target/release/spar
$spar compare --title "Kuhn Poker: RAE vs REINFORCE" --out $E/report/kuhn \
    --arm rae=$RUNS/kuhn-rae --arm reinforce=$RUNS/kuhn-reinforce \
    --metric eval/kuhn/exploitability --metric selfplay/response_tokens --metric selfplay/invalid_rate \
    --metric eval/kuhn/player0/vs_random --metric eval/kuhn/player1/vs_random --metric eval/kuhn/player0/exact_vs_cfr --metric eval/kuhn/player1/exact_vs_cfr --metric eval/kuhn/player0/vs_cfr --metric eval/kuhn/player1/vs_cfr
$spar compare --title "TicTacToe: RAE vs REINFORCE" --out $E/report/tictactoe \
    --arm rae=$RUNS/tictactoe-rae --arm reinforce=$RUNS/tictactoe-reinforce \
    --metric selfplay/response_tokens --metric selfplay/invalid_rate \
    --metric eval/tictactoe/player0/vs_players/minimax --metric eval/tictactoe/player1/vs_players/minimax \
    --metric eval/tictactoe/player0/vs_random --metric eval/tictactoe/player1/vs_random
