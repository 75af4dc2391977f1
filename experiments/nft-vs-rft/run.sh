#!/usr/bin/env bash
# NFT (negative-aware fine-tuning) vs rejection-sampling fine-tuning (maximum likelihood on the
# correct answers only), with GRPO for reference, on arithmetic with a tiny model; 3 seeds per
# arm, every arm from the same warm-started model per seed; one pass over each step's answers
# (on-policy), then four passes (off-policy).
#   bash experiments/nft-vs-rft/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/tasks/; the reports to experiments/nft-vs-rft/report*/.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash experiments/task-arms.sh nft rft grpo nft-e4 rft-e4 grpo-e4
RUNS=${RUNS:-runs/experiments/tasks}
target/release/spar compare --title "Arithmetic: NFT vs RFT (and GRPO), 1 epoch" \
    --out experiments/nft-vs-rft/report \
    --arm nft=$RUNS/nft --arm rft=$RUNS/rft --arm grpo=$RUNS/grpo \
    --metric eval/arithmetic/pass_at/1 --metric eval/arithmetic/pass_at/16 --metric eval/arithmetic/majority_accuracy \
    --metric tasks/train_accuracy --metric learner/samples --metric learner/approx_kl
target/release/spar compare --title "Arithmetic: NFT vs RFT (and GRPO), 4 epochs" \
    --out experiments/nft-vs-rft/report-epochs4 \
    --arm nft=$RUNS/nft-e4 --arm rft=$RUNS/rft-e4 --arm grpo=$RUNS/grpo-e4 \
    --metric eval/arithmetic/pass_at/1 --metric eval/arithmetic/pass_at/16 --metric eval/arithmetic/majority_accuracy \
    --metric tasks/train_accuracy --metric learner/samples --metric learner/approx_kl
