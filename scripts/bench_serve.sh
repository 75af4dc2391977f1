#!/usr/bin/env bash
# `spar serve` under concurrent clients, batched (--max-batch 64, the default; also with
# --batch-window-ms 0) against unbatched (--max-batch 1), side by side in one run so that the
# ratios hold on a noisy machine. Builds spar in release, trains a tiny byte-level Kuhn model once (or takes
# MODEL=DIR), starts both servers on free ports, runs `spar bench serve` for every client
# count, ROUNDS times with the servers interleaved, and prints a Markdown table of the
# medians (see docs/BENCHMARKS.md). Run by hand, not in CI:
#   bash scripts/bench_serve.sh
# Settings (environment): CLIENTS="1 8 32" REQUESTS=1024 MAX_TOKENS=16 ROUNDS=3
#   RAYON_NUM_THREADS=1 (the servers' threads) MODEL=DIR SPAR=target/release/spar
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-"1 8 32"}
REQUESTS=${REQUESTS:-1024}
MAX_TOKENS=${MAX_TOKENS:-16}
ROUNDS=${ROUNDS:-3}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}
WORK=target/bench-serve
mkdir -p "$WORK"

if [[ -z ${SPAR:-} ]]; then
  cargo build --release -p spar-cli
  SPAR=target/release/spar
fi
if [[ -z ${MODEL:-} ]]; then
  MODEL=$WORK/kuhn-tiny/checkpoints/step-000001
  if [[ ! -f $MODEL/model.safetensors ]]; then
    rm -rf "$WORK/kuhn-tiny"
    "$SPAR" train configs/kuhn-spiral-tiny.toml --set run.steps=1 --set warm_start.steps=5 \
      --set eval.every=0 --set eval.exploitability=false --out "$WORK/kuhn-tiny" >/dev/null
  fi
fi

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# start NAME ARGS...: starts `spar serve` on a free port and sets URL_NAME to its base URL.
start() {
  local name=$1
  shift
  "$SPAR" serve --model "$MODEL" --port 0 --served-model-name tiny "$@" 2>"$WORK/$name.err" &
  PIDS+=($!)
  for _ in $(seq 300); do
    local url
    url=$(grep -o 'http://[^ ]*/v1' "$WORK/$name.err" || true)
    if [[ -n $url ]]; then
      printf -v "URL_$name" '%s' "$url"
      return
    fi
    sleep 0.1
  done
  echo "bench_serve: spar serve ($name) printed no address:" >&2
  cat "$WORK/$name.err" >&2
  exit 1
}
SERVERS="batched window0 unbatched"
start batched --max-batch 64 --batch-window-ms 2
start window0 --max-batch 64 --batch-window-ms 0
start unbatched --max-batch 1

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
  for clients in $CLIENTS; do
    for server in $SERVERS; do
      url_var=URL_$server
      echo "round $round/$ROUNDS: $server, $clients clients" >&2
      "$SPAR" bench serve --url "${!url_var}" --clients "$clients" --requests "$REQUESTS" \
        --max-tokens "$MAX_TOKENS" --json |
        python3 -c 'import json,sys; r=json.load(sys.stdin); r["server"]=sys.argv[1]; print(json.dumps(r))' "$server" \
          >>"$RESULTS"
    done
  done
done

echo
echo "spar serve, $(basename "$(dirname "$(dirname "$MODEL")")") model, $REQUESTS requests of" \
  "$MAX_TOKENS tokens per cell, median of $ROUNDS rounds, RAYON_NUM_THREADS=$RAYON_NUM_THREADS," \
  "$(nproc) cores"
python3 - "$RESULTS" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def median(server, clients, key, sub=None):
    values = [r[key][sub] if sub else r[key] for r in rows
              if r["server"] == server and r["clients"] == clients]
    return statistics.median(values)
print()
labels = {"batched": "batched (max-batch 64, window 2 ms)",
          "window0": "batched (max-batch 64, window 0 ms)",
          "unbatched": "unbatched (max-batch 1)"}
print("| clients | server | requests/s | tokens/s | p50 ms | p99 ms | failed | requests/s vs unbatched |")
print("|---:|---|---:|---:|---:|---:|---:|---:|")
for clients in sorted({r["clients"] for r in rows}):
    base = median("unbatched", clients, "requests_per_second")
    for server in labels:
        rps = median(server, clients, "requests_per_second")
        failed = sum(r["failed"] for r in rows if r["server"] == server and r["clients"] == clients)
        print(f"| {clients} | {labels[server]} | {rps:.0f} "
              f"| {median(server, clients, 'completion_tokens_per_second'):.0f} "
              f"| {median(server, clients, 'latency_ms', 'p50'):.1f} "
              f"| {median(server, clients, 'latency_ms', 'p99'):.1f} | {failed} "
              f"| {f'{rps / base:.2f}x' if server != 'unbatched' else '1'} |")
EOF
