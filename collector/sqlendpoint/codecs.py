"""Request and response bodies: the Content-Encodings ClickHouse clients send and accept.

Decompression is bounded as it runs (1 KiB slices), so a small compressed body cannot expand
into memory exhaustion before the size check sees it.
"""
from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from typing import Any

from .errors import ClickHouseError

__all__ = ["decode_body", "encode_body", "zstd_module"]


def decode_body(body: bytes, encoding: str | None, max_bytes: int = 512 << 20) -> bytes:
    """Undo a request Content-Encoding (what clickhouse-connect and the Node client send).

    The output is bounded by ``max_bytes``: a small compressed body must not expand into memory
    exhaustion (the read-only endpoint allows 1 MiB of SQL, decompressed).
    """
    enc = (encoding or "").strip().lower()
    if not enc or enc == "identity":
        return body
    makers: dict[str, Callable[[], Any]] = {
        "gzip": lambda: zlib.decompressobj(wbits=31),
        "deflate": zlib.decompressobj,
    }
    try:
        if enc == "lz4":
            import lz4.frame

            makers["lz4"] = lz4.frame.LZ4FrameDecompressor
        elif enc == "zstd":
            makers["zstd"] = zstd_module().ZstdDecompressor
        elif enc == "br":
            import brotli  # type: ignore[import-not-found]

            out = brotli.decompress(body)
            if len(out) > max_bytes:
                raise ClickHouseError(36, f"Decompressed request body larger than {max_bytes} bytes", status=413)
            return out
        if enc not in makers:
            raise ClickHouseError(36, f"Unknown Content-Encoding of the request body: {enc}")
        return _all_frames(body, makers[enc], max_bytes)
    except ClickHouseError:
        raise
    except Exception as exc:
        raise ClickHouseError(36, f"Cannot decode request body with Content-Encoding {enc}: {exc}") from exc


def _all_frames(body: bytes, decompressor: Callable[[], Any], max_bytes: int) -> bytes:
    """Decompress concatenated frames (a streaming client compresses each block on its own),
    fed in 1 KiB slices so the size bound is checked before a bomb can expand far past it."""
    out: list[bytes] = []
    size = 0
    rest = body
    while rest:
        d = decompressor()
        view = memoryview(rest)
        pos = 0
        while pos < len(view) and not getattr(d, "eof", False):
            chunk = d.decompress(bytes(view[pos:pos + 1024]))
            pos += 1024
            size += len(chunk)
            if size > max_bytes:
                raise ClickHouseError(36, f"Decompressed request body larger than {max_bytes} bytes", status=413)
            out.append(chunk)
        if not getattr(d, "eof", True):
            raise ValueError("truncated compressed body")
        unused = d.unused_data
        # the slice that finished this frame may hold the start of the next one
        rest = unused + bytes(view[pos:]) if pos < len(view) else unused
    return b"".join(out)


def zstd_module() -> Any:
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+
    except ImportError:
        from backports import zstd  # clickhouse-connect's dependency
    return zstd


def encode_body(body: bytes, accept_encoding: str) -> tuple[bytes, str | None]:
    """Compress a response the way the client asked (``enable_http_compression=1``), first match wins."""
    for raw in accept_encoding.split(","):
        enc = raw.split(";")[0].strip().lower()
        if enc == "gzip":
            return gzip.compress(body, compresslevel=3), enc
        if enc == "deflate":
            return zlib.compress(body, 3), enc
        if enc == "lz4":
            import lz4.frame

            return lz4.frame.compress(body), enc
        if enc == "zstd":
            return zstd_module().compress(body), enc
    return body, None
