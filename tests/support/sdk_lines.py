"""The older openai SDK lines the suite drives besides the newest 3.x in this interpreter.

``scripts/sdk-matrix.sh`` (run by the README's test command) builds one virtualenv per line. A
missing virtualenv is a failure with the command that builds it, never a skip: a suite that quietly
tests one SDK line would pass for the wrong reason.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# major -> interpreter of the virtualenv that has that openai line installed
OLDER_LINES: dict[str, Path] = {
    "1": REPO / ".venv-openai1" / "bin" / "python",
    "2": REPO / ".venv-openai2" / "bin" / "python",
}


def matrix_disabled() -> bool:
    """Set in the children the suite starts itself, so a child never starts its own matrix."""
    return bool(os.environ.get("STREAMTRIAGE_NO_SDK_MATRIX"))


def python_for(major: str) -> Path:
    py = OLDER_LINES[major]
    if not py.exists():
        raise AssertionError(f"{py} is missing: run `bash scripts/sdk-matrix.sh` (the README's test command does)")
    return py
