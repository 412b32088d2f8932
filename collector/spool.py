"""On-disk spool: append-only segment files of fsynced batches, replayed in order.

Why: a 200 from the collector means the spans are durable. When the store is down or slow a
batch is appended here and fsynced *before* the sender is answered; the writer replays segments
oldest first and deletes a segment only after all of its batches are in the store (at-least-once:
a crash between the insert and the delete replays that segment again).

Record layout (little endian): ``b"STSP" kind:u8 batch_id:u64 spans:u32 length:u32 crc32:u32`` +
payload. ``kind`` is ``B`` (a batch: the JSONCompactEachRow insert payload of ``spans`` rows) or ``D`` (batch ``batch_id`` reached the store late,
after it had been spooled on a deadline: skip it on replay). A torn record at the end of a segment
(crash mid-append) was never acknowledged and is ignored. Not thread-safe: the writer calls it from
one thread.
"""
from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<4sBQIII")
_MAGIC = b"STSP"
BATCH = ord("B")
DONE = ord("D")


@dataclass
class Record:
    kind: int
    batch_id: int
    spans: int
    payload: bytes


class Spool:
    def __init__(self, directory: Path, segment_max_bytes: int = 8 * 1024 * 1024) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segment_max_bytes = segment_max_bytes
        self._active: BinaryIO | None = None
        self._active_path: Path | None = None
        self._active_size = 0
        existing = self.segments()
        self._next_seq = (int(existing[-1].stem) + 1) if existing else 1

    # -- writing -------------------------------------------------------------------------------
    def append(self, kind: int, batch_id: int, payload: bytes = b"", spans: int = 0) -> int:
        """Append one record and fsync it; returns the bytes written."""
        if self._active is None or self._active_size >= self.segment_max_bytes:
            self._rotate()
        assert self._active is not None
        data = _HEADER.pack(_MAGIC, kind, batch_id, spans, len(payload), zlib.crc32(payload)) + payload
        self._active.write(data)
        self._active.flush()
        os.fsync(self._active.fileno())
        self._active_size += len(data)
        return len(data)

    def _rotate(self) -> None:
        self.seal()
        path = self.dir / f"{self._next_seq:012d}.seg"
        self._next_seq += 1
        self._active = open(path, "ab")
        self._active_path = path
        self._active_size = 0
        _fsync_dir(self.dir)  # the new file's directory entry must survive a crash too

    def seal(self) -> None:
        """Close the active segment so it can be replayed; the next append starts a new one."""
        if self._active is not None:
            self._active.close()
            self._active = None
            if self._active_path is not None and self._active_size == 0:
                self._active_path.unlink(missing_ok=True)
            self._active_path = None
            self._active_size = 0

    # -- reading -------------------------------------------------------------------------------
    def segments(self) -> list[Path]:
        return sorted(self.dir.glob("*.seg"))

    def sealed_segments(self) -> list[Path]:
        return [p for p in self.segments() if p != self._active_path]

    def read(self, path: Path) -> Iterator[Record]:
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + _HEADER.size <= len(data):
            magic, kind, batch_id, spans, length, crc = _HEADER.unpack_from(data, pos)
            start = pos + _HEADER.size
            payload = data[start:start + length]
            if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
                if start + length < len(data):
                    log.error("spool segment %s is corrupt at byte %d; kept as %s.corrupt", path, pos, path.name)
                    raise SpoolCorrupt(path, pos)
                break  # torn tail: the append never completed, so it was never acknowledged
            yield Record(kind, batch_id, spans, payload)
            pos = start + length

    def done_batches(self) -> set[int]:
        """Batch ids marked as already stored, across all segments (read at start)."""
        done: set[int] = set()
        for path in self.segments():
            try:
                done.update(r.batch_id for r in self.read(path) if r.kind == DONE)
            except SpoolCorrupt:
                continue
        return done

    def max_batch_id(self) -> int:
        top = 0
        for path in self.segments():
            try:
                for r in self.read(path):
                    top = max(top, r.batch_id)
            except SpoolCorrupt:
                continue
        return top

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        _fsync_dir(self.dir)

    def quarantine(self, path: Path) -> None:
        path.rename(path.with_suffix(".seg.corrupt"))

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.segments() if p.exists())

    def is_empty(self) -> bool:
        return not any(p.stat().st_size > 0 for p in self.segments() if p.exists())

    def close(self) -> None:
        self.seal()


class SpoolCorrupt(RuntimeError):
    def __init__(self, path: Path, offset: int) -> None:
        super().__init__(f"spool segment {path} is corrupt at byte {offset}")
        self.path = path


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
