"""The spool keeps every fsynced batch across restarts, in order, and ignores only a torn tail."""
from __future__ import annotations

from pathlib import Path

import pytest

from streamtriage.collector.spool import BATCH, DONE, Spool, SpoolCorrupt


def test_batches_survive_reopen_in_order_and_rotate_by_size(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_max_bytes=100)
    for i in range(1, 6):
        spool.append(BATCH, i, f"row-{i}".encode() * 10)
    spool.append(DONE, 3)
    spool.close()
    again = Spool(tmp_path)
    segments = again.sealed_segments()
    assert len(segments) == 3  # ~80-byte records, rotated once a segment reaches 100 bytes: 2 per segment
    records = [r for p in segments for r in again.read(p)]
    assert [(r.kind, r.batch_id) for r in records] == [(BATCH, 1), (BATCH, 2), (BATCH, 3), (BATCH, 4), (BATCH, 5),
                                                       (DONE, 3)]
    assert again.done_batches() == {3} and again.max_batch_id() == 5
    again.append(BATCH, 6, b"x")  # new segments continue the sequence
    assert again.segments()[-1].name > segments[-1].name


def test_torn_tail_is_ignored_but_corruption_in_the_middle_is_reported(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(BATCH, 1, b"first")
    spool.append(BATCH, 2, b"second")
    spool.close()
    seg = spool.segments()[0]
    data = seg.read_bytes()
    seg.write_bytes(data[:-3])  # crash mid-append: the last record was never acknowledged
    assert [r.payload for r in Spool(tmp_path).read(seg)] == [b"first"]
    seg.write_bytes(data[:25] + b"X" + data[26:])  # a flipped byte inside the first record
    with pytest.raises(SpoolCorrupt):
        list(Spool(tmp_path).read(seg))


def test_empty_segments_are_not_left_behind(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(BATCH, 1, b"a")
    spool.seal()
    spool.seal()
    assert len(spool.segments()) == 1 and not spool.is_empty()
    spool.remove(spool.segments()[0])
    assert spool.is_empty() and spool.size_bytes() == 0
