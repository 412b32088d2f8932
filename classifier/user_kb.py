"""A user knowledge-base directory: entries of your own beside the shipped ones, without a fork.

The directory holds ``*.yaml`` files in the shipped format (``rule_language: 1``, ``entries``),
checked by the same strict loader (``kb.load_kb``). An entry whose id is new extends the knowledge
base; an entry with a shipped id replaces that entry whole (rule, texts, priors). Fixtures for the
directory's entries live in its ``fixtures/`` folder (see ``fixtures``).

Where the directory comes from: ``--kb-dir`` on ``serve``, ``incidents`` and ``kb``, else the
``STREAMTRIAGE_KB_DIR`` variable, else ``kb_dir`` in the settings file.
"""
from __future__ import annotations

import os
from pathlib import Path

from .kb import KB_DIR, KbError, KnowledgeBase, default_kb, load_kb

ENV = "STREAMTRIAGE_KB_DIR"
FIXTURES = "fixtures"


def user_kb_files(kb_dir: str | os.PathLike[str]) -> list[Path]:
    """The directory's knowledge-base files; a missing or empty directory is an error, never silently nothing."""
    path = Path(kb_dir).expanduser()
    if not path.is_dir():
        raise KbError(f"kb_dir {str(kb_dir)!r} is not a directory (--kb-dir / {ENV})")
    files = sorted(path.glob("*.yaml"))
    if not files:
        raise KbError(f"kb_dir {str(kb_dir)!r} holds no *.yaml knowledge-base files (--kb-dir / {ENV})")
    return files


def load_with_user(kb_dir: str | os.PathLike[str] | None) -> KnowledgeBase:
    """The shipped knowledge base, extended and overridden by ``kb_dir`` when one is given."""
    if not kb_dir:
        return default_kb()
    return load_kb(KB_DIR, user_kb_files(kb_dir))


def overridden(kb: KnowledgeBase) -> list[str]:
    """Ids of shipped entries that a user directory replaced (user entries carry their file's path)."""
    base = default_kb()
    return sorted(e.id for e in kb if e.source not in ("", Path(e.source).name) and base.get(e.id) is not None)


def fixture_dirs(kb_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Where fixtures live: the shipped ``kb/fixtures`` and the user directory's ``fixtures``."""
    dirs = [KB_DIR / FIXTURES]
    if kb_dir:
        dirs.append(Path(kb_dir).expanduser() / FIXTURES)
    return [d for d in dirs if d.is_dir()]


def describe_kb(kb_dir: str | os.PathLike[str] | None) -> list[str]:
    """Start-up lines for ``serve``: loads (and so validates) the knowledge base it will classify with."""
    from .engine import Engine

    kb = load_with_user(kb_dir)
    Engine(kb)  # and its rules fit the engine (a ValueError says why), before the service starts
    if not kb_dir:
        return []
    replaced = overridden(kb)
    added = [e.id for e in kb if e.source not in ("", Path(e.source).name) and e.id not in replaced]
    return [f"knowledge base: {len(kb)} entries; from {kb_dir}: {len(added)} added, {len(replaced)} overriding "
            f"shipped entries{': ' + ', '.join(replaced) if replaced else ''}"]
