"""Knowledge-base entries as JSON documents and Markdown pages, in English or Chinese."""
from __future__ import annotations

from typing import Any

from .kb import KbEntry, KnowledgeBase

LANGS = ("en", "zh")
_HEAD = {
    "en": {"cause": "Root cause", "messages": "Typical messages", "fixes": "Fixes", "ineffective": "What does not help",
           "docs": "Official docs", "evidence": "Evidence", "confuse": "Do not confuse with", "rule": "Rule",
           "facts": "Facts", "fix_rate": "fix rate (prior)", "observed": "fix rate (observed)",
           "count": "calls matched", "confidence": "confidence (prior)", "first_seen": "first seen",
           "versions": "versions", "status": "status", "category": "category", "tags": "tags",
           "fails": "fails", "no_rule": "No rule"},
    "zh": {"cause": "根本原因", "messages": "典型报错信息", "fixes": "修复方法", "ineffective": "无效的尝试",
           "docs": "官方文档", "evidence": "证据", "confuse": "不要混淆", "rule": "规则",
           "facts": "概况", "fix_rate": "修复率（先验）", "observed": "修复率（观测）", "count": "匹配的调用数",
           "confidence": "置信度（先验）", "first_seen": "首次出现", "versions": "版本", "status": "状态",
           "category": "类别", "tags": "标签", "fails": "失败率", "no_rule": "无规则"},
}


def _text(item: dict[str, Any], lang: str) -> str:
    return str(item["text_zh"] if lang == "zh" else item["text"])


def check_lang(lang: str | None) -> str:
    lang = lang or "en"
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


FIX_RATE_DEFINITION = ("retry success within a window: share of the labelled calls with a request fingerprint "
                       "whose same request, from the same service, completed cleanly soon after")


def fix_rate_text(rate: float | None, sample: int) -> str:
    """An observed fix rate with the sample it rests on: ``0.80 (n=5)``, ``- (n=0)``."""
    return f"{'-' if rate is None else f'{float(rate):.2f}'} (n={int(sample)})"


def entry_json(entry: KbEntry, lang: str | None = None, stats: Any = None) -> dict[str, Any]:
    """The entry as stored, plus the store's evidence count and observed fix rate when known."""
    d = entry.to_dict(check_lang(lang) if lang else None)
    if stats is not None:
        d["observed"] = {"evidence_count": stats.evidence_count, "fix_rate_observed": stats.observed_fix_rate,
                         "fix_rate_sample": stats.sample, "calls_with_fingerprint": stats.with_fingerprint,
                         "fixed": stats.fixed, "fix_rate_definition": FIX_RATE_DEFINITION}
    return d


def entry_markdown(entry: KbEntry, lang: str = "en", stats: Any = None) -> str:
    lang = check_lang(lang)
    h = _HEAD[lang]
    d = entry.data
    out = [f"## {entry.id}", "", f"**{entry.title_in(lang)}**", ""]
    facts = [
        (h["category"], entry.category), (h["status"], entry.status),
        (h["fix_rate"], f"{entry.fix_rate:.2f}"), (h["confidence"], f"{entry.confidence:.2f}"),
    ]
    if stats is not None:
        obs = stats.observed_fix_rate
        facts += [(h["observed"], fix_rate_text(obs, stats.sample)), (h["count"], str(stats.evidence_count))]
    if d.get("first_seen"):
        facts.append((h["first_seen"], str(d["first_seen"])))
    if d.get("versions"):
        facts.append((h["versions"], ", ".join(f"`{v}`" for v in d["versions"])))
    if d.get("tags"):
        facts.append((h["tags"], ", ".join(d["tags"])))
    out += [f"- {k}: {v}" for k, v in facts] + ["", f"### {h['cause']}", "", entry.root_cause[lang].strip(), ""]
    if d.get("messages"):
        out += [f"### {h['messages']}", ""] + [f"- `{m}`" for m in d["messages"]] + [""]
    if d.get("fixes"):
        out += [f"### {h['fixes']}", ""]
        for f in d["fixes"]:
            out.append(f"- {_text(f, lang)}")
            if f.get("code"):
                out += ["", f"  ```{f.get('lang', 'python')}",
                        *("  " + line for line in f["code"].rstrip().splitlines()), "  ```"]
        out.append("")
    if d.get("ineffective"):
        out += [f"### {h['ineffective']}", ""]
        for f in d["ineffective"]:
            rate = f.get("fail_rate")
            out.append(f"- {_text(f, lang)}" + (f" ({h['fails']} {rate:.0%})" if rate is not None else ""))
        out.append("")
    if d.get("docs"):
        out += [f"### {h['docs']}", ""] + [f"- {u}" for u in d["docs"]] + [""]
    if d.get("evidence"):
        out += [f"### {h['evidence']}", ""]
        for ev in d["evidence"]:
            label = ev.get("ref") or ev["url"]
            out.append(f"- [{label}]({ev['url']})" + (f" ({ev['date']})" if ev.get("date") else ""))
        out.append("")
    if d.get("distinguish_from"):
        out += [f"### {h['confuse']}", ""] + [f"- {x}" for x in d["distinguish_from"]] + [""]
    out += [f"### {h['rule']}", ""]
    if d.get("rule"):
        import yaml

        out += ["```yaml", yaml.safe_dump(d["rule"], sort_keys=False, allow_unicode=True, width=100).rstrip(), "```"]
    else:
        out.append(f"{h['no_rule']}: {d.get('rule_note', '').strip()}")
    return "\n".join(out).rstrip() + "\n"


def kb_markdown(kb: KnowledgeBase, lang: str = "en", stats: dict[str, Any] | None = None) -> str:
    """The whole knowledge base as one Markdown document, grouped by category."""
    lang = check_lang(lang)
    parts = ["# streamtriage knowledge base", "", f"{len(kb)} entries, {len(kb.rules)} with rules.", ""]
    for cat in sorted({e.category for e in kb}):
        parts += [f"# {cat}", ""]
        for e in sorted((e for e in kb if e.category == cat), key=lambda e: e.id):
            parts.append(entry_markdown(e, lang, (stats or {}).get(e.id)))
    return "\n".join(parts)


def kb_json(kb: KnowledgeBase, lang: str | None = None, stats: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"rule_language": 1, "entries": [entry_json(e, lang, (stats or {}).get(e.id)) for e in kb]}


def kb_summary(kb: KnowledgeBase, stats: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rows = []
    for e in kb:
        st = (stats or {}).get(e.id)
        rows.append({"id": e.id, "category": e.category, "title": e.title, "status": e.status,
                     "fix_rate": e.fix_rate, "confidence": e.confidence, "has_rule": e.rule is not None,
                     "evidence_count": st.evidence_count if st else 0,
                     "fix_rate_observed": st.observed_fix_rate if st else None,
                     "fix_rate_sample": st.sample if st else 0})
    return rows
