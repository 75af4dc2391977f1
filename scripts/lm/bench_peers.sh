#!/usr/bin/env bash
# spar-lm against its peers, side by side in one session, same thread count:
#   training step (configs A and B) and KV-cache sampling (config A) vs PyTorch CPU,
#   SmolLM2-135M-Instruct Q4_1 greedy sampling vs llama-cpp-python on the same GGUF.
#
#   bash scripts/lm/setup_venv.sh && bash scripts/setup_smollm2.sh
#   cargo build --release -p spar-cli
#   bash scripts/lm/bench_peers.sh [THREADS]      # default 2
#
# Prints both JSON reports and a table of ratios (> 1: spar is faster).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
threads=${1:-2}
gguf="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
spar_json=$(RAYON_NUM_THREADS=$threads "$root/target/release/spar" lm bench --parts train,sample,model --model "$gguf")
peer_json=$("$root/.venv-lm/bin/python" "$root/scripts/lm/bench_torch.py" --threads "$threads" --gguf "$gguf")
echo "spar: $spar_json" | tr -d '\n'; echo
echo "peer: $peer_json"
"$root/.venv-lm/bin/python" - "$spar_json" "$peer_json" <<'PY'
import json, sys
s, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rows = [
    ("train step, config A (ms)", s["train_A"]["median_ms"], p["train_A_ms"], False, "PyTorch", 1.0),
    ("train step, config B (ms)", s["train_B"]["median_ms"], p["train_B_ms"], False, "PyTorch", 1.0),
    ("KV-cache sampling, config A (tokens/s)", s["sample_A_tokens_per_s"], p["sample_A_tokens_per_s"], True, "PyTorch", 1.5),
    ("SmolLM2 Q4_1 greedy (tokens/s)", s["model_tokens_per_s"], p["llama_cpp_tokens_per_s"], True, "llama.cpp", 0.5),
]
print(f"| workload | spar | peer | spar/peer speed | target | met |")
print(f"|---|---|---|---|---|---|")
for name, sv, pv, higher, peer, target in rows:
    ratio = sv / pv if higher else pv / sv
    print(f"| {name} | {sv:.1f} | {pv:.1f} ({peer}) | {ratio:.2f}x | >= {target}x | {'yes' if ratio >= target else 'no'} |")
PY
