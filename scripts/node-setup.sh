#!/usr/bin/env bash
# Installs the Node hook's packages from the committed lockfiles: node/ (the hook and its
# OpenTelemetry dependencies) and node/test/sdk4|5|6 (openai 4.x, 5.x, 6.x side by side, for
# tests/node_hook). Needs Node.js >= 20 and npm; openai 7 needs Node 22 and is not tested here.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  echo "node-setup.sh: npm is not installed; tests/node_hook will fail" >&2
  exit 1
fi
for dir in node node/test/sdk4 node/test/sdk5 node/test/sdk6; do
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null
done
