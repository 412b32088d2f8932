"""The simulated proxy counts its limit from the request's arrival, as a real one does: a slow first
event (a model thinking) eats into the time left for tokens."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from test_sim_wire import _read_all, _send, _stream

from streamtriage.simulator import fault_model, run_simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[object]:
    with run_simulator() as handle:
        yield handle


@pytest.mark.parametrize("first", [0.0, 0.3, 0.6])
def test_wallclock_cut_is_counted_from_the_request(sim, first: float) -> None:
    t0 = time.monotonic()
    raw = _read_all(_send(sim.port, _stream(fault_model("wallclock-cut", n=40, gap=0.05, cut=0.8, first=first))))
    took = time.monotonic() - t0
    body = raw.partition(b"\r\n\r\n")[2]
    assert not body.endswith(b"0\r\n\r\n")  # cut, not finished
    assert 0.8 <= took < 1.2  # the same limit from the request, whatever the first event's delay
    # only the frames due before the cut: ceil((cut - first) / gap)
    assert body.count(b"data: ") == round((0.8 - first) / 0.05)
