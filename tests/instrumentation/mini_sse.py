"""A tiny canned SSE server for hook unit tests that must not depend on the simulator's catalogue.

Each request's body model name picks the canned reply (``mini-healthy``, ``mini-cut``, ...).
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def chat_chunk(i: int, text: str | None, finish: str | None = None, usage: dict | None = None) -> str:
    choices = [] if usage is not None and text is None and finish is None else [
        {"index": 0, "delta": {"content": text} if text is not None else {}, "finish_reason": finish}
    ]
    body = {"id": "chatcmpl-mini", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini", "choices": choices}
    if usage is not None:
        body["usage"] = usage
    return "data: " + json.dumps(body) + "\n\n"


def chat_frames(n: int, finish: str | None = "stop", done: bool = True) -> list[str]:
    frames = [chat_chunk(i, f"tok{i} ") for i in range(n)]
    frames.append(chat_chunk(n, None, finish))
    frames.append(chat_chunk(n + 1, None, None, usage={"prompt_tokens": 5, "completion_tokens": n, "total_tokens": n + 5}))
    if done:
        frames.append("data: [DONE]\n\n")
    return frames


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        model = body.get("model", "")
        stall = float(body.get("metadata", {}).get("stall", 0)) if isinstance(body.get("metadata"), dict) else 0.0
        if model == "mini-429":
            payload = json.dumps({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}).encode()
            self.send_response(429)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.send_header("retry-after-ms", "10")
            self.end_headers()
            self.wfile.write(payload)
            return
        if not body.get("stream"):
            payload = json.dumps({
                "id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        n = int(body.get("max_tokens") or 5)
        frames = chat_frames(n, done=model != "mini-nodone")
        cut = model == "mini-cut"
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for i, f in enumerate(frames):
            if cut and i == 3:
                self.wfile.flush()
                self.close_connection = True
                return
            if stall and i == 2:
                time.sleep(stall)
            data = f.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:  # client hang-ups are expected
        pass


@contextmanager
def mini_server() -> Iterator[str]:
    srv = _QuietServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    finally:
        srv.shutdown()
        srv.server_close()
