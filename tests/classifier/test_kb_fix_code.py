"""Every fix's Python code in the knowledge base compiles and its imports resolve on each supported SDK
line (issue 15: ``httpx`` is no longer installed with openai 3.x), checked with that line's own Python:
the main environment (3.x), ``.venv-openai1`` (1.x, scripts/sdk-matrix.sh) and ``.venv-openai2`` when
present. Also: the loader requires the Chinese texts, and ``kb show --lang zh`` shows them."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streamtriage.classifier.kb import KbError, load_kb

REPO = Path(__file__).resolve().parents[2]
CHECKER = Path(__file__).with_name("kb_code_check.py")


def _snippets() -> list[dict[str, str]]:
    out = []
    for e in load_kb():
        for i, fix in enumerate(e.data.get("fixes") or []):
            if fix.get("code") and fix.get("lang", "python") == "python":
                out.append({"where": f"{e.source} {e.id} fixes[{i}]", "code": fix["code"]})
    return out


def _check(python: str, snippets: list[dict[str, str]]) -> dict:
    proc = subprocess.run([python, str(CHECKER)], input=json.dumps(snippets), capture_output=True, text=True,
                          timeout=300, cwd=REPO / "tests")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _sdk_lines() -> list[str]:
    lines = [sys.executable]
    one = REPO / ".venv-openai1" / "bin" / "python"
    if not os.environ.get("STREAMTRIAGE_NO_SDK_MATRIX"):
        assert one.exists(), "build the openai 1.x environment first: bash scripts/sdk-matrix.sh"
        lines.append(str(one))
    two = REPO / ".venv-openai2" / "bin" / "python"
    if two.exists():
        lines.append(str(two))
    return lines


@pytest.mark.parametrize("python", _sdk_lines(), ids=lambda p: Path(p).parts[-3])
def test_fix_code_compiles_and_imports_on_each_sdk_line(python: str) -> None:
    snippets = _snippets()
    assert len(snippets) >= 25
    result = _check(python, snippets)
    assert result["problems"] == [], f"openai {result['sdk']}:\n" + "\n".join(result["problems"])


def test_the_checker_catches_what_broke_the_newcomer() -> None:
    """The old snippet (httpx with openai 3.x), a module used without its import, a bad attribute, bad syntax."""
    bad = [{"where": "old", "code": "import httpx\ntry:\n    pass\nexcept (openai.APIConnectionError, "
                                    "httpx.RemoteProtocolError):\n    raise\n"},
           {"where": "attr", "code": "import openai\nopenai.NoSuchError\n"},
           {"where": "syntax", "code": "except openai.APIError:\n    raise\n"}]
    problems = "\n".join(_check(sys.executable, bad)["problems"])
    assert "uses module openai" in problems
    assert "openai.NoSuchError does not exist" in problems
    assert "syntax: does not compile" in problems
    import openai

    if int(openai.__version__.split(".")[0]) >= 3:
        assert "imports httpx, which `pip install openai` does not install" in problems


def test_loader_requires_the_chinese_texts(tmp_path: Path) -> None:
    import yaml

    src = REPO / "classifier" / "kb" / "truncation.yaml"
    doc = yaml.safe_load(src.read_text(encoding="utf-8"))
    for mutate, message in ((lambda e: e.pop("title_zh"), "title_zh"),
                            (lambda e: e["fixes"][0].pop("text_zh"), "fixes[0]: needs `text_zh`"),
                            (lambda e: e["ineffective"][0].__setitem__("text_zh", " "), "needs `text_zh`")):
        broken = json.loads(json.dumps(doc))
        mutate(broken["entries"][0])
        path = tmp_path / "t.yaml"
        path.write_text(yaml.safe_dump(broken, allow_unicode=True), encoding="utf-8")
        with pytest.raises(KbError, match=re.escape(message)) as err:
            load_kb(path)
        assert "--lang zh" in str(err.value)


def test_kb_show_in_chinese_is_fully_translated() -> None:
    out = subprocess.run([sys.executable, "-m", "streamtriage.cli", "kb", "show",
                          "llm/peer-closed-incomplete-chunked-read", "--lang", "zh"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    entry = load_kb().get("llm/peer-closed-incomplete-chunked-read")
    assert entry is not None
    assert f"**{entry.data['title_zh']}**" in out.stdout and entry.title not in out.stdout
    for item in [*entry.data["fixes"], *entry.data["ineffective"]]:
        assert item["text_zh"] in out.stdout and item["text"] not in out.stdout
    assert entry.root_cause["zh"].strip()[:20] in out.stdout
