"""Runs simulator scenarios with the real SDK, instrumented, exporting to a collector (a subprocess of the
accuracy test, so the hook's patches never leak into other tests and any installed openai line works).

    python tests/classifier/scenario_runner.py --collector URL --out result.json [--mode sync] [NAME ...]

Scenarios run one after another; each gets a wall-clock window ``[start_ns, end_ns]`` that contains
the start of every call it made, which is how the test maps labels back to scenarios.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--collector", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", default="sync")
    ap.add_argument("--service", default="accuracy")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()

    import openai

    import streamtriage
    from streamtriage.simulator.drivers import run_scenario
    from streamtriage.simulator.scenarios import SCENARIOS
    from streamtriage.simulator.server import start_simulator

    handle = streamtriage.instrument(endpoint=args.collector, service_name=args.service)
    sim = start_simulator()
    major = int(openai.__version__.split(".")[0])
    from streamtriage.simulator.scenarios import BY_NAME

    from streamtriage.simulator import scenarios as catalogue

    extras = list(getattr(catalogue, "EXTRA_SCENARIOS", ()))
    pool = [BY_NAME[n] for n in args.names] if args.names else list(SCENARIOS) + [
        s for s in extras if s.name not in {x.name for x in SCENARIOS}]
    chosen = [s for s in pool if s.min_sdk <= major]
    out = {"sdk": openai.__version__, "service": args.service, "runs": []}
    try:
        for sc in chosen:
            start = time.time_ns()
            obs = run_scenario(sc, sim.base_url, mode=args.mode)
            sim.wait_idle(obs.run_id if hasattr(obs, "run_id") else None, timeout=1.0)
            time.sleep(0.02)
            out["runs"].append({"name": sc.name, "start_ns": start, "end_ns": time.time_ns(),
                                "exception": obs.exception.type if obs.exception else None})
    finally:
        handle.force_flush()
        sim.stop()
        handle.shutdown()
    Path(args.out).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
