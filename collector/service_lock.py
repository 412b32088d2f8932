"""The running service's claim on its state directory: an flock'ed pid file with its URL.

chDB allows one process per data directory, and two collectors must never share a spool. The
serving process holds an exclusive ``flock`` on ``<state dir>/streamtriage.pid`` for its lifetime
(the kernel drops it when the process dies, even on ``kill -9``) and writes its pid and base URL
there, so CLI commands can find the service instead of opening the store themselves.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCK_NAME = "streamtriage.pid"


class DirectoryLocked(RuntimeError):
    """Another live process owns the state directory."""

    def __init__(self, directory: Path, info: dict[str, Any]) -> None:
        self.directory = directory
        self.info = info
        who = f"pid {info.get('pid', '?')}" + (f", serving {info['url']}" if info.get("url") else "")
        use = f"`streamtriage incidents --url {info['url']}`" if info.get("url") else "`streamtriage incidents --url URL`"
        super().__init__(f"{directory} is in use by another streamtriage process ({who}); "
                         f"read through that service ({use}), or stop it before opening the directory")


@dataclass
class ServiceLock:
    path: Path
    fd: int

    def publish(self, **info: Any) -> None:
        """Record pid/url for other processes; rewritten in place while the lock is held."""
        data = json.dumps({"pid": os.getpid(), "started": time.time(), **info}).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        os.fsync(self.fd)

    def release(self) -> None:
        try:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)


def acquire(directory: Path) -> ServiceLock:
    """Take the directory or raise ``DirectoryLocked`` naming the process that has it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DirectoryLocked(directory, read_info(directory) or {}) from None
    lock = ServiceLock(path, fd)
    lock.publish()
    return lock


def read_info(directory: Path) -> dict[str, Any] | None:
    try:
        text = (directory / LOCK_NAME).read_text()
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None


def holder(directory: Path) -> dict[str, Any] | None:
    """Info of the live process holding the directory, or None when nobody does."""
    path = directory / LOCK_NAME
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_info(directory) or {"pid": None}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
