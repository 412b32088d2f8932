"""The Node.js hook end to end: ``node --test node/test/`` runs apps on openai-node 4.x, 5.x and 6.x
(CommonJS and ESM) against the fault simulator, exporting to a real collector; this test starts both
servers, hands the Node tests the labels the scenario catalogue expects (one source of truth with the
Python hook's tests) and fails when any Node test fails. ``scripts/node-setup.sh`` installs the Node
packages (``npm ci``); without them this test fails and says so."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from streamtriage.scenario_suite import SHORT_THRESHOLDS, SimulatorProcess
from streamtriage.simulator import scenarios
from tests.conftest import REPO
from tests.support.collector_proc import collector_process

NODE_DIR = REPO / "node"
SDK_DIRS = [NODE_DIR / "test" / f"sdk{m}" for m in (4, 5, 6)]
# Catalogue scenarios the Node apps reproduce (node/test/apps/scenarios.cjs names them).
CATALOGUE = ("chat-healthy", "chat-cut-fin", "chat-finish-absent", "chat-early-break", "runs-stream-healthy",
             "runs-stream-no-terminal", "runs-poll-stuck-queued")


def _expected(path: Path) -> Path:
    """The label each catalogue scenario must get: [kb id, category], or null for a healthy one."""
    out = {}
    for name in CATALOGUE:
        sc = scenarios.get(name)
        out[name] = None if sc.is_healthy() else list(sc.expected_label())
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
                   "STREAMTRIAGE_EXPECTED": str(_expected(tmp_path / "expected.json"))}
            proc = subprocess.run([node, "--test", "--test-reporter=spec", "test/"], cwd=NODE_DIR, env=env,
                                  capture_output=True, text=True, timeout=300)
    finally:
        sim.stop()
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout or "fail 0" in proc.stdout, proc.stdout[-3000:]
