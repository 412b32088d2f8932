"""``streamtriage kb test [PATH]``: run knowledge-base fixtures, or explain a saved stream, against the rules.

Needs only the classifier (no simulator, no test suite, no store): a pip user checks a rule of their
own, or a call the classifier got wrong, on any machine. What PATH may be:

- nothing: every fixture, shipped (``classifier/kb/fixtures``) and the user directory's;
- a fixture file (a YAML list of cases, see ``fixtures``) or a folder of them;
- a user knowledge-base directory (``*.yaml`` entries + ``fixtures/``): loaded as ``--kb-dir``, its fixtures run;
- a knowledge-base file (``rule_language: 1``): loaded over the shipped entries, the fixtures of its entries run;
- a ``/api/streams/<trace id>`` export (JSON): every rule against each call in it, with the label it
  gets, the evidence of the rules that match and, for the others, the condition that failed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
import yaml

from .engine import Engine
from .explain import explain
from .fixtures import CaseResult, fixture_files, load_export, run_files
from .kb import KB_DIR, KbError, KnowledgeBase, load_kb
from .record import Record
from .thresholds import Thresholds
from .user_kb import FIXTURES, fixture_dirs, user_kb_files


def _is_kb_file(path: Path) -> bool:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(doc, dict) and "rule_language" in doc


def plan(path: Path | None, kb_dir: str | None) -> tuple[KnowledgeBase, list[Path], set[str] | None]:
    """What to load and run for PATH: the knowledge base, the fixture files, and which entry ids (None: all)."""
    user_files = user_kb_files(kb_dir) if kb_dir else []
    only: set[str] | None = None
    if path is None:
        files = fixture_files(fixture_dirs(kb_dir))
    elif path.is_dir() and any(_is_kb_file(p) for p in path.glob("*.yaml")):
        user_files = user_kb_files(path)
        files = fixture_files([path / FIXTURES]) if (path / FIXTURES).is_dir() else []
    elif path.is_file() and _is_kb_file(path):
        if path.resolve().parent != KB_DIR.resolve():
            user_files = [*user_files, path]
        only = {e.id for e in load_kb(KB_DIR, [path]) if e.source == str(path)}
        files = fixture_files([*fixture_dirs(kb_dir), *([path.parent / FIXTURES] if (path.parent / FIXTURES).is_dir() else [])])
    elif path.exists():
        files = fixture_files([path])
    else:
        raise KbError(f"{path}: no such file or directory")
    return load_kb(KB_DIR, user_files), files, only


def _case_line(r: CaseResult) -> str:
    c = r.case
    head = f"{'ok  ' if r.ok else 'FAIL'}  {c.kb_id}  expect {c.expect:<8}  {c.name}  [{c.where}]"
    v = r.verdict
    if v.matched:
        detail = f"matched, confidence {v.confidence:.2f}" + (f": {'; '.join(v.evidence)}" if v.evidence else "")
    else:
        detail = "did not match: " + " | ".join(v.failed)
    return f"{head}\n        {detail}\n        label the record gets: {r.label or 'none (healthy)'}"


def _clip(line: str, width: int = 240) -> str:
    """One line per rule in text mode (``--json`` has every condition in full)."""
    return line if len(line) <= width else line[:width - 1] + "…"


def _explain_lines(engine: Engine, rec: Record) -> tuple[list[str], dict[str, Any]]:
    label = engine.classify(dict(rec))
    verdicts = explain(engine, rec)
    head = (f"call {rec['trace_id']}/{rec['span_id']}  service={rec.get('service')!r} api={rec.get('api')!r} "
            f"outcome={rec.get('outcome')!r}")
    lines = [head, "  label: " + ("none (a healthy call)" if label is None else
                                  f"{label.kb_id or '(unclassified)'}  confidence {label.confidence:.2f}  {label.title}")]
    for v in verdicts:
        if v.matched:
            lines.append(f"  match     {v.kb_id}  {v.confidence:.2f}  " + "; ".join(v.evidence))
    for v in verdicts:
        if not v.matched:
            more = f" (+{len(v.failed) - 1} more)" if len(v.failed) > 1 else ""
            lines.append(_clip(f"  no match  {v.kb_id}: {v.failed[0]}") + more)
    doc = {"trace_id": rec["trace_id"], "span_id": rec["span_id"], "label": label.to_dict() if label else None,
           "rules": [v.to_dict() for v in verdicts]}
    return lines, doc


def kb_test(path: Path | None, kb_dir: str | None, as_json: bool, now_ns: int | None, flags: list[str]) -> int:
    """Run it; returns the exit code (0 all fixtures pass / the export was explained, 1 a fixture failed)."""
    thresholds = Thresholds.from_env(flags=flags)
    if path is not None and path.suffix == ".json":
        kb = load_kb(KB_DIR, user_kb_files(kb_dir) if kb_dir else [])
        engine = Engine(kb, thresholds)
        recs = load_export(path, now_ns or time.time_ns())
        if not recs:
            raise KbError(f"{path}: the export holds no call, event or poll spans")
        out = [_explain_lines(engine, r) for r in recs]
        if as_json:
            typer.echo(json.dumps([d for _, d in out], ensure_ascii=False, indent=2, default=str))
        else:
            typer.echo("\n\n".join("\n".join(lines) for lines, _ in out))
        return 0
    kb, files, only = plan(path, kb_dir)
    engine = Engine(kb, thresholds)
    results = [r for r in run_files(engine, files) if only is None or r.case.kb_id in only]
    failed = [r for r in results if not r.ok]
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2, default=str))
    else:
        for r in results:
            typer.echo(_case_line(r))
        typer.echo(f"{len(results)} case(s) in {len(files)} file(s): {len(results) - len(failed)} passed, "
                   f"{len(failed)} failed")
    if not results:
        typer.echo("no fixtures found: add a YAML list of cases under fixtures/ (see docs/when-the-classifier-is-wrong.md)",
                   err=True)
        return 1
    return 1 if failed else 0
