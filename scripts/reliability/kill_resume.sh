#!/usr/bin/env bash
# Kill anywhere (issue 23, docs/reliability.md): SIGKILL `spar train` at KILLS random moments of
# a short run, resume it each time, and check that its final metrics (wall-clock seconds aside)
# and every file of every checkpoint equal an uninterrupted run's, bit for bit. Once for a
# self-play config (Kuhn Poker) and once for a task config (arithmetic, GRPO).
#
# Each start (or resume) of the killed run is killed after a random delay drawn uniformly from
# 0 to 2 x (the uninterrupted run's duration / KILLS), which lands in process start-up, loading,
# rollouts, updates, evaluations and metrics writes; every fourth kill instead waits for a
# checkpoint's temporary directory to appear and kills inside the checkpoint write. A run that
# ends before its kill is resumed (a no-op) and counted as not killed. Prints one line per kill
# (where it landed) and a summary per config; exits 1 when any file differs.
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
where() {
  local dir=$1 lines=0 ckpts=0 tmp=""
  [[ -f $dir/metrics.jsonl ]] && lines=$(grep -c '}$' "$dir/metrics.jsonl" || true)
  [[ -d $dir/checkpoints ]] && ckpts=$(find "$dir/checkpoints" -maxdepth 2 -path '*/step-*/state.json' | wc -l)
  compgen -G "$dir/checkpoints/.tmp-step-*" >/dev/null && tmp=", inside a checkpoint write"
  echo "$lines metrics lines, $ckpts checkpoints$tmp"
}

check() { # name args...
  local name=$1; shift
  local straight=$WORK/$name-straight killed=$WORK/$name-killed
  local start end duration window landed=0 attempts=0 pid
  start=$(now_ms)
  "$SPAR" train "$@" --out "$straight" >/dev/null 2>"$WORK/$name-straight.log"
  end=$(now_ms)
  duration=$((end - start))
  window=$((2 * duration / KILLS))
  echo "$name: uninterrupted run $duration ms; kills within $window ms of each start"
  while ((landed < KILLS)); do
    attempts=$((attempts + 1))
    if [[ -f $killed/config.toml ]]; then
      "$SPAR" train --resume "$killed" >/dev/null 2>>"$WORK/$name-killed.log" &
    else
      rm -rf "$killed"
      "$SPAR" train "$@" --out "$killed" >/dev/null 2>>"$WORK/$name-killed.log" &
    fi
    pid=$!
    local how
    if (((landed + 1) % 4 == 0)); then
      how="at a checkpoint write"
      until compgen -G "$killed/checkpoints/.tmp-step-*" >/dev/null || ! kill -0 "$pid" 2>/dev/null; do
        :
      done
    else
      local delay=$(((RANDOM * 32768 + RANDOM) % (window + 1)))
      how="after $delay ms"
      sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    fi
    if kill -KILL "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      landed=$((landed + 1))
      echo "  kill $landed $how: $(where "$killed")"
    else
      wait "$pid" || { echo "  the run failed (see $WORK/$name-killed.log)"; exit 1; }
      if ((landed < KILLS)); then
        # The run ended before the kill: start it again from scratch for the kills left.
        echo "  (the run ended before kill $((landed + 1)) $how; starting it again)"
        compare "$name" "$straight" "$killed" quiet
        rm -rf "$killed"
      fi
    fi
  done
  "$SPAR" train --resume "$killed" >/dev/null 2>>"$WORK/$name-killed.log"
  compare "$name" "$straight" "$killed"
  echo "$name: $landed of $landed kills resumed over $attempts starts; final metrics and every checkpoint file identical"
}

compare() { # name straight killed [quiet]
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
  [[ ${4:-} == quiet ]] || echo "$name: $(wc -l <"$a/metrics.jsonl") metrics lines and $files checkpoint files compared"
}

check selfplay "${SELFPLAY[@]}"
check task "${TASK[@]}"
