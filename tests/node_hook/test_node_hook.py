"""The Node.js hook end to end: ``node --test node/test/`` runs apps on openai-node 4.x, 5.x and 6.x
(CommonJS and ESM) against the fault simulator, exporting to a real collector; this test starts both
servers, hands the Node tests the scenario catalogue's specs and expected labels (one source of truth with the
Python hook's tests) and fails when any Node test fails. ``scripts/node-setup.sh`` installs the Node
packages (``npm ci``); without them this test fails and says so."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

from streamtriage.scenario_suite import SHORT_THRESHOLDS, SimulatorProcess
from streamtriage.simulator import scenarios
from tests.conftest import REPO
from tests.support.collector_proc import collector_process

NODE_DIR = REPO / "node"
SDK_DIRS = [NODE_DIR / "test" / f"sdk{m}" for m in (4, 5, 6)]


def _spec(sc: scenarios.Scenario) -> dict[str, Any]:
    """What the Node app needs to make the scenario's call and what must come out of it."""
    return {"call": sc.call, "model": sc.model, "max_retries": sc.max_retries, "timeout": sc.timeout,
            "request": dict(sc.request), "app": dict(sc.app), "outcome": sc.expected_outcome,
            "label": None if sc.is_healthy() else list(sc.expected_label())}


def _specs(path: Path) -> Path:
    """Every OpenAI catalogue scenario (the Node app runs those it has a driver for; the Anthropic
    Messages scenarios are for the anthropic SDK, which this hook does not cover), plus the chat stream
    without finish_reason through openai-node's ChatCompletionStream, which raises the SDK's own error."""
    out = {sc.name: _spec(sc) for sc in scenarios.SCENARIOS if sc.api != "messages"}
    helper = replace(scenarios.get("chat-finish-absent"), name="chat-finish-absent-helper", call="chat.stream_helper",
                     expected_outcome="error")
    out[helper.name] = _spec(helper)
    path.write_text(json.dumps(out))
    return path


def test_node_hook_labels_match_python(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "node is not on PATH (Node.js >= 20 is needed for the Node hook tests)"
    missing = [str(d) for d in [NODE_DIR, *SDK_DIRS] if not (d / "node_modules").is_dir()]
    assert not missing, f"Node packages not installed in {missing}: run scripts/node-setup.sh"
    sim = SimulatorProcess().start()
    try:
        with collector_process(tmp_path, env=SHORT_THRESHOLDS) as svc:
            env = {**os.environ, "STREAMTRIAGE_SIM_URL": sim.base_url, "STREAMTRIAGE_COLLECTOR_URL": svc.url,
                   "STREAMTRIAGE_SPECS": str(_specs(tmp_path / "specs.json"))}
            proc = subprocess.run([node, "--test", "--test-reporter=spec", *sorted(str(p) for p in (NODE_DIR / "test").glob("*.test.js"))], cwd=NODE_DIR, env=env,
                                  capture_output=True, text=True, timeout=600)
    finally:
        sim.stop()
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout or "fail 0" in proc.stdout, proc.stdout[-3000:]
