#!/usr/bin/env bash
# The project's test command (README): installs the package with its dev extra, prepares the
# second SDK environment (openai 1.x) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[dev]"
bash scripts/sdk-matrix.sh
python3 -m pytest -q "$@"
