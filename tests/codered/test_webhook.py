"""Webhooks against a real HTTP server on 127.0.0.1, scripted per test.

The server answers each POST with the next status of its script (200 once
the script is used up) and records what it received, so the assertions look
at the bytes that actually crossed the socket.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from codered.webhook import WebhookResult, escalation_payload, post_webhook

FAST = 0.01
"""Backoff for tests: the retry schedule, not its duration, is under test."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedServer:
    url: str
    script: list[int] = field(default_factory=list)
    delay_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    state = ScriptedServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.received.append(Received(self.path, dict(self.headers.items()), body))
            if state.delay_seconds:
                time.sleep(state.delay_seconds)
            status = state.script.pop(0) if state.script else 200
            reply = b"ok" if status < 400 else f"scripted failure {status}".encode()
            with contextlib.suppress(ConnectionError):  # a client that timed out has gone
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks/secret-token"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def payload() -> dict[str, Any]:
    return escalation_payload(
        reference="CR-1042",
        customer="Dana Ortiz <dana@acme.example>",
        subject="Payments failing since 9:00 — €0 charged",
        severity="critical",
        category="service_outage",
        owner="sam@support.example.com",
        reasons=["severity critical", 'mentions "lawyer"'],
        url_to_incident="https://codered.example.com/incidents/CR-1042",
    )


async def test_server_receives_exactly_the_documented_json(server: ScriptedServer) -> None:
    result = await post_webhook(server.url, payload())
    assert result == WebhookResult(ok=True, status_code=200, error=None, attempts=1)
    [request] = server.received
    assert request.path == "/hooks/secret-token"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "codered"
    received = json.loads(request.body.decode("utf-8"))
    assert received == {
        "event": "incident.escalated",
        "reference": "CR-1042",
        "customer": "Dana Ortiz <dana@acme.example>",
        "subject": "Payments failing since 9:00 — €0 charged",
        "severity": "critical",
        "category": "service_outage",
        "owner": "sam@support.example.com",
        "reasons": ["severity critical", 'mentions "lawyer"'],
        "url": "https://codered.example.com/incidents/CR-1042",
        "text": (
            "Escalated CR-1042 (critical, service_outage): Payments failing since 9:00 — €0 "
            "charged | customer Dana Ortiz &lt;dana@acme.example&gt; | owner "
            'sam@support.example.com | severity critical; mentions "lawyer" | '
            "<https://codered.example.com/incidents/CR-1042|open>"
        ),
    }


async def test_500_then_200_is_retried_and_succeeds(server: ScriptedServer) -> None:
    server.script = [500]
    result = await post_webhook(server.url, payload(), backoff_seconds=FAST)
    assert result == WebhookResult(ok=True, status_code=200, error=None, attempts=2)
    assert len(server.received) == 2
    assert server.received[0].body == server.received[1].body


async def test_429_is_retried(server: ScriptedServer) -> None:
    server.script = [429, 503]
    result = await post_webhook(server.url, {"text": "hi"}, backoff_seconds=FAST)
    assert (result.ok, result.attempts) == (True, 3)


async def test_400_is_not_retried(server: ScriptedServer) -> None:
    server.script = [400]
    result = await post_webhook(server.url, payload(), backoff_seconds=FAST)
    assert result == WebhookResult(
        ok=False, status_code=400, error="HTTP 400: scripted failure 400", attempts=1
    )
    assert len(server.received) == 1


async def test_persistent_5xx_gives_up_after_the_attempts(server: ScriptedServer) -> None:
    server.script = [502, 502, 502, 502]
    result = await post_webhook(server.url, payload(), attempts=3, backoff_seconds=FAST)
    assert result == WebhookResult(
        ok=False, status_code=502, error="HTTP 502: scripted failure 502", attempts=3
    )
    assert len(server.received) == 3


async def test_timeout_is_retried_then_reported(server: ScriptedServer) -> None:
    server.delay_seconds = 0.5
    result = await post_webhook(
        server.url, payload(), timeout=0.1, attempts=2, backoff_seconds=FAST
    )
    assert (result.ok, result.status_code, result.attempts) == (False, None, 2)
    assert result.error is not None and result.error.startswith("ReadTimeout")


async def test_unreachable_port_fails_cleanly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on ``port`` any more: every attempt is refused.
    result = await post_webhook(
        f"http://127.0.0.1:{port}/hook", payload(), timeout=2.0, backoff_seconds=FAST
    )
    assert (result.ok, result.status_code, result.attempts) == (False, None, 3)
    assert result.error is not None and result.error.startswith("ConnectError")
    assert str(port) not in result.error  # the URL, and its secret, stay out of the result


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "file:///etc/passwd", "example.com/hook", "http:///x", ""]
)
async def test_non_http_url_raises(url: str) -> None:
    with pytest.raises(ValueError):
        await post_webhook(url, payload())


def test_chat_text_cannot_ping_a_channel() -> None:
    body = escalation_payload(
        reference="CR-7",
        customer="@channel <!here> Eve",
        subject="Hello <!channel> @here & @everyone\r\nsecond line",
        severity="high",
        category=None,
        owner=None,
        reasons=[],
        url_to_incident=None,
    )
    text = body["text"]
    assert "<!" not in text and "\n" not in text
    assert "@channel" not in text and "@here" not in text and "@everyone" not in text
    assert text.startswith("Escalated CR-7 (high): Hello &lt;!channel&gt; @\u200bhere &amp; ")
    assert "unassigned" in text
    assert body["subject"] == "Hello <!channel> @here & @everyone\r\nsecond line"
    assert body["category"] is None and body["url"] is None and body["reasons"] == []
