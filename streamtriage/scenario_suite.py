"""Run the simulator's scenario catalogue end to end and check the labels that come back.

One place for the loop that ``streamtriage demo`` and the classifier's accuracy test share: each
scenario runs with the real ``openai`` (or ``anthropic``) SDK, instrumented, against the fault simulator, inside a
parent span of its own so that every call it makes (including polls tied to an earlier create)
lands in one trace. Labels are then matched back to scenarios by trace id, never by timing.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from streamtriage.collector.process import free_port

# Thresholds short enough for the simulator's sub-second stalls and hangs, passed to the collector as
# an operator would set their own limits. The simulated proxy cuts streams 1.5 s after the request; the
# slack (how long after the limit a client can see the cut: the request's way to the proxy, the cut's way
# back, a busy machine's scheduling) is also the tolerance of inferred limits (classifier/cut_clusters.py).
SHORT_THRESHOLDS: dict[str, str] = {
    "STREAMTRIAGE_STALL_MS": "200",
    "STREAMTRIAGE_POLL_HANG_MS": "100",
    "STREAMTRIAGE_REQUIRES_ACTION_MS": "100",
    "STREAMTRIAGE_INDEXING_MS": "100",
    "STREAMTRIAGE_BACKGROUND_MS": "100",
    "STREAMTRIAGE_BUFFERED_TTFE_MS": "2000",
    "STREAMTRIAGE_PROXY_LIMIT_MS": "1500",
    "STREAMTRIAGE_PROXY_LIMIT_SLACK_MS": "400",
    "STREAMTRIAGE_CLASSIFY_INTERVAL_S": "0",
}

Label = tuple[str | None, str | None]  # (kb id, category)


@dataclass
class ScenarioRun:
    """One scenario run in one mode, and what the app saw."""

    name: str
    mode: str
    trace_id: str
    app_saw: str
    sdk: str


@dataclass
class Verdict:
    """A run, the label it should get and the labels the classifier gave its trace."""

    run: ScenarioRun
    expected: Label | None  # None: a healthy scenario, no incident expected
    labels: list[dict[str, Any]] = field(default_factory=list)

    @property
    def found(self) -> list[Label]:
        return sorted({(lb.get("kb_id") or None, lb.get("category") or None) for lb in self.labels})

    @property
    def ok(self) -> bool:
        return self.found == ([] if self.expected is None else [self.expected])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.run.name, "mode": self.run.mode, "trace_id": self.run.trace_id, "sdk": self.run.sdk,
                "app_saw": self.run.app_saw, "expected": list(self.expected) if self.expected else None,
                "found": [list(f) for f in self.found], "ok": self.ok, "labels": self.labels}

    @property
    def best(self) -> dict[str, Any] | None:
        return max(self.labels, key=lambda lb: float(lb.get("confidence") or 0.0), default=None)


class SimulatorProcess:
    """The fault simulator as a server process of its own, as a real API would be.

    In-process, its event loop would compete with the SDK's threads for the GIL and skew the
    timings that some evidence rests on (a proxy's wall-clock cut, a stall's length).
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 30.0) -> SimulatorProcess:
        self.proc = subprocess.Popen([sys.executable, "-m", "streamtriage.cli", "simulate", "--port", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"simulator exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_sim/faults", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError("simulator not ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def describe_observation(obs: Any) -> str:
    """A short 'what the app saw' line: the exception it caught, or how the stream ended."""
    exc = getattr(obs, "exception", None)
    if getattr(obs, "gave_up", False) and not getattr(obs, "polls", 0) and obs.event_count:
        return f"stream still open after {obs.event_count} events; the app's deadline abandoned it"
    if getattr(obs, "gave_up", False):
        return f"poll loop still waiting after {obs.polls} polls (status {obs.status or '?'}); app gave up"
    if exc is not None:
        return f"{exc.type} after {obs.event_count} events"
    ending = getattr(obs, "finish_reason", None) or getattr(obs, "status", None)
    return f"{obs.event_count} events, ended {ending or 'quietly'}"


def _warm_sdk() -> None:
    """Load the SDK's lazily imported resources and helpers once, as a running app has after its first
    calls, so one-off import time (up to a second on a busy machine) is not measured as a call's duration."""
    import importlib

    import openai

    client = openai.OpenAI(api_key="warm-up", base_url="http://127.0.0.1:9/v1")
    for path in ("chat.completions", "responses", "beta.threads.runs", "vector_stores.files",
                 "vector_stores.file_batches", "beta.vector_stores.files", "beta.vector_stores.file_batches"):
        obj: Any = client
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:  # not in this SDK line
            continue
    for module in ("openai.lib.streaming.chat", "openai.lib.streaming.responses", "openai.lib.streaming._assistants",
                   "openai.types.responses", "openai.types.beta.threads", "anthropic.lib.streaming",
                   "anthropic.types"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def catalogue() -> list[Any]:
    """Every scenario end-to-end runs cover: the catalogue plus its extra scenarios."""
    from streamtriage.simulator import scenarios

    names = {s.name for s in scenarios.SCENARIOS}
    return list(scenarios.SCENARIOS) + [s for s in getattr(scenarios, "EXTRA_SCENARIOS", ()) if s.name not in names]


def run_catalogue(
    endpoint: str,
    *,
    modes: Sequence[str] = ("sync", "async"),
    names: Sequence[str] | None = None,
    service_name: str = "streamtriage-demo",
    on_run: Callable[[ScenarioRun], None] | None = None,
    workers: int = 4,
) -> list[ScenarioRun]:
    """Run the chosen scenarios (all by default) in each mode with the hook exporting to ``endpoint``.

    Installs the hook in this process: call it from a process of its own (the demo, a test's
    subprocess), since the SDK stays patched for the rest of the process.
    """
    import openai
    from opentelemetry import trace

    import streamtriage
    from streamtriage.simulator.drivers import run_scenario

    major = int(openai.__version__.split(".")[0])
    by_name = {s.name: s for s in catalogue()}
    # Named scenarios run in the order given, repeats included (a spike needs several of the same).
    chosen = [by_name[n] for n in names] if names else list(by_name.values())
    chosen = [s for s in chosen if s.min_sdk <= major]
    handle = streamtriage.instrument(endpoint=endpoint, service_name=service_name)
    _warm_sdk()
    tracer = trace.get_tracer("streamtriage.scenario_suite")
    sim = SimulatorProcess().start()
    lock = threading.Lock()

    def one(sc: Any, mode: str) -> ScenarioRun:
        attrs = {"streamtriage.scenario": sc.name, "streamtriage.scenario.mode": mode}
        with tracer.start_as_current_span(f"scenario {sc.name}", attributes=attrs) as span:
            obs = run_scenario(sc, sim.base_url, mode=mode)
            trace_id = format(span.get_span_context().trace_id, "032x")
        run = ScenarioRun(sc.name, mode, trace_id, describe_observation(obs), obs.sdk_version)
        if on_run is not None:
            with lock:
                on_run(run)
        return run

    try:
        # Scenarios mostly wait (stalls, timeouts, poll intervals), so they run side by side; each has
        # its own trace, so concurrency never mixes their labels.
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="scenario") as pool:
            futures = [pool.submit(one, sc, mode) for mode in modes for sc in chosen]
            runs = [f.result() for f in futures]
    finally:
        handle.force_flush()
        sim.stop()
        handle.shutdown()
    return runs


def _http_json(method: str, url: str, token: str | None = None, timeout: float = 120.0) -> Any:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def classify_and_fetch(base_url: str, token: str | None = None, settle_s: float = 0.5) -> list[dict[str, Any]]:
    """Run a classification pass on the collector and return every incident of the last hour."""
    time.sleep(settle_s)  # the exporter has flushed; give the collector's writer one batch interval
    for _ in range(2):  # a second pass picks up rows the writer was still inserting during the first
        _http_json("POST", base_url + "/api/classify", token)
        time.sleep(settle_s)
    return list(_http_json("GET", base_url + "/api/incidents?since=1h&limit=10000", token))


def match(runs: Sequence[ScenarioRun], labels: Sequence[dict[str, Any]]) -> list[Verdict]:
    """Pair each run with the labels on its trace and with the label its scenario expects."""
    by_name = {s.name: s for s in catalogue()}
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for lb in labels:
        by_trace[str(lb.get("trace_id", ""))].append(lb)
    verdicts = []
    for run in runs:
        sc = by_name[run.name]
        expected = None if sc.is_healthy(run.sdk) else tuple(sc.expected_label(run.sdk))
        verdicts.append(Verdict(run, expected, by_trace.get(run.trace_id, [])))  # type: ignore[arg-type]
    return verdicts


def sdk_versions(runs: Sequence[ScenarioRun]) -> str:
    """The SDKs the runs drove, with versions: ``anthropic 2.17.0, openai 3.60.0``."""
    sdk_of = {s.name: getattr(s, "sdk", "openai") for s in catalogue()}
    return ", ".join(sorted({f"{sdk_of.get(r.name, 'openai')} {r.sdk}" for r in runs})) or "?"


def accuracy_report(verdicts: Sequence[Verdict]) -> str:
    """Accuracy per expected category and a confusion table, as plain text."""
    per_cat: dict[str, list[bool]] = defaultdict(list)
    confusion: Counter[tuple[str, str]] = Counter()
    for v in verdicts:
        cat = "healthy" if v.expected is None else (v.expected[1] or "unclassified")
        per_cat[cat].append(v.ok)
        got = "none" if not v.found else ",".join(sorted(f[1] or "unclassified" for f in v.found))
        confusion[(cat, got)] += 1
    sdks = sdk_versions([v.run for v in verdicts])
    lines = [f"classifier accuracy, {sdks}: {sum(v.ok for v in verdicts)}/{len(verdicts)} runs", "",
             f"{'expected category':<22}{'runs':>6}{'correct':>9}{'accuracy':>10}"]
    for cat in sorted(per_cat):
        oks = per_cat[cat]
        lines.append(f"{cat:<22}{len(oks):>6}{sum(oks):>9}{sum(oks) / len(oks):>10.0%}")
    lines += ["", f"{'expected':<22}{'labelled as':<30}{'count':>6}"]
    for (exp, got), n in sorted(confusion.items()):
        lines.append(f"{exp:<22}{got:<30}{n:>6}")
    bad = [v for v in verdicts if not v.ok]
    if bad:
        lines += ["", "mislabelled:"]
        for v in bad:
            lines.append(f"  {v.run.name} [{v.run.mode}]: expected {v.expected}, got {v.found}")
            lines += [f"    evidence: {lb.get('evidence')}" for lb in v.labels]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m streamtriage.scenario_suite --collector URL --out runs.json``: run the catalogue with
    this interpreter's openai SDK (how tests drive another SDK line from its own environment)."""
    import argparse
    from dataclasses import asdict

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--collector", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--modes", default="sync")
    ap.add_argument("--service", default="streamtriage-scenarios")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    runs = run_catalogue(args.collector, modes=args.modes.split(","), names=args.names or None,
                         service_name=args.service, workers=args.workers)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump([asdict(r) for r in runs], fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
