"""What ``streamtriage demo`` prints: a summary of what was found first, then a table that fits 80 columns.

The compact table has one row per scenario (sync and async merged when they agree) and says in words
what each label means; ``--wide`` gives the full table (what the app saw, root cause, fix rate,
confidence) and ``--json`` every run with its labels.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from streamtriage.scenario_suite import Verdict

UNCLASSIFIED = "unclassified (a failure, no entry)"
HEALTHY = "healthy: no incident"


def label_text(v: Verdict) -> str:
    """The label a run got, in words a newcomer reads without the docs."""
    best = v.best
    if best is None:
        return HEALTHY if v.expected is None else "nothing found"
    if best.get("kb_id"):
        return str(best["kb_id"])
    if best.get("category"):
        return f"{best['category']} (no specific entry)"
    return UNCLASSIFIED


def result_text(v: Verdict) -> str:
    """Whether the run got the label its scenario expects (never a bare ``ok``: see ``label_text``)."""
    return "yes" if v.ok else "NO"


def group_of(v: Verdict) -> str:
    best = v.best
    if best is None:
        return "healthy" if v.expected is None else "nothing found"
    return str(best.get("category") or "unclassified")


def summary_lines(verdicts: Sequence[Verdict]) -> list[str]:
    """What was found, by category: runs, how many got their expected label, entries that explained them."""
    sdk = verdicts[0].run.sdk if verdicts else "?"
    modes = sorted({v.run.mode for v in verdicts})
    names = {v.run.name for v in verdicts}
    good = sum(v.ok for v in verdicts)
    groups: dict[str, list[Verdict]] = defaultdict(list)
    for v in verdicts:
        groups[group_of(v)].append(v)
    lines = [f"{len(verdicts)} runs ({len(names)} scenarios, {'+'.join(modes)}), openai {sdk}: "
             f"{good} as expected", "",
             f"{'what was found':<22}{'runs':>5}{'as expected':>13}  explained by", "-" * 70]
    order = sorted(groups, key=lambda g: (g in ("healthy", "unclassified", "nothing found"), g))
    for g in order:
        vs = groups[g]
        kb_ids = {str(v.best.get("kb_id")) for v in vs if v.best and v.best.get("kb_id")}
        if g == "healthy":
            why = "no incident (none expected)"
        elif g == "unclassified":
            why = "failures no entry explains"
        elif g == "nothing found":
            why = "no label at all"
        elif kb_ids:
            why = f"{len(kb_ids)} knowledge-base entr{'y' if len(kb_ids) == 1 else 'ies'}"
        else:
            why = "category only, no specific entry"
        lines.append(f"{g:<22}{len(vs):>5}{sum(v.ok for v in vs):>13}  {why}")
    return lines


def wrap_name(name: str, width: int) -> str:
    """A scenario name broken after hyphens into lines of at most ``width`` (rich would cut mid-word)."""
    lines, line = [], ""
    for part in name.replace("-", "-\0").split("\0"):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return "\n".join([*lines, line])


def compact_table(verdicts: Sequence[Verdict], title: str, width: int = 80) -> Any:
    """One row per scenario (modes merged when they agree): its label in words, and whether it was expected.

    Labels (knowledge-base ids) are never cut; scenario names wrap at hyphens into what is left of ``width``.
    """
    from rich import box
    from rich.table import Table

    by_name: dict[str, list[Verdict]] = defaultdict(list)
    for v in verdicts:
        by_name[v.run.name].append(v)
    rows: list[tuple[str, str, str, bool]] = []
    for name, vs in by_name.items():
        merged = len({(label_text(v), v.ok) for v in vs}) == 1
        for v in vs[:1] if merged else vs:
            rows.append((name if merged else f"{name} ({v.run.mode})", label_text(v), result_text(v), v.ok))
    label_w = max([len("label"), *(len(r[1]) for r in rows)])
    result_w = len("expected?")
    name_w = max(16, min(max([8, *(len(r[0]) for r in rows)]), width - label_w - result_w - 9))  # edges, gaps, padding
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
    table.add_column("scenario", width=name_w, overflow="fold")
    table.add_column("label", no_wrap=True, min_width=label_w)
    table.add_column("expected?", no_wrap=True, width=result_w)
    for name, label, result, ok in rows:
        table.add_row(wrap_name(name, name_w), label, result if ok else f"[red]{result}[/red]")
    return table


def _fmt_rate(value: object) -> str:
    return "-" if value is None else f"{float(value):.0%}"  # type: ignore[arg-type]


def wide_table(verdicts: Sequence[Verdict], title: str) -> Any:
    """Every run with what the app saw, the entry's category, root cause, fix rate and confidence."""
    from rich.table import Table

    table = Table(title=title, show_lines=False, expand=True)
    table.add_column("scenario", no_wrap=True, min_width=28)
    table.add_column("mode", ratio=1)
    table.add_column("what the app saw", overflow="fold", ratio=4)
    table.add_column("knowledge-base id", no_wrap=True, min_width=44)
    table.add_column("category", ratio=2)
    table.add_column("root cause", overflow="fold", ratio=6)
    table.add_column("fix rate", justify="right", ratio=1)
    table.add_column("conf.", justify="right", ratio=1)
    table.add_column("result", ratio=1)
    for v in verdicts:
        best = v.best
        if best is None:
            kb, cat, cause, fix, conf = label_text(v), "-", "", "-", "-"
        else:
            kb, cat = label_text(v), best.get("category") or "-"
            cause = str(best.get("root_cause") or "")
            cause = cause if len(cause) <= 140 else cause[:137] + "..."
            fix, conf = _fmt_rate(best.get("fix_rate_prior")), f"{float(best.get('confidence') or 0):.2f}"
        mark = result_text(v) if v.ok else f"[red]expected {v.expected[0] if v.expected else 'none'}[/red]"
        table.add_row(v.run.name, v.run.mode, v.run.app_saw, kb, cat, cause, fix, conf, mark)
    return table
