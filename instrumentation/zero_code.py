"""Defaults that make ``opentelemetry-instrument python app.py`` export to a streamtriage collector.

The ``opentelemetry-distro`` defaults to OTLP over gRPC (``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``) and to
exporting metrics and logs too; streamtriage installs only the OTLP/HTTP exporter and its collector
takes traces only, so as documented the zero-code path failed with ``Requested component
'otlp_proto_grpc' not found`` and exported nothing. The distro sets its defaults with
``os.environ.setdefault`` inside the app's process; the only streamtriage code that runs earlier is
this module: the ``opentelemetry-instrument`` launcher imports every
``opentelemetry_environment_variables`` entry point to build its command line, before it starts the
app with the environment it has then. So importing this module fills in, **only where the user set
nothing**:

- ``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`` (the collector speaks OTLP/HTTP);
- ``OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318`` (``streamtriage serve``'s default address);
- ``OTEL_METRICS_EXPORTER=none`` and ``OTEL_LOGS_EXPORTER=none`` (the collector takes traces only);
- ``OTEL_EXPORTER_OTLP_TRACES_HEADERS=Authorization=Bearer ...`` from ``STREAMTRIAGE_TOKEN``, for a
  collector started with ``--token``.

It defines no ``OTEL_*`` names itself: the launcher turns those into options, and a second
definition of an existing one would clash.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping
from urllib.parse import quote

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
TOKEN_ENV = "STREAMTRIAGE_TOKEN"


def apply_defaults(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Fill in the variables above that the user left unset; returns what it set."""
    wanted: dict[str, str] = {}
    if not (environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")):
        wanted["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
    if not (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        wanted["OTEL_EXPORTER_OTLP_ENDPOINT"] = DEFAULT_ENDPOINT
    for name in ("OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"):
        if not environ.get(name):
            wanted[name] = "none"
    token = environ.get(TOKEN_ENV)
    if token and not (environ.get("OTEL_EXPORTER_OTLP_HEADERS") or environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")):
        # OTLP header values are URL-encoded in these variables (the space after Bearer is %20).
        wanted["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] = "Authorization=" + quote(f"Bearer {token}")
    environ.update(wanted)
    return wanted


apply_defaults(os.environ)
