"""A local OpenAI-compatible chat-completions server: the only fake in the test suite,
because no real model can be reached from here."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer: a chat message ``content``, or an HTTP error ``status``."""

    content: str = ""
    status: int = 200
    delay: float = 0.0


@dataclass
class LlmStub:
    port: int = 0
    replies: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=lambda: Reply(status=500))
    requests: list[dict[str, Any]] = field(default_factory=list)
    route: Callable[[dict[str, Any]], Reply | None] | None = None
    """Chooses a reply from the request body (None: fall through to the script)."""

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def next_reply(self, body: dict[str, Any]) -> Reply:
        if self.route is not None and (routed := self.route(body)) is not None:
            return routed
        return self.replies.pop(0) if self.replies else self.default

    def bodies(self, marker: str) -> list[dict[str, Any]]:
        """Request bodies whose system prompt contains ``marker``."""
        return [r["body"] for r in self.requests if marker in r["body"]["messages"][0]["content"]]


def _completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "stub-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
    }


@contextmanager
def llm_stub() -> Iterator[LlmStub]:
    stub = LlmStub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            stub.requests.append({"path": self.path, "body": body})
            reply = stub.next_reply(body)
            if reply.delay:
                time.sleep(reply.delay)
            if reply.status != 200:
                payload = {"error": {"message": "stub failure", "type": "server_error"}}
                data = json.dumps(payload).encode()
            else:
                data = json.dumps(_completion(reply.content)).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    stub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
