#!/usr/bin/env bash
# Kill anywhere (issue 23, docs/reliability.md): SIGKILL `spar train` at KILLS random moments of
# a short run, resume it each time, and check that its final metrics (wall-clock seconds aside)
# and every file of every checkpoint equal an uninterrupted run's, bit for bit. Once for a
# self-play config (Kuhn Poker) and once for a task config (arithmetic, GRPO).
#
# The kills are spread over the run's steps: kill k picks a step (sorted random draws over
# 0..run.steps-1), waits until the killed run is inside that step (its metrics.jsonl has that
# many lines), then kills it after a random delay of up to one step's duration (the
# uninterrupted run's: step 0, with the warm start, is timed on its own), which lands in
# process start-up, the warm start, loading, rollouts, updates, evaluations, metrics writes;
# every fourth kill instead waits for that step's checkpoint directory to appear and kills
# inside the checkpoint write. A run that ends before its kill is counted as not killed.
# Prints one line per kill (where it landed) and a summary per config; exits 1 when any file
# differs.
#
# Run by hand, not in CI (docs/reliability.md records a run):
#   bash scripts/reliability/kill_resume.sh            # 20 kills per config
# Settings (environment): KILLS=20 SEED=23 SPAR=target/release/spar WORK=target/kill-resume
set -euo pipefail
cd "$(dirname "$0")/../.."
KILLS=${KILLS:-20}
SEED=${SEED:-23}
WORK=${WORK:-target/kill-resume}
RANDOM=$SEED
if [[ -z ${SPAR:-} ]]; then
  cargo build --release -p spar-cli
  SPAR=target/release/spar
fi
rm -rf "$WORK"
mkdir -p "$WORK"

SELFPLAY=(configs/kuhn-spiral-tiny.toml
  --set model.hidden=32 --set model.layers=1 --set model.heads=2
  --set warm_start.steps=20 --set warm_start.episodes=16
  --set rollout.episodes=16 --set rollout.max_tokens=8
  --set run.steps=12 --set run.checkpoint_every=1
  --set eval.every=3 --set eval.games_vs_random=8 --set eval.games_vs_cfr=8
  --set eval.cfr_iterations=50 --set ppo.kl_coef=0.05)
TASK=(configs/tasks/arithmetic-grpo-tiny.toml
  --set model.hidden=32 --set model.layers=1 --set model.heads=2
  --set warm_start.steps=40 --set warm_start.problems=128 --set warm_start.batch_size=16
  --set rollout.prompts=4 --set rollout.group_size=4 --set rollout.max_tokens=8
  --set algorithm.minibatch_size=8
  --set run.steps=12 --set run.checkpoint_every=1
  --set eval.every=4 --set eval.problems=8 --set eval.samples=4 --set 'eval.pass_at=[1,4]')

now_ms() { date +%s%3N; }

# metrics.jsonl without the wall-clock seconds of each line.
strip_seconds() { sed -E 's/,"time\/seconds":[^,}]*//' "$1"; }

# Where a killed run stood: its whole metrics lines, complete checkpoints, and whether a
# checkpoint was being written.
# checkpoint was being written (a temporary directory newer than the start's marker file).
where() {
  local dir=$1 marker=$2 lines=0 ckpts=0 tmp=""
  [[ -f $dir/metrics.jsonl ]] && lines=$(grep -c '}$' "$dir/metrics.jsonl" || true)
  [[ -d $dir/checkpoints ]] && ckpts=$(find "$dir/checkpoints" -maxdepth 2 -path '*/step-*/state.json' | wc -l)
  [[ -d $dir/checkpoints ]] && [[ -n $(find "$dir/checkpoints" -maxdepth 1 -name '.tmp-step-*' -newer "$marker") ]] &&
    tmp=", inside a checkpoint write"
  echo "then $lines metrics lines, $ckpts checkpoints$tmp"
}

