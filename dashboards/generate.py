"""Regenerates the checked-in artefacts: ``dashboards/provisioning/`` and the Prometheus rules.

Run ``python -m streamtriage.dashboards.generate`` after changing a dashboard, rule or threshold;
a test fails while the checked-in files differ from what the code renders.
"""
from __future__ import annotations

from pathlib import Path

from .export import ExportOptions, export_tree
from .prometheus import RULES_FILE, render_rules_yaml

PROVISIONING_DIR = Path(__file__).resolve().parent / "provisioning"


def main() -> None:
    written = export_tree(PROVISIONING_DIR, ExportOptions())
    RULES_FILE.parent.mkdir(parents=True, exist_ok=True)
    RULES_FILE.write_text(render_rules_yaml(), encoding="utf-8")
    for path in [*written, RULES_FILE]:
        print(path)


if __name__ == "__main__":
    main()
