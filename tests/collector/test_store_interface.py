"""Layers talk to the store through its public interface only (``collector/store.py``).

An AST lint over every Python file of the repository: outside ``collector/store*.py`` nothing may
import a private name of the store module or touch a private member of a store object.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STORE = REPO / "collector" / "store.py"
SKIP_DIRS = {".venv", ".venv-openai1", ".mypy-tree", "node_modules", ".git", "build"}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def store_private_names() -> set[str]:
    """Private module names of store.py and private members of its classes (methods and ``self._x``)."""
    tree = ast.parse(STORE.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and _private(node.name):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and _private(node.id):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _private(node.attr):
            names.add(node.attr)
    return names


def violations(source: str, private: set[str]) -> list[str]:
    """``from ..store import _x`` and ``<something store-ish>._x`` for a private ``_x`` of the store."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "store":
            found += [f"line {node.lineno}: imports {a.name}" for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Attribute) and node.attr in private:
            receiver = ast.unparse(node.value)
            if "store" in receiver.lower():
                found.append(f"line {node.lineno}: {receiver}.{node.attr}")
    return found


def _python_files() -> list[Path]:
    out = []
    for path in REPO.rglob("*.py"):
        rel = path.relative_to(REPO)
        if SKIP_DIRS & set(rel.parts) or (rel.parts[0] == "collector" and path.name.startswith("store")):
            continue
        out.append(path)
    return out


def test_the_lint_sees_what_it_must_refuse() -> None:
    private = store_private_names()
    assert {"_c", "_r", "_lock", "_read_lock", "_client", "_open_client"} <= private
    bad = ("from .store import _open_client\n"
           "def f(store, state):\n"
           "    store._c().insert()\n"
           "    with state.store._lock: pass\n"
           "    self._store._client = None\n")
    assert len(violations(bad, private)) == 4
    assert violations("store.query('SELECT 1')\nself._lock.acquire()\n", private) == []


def test_nothing_outside_the_store_touches_its_private_members() -> None:
    private = store_private_names()
    files = _python_files()
    assert len(files) > 100 and REPO / "collector" / "routes_classifier.py" in files
    found = {str(p.relative_to(REPO)): v for p in files if (v := violations(p.read_text(encoding="utf-8"), private))}
    assert found == {}, f"use the store's public interface (collector/store.py): {found}"
