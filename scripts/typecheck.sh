#!/usr/bin/env bash
# mypy over the hook, the collector and the classifier. The distribution maps top-level folders to
# streamtriage.* (setup.py), which mypy cannot follow through setuptools' editable import hook, so
# this lays the same mapping out as symlinks under .mypy-tree and checks the packages from there.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=.mypy-tree
rm -rf "$tree" && mkdir -p "$tree/streamtriage"
for f in streamtriage/*; do ln -s "$PWD/$f" "$tree/streamtriage/$(basename "$f")"; done
for part in instrumentation collector classifier simulator dashboards; do
  ln -s "$PWD/$part" "$tree/streamtriage/$part"
done
MYPYPATH="$tree" python3 -m mypy --config-file pyproject.toml \
  -p streamtriage.instrumentation -p streamtriage.collector -p streamtriage.classifier "$@"
