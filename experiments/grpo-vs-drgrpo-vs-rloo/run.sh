#!/usr/bin/env bash
# GRPO vs Dr. GRPO vs RLOO on arithmetic with a tiny model, 3 seeds per arm, every arm from
# the same warm-started model per seed (experiments/arithmetic-tiny.toml).
#   bash experiments/grpo-vs-drgrpo-vs-rloo/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/tasks/; the report to experiments/grpo-vs-drgrpo-vs-rloo/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash experiments/task-arms.sh grpo dr_grpo rloo
RUNS=${RUNS:-runs/experiments/tasks}
target/release/spar compare --title "Arithmetic: GRPO vs Dr. GRPO vs RLOO" \
    --out experiments/grpo-vs-drgrpo-vs-rloo/report \
    --arm grpo=$RUNS/grpo --arm dr_grpo=$RUNS/dr_grpo --arm rloo=$RUNS/rloo \
    --metric tasks/train_accuracy --metric eval/arithmetic/pass_at/1 --metric eval/arithmetic/pass_at/16 \
    --metric eval/arithmetic/majority_accuracy --metric tasks/degenerate_groups --metric tasks/response_tokens \
    --metric learner/approx_kl
