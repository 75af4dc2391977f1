#!/usr/bin/env bash
# Runs scripts/openai_client_check.py (the official `openai` Python client against an
# OpenAI-compatible server, e.g. `spar serve`) with the client installed from PyPI, once, in
# target/openai-venv (or, where `python3 -m venv` cannot make one, in target/openai-pylib on
# PYTHONPATH). Arguments go to the .py:
#   bash scripts/openai_client_check.sh --base-url http://127.0.0.1:8000/v1 --model smollm2
set -euo pipefail
cd "$(dirname "$0")/.."
OPENAI_SPEC='openai>=1,<4'
VENV=target/openai-venv
PYLIB=target/openai-pylib
PYTHON=${PYTHON:-python3}

if ! command -v "$PYTHON" >/dev/null; then
  echo "openai_client_check: $PYTHON not found (install Python 3.8 or newer)" >&2
  exit 2
fi

# A marker written only after a successful install, so a half-made venv is redone.
if [[ -f $VENV/.spar-openai-ok ]]; then
  exec "$VENV/bin/python" scripts/openai_client_check.py "$@"
fi
if [[ -f $PYLIB/.spar-openai-ok ]]; then
  PYTHONPATH="$PYLIB${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" scripts/openai_client_check.py "$@"
fi

mkdir -p target
# Debian's python3 lacks ensurepip unless python3-venv is installed: then venv creation fails
# and the fallback below installs with the system pip instead.
rm -rf "$VENV"
if "$PYTHON" -m venv "$VENV" >/dev/null 2>&1 \
  && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$OPENAI_SPEC"; then
  touch "$VENV/.spar-openai-ok"
  exec "$VENV/bin/python" scripts/openai_client_check.py "$@"
fi
echo "openai_client_check: no venv at $VENV (python3 -m venv or its pip failed);" \
  "installing $OPENAI_SPEC into $PYLIB instead" >&2
rm -rf "$VENV" "$PYLIB"
if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check --target "$PYLIB" "$OPENAI_SPEC"; then
  echo "openai_client_check: could not install $OPENAI_SPEC from PyPI, neither in a venv nor" \
    "with pip --target (is PyPI reachable? on Debian: apt-get install python3-venv or python3-pip)" >&2
  exit 3
fi
touch "$PYLIB/.spar-openai-ok"
PYTHONPATH="$PYLIB${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" scripts/openai_client_check.py "$@"
