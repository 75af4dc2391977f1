#!/usr/bin/env bash
# RLSP's decoupled exploration reward (arXiv 2502.06773): GRPO on
# alpha * 1[correct] + (1 - alpha) * tokens / max_tokens, alpha in {1.0, 0.9, 0.5}, on arithmetic
# with a tiny model; 3 seeds per arm, every arm from the same warm-started model per seed.
#   bash experiments/rlsp-alpha/run.sh      (JOBS=2 side by side)
# alpha = 1.0 is task-arms.sh's `grpo` arm (the base). Runs go to runs/experiments/tasks/; the
# report to experiments/rlsp-alpha/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash experiments/task-arms.sh grpo rlsp-0.9 rlsp-0.5
RUNS=${RUNS:-runs/experiments/tasks}
target/release/spar compare --title "Arithmetic: RLSP exploration reward, alpha 1.0 / 0.9 / 0.5" \
    --out experiments/rlsp-alpha/report \
    --arm alpha-1.0=$RUNS/grpo --arm alpha-0.9=$RUNS/rlsp-0.9 --arm alpha-0.5=$RUNS/rlsp-0.5 \
    --metric eval/arithmetic/pass_at/1 --metric eval/arithmetic/pass1_ci95 --metric eval/arithmetic/pass_at/16 \
    --metric eval/arithmetic/response_tokens --metric eval/arithmetic/unparsable_rate \
    --metric tasks/train_accuracy --metric tasks/response_tokens
