#!/usr/bin/env bash
# Proposer/solver self-play (Dr. Zero's proposer reward, HRPO grouping) vs a fixed problem
# distribution (the arithmetic task's own problems at the same hop counts, the same solver
# compute), on arithmetic with a tiny model, 3 seeds per arm, every arm from the same
# warm-started model per seed (configs/curriculum/propose.toml).
#   bash experiments/propose-vs-fixed/run.sh      (JOBS=2 side by side)
# Two settings (README): ATTEMPT=hops1-4 is the shipped config (requests for 1 to 4
# operations, 4:3:2:1); ATTEMPT=hops1-2 (the default) asks for 1 or 2 operations with a longer
# warm start, so that the solver starts above the floor. Runs go to
# runs/experiments/propose-<attempt>/ (RUNS to change); the report to
# experiments/propose-vs-fixed/report-<attempt>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
ATTEMPT=${ATTEMPT:-hops1-2}
case $ATTEMPT in
    hops1-4) SETTINGS="" ;;
    hops1-2) SETTINGS="--set propose.hops=[1,2] --set propose.hop_weights=[1.0,1.0] --set eval.hops=[1,2,3] --set warm_start.steps=1500" ;;
    *) echo "unknown ATTEMPT $ATTEMPT (hops1-4 or hops1-2)" >&2; exit 2 ;;
esac
RUNS=${RUNS:-runs/experiments/propose-$ATTEMPT}
# 20 policy steps (the config's 40 halved to fit a two-core session), evaluated every 5.
SETTINGS=$SETTINGS STEPS="--set run.steps=20 --set eval.every=5 --set run.checkpoint_every=10" \
    bash experiments/propose-arms.sh "$RUNS" model fixed
metrics=(--metric eval/arithmetic/accuracy)
hops=$(python3 -c "import json; l=json.loads(open('$RUNS/model/seed0/metrics.jsonl').readline()); print(' '.join(sorted({k.split('/')[2][5:] for k in l if k.startswith('eval/arithmetic/hops-') and k.endswith('/accuracy')})))")
for h in $hops; do
    metrics+=(--metric "eval/arithmetic/hops-$h/accuracy")
done
target/release/spar compare --title "Proposer/solver self-play vs a fixed distribution" \
    --out experiments/propose-vs-fixed/report-$ATTEMPT \
    --arm proposer=$RUNS/model --arm fixed=$RUNS/fixed \
    "${metrics[@]}" --metric propose/solver/accuracy --metric propose/problems/mean_hops \
    --metric propose/problems/unsolved_rate --metric propose/problems/trivial_rate
