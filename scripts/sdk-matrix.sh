#!/usr/bin/env bash
# Builds .venv-openai1: the same package with the oldest supported openai 1.x line, so tests can
# drive the real 1.x SDK (httpx transport) in a subprocess next to the main 3.x environment.
set -euo pipefail
cd "$(dirname "$0")/.."
OPENAI1="${STREAMTRIAGE_OPENAI1:-openai==1.109.1}"
if [ ! -x .venv-openai1/bin/python ] || ! .venv-openai1/bin/python -c "import openai,sys; sys.exit(0 if openai.__version__.startswith('1.') else 1)" 2>/dev/null; then
  python3 -m venv .venv-openai1
  .venv-openai1/bin/python -m pip install -q --upgrade pip
fi
.venv-openai1/bin/python -m pip install -q -e ".[collector]" "$OPENAI1" "httpx<0.29" pytest pytest-timeout
