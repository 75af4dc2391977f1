#!/usr/bin/env bash
# DPH-RL's claim on arithmetic with a tiny model: no KL and reverse KL raise pass@1 but lower
# pass@k; forward KL and Jensen-Shannon on the initial model's own answers keep pass@k.
# 3 seeds per arm, every arm from the same warm-started model per seed; two rounds: 40 steps,
# and 80 steps with stronger terms.
#   bash experiments/dph-rl-divergence/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/tasks/; the reports to experiments/dph-rl-divergence/report*/.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash experiments/task-arms.sh grpo kl forward js grpo-long kl-long forward-long js-long
RUNS=${RUNS:-runs/experiments/tasks}
target/release/spar compare --title "Arithmetic: the choice of divergence (DPH-RL), 40 steps" \
    --out experiments/dph-rl-divergence/report \
    --arm none=$RUNS/grpo --arm reverse_kl=$RUNS/kl --arm forward_kl=$RUNS/forward \
    --arm js=$RUNS/js \
    --metric eval/arithmetic/pass_at/1 --metric eval/arithmetic/pass_at/4 --metric eval/arithmetic/pass_at/16 \
    --metric eval/arithmetic/majority_accuracy --metric tasks/train_accuracy --metric learner/kl_ref --metric learner/divergence
target/release/spar compare --title "Arithmetic: the choice of divergence (DPH-RL), 80 steps" \
    --out experiments/dph-rl-divergence/report-long \
    --arm none=$RUNS/grpo-long --arm reverse_kl=$RUNS/kl-long \
    --arm forward_kl=$RUNS/forward-long --arm js=$RUNS/js-long \
    --metric eval/arithmetic/pass_at/1 --metric eval/arithmetic/pass_at/4 --metric eval/arithmetic/pass_at/16 \
    --metric eval/arithmetic/majority_accuracy --metric tasks/train_accuracy --metric learner/kl_ref --metric learner/divergence
