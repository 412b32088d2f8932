#!/usr/bin/env bash
# The project's test command (README): installs the package with its dev extra, builds the older
# SDK-line environments (openai 1.x and 2.x), lints (ruff), type-checks (mypy) and runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[dev]"
bash scripts/sdk-matrix.sh
# The official Node ClickHouse client for tests/clickhouse_http (into tests/node/node_modules).
if command -v npm >/dev/null 2>&1; then
  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error >/dev/null \
    || echo "test.sh: npm ci in tests/node failed; the Node client tests will fail" >&2
fi
# The Node hook (node/) and its per-major test folders (openai 4.x, 5.x, 6.x), from committed lockfiles.
bash scripts/node-setup.sh || echo "test.sh: node-setup failed; tests/node_hook will fail" >&2
echo "test.sh: ruff check ."
python3 -m ruff check .
echo "test.sh: mypy (scripts/typecheck.sh)"
bash scripts/typecheck.sh
status=0
python3 -m pytest -q "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit "$status"
