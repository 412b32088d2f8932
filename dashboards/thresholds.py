"""Every alert threshold and duration, by name, shared by the Grafana and the Prometheus rules.

Kept in one place so both rule sets fire on the same conditions and a change is one reviewed line.
"""
from __future__ import annotations

FAILURE_RATE = 0.05            # share of calls with ERROR status
FAILURE_MIN_CALLS = 5          # ignore services with fewer calls in the window
FAILURE_WINDOW_S = 600
FAILURE_FOR = "5m"

INCOMPLETE_SPIKE_MIN = 5       # incomplete streams of one KB entry in the last 10 minutes ...
INCOMPLETE_SPIKE_FACTOR = 3    # ... and at least this many times the hour's 10-minute average
INCOMPLETE_RECENT_S = 600
INCOMPLETE_BASELINE_S = 3600
INCOMPLETE_FOR = "2m"

HANG_AFTER_S = 600             # a polled object still non-terminal after 10 minutes is a hang
HANG_STILL_POLLED_S = 300      # ... and it was polled within the last 5 minutes
HANG_WINDOW_S = 3600
HANG_FOR = "1m"

TRUNCATION_RATE = 0.10         # truncated calls / calls, per model
TRUNCATION_MIN_CALLS = 5
TRUNCATION_WINDOW_S = 900
TRUNCATION_FOR = "10m"

INGEST_QUIET_S = 300           # no span stored for 5 minutes ...
INGEST_MIN_SPANS_HOUR = 10     # ... after at least this many in the hour before
INGEST_WINDOW_S = 3600
INGEST_FOR = "5m"
SPOOLING_FOR = "2m"            # Prometheus: spans spooled continuously for this long

RELAY_CRASH_WINDOW_S = 900     # any relay crash on an upstream failure in 15 minutes pages the owner
RELAY_CRASH_FOR = "0s"
