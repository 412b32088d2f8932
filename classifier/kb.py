"""The knowledge base: YAML entries under ``classifier/kb/``, validated on load.

Every file holds ``rule_language: 1`` and ``entries: [...]``. The schema is closed: an unknown key
anywhere in an entry (or in its rule) is a load error naming the file and entry, so a typo never
silently disables a rule. Rules are compiled here too (see ``matchers``), so a bad rule fails at
startup, not at classification time.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .matchers import Compiler, MatchError, Pred
from .record import FIELDS
from .thresholds import DEFAULTS

KB_DIR = Path(__file__).with_name("kb")
RULE_LANGUAGE = 1

CATEGORIES = (
    "incomplete_stream", "truncation", "polling_hang",
    "client_cancel", "content_filter", "rate_limit", "server_error",
    "client_parser", "client_misuse", "infra_misconfig",
)
STATUSES = ("stable", "draft")
OBSERVERS = ("python", "node", "server")

ENTRY_KEYS = {
    # key: required?
    "id": True, "category": True, "title": True, "title_zh": True, "root_cause": True, "status": True,
    "fix_rate": True, "confidence": True, "tags": False, "messages": False, "first_seen": False,
    "versions": False, "fixes": False, "ineffective": False, "docs": False, "evidence": False,
    "distinguish_from": False, "observable": False, "rule": False, "rule_note": False,
}
RULE_KEYS = ("when", "base", "evidence", "priority")
EVIDENCE_KEYS = ("weight", "says", "match")
FIX_KEYS = ("text", "text_zh", "code", "lang")
INEFFECTIVE_KEYS = ("text", "text_zh", "fail_rate")
# Languages a fix's ``code`` may be in (``lang``, default python). Python code is compiled and its
# imports resolved against each supported openai SDK line by the tests; the others are shown as is.
CODE_LANGS = ("python", "javascript", "shell", "nginx", "modelfile", "yaml")
# Every text a reader sees is in English and Chinese (``kb show --lang zh``).
ZH_HINT = "every entry is shown in English and Chinese (`streamtriage kb show ID --lang zh`)"
LINK_KEYS = ("ref", "url", "date")
ID_RE = re.compile(r"^llm/[a-z0-9]+(-[a-z0-9]+)*$")


class KbError(ValueError):
    """The knowledge base cannot be loaded; the message says where."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (YAML would silently keep the last one, dropping a clause)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")


@dataclass
class EvidenceClause:
    weight: float
    says: str
    pred: Pred
    spec: Any
    fields: tuple[str, ...] = ()  # record fields named as ``{field}`` in ``says``

    def text(self, rec: Mapping[str, Any]) -> str:
        """``says`` with each ``{field}`` filled from the record, so the label names the value it saw
        (``finish_reason "abort"``): a value no entry lists cannot be written into the text beforehand."""
        if not self.fields:
            return self.says
        return PLACEHOLDER_RE.sub(lambda m: _shown(rec.get(m.group(1))), self.says)


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "?" if value is None else str(value)


@dataclass
class Rule:
    when: Pred
    base: float
    evidence: list[EvidenceClause]
    priority: int
    spec: dict[str, Any]


@dataclass
class KbEntry:
    id: str
    category: str
    title: str
    root_cause: dict[str, str]
    status: str
    fix_rate: float
    confidence: float
    data: dict[str, Any]
    rule: Rule | None = None
    source: str = ""

    def title_in(self, lang: str) -> str:
        return str(self.data["title_zh"]) if lang == "zh" else self.title

    def to_dict(self, lang: str | None = None) -> dict[str, Any]:
        """The entry as stored (rule included as written); ``lang`` keeps one root-cause language."""
        d = json.loads(json.dumps(self.data, default=str))
        if lang:
            d["root_cause"] = {lang: self.root_cause[lang]}
        return d


@dataclass
class KnowledgeBase:
    entries: dict[str, KbEntry] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # every file it was loaded from (rule version)

    def __iter__(self):
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, kb_id: str) -> KbEntry | None:
        return self.entries.get(kb_id)

    @property
    def rules(self) -> list[KbEntry]:
        return [e for e in self.entries.values() if e.rule is not None]


