#!/usr/bin/env bash
# task-arms.sh ARM... : trains the named arms of the task experiments for seeds 0-2 (SEEDS to
# change), each from its seed's warm-started model, skipping runs that have finished.
# Arms (the settings each adds to experiments/arithmetic-tiny.toml):
#   grpo     GRPO advantages, PPO-clip (the base)
#   dr_grpo  Dr. GRPO advantages (no std), PPO-clip, token sum / 8 (a constant normaliser)
#   rloo     RLOO advantages, PPO-clip
#   kl       GRPO + reverse KL (k3, 0.1) to the warm-started model
#   forward  GRPO + DPH-RL forward KL (0.1) on the warm-started model's answers it masters
#   js       GRPO + DPH-RL Jensen-Shannon (0.2) on the same answers
#   nft      NFT (negative-aware fine-tuning; degenerate groups filtered)
#   rft      rejection-sampling fine-tuning: maximum likelihood on the correct answers
#   grpo-long, kl-long, forward-long, js-long: 80 steps; reverse KL 0.3; the DPH-RL terms with
#            coefficients 1.0 (forward) and 2.0 (JS) and 4-of-4 mastery over 512 problems
#   grpo-e4, nft-e4, rft-e4: 4 passes (epochs) over each step's answers (off-policy updates)
#   rlsp-0.9, rlsp-0.5: GRPO on RLSP's reward, alpha * correct + (1 - alpha) * tokens / max_tokens
# Runs go to runs/experiments/tasks/ARM/seedN (RUNS to change); JOBS runs side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p spar-cli
BASE=experiments/arithmetic-tiny.toml
RUNS=${RUNS:-runs/experiments/tasks}
SEEDS=${SEEDS:-0 1 2}
for seed in $SEEDS; do
    echo "$RUNS/warm/seed$seed $BASE --set run.seed=$seed --set run.steps=0"
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
settings() {
    case $1 in
        grpo) echo "--set algorithm.estimator=grpo" ;;
        dr_grpo) echo "--set algorithm.estimator=dr_grpo --set algorithm.loss_aggregation=token_sum --set algorithm.normaliser=8" ;;
        rloo) echo "--set algorithm.estimator=rloo" ;;
        kl) echo "--set algorithm.kl=k3 --set algorithm.kl_coef=0.1" ;;
        forward) echo "--set algorithm.divergence=forward --set algorithm.divergence_coef=0.1" ;;
        js) echo "--set algorithm.divergence=js --set algorithm.divergence_coef=0.2" ;;
        nft) echo "--set algorithm.loss=nft --set algorithm.filter_degenerate=true" ;;
        rft) echo "--set algorithm.loss=sft" ;;
        grpo-long) echo "--set run.steps=80" ;;
        kl-long) echo "--set run.steps=80 --set algorithm.kl=k3 --set algorithm.kl_coef=0.3" ;;
        forward-long) echo "--set run.steps=80 --set algorithm.divergence=forward --set algorithm.divergence_coef=1.0 --set algorithm.reference_samples=4 --set algorithm.reference_problems=512" ;;
        js-long) echo "--set run.steps=80 --set algorithm.divergence=js --set algorithm.divergence_coef=2.0 --set algorithm.reference_samples=4 --set algorithm.reference_problems=512" ;;
        grpo-e4) echo "--set algorithm.epochs=4" ;;
        nft-e4) echo "--set algorithm.epochs=4 --set algorithm.loss=nft --set algorithm.filter_degenerate=true" ;;
        rft-e4) echo "--set algorithm.epochs=4 --set algorithm.loss=sft" ;;
        rlsp-0.9) echo "--set algorithm.explore_alpha=0.9" ;;
        rlsp-0.5) echo "--set algorithm.explore_alpha=0.5" ;;
        *) echo "unknown arm $1" >&2; exit 2 ;;
    esac
}
for arm in "$@"; do
    extra=$(settings "$arm")
    for seed in $SEEDS; do
        echo "$RUNS/$arm/seed$seed $BASE --set run.seed=$seed --set warm_start.steps=0 --set model.init=$RUNS/warm/seed$seed/checkpoints/step-000000 $extra"
    done
done | xargs -P "${JOBS:-2}" -L 1 bash experiments/train-once.sh
