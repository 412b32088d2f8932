"""Runs simulator scenarios with the real openai SDK under the streamtriage hooks, exporting to a collector.

A separate process on purpose: ``instrument()`` patches the SDK and sets the global tracer provider
for the whole process, which must not leak into other tests. Prints one JSON line per scenario run
(name, model, API kind, what the app saw) and exits after flushing every span to the collector.

    python tests/dashboards/pipeline_driver.py --collector http://127.0.0.1:PORT --service NAME SCENARIO...
"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--collector", required=True, help="collector base URL (OTLP/HTTP)")
    ap.add_argument("--service", required=True, help="service.name of this app")
    ap.add_argument("scenarios", nargs="+")
    args = ap.parse_args(argv)

    import streamtriage
    from streamtriage.simulator.drivers import run_scenario
    from streamtriage.simulator.scenarios import get
    from streamtriage.simulator.server import run_simulator

    handle = streamtriage.instrument(endpoint=args.collector, service_name=args.service)
    try:
        with run_simulator() as sim:
            for name in args.scenarios:
                sc = get(name)
                obs = run_scenario(sc, sim.base_url)
                print(json.dumps({"scenario": name, "model": sc.model, "api": sc.api, "service": args.service,
                                  "exception": obs.exception_type, "events": obs.event_count}), flush=True)
    finally:
        if not handle.force_flush():
            print("force_flush timed out", file=sys.stderr)
            return 1
        handle.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