def _fail(where: str, msg: str) -> KbError:
    return KbError(f"{where}: {msg}")


def _closed(obj: Any, keys: Iterable[str], where: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise _fail(where, f"expected a mapping, got {type(obj).__name__}")
    unknown = set(obj) - set(keys)
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    return obj


def _prob(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
        raise _fail(where, f"expected a number in [0, 1], got {v!r}")
    return float(v)


def _str_list(v: Any, where: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _fail(where, "expected a list of strings")
    return v


def _texts(item: Mapping[str, Any], where: str) -> None:
    """A fix or ineffective attempt needs ``text`` and its Chinese ``text_zh``."""
    if not isinstance(item.get("text"), str) or not item["text"].strip():
        raise _fail(where, "needs text")
    if not isinstance(item.get("text_zh"), str) or not item["text_zh"].strip():
        raise _fail(where, f"needs `text_zh` (the Chinese translation of `text`): {ZH_HINT}")


def compile_rule(spec: Any, where: str, compiler: Compiler, default_base: float) -> Rule:
    spec = _closed(spec, RULE_KEYS, where)
    if "when" not in spec:
        raise _fail(where, "a rule needs `when`")
    try:
        when = compiler.compile(spec["when"], "when")
        clauses = []
        for i, ev in enumerate(spec.get("evidence") or []):
            ev = _closed(ev, EVIDENCE_KEYS, f"{where}.evidence[{i}]")
            w = ev.get("weight")
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not -1.0 <= w <= 1.0 or w == 0:
                raise _fail(f"{where}.evidence[{i}]", f"weight must be in [-1, 1] and not 0, got {w!r}")
            if not isinstance(ev.get("says"), str) or not ev["says"].strip():
                raise _fail(f"{where}.evidence[{i}]", "`says` must explain the evidence in words")
            pred = compiler.compile(ev.get("match"), f"evidence[{i}].match")
            fields = tuple(PLACEHOLDER_RE.findall(ev["says"]))
            unknown = [f for f in fields if f not in FIELDS]
            if unknown:
                raise _fail(f"{where}.evidence[{i}]", f"`says` names unknown field(s) {', '.join(unknown)}")
            clauses.append(EvidenceClause(float(w), ev["says"].strip(), pred, ev["match"], fields))
    except MatchError as e:
        raise _fail(where, str(e)) from None
    base = _prob(spec.get("base", default_base), f"{where}.base")
    prio = spec.get("priority", 0)
    if not isinstance(prio, int):
        raise _fail(where, "priority must be an integer")
    return Rule(when, base, clauses, prio, dict(spec))


def _validate_entry(raw: Any, where: str, compiler: Compiler) -> KbEntry:
    raw = _closed(raw, ENTRY_KEYS, where)
    for k, req in ENTRY_KEYS.items():
        if req and k not in raw:
            hint = f" (the Chinese title: {ZH_HINT})" if k == "title_zh" else ""
            raise _fail(where, f"missing required key {k!r}{hint}")
    kb_id = raw["id"]
    if not isinstance(kb_id, str) or not ID_RE.match(kb_id):
        raise _fail(where, f"id {kb_id!r} must look like llm/some-slug")
    where = f"{where} ({kb_id})"
    if raw["category"] not in CATEGORIES:
        raise _fail(where, f"category {raw['category']!r} not in {', '.join(CATEGORIES)}")
    if raw["status"] not in STATUSES:
        raise _fail(where, f"status must be one of {STATUSES}")
    rc = _closed(raw["root_cause"], ("en", "zh"), f"{where}.root_cause")
    if not all(isinstance(rc.get(k), str) and rc[k].strip() for k in ("en", "zh")):
        raise _fail(where, "root_cause needs non-empty `en` and `zh`")
    if not isinstance(raw["title_zh"], str) or not raw["title_zh"].strip():
        raise _fail(where, f"`title_zh` (the Chinese title) must be a non-empty string: {ZH_HINT}")
    fix_rate = _prob(raw["fix_rate"], f"{where}.fix_rate")
    conf = _prob(raw["confidence"], f"{where}.confidence")
    for k in ("tags", "messages", "versions", "docs", "distinguish_from"):
        if k in raw:
            _str_list(raw[k], f"{where}.{k}")
    for i, f in enumerate(raw.get("fixes") or []):
        f = _closed(f, FIX_KEYS, f"{where}.fixes[{i}]")
        _texts(f, f"{where}.fixes[{i}]")
        if "lang" in f and f["lang"] not in CODE_LANGS:
            raise _fail(f"{where}.fixes[{i}]", f"lang must be one of {', '.join(CODE_LANGS)}, got {f['lang']!r}")
        if "lang" in f and not f.get("code"):
            raise _fail(f"{where}.fixes[{i}]", "`lang` says what language `code` is in; there is no code")
    for i, f in enumerate(raw.get("ineffective") or []):
        f = _closed(f, INEFFECTIVE_KEYS, f"{where}.ineffective[{i}]")
        _texts(f, f"{where}.ineffective[{i}]")
        if f.get("fail_rate") is not None:
            _prob(f["fail_rate"], f"{where}.ineffective[{i}].fail_rate")
    for i, f in enumerate(raw.get("evidence") or []):
        f = _closed(f, LINK_KEYS, f"{where}.evidence[{i}]")
        if not isinstance(f.get("url"), str):
            raise _fail(f"{where}.evidence[{i}]", "needs url")
    obs = raw.get("observable", ["python"])
    if not isinstance(obs, list) or not set(obs) <= set(OBSERVERS):
        raise _fail(where, f"observable must be a list from {OBSERVERS}")
    rule = None
    if raw.get("rule") is not None:
        rule = compile_rule(raw["rule"], f"{where}.rule", compiler, 0.5)
    elif not raw.get("rule_note"):
        raise _fail(where, "an entry without a rule must say why in `rule_note`")
    return KbEntry(kb_id, raw["category"], raw["title"], dict(rc), raw["status"], fix_rate, conf,
                   dict(raw), rule)


def load_kb(paths: Iterable[Path] | Path | None = None, user_paths: Iterable[Path] = ()) -> KnowledgeBase:
    """Load and validate every ``*.yaml`` under ``paths`` (default: the shipped ``kb/`` folder).

    ``user_paths`` (a user knowledge-base directory's files, see ``user_kb``) go through the same
    checks; their entries extend the shipped ones, or replace the shipped entry with the same id."""
    if paths is None:
        paths = KB_DIR
    if isinstance(paths, Path):
        files = sorted(paths.glob("*.yaml")) if paths.is_dir() else [paths]
    else:
        files = sorted(paths)
    if not files:
        raise KbError(f"no knowledge base files in {paths}")
    compiler = Compiler(set(DEFAULTS))
    kb = KnowledgeBase()
    for layer in (files, sorted(user_paths)):
        seen: set[str] = set()  # ids are unique within a layer; a user entry may replace a shipped one
        for path in layer:
            for entry in _load_file(path, compiler):
                if entry.id in seen:
                    raise KbError(f"{path.name}: duplicate id {entry.id}")
                seen.add(entry.id)
                entry.source = path.name if layer is files else str(path)
                kb.entries[entry.id] = entry
        kb.files.extend(layer)
    for entry in kb:
        for other in entry.data.get("distinguish_from") or []:
            if other not in kb.entries:
                raise KbError(f"{entry.source} ({entry.id}): distinguish_from names unknown entry {other}")
    return kb


def _load_file(path: Path, compiler: Compiler) -> list[KbEntry]:
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except yaml.YAMLError as e:
        raise KbError(f"{path.name}: not valid YAML: {e}") from None
    doc = _closed(doc, ("rule_language", "entries"), path.name)
    if doc.get("rule_language") != RULE_LANGUAGE:
        raise KbError(f"{path.name}: rule_language must be {RULE_LANGUAGE}")
    return [_validate_entry(raw, f"{path.name}[{i}]", compiler) for i, raw in enumerate(doc.get("entries") or [])]


_DEFAULT: KnowledgeBase | None = None


def default_kb() -> KnowledgeBase:
    """The shipped knowledge base, loaded once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_kb()
    return _DEFAULT