lines_of() { # whole lines of DIR/metrics.jsonl
  local n=0
  [[ -f $1/metrics.jsonl ]] && n=$(grep -c '}$' "$1/metrics.jsonl" || true)
  echo "${n:-0}"
}

check() { # name steps args...
  local name=$1 steps=$2; shift 2
  local straight=$WORK/$name-straight killed=$WORK/$name-killed marker=$WORK/$name.marker
  local start first_line="" end pid landed=0 attempts=0 k
  start=$(now_ms)
  "$SPAR" train "$@" --out "$straight" >/dev/null 2>"$WORK/$name-straight.log" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    [[ -z $first_line && $(lines_of "$straight") -ge 1 ]] && first_line=$(now_ms)
    sleep 0.01
  done
  wait "$pid"
  end=$(now_ms)
  local step0=$((first_line - start)) step_ms=$(((end - first_line) / steps))
  echo "$name: uninterrupted run $((end - start)) ms (step 0 with the warm start $step0 ms, then $step_ms ms a step)"
  # The steps the kills land in, sorted.
  local targets=()
  for ((k = 0; k < KILLS; k++)); do targets+=($((RANDOM % steps))); done
  mapfile -t targets < <(printf '%s\n' "${targets[@]}" | sort -n)
  for ((k = 0; k < KILLS; k++)); do
    local target=${targets[k]} how
    attempts=$((attempts + 1))
    touch "$marker"
    if [[ -f $killed/config.toml ]]; then
      "$SPAR" train --resume "$killed" >/dev/null 2>>"$WORK/$name-killed.log" &
    else
      "$SPAR" train "$@" --out "$killed" >/dev/null 2>>"$WORK/$name-killed.log" &
    fi
    pid=$!
    while (($(lines_of "$killed") < target)) && kill -0 "$pid" 2>/dev/null; do sleep 0.005; done
    if (((k + 1) % 4 == 0)); then
      how="at the first checkpoint write after $target metrics lines"
      until [[ -n $(find "$killed/checkpoints" -maxdepth 1 -name '.tmp-step-*' -newer "$marker" 2>/dev/null) ]] ||
        ! kill -0 "$pid" 2>/dev/null; do
        :
      done
    else
      local span=$step_ms
      ((target == 0)) && span=$step0
      local delay=$(((RANDOM * 32768 + RANDOM) % (span + 1)))
      how="$delay ms after the run had $target metrics lines"
      sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    fi
    if kill -KILL "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      landed=$((landed + 1))
      echo "  kill $landed $how: $(where "$killed" "$marker")"
    else
      wait "$pid" || { echo "  the run failed (see $WORK/$name-killed.log)"; exit 1; }
      echo "  (the run ended before kill $((k + 1)) $how)"
    fi
  done
  "$SPAR" train --resume "$killed" >/dev/null 2>>"$WORK/$name-killed.log"
  compare "$name" "$straight" "$killed"
  echo "$name: $landed of $KILLS kills landed and resumed ($attempts starts); final metrics and every checkpoint file identical"
}

compare() { # name straight killed
  local name=$1 a=$2 b=$3 files=0
  if ! cmp -s <(strip_seconds "$a/metrics.jsonl") <(strip_seconds "$b/metrics.jsonl"); then
    echo "$name: metrics.jsonl differs:"; diff <(strip_seconds "$a/metrics.jsonl") <(strip_seconds "$b/metrics.jsonl") | head -5
    exit 1
  fi
  while IFS= read -r -d '' f; do
    local rel=${f#"$a"/}
    if ! cmp -s "$f" "$b/$rel"; then echo "$name: $rel differs"; exit 1; fi
    files=$((files + 1))
  done < <(find "$a/checkpoints" -path '*/step-*' -type f -print0)
  echo "$name: $(wc -l <"$a/metrics.jsonl") metrics lines and $files checkpoint files compared"
}

check selfplay 12 "${SELFPLAY[@]}"
check task 12 "${TASK[@]}"
