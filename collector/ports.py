"""Claim the collector's listening ports before anything touches the data directory.

``serve`` binds its ports first, so a taken port is one line naming the port and the flag that set
it, and the data directory is neither created nor migrated for a service that cannot listen.
"""
from __future__ import annotations

import errno
import socket


class PortInUse(OSError):
    """A port the service was told to listen on cannot be bound."""


def bind_port(host: str, port: int, flag: str) -> socket.socket:
    """A bound (not yet listening) TCP socket on host:port; ``PortInUse`` names ``flag`` if it is taken."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise PortInUse(f"cannot listen on {host}:{port} ({flag}): {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
        raise PortInUse(f"port {port} on {host} {why}; choose another with {flag}") from None
    return sock


def check_port_free(host: str, port: int, flag: str) -> None:
    """Fail now, naming the flag, if host:port is taken (the listener binding it later starts inside the service)."""
    bind_port(host, port, flag).close()
