#!/usr/bin/env bash
# Builds one virtualenv per older openai SDK line, each with this package installed editable, so the
# tests can drive the real SDK of every supported line in a subprocess next to the main environment
# (which has the newest 3.x, httpx2 transport):
#   .venv-openai1  openai 1.x (httpx), and anthropic 0.x (0.125.0, its last release): the older Anthropic
#                  line, the last on httpx (1.x and 2.x moved to httpx2), still the line of apps pinned to
#                  `anthropic<1` and of Python 3.9 (1.x needs 3.10); its transport errors reach the app
#                  unwrapped, as in openai 1.x. The main environment has anthropic 2.x.
#   .venv-openai2  openai 2.x (httpx), with anthropic 2.x as in the main environment (the catalogue's
#                  Anthropic scenarios run on every line)
# Re-running is cheap: a stamp of the requirements, pyproject.toml and setup.py skips an up-to-date venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

build() {  # build VENV MAJOR SPEC [EXTRA_SPEC...]
  local venv="$1" major="$2" spec="$3"
  shift 3
  local reqs=("$spec" "$@" "httpx<0.29" "pytest>=8" "pytest-timeout>=2.3")
  local stamp="$venv/.streamtriage-stamp" want
  want="$(printf '%s\n' "${reqs[@]}" | cat - pyproject.toml setup.py | sha256sum | cut -d' ' -f1)"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import sys; sys.exit(0)" 2>/dev/null; then
    rm -rf "$venv"
    "$PY" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
  fi
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
     && "$venv/bin/python" -c "import streamtriage.simulator, openai, pytest, sys; sys.exit(0 if openai.__version__.startswith('$major.') else 1)" 2>/dev/null; then
    echo "sdk-matrix: $venv up to date (openai $("$venv/bin/python" -c 'import openai; print(openai.__version__)'))"
    return
  fi
  "$venv/bin/python" -m pip install -q -e ".[collector]" "${reqs[@]}"
  "$venv/bin/python" -c "import openai, streamtriage.simulator; assert openai.__version__.startswith('$major.'), openai.__version__"
  echo "$want" > "$stamp"
  echo "sdk-matrix: built $venv with openai $("$venv/bin/python" -c 'import openai; print(openai.__version__)')"
}

build .venv-openai1 1 "${STREAMTRIAGE_OPENAI1:-openai==1.109.1}" "${STREAMTRIAGE_ANTHROPIC0:-anthropic==0.125.0}"
build .venv-openai2 2 "${STREAMTRIAGE_OPENAI2:-openai==2.54.0}" "${STREAMTRIAGE_ANTHROPIC2:-anthropic>=2,<3}"
