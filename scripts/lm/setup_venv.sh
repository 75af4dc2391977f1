#!/usr/bin/env bash
# Create .venv-lm with the Python peers spar-lm is checked against: torch (CPU use of PyPI's wheel),
# transformers, safetensors, numpy and llama-cpp-python (built from source by pip; needs gcc and
# a few minutes). Everything comes from PyPI; nothing from a model hub.
#
#   bash scripts/lm/setup_venv.sh     # then use .venv-lm/bin/python
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.venv-lm"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet numpy safetensors "transformers>=4.40" torch
# llama.cpp's own build: one thread at a time keeps a 2-core machine usable.
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
  "$venv/bin/python" -m pip install --quiet "llama-cpp-python==0.3.36"
"$venv/bin/python" - <<'PY'
import llama_cpp, torch, transformers
print("torch", torch.__version__, "transformers", transformers.__version__, "llama_cpp", llama_cpp.__version__)
PY
