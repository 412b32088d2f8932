"""Checks knowledge-base fix code in *this* interpreter's environment (run by test_kb_fix_code.py with
each SDK line's Python; standard library only, streamtriage need not be installed there).

Reads ``[{"where": ..., "code": ...}]`` as JSON on stdin, prints ``{"sdk": ..., "problems": [...]}``.
A snippet must compile, import every module it uses, and each import (and each ``module.attr`` chain)
must resolve with only what ``pip install openai`` brings: the standard library, openai and its
dependencies (a snippet that imports ``anthropic``: what ``pip install anthropic`` brings). Imports guarded by ``except ImportError`` are optional.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
import sys
from importlib import metadata


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sdk_modules(sdk: str = "openai") -> set[str]:
    """Top-level modules that ``pip install SDK`` provides: the SDK and its dependency closure."""
    seen: set[str] = set()
    todo = [sdk]
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:
            if "extra ==" in req.replace('"', "'").replace("extra=='", "extra == '"):
                continue
            match = re.match(r"[A-Za-z0-9_.-]+", req)
            if match:
                todo.append(match.group(0))
    return {mod for mod, dists in metadata.packages_distributions().items() if any(_norm(d) in seen for d in dists)}


def _guarded(tree: ast.AST) -> set[ast.AST]:
    """Import nodes inside a ``try`` whose handlers catch ImportError / ModuleNotFoundError."""
    out: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            out |= {n for stmt in node.body for n in ast.walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return out


def _bound(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _chain(node: ast.Attribute) -> list[str] | None:
    parts: list[str] = []
    cur: ast.expr = node
    while isinstance(cur, ast.Attribute):
        parts.append(cur.attr)
        cur = cur.value
    if not isinstance(cur, ast.Name):
        return None
    return [cur.id, *reversed(parts)]


def _is_module(name: str) -> bool:
    if name in sys.stdlib_module_names:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def check(where: str, code: str, allowed: set[str]) -> list[str]:
    try:
        tree = ast.parse(code, where)
        compile(tree, where, "exec")
    except SyntaxError as exc:
        return [f"{where}: does not compile: {exc.msg} (line {exc.lineno})"]
    problems: list[str] = []
    guarded = _guarded(tree)
    aliases: dict[str, str] = {}  # local name -> module it is
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                problems += _import(where, a.name, None, node in guarded, allowed)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                problems += _import(where, node.module, a.name, node in guarded, allowed)
    bound = _bound(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not isinstance(node.ctx, ast.Load):
            continue
        chain = _chain(node)
        if not chain:
            continue
        base = chain[0]
        if base in aliases:
            problems += _resolve(where, aliases[base], chain[1:])
        elif base not in bound and _is_module(base):
            problems.append(f"{where}: uses module {base} ({'.'.join(chain)}) without importing it")
    return sorted(set(problems))


def _import(where: str, module: str, name: str | None, optional: bool, allowed: set[str]) -> list[str]:
    top = module.split(".")[0]
    if top not in sys.stdlib_module_names and top not in allowed:
        sdk = "anthropic" if "anthropic" in allowed else "openai"
        return [] if optional else [f"{where}: imports {module}, which `pip install {sdk}` does not install"]
    try:
        mod = importlib.import_module(module)
        if name is not None and not hasattr(mod, name):
            importlib.import_module(f"{module}.{name}")
    except ImportError as exc:
        return [] if optional else [f"{where}: `{module}{'.' + name if name else ''}` does not import: {exc}"]
    return []


def _resolve(where: str, module: str, attrs: list[str]) -> list[str]:
    try:
        obj = importlib.import_module(module)
    except ImportError:
        return []  # reported by _import
    for i, attr in enumerate(attrs):
        if not hasattr(obj, attr):
            if isinstance(obj, type(sys)):
                try:
                    obj = importlib.import_module(f"{obj.__name__}.{attr}")
                    continue
                except ImportError:
                    pass
            return [f"{where}: {module}.{'.'.join(attrs[:i + 1])} does not exist here"]
        obj = getattr(obj, attr)
        if not isinstance(obj, (type, type(sys))):
            break  # a function or value: what follows is its result's attributes
    return []


def _imports_anthropic(code: str) -> bool:
    return re.search(r"^\s*(import|from)\s+anthropic\b", code, re.M) is not None


def main() -> None:
    import openai

    snippets = json.load(sys.stdin)
    allowed = {sdk: sdk_modules(sdk) for sdk in ("openai", "anthropic")}
    problems = [p for s in snippets
                for p in check(s["where"], s["code"], allowed["anthropic" if _imports_anthropic(s["code"]) else "openai"])]
    json.dump({"sdk": openai.__version__, "problems": problems}, sys.stdout)


if __name__ == "__main__":
    main()
