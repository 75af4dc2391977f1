#!/usr/bin/env bash
# Agent-R: splicing revisions at the first error vs at the end of the bad path vs training on
# good paths only, on Countdown played one step a turn, tiny model, 3 seeds per arm, every arm
# from the same warm-started model per seed (configs/selfcorrect/agent_r.toml).
#   bash experiments/agent-r-splice/run.sh      (JOBS=2 side by side)
# Runs go to runs/experiments/agent-r/ (RUNS to change); the report to
# experiments/agent-r-splice/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/experiments/agent-r}
# The config's 20 steps, evaluated every 5 on 64 test problems x 2 episodes (the config's 32
# doubled to narrow the intervals), from the start and after an injected error.
export ARM_SETTINGS="--set eval.problems=64"
bash experiments/selfcorrect-arms.sh configs/selfcorrect/agent_r.toml "$RUNS" first_error end none
metrics=()
for m in success_rate recovery/success_rate undo_rate recovery/undo_rate loop_rate invalid_rate; do
    metrics+=(--metric "eval/countdown_steps/$m")
done
for m in solved_rate revision_pairs good_trajectories splice_position; do
    metrics+=(--metric "agent_r/$m")
done
target/release/spar compare --title "Agent-R: first-error splice vs end splice vs good paths only" \
    --out experiments/agent-r-splice/report \
    --arm first_error=$RUNS/first_error --arm end=$RUNS/end --arm none=$RUNS/none \
    "${metrics[@]}"
