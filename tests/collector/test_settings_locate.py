"""Settings precedence and validation; finding the running service instead of opening a locked store."""
from __future__ import annotations

from pathlib import Path

import pytest

from streamtriage.collector import service_lock
from streamtriage.collector.locate import locate, running_service_url
from streamtriage.collector.settings import Settings, SettingsError, load_settings
from tests.collector.otlp_payloads import make_request, make_span
from tests.support.collector_proc import collector_process


def test_precedence_file_then_env_then_arguments(tmp_path: Path) -> None:
    cfg = tmp_path / "st.yaml"
    cfg.write_text("collector:\n  port: 5000\n  ttl-days: 7\n  token: from-file\n")
    s = load_settings(cfg, env={"STREAMTRIAGE_PORT": "6000"}, token=None)
    assert (s.port, s.ttl_days, s.token) == (6000, 7, "from-file")
    s = load_settings(cfg, env={"STREAMTRIAGE_PORT": "6000"}, port=7000)
    assert s.port == 7000
    assert load_settings(env={}).store == "chdb://./streamtriage-data"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"store": "mysql://x"}, "store must be"), ({"durability": "maybe"}, "durability"),
    ({"database": "x; DROP TABLE y"}, "database"), ({"max_body_bytes": 0}, "max_body_bytes"),
])
def test_bad_settings_are_refused_with_the_reason(kwargs: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings(**kwargs)
    with pytest.raises(SettingsError):
        load_settings(env={"STREAMTRIAGE_PORT": "not-a-number"})


def test_unknown_setting_in_a_file_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "st.json"
    cfg.write_text('{"prot": 1}')
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_settings(cfg, env={})


def test_locate_prefers_the_running_service_and_the_lock_names_it(tmp_path: Path) -> None:
    with collector_process(tmp_path) as svc:
        settings = Settings(store=svc.store, state_dir=str(svc.data_dir))
        assert running_service_url(settings) == svc.url
        with pytest.raises(service_lock.DirectoryLocked, match=f"serving {svc.url}"):
            service_lock.acquire(svc.data_dir)
        trace = make_span(bytes(range(1, 17)))
        assert svc.request("POST", "/v1/traces", make_request([trace]).SerializeToString(),
                           {"Content-Type": "application/x-protobuf"})[0] == 200
        with locate(settings) as where:
            assert where.url == svc.url and where.store is None
            assert where.stream(bytes(range(1, 17)).hex())["call"]["span_name"] == "chat gpt-4o-mini"
            assert where.incidents(since="1h") == []
    # Stopped: the directory is free, and locate opens the store directly (in a subprocess, since
    # this test process may already run chDB on another directory).
    assert running_service_url(settings) is None
    import subprocess
    import sys

    code = ("import sys; from streamtriage.collector.settings import Settings; "
            "from streamtriage.collector.locate import locate; "
            "s = Settings(store=sys.argv[1], state_dir=sys.argv[2]); "
            "w = locate(s).__enter__(); print(w.url, w.stream(sys.argv[3])['call']['span_name'])")
    out = subprocess.run([sys.executable, "-c", code, svc.store, str(svc.data_dir), bytes(range(1, 17)).hex()],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None chat gpt-4o-mini"


def test_thresholds_come_from_flags_env_or_file_and_reach_the_classifier(tmp_path: Path) -> None:
    from streamtriage.classifier.thresholds import Thresholds

    from_env = load_settings(None, env={"STREAMTRIAGE_THRESHOLDS": "stall_ms=100, assistants.runs:poll_hang_ms=5"})
    assert from_env.thresholds == ("stall_ms=100", "assistants.runs:poll_hang_ms=5")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("thresholds: [stall_ms=250]\n")
    assert load_settings(str(cfg), env={}).thresholds == ("stall_ms=250",)
    flagged = load_settings(str(cfg), env={}, thresholds=("stall_ms=7",))
    assert flagged.thresholds == ("stall_ms=7",)
    default = Thresholds.from_env(env={})
    tuned = Thresholds.from_env(env={}, flags=flagged.thresholds)
    assert vars(tuned) != vars(default)


def test_serve_refuses_an_unknown_threshold_before_starting(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "streamtriage.cli", "serve", "--store", f"chdb://{tmp_path}",
                           "--threshold", "bogus_ms=1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown threshold 'bogus_ms'" in proc.stderr
