#!/usr/bin/env bash
# Builds .venv-openai1: the same package with the openai 1.x line (httpx transport), so tests can
# drive the real 1.x SDK in a subprocess next to the main 3.x environment
# (tests/simulator/test_sim_sdk_matrix.py). Re-running is cheap: a stamp of the requirements and
# pyproject.toml skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
OPENAI1="${STREAMTRIAGE_OPENAI1:-openai==1.109.1}"
VENV=.venv-openai1
REQS=("$OPENAI1" "httpx<0.29" "pytest>=8" "pytest-timeout>=2.3")
STAMP="$VENV/.streamtriage-stamp"
want="$(printf '%s\n' "${REQS[@]}" | cat - pyproject.toml setup.py | sha256sum | cut -d' ' -f1)"

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import openai,sys; sys.exit(0 if openai.__version__.startswith('1.') else 1)" 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import streamtriage.simulator, openai, pytest" 2>/dev/null; then
  echo "sdk-matrix: $VENV up to date (openai $("$VENV/bin/python" -c 'import openai; print(openai.__version__)'))"
  exit 0
fi
"$VENV/bin/python" -m pip install -q -e ".[collector]" "${REQS[@]}"
"$VENV/bin/python" -c "import openai, streamtriage.simulator; assert openai.__version__.startswith('1.'), openai.__version__"
echo "$want" > "$STAMP"
echo "sdk-matrix: built $VENV with openai $("$VENV/bin/python" -c 'import openai; print(openai.__version__)')"
