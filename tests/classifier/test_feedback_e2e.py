"""When the classifier is wrong, end to end over real HTTP: ``streamtriage serve --kb-dir`` on chDB, scenarios
run through the real openai SDK and the hook (``streamtriage.scenario_suite``), then:

- the user knowledge-base directory's override of a shipped entry is what ``/api/incidents`` shows;
- ``streamtriage kb test`` explains a ``/api/streams`` export of one of those calls, and runs the
  directory's fixtures, without the test suite;
- a label marked wrong with the right entry shows the right entry, and survives another pass;
- a confirmed and a wrong label make the per-entry precision;
- an entry muted for one service (with the CLI, through the running service) leaves that service's
  incidents and stays for the other service.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamtriage.classifier.kb import default_kb
from streamtriage.scenario_suite import SHORT_THRESHOLDS
from tests.support.collector_proc import CollectorProcess, collector_process

REPO = Path(__file__).resolve().parents[2]
PEER = "llm/peer-closed-incomplete-chunked-read"
LENGTH = "llm/finish-reason-length-output-cap"
NO_FINISH = "llm/chat-stream-ended-without-finish-reason"
RIGHT = "llm/structured-output-length-limit-error"
OUR_TITLE = "Our edge load balancer drops long streams (OPS-1234)"


def _user_kb(root: Path) -> Path:
    """A user directory overriding the shipped peer-closed entry (same rule, our words), with fixtures."""
    shipped = default_kb().get(PEER)
    assert shipped is not None
    ours = dict(shipped.data, title=OUR_TITLE, category="infra_misconfig",
                root_cause={"en": "Our load balancer closes streams it thinks idle (OPS-1234).",
                            "zh": "我们的负载均衡器关闭了它认为空闲的流（OPS-1234）。"})
    kb_dir = root / "our-kb"
    (kb_dir / "fixtures").mkdir(parents=True)
    (kb_dir / "ours.yaml").write_text(yaml.safe_dump({"rule_language": 1, "entries": [ours]}, allow_unicode=True),
                                      encoding="utf-8")
    cut = {"api": "chat.completions", "mode": "stream", "outcome": "transport_error", "terminal_seen": False,
           "delta_count": 3, "event_count": 3, "exception_type": "openai.APIConnectionError",
           "exception_chain": ["openai.APIConnectionError", "httpx2.RemoteProtocolError"]}
    (kb_dir / "fixtures" / "ours.yaml").write_text(yaml.safe_dump([
        {"id": PEER, "expect": "match", "name": "cut after content", "record": cut},
        {"id": PEER, "expect": "no_match", "name": "clean end",
         "record": {**cut, "outcome": "completed", "terminal_seen": True, "exception_type": None,
                    "exception_chain": []}},
    ]), encoding="utf-8")
    return kb_dir


def _scenarios(svc: CollectorProcess, service: str, names: list[str], out: Path) -> dict[str, str]:
    """Run scenarios as ``service`` in a process of its own; scenario name -> trace id."""
    subprocess.run([sys.executable, "-m", "streamtriage.scenario_suite", "--collector", svc.url, "--out", str(out),
                    "--service", service, "--modes", "sync", "--workers", "2", *names], cwd=REPO, check=True,
                   timeout=300, env={**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "100"})
    return {r["name"]: r["trace_id"] for r in json.loads(out.read_text())}


def _incidents(svc: CollectorProcess, query: str = "") -> dict[str, dict[str, Any]]:
    rows = svc.get_json("/api/incidents?since=1h&limit=10000" + query)
    return {r["trace_id"]: r for r in rows}


def _post(svc: CollectorProcess, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    status, _, raw = svc.request("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"},
                                 timeout=60)
    return status, json.loads(raw or b"null")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamtriage.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})}, cwd=REPO)


@pytest.mark.timeout(600)
def test_user_kb_verdicts_and_mutes_change_incidents(tmp_path: Path) -> None:
    kb_dir = _user_kb(tmp_path)
    with collector_process(tmp_path, env=SHORT_THRESHOLDS, args=["--kb-dir", str(kb_dir)]) as svc:
        a = _scenarios(svc, "svc-a", ["chat-cut-fin", "chat-length", "chat-finish-null"], tmp_path / "a.json")
        b = _scenarios(svc, "svc-b", ["chat-cut-fin"], tmp_path / "b.json")
        for _ in range(2):
            assert _post(svc, "/api/classify", {})[0] == 200
        inc = _incidents(svc)

        # 1. The user directory's entry replaced the shipped one with the same id.
        cut_a, cut_b = inc[a["chat-cut-fin"]], inc[b["chat-cut-fin"]]
        for row in (cut_a, cut_b):
            assert (row["kb_id"], row["title"], row["category"]) == (PEER, OUR_TITLE, "infra_misconfig")
            assert (row["label_source"], row["muted"]) == ("rule", 0)
        assert svc.get_json("/api/kb/" + PEER)["title"] == OUR_TITLE

        # 2. `kb test` on the export of that call and on the directory's fixtures (no store, no test suite).
        export = tmp_path / "cut.json"
        export.write_text(json.dumps(svc.get_json(f"/api/streams/{a['chat-cut-fin']}")))
        res = _cli("kb", "test", str(export), "--kb-dir", str(kb_dir), "--json")
        assert res.returncode == 0, res.stderr
        (call,) = json.loads(res.stdout)
        assert call["label"]["kb_id"] == PEER and call["label"]["title"] == OUR_TITLE
        assert call["label"]["confidence"] == pytest.approx(cut_a["confidence"], abs=1e-3)  # same record as SQL built
        rules = {r["kb_id"]: r for r in call["rules"]}
        assert rules[PEER]["matched"] and not rules[LENGTH]["matched"]
        assert any("finish_reason" in f for f in rules[LENGTH]["failed"]), rules[LENGTH]
        res = _cli("kb", "test", str(kb_dir))
        assert res.returncode == 0 and "2 passed, 0 failed" in res.stdout, res.stdout + res.stderr

        # 3. Marked wrong with the right entry: /api/incidents shows the right entry, also after another pass.
        length_tid = a["chat-length"]
        assert inc[length_tid]["kb_id"] == LENGTH
        status, body = _post(svc, f"/api/labels/{length_tid}/feedback",
                             {"verdict": "wrong", "right_kb_id": RIGHT, "author": "qa", "note": "json mode"})
        assert status == 200, body
        assert body["label"]["kb_id"] == RIGHT
        _post(svc, "/api/classify", {})
        row = _incidents(svc)[length_tid]
        assert (row["kb_id"], row["label_source"], row["rule_kb_id"]) == (RIGHT, "feedback", LENGTH)
        assert any("marked wrong by qa" in said for said in row["evidence"]), row["evidence"]

        # ... a confirmed label, and the precision per entry (attributed to what the rules said).
        status, body = _post(svc, f"/api/labels/{a['chat-finish-null']}/feedback", {"verdict": "confirm"})
        assert status == 200 and body["label"]["label_source"] == "confirmed", body
        precision = {p["kb_id"]: p for p in svc.get_json("/api/feedback")["precision"]}
        assert (precision[LENGTH]["wrong"], precision[LENGTH]["precision"]) == (1, 0.0)
        assert (precision[NO_FINISH]["confirmed"], precision[NO_FINISH]["precision"]) == (1, 1.0)

        # Bad feedback is a clear 4xx and changes nothing.
        assert _post(svc, f"/api/labels/{length_tid}/feedback", {"verdict": "wrong", "right_kb_id": "llm/nope"})[0] == 400
        assert _post(svc, f"/api/labels/{length_tid}/feedback", {"verdict": "wrong"})[0] == 400
        assert _post(svc, "/api/labels/xyz/feedback", {"verdict": "confirm"})[0] == 400
        assert _post(svc, f"/api/labels/{'0' * 32}/feedback", {"verdict": "confirm"})[0] == 404
        assert _post(svc, "/api/mutes", {"service": "svc-a", "kb_id": "llm/nope"})[0] == 400
        assert _incidents(svc)[length_tid]["kb_id"] == RIGHT

        # 4. Muted for svc-a with the CLI (through the running service): gone from svc-a's incidents only.
        res = _cli("feedback", "mute", "--service", "svc-a", "--entry", PEER, "--store", svc.store,
                   env={"STREAMTRIAGE_STATE_DIR": str(svc.data_dir)})
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["relabelled"] == 1
        _post(svc, "/api/classify", {})
        inc = _incidents(svc)
        assert a["chat-cut-fin"] not in inc
        assert inc[b["chat-cut-fin"]]["kb_id"] == PEER
        muted = _incidents(svc, "&muted=true")[a["chat-cut-fin"]]
        assert (muted["kb_id"], muted["muted"]) == (PEER, 1)

        # ... and unmuted, it is back.
        status, _, raw = svc.request("DELETE", f"/api/mutes?service=svc-a&kb_id={PEER}")
        assert status == 200, raw
        assert _incidents(svc)[a["chat-cut-fin"]]["muted"] == 0

    # 5. With no service running, the CLI works on the store itself: the verdict withdrawn, the rules' label is back.
    store = ["--store", svc.store, "--kb-dir", str(kb_dir)]
    env = {"STREAMTRIAGE_STATE_DIR": str(svc.data_dir), **SHORT_THRESHOLDS}
    res = _cli("feedback", "clear", length_tid, *store, env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["label"]["kb_id"] == LENGTH
    res = _cli("incidents", "--since", "1h", "--json", *store, env=env)
    assert res.returncode == 0, res.stderr
    rows = {r["trace_id"]: r for r in json.loads(res.stdout)}
    assert rows[length_tid]["kb_id"] == LENGTH and rows[a["chat-cut-fin"]]["title"] == OUR_TITLE
