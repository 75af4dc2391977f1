#!/usr/bin/env bash
# A 1.5 MB POST to `spar serve` with curl, with curl's `Expect: 100-continue` (which curl adds to
# bodies over 1 MiB, then waits up to 1 s for the server's `100 Continue`) and without it
# (`-H 'Expect:'`), for one or more spar binaries side by side (see docs/BENCHMARKS.md, "spar
# serve: a 1.5 MB POST with and without Expect"). Run by hand, not in CI:
#   bash scripts/bench_serve_upload.sh                       # target/release/spar
#   SPARS="/tmp/spar-old target/release/spar" bash scripts/bench_serve_upload.sh
# Settings (environment): SPARS (binaries) ROUNDS=5 MODEL=DIR (else a tiny model is trained)
set -euo pipefail
cd "$(dirname "$0")/.."
SPARS=${SPARS:-target/release/spar}
ROUNDS=${ROUNDS:-5}
WORK=target/bench-serve-upload
mkdir -p "$WORK"
first=${SPARS%% *}

if [[ -z ${MODEL:-} ]]; then
  MODEL=$WORK/kuhn-tiny/checkpoints/step-000000
  if [[ ! -f $MODEL/model.safetensors ]]; then
    rm -rf "$WORK/kuhn-tiny"
    "$first" train configs/kuhn-spiral-tiny.toml --set run.steps=0 --set warm_start.steps=1 \
      --set eval.every=0 --set eval.exploitability=false --out "$WORK/kuhn-tiny" >/dev/null
  fi
fi

# The body: /tokenize of a 1.5 MB prompt (1,500,000 bytes of text plus the JSON around it).
BODY=$WORK/body.json
python3 -c 'import json; print(json.dumps({"prompt": "a" * 1_500_000}), end="")' >"$BODY"

PID=
trap '[[ -n $PID ]] && kill "$PID" 2>/dev/null || true' EXIT
echo "| binary | Expect | median s | min s | max s | status |"
echo "|---|---|---:|---:|---:|---:|"
for spar in $SPARS; do
  "$spar" serve --model "$MODEL" --port 0 2>"$WORK/serve.err" &
  PID=$!
  url=
  for _ in $(seq 300); do
    url=$(grep -o 'http://[^ ]*/v1' "$WORK/serve.err" || true)
    [[ -n $url ]] && break
    sleep 0.1
  done
  [[ -n $url ]] || { cat "$WORK/serve.err" >&2; exit 1; }
  root=${url%/v1}
  for expect in "100-continue (curl's default)" "none (-H 'Expect:')"; do
    extra=()
    [[ $expect == none* ]] && extra=(-H 'Expect:')
    times=()
    status=
    for _ in $(seq "$ROUNDS"); do
      out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "${extra[@]}" \
        -H 'Content-Type: application/json' --data-binary @"$BODY" "$root/tokenize")
      status=${out% *}
      times+=("${out#* }")
    done
    python3 - "$spar" "$expect" "$status" "${times[@]}" <<'EOF'
import statistics, sys
spar, expect, status, *times = sys.argv[1:]
t = [float(x) for x in times]
print(f"| {spar} | {expect} | {statistics.median(t):.3f} | {min(t):.3f} | {max(t):.3f} | {status} |")
EOF
  done
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
done
