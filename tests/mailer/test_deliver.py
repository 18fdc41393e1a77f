"""Delivery against real SMTP servers on 127.0.0.1: an aiosmtpd sink and a silent socket.

The sink's handler is scripted per test (a queue of replies for RCPT and DATA),
so each failure mode is produced by a real server speaking real SMTP, and the
assertions look at what the server actually received.
"""

from __future__ import annotations

import contextlib
import email
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from inbox.message import EmailAddress
from mailer import (
    AcknowledgementFacts,
    DeliveryError,
    DeliveryResult,
    SmtpServer,
    check_smtp,
    compose_acknowledgement,
    deliver,
)
from mailer.smtp_pool import SmtpPool
from policies.model import Category, Severity

HANG_UP = "<hang up>"
"""Scripted DATA reply: read the whole message, then drop the connection without answering."""


@dataclass
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


@dataclass
class ScriptedHandler:
    """aiosmtpd handler whose replies are queued by the test; default is to accept."""

    rcpt_replies: list[str] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)
    noop_replies: list[str] = field(default_factory=list)
    ehlo_commands: int = 0
    mail_commands: int = 0
    rcpt_commands: list[str] = field(default_factory=list)
    data_payloads: list[bytes] = field(default_factory=list)
    delivered: list[Received] = field(default_factory=list)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        self.mail_commands += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.ehlo_commands += 1
        session.host_name = hostname
        return responses

    async def handle_NOOP(self, server: Any, session: Any, envelope: Any, arg: str) -> str:
        reply = self.noop_replies.pop(0) if self.noop_replies else "250 OK"
        if reply.startswith("421"):
            server.transport.close()
        return reply

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        self.rcpt_commands.append(address)
        reply = self.rcpt_replies.pop(0) if self.rcpt_replies else "250 OK"
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = bytes(envelope.original_content)
        self.data_payloads.append(content)
        reply = self.data_replies.pop(0) if self.data_replies else "250 2.0.0 OK queued as T1"
        if reply == HANG_UP:
            server.transport.abort()  # nothing written after this reaches the client
            return "250 never seen"
        if reply.startswith("2"):
            self.delivered.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), content))
        return reply


def free_port() -> int:
    """A port that was free a moment ago; Controller does not accept port=0 everywhere."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Sink:
    handler: ScriptedHandler
    server: SmtpServer


@contextlib.contextmanager
def running_sink(**smtp_kwargs: Any) -> Iterator[Sink]:
    handler = ScriptedHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        server_hostname="sink.test",
        ready_timeout=5.0,
        **smtp_kwargs,
    )
    controller.start()
    try:
        yield Sink(handler, SmtpServer("127.0.0.1", port, "none", timeout_seconds=2.0))
    finally:
        controller.stop()


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as running:
        yield running


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A server that accepts connections and never says a word."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in accepted:
            conn.close()
        listener.close()


@pytest.fixture
def closed_port() -> int:
    return free_port()


def acknowledgement_bytes() -> tuple[str, bytes]:
    facts = AcknowledgementFacts(
        reference="CR-7",
        customer=EmailAddress("anna@customer.test", "Anna Berg"),
        original_subject="Checkout is down",
        original_message_id="<q1@customer.test>",
        original_references=(),
        category=Category.SERVICE_OUTAGE,
        severity=Severity.CRITICAL,
        reply_by=datetime(2025, 3, 4, 15, 0, tzinfo=UTC),
        display_tz=UTC,
        language="en",
        company_name="Acme",
        from_address=EmailAddress("support@acme.test", "Acme Support"),
    )
    composed = compose_acknowledgement(facts, now=datetime(2025, 3, 4, 13, 0, tzinfo=UTC))
    return composed.message_id, composed.raw


def message_id_of(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=policy.default)["Message-ID"])


async def send(
    server: SmtpServer,
    raw: bytes,
    recipients: tuple[str, ...] = ("anna@customer.test",),
    sender: str = "support@acme.test",
) -> DeliveryResult:
    """deliver() with the production retry shape but backoffs small enough for a test."""
    return await deliver(
        server, sender, recipients, raw, max_attempts=3, deadline_seconds=10.0,
        initial_backoff_seconds=0.05,
    )  # fmt: skip


async def test_success_delivers_exact_bytes_with_explicit_envelope(sink: Sink) -> None:
    message_id, raw = acknowledgement_bytes()

    result = await send(sink.server, raw, sender="bounces@acme.test")

    assert result.reply == "250 2.0.0 OK queued as T1"
    assert result.attempts == 1
    assert sink.handler.delivered == [Received("bounces@acme.test", ("anna@customer.test",), raw)]
    assert message_id_of(sink.handler.delivered[0].content) == message_id


async def test_a_pool_sends_consecutive_messages_over_one_connection(sink: Sink) -> None:
    _, raw = acknowledgement_bytes()
    pool = SmtpPool()
    for n in range(3):
        await deliver(sink.server, "s@acme.test", (f"c{n}@customer.test",), raw, pool=pool)
    assert pool.opened == 1
    assert sink.handler.ehlo_commands == 1  # one greeting for three transactions
    assert [d.rcpt_tos for d in sink.handler.delivered] == [
        ("c0@customer.test",),
        ("c1@customer.test",),
        ("c2@customer.test",),
    ]
    # A kept connection the server closed is noticed by NOOP, before the message is sent.
    sink.handler.noop_replies = ["421 4.4.2 idle too long, closing"]
    result = await deliver(sink.server, "s@acme.test", ("c3@customer.test",), raw, pool=pool)
    assert result.attempts == 1 and pool.opened == 2
    assert sink.handler.mail_commands == 4  # the message went once, on the new connection
    # After a failure the connection is not reused.
    sink.handler.data_replies = [HANG_UP]
    await deliver(
        sink.server, "s@acme.test", ("c4@customer.test",), raw, pool=pool,
        initial_backoff_seconds=0.01,
    )  # fmt: skip
    assert pool.opened == 3
    assert len(sink.handler.delivered) == 5
    pool.close_all()


async def test_envelope_is_never_taken_from_headers(sink: Sink) -> None:
    raw = b"From: a@acme.test\r\nTo: x@customer.test\r\nBcc: evil@evil.test\r\n\r\nhi\r\n"

    await send(sink.server, raw, ("only@customer.test",))

    assert sink.handler.rcpt_commands == ["only@customer.test"]


async def test_4xx_on_rcpt_is_retried_and_delivered_once(sink: Sink) -> None:
    _, raw = acknowledgement_bytes()
    sink.handler.rcpt_replies = ["451 4.3.0 try later"]

    result = await send(sink.server, raw)

    assert result.attempts == 2
    assert sink.handler.mail_commands == 2
    assert len(sink.handler.delivered) == 1
    assert sink.handler.delivered[0].content == raw


async def test_4xx_on_data_is_retried(sink: Sink) -> None:
    _, raw = acknowledgement_bytes()
    sink.handler.data_replies = ["452 4.3.1 insufficient storage", "250 OK"]

    result = await send(sink.server, raw)

    assert result.reply == "250 OK"
    assert sink.handler.data_payloads == [raw, raw]
    assert len(sink.handler.delivered) == 1


async def test_5xx_is_permanent_and_not_retried(sink: Sink) -> None:
    _, raw = acknowledgement_bytes()
    sink.handler.rcpt_replies = ["550 5.1.1 no such user"]

    with pytest.raises(DeliveryError) as caught:
        await send(sink.server, raw, ("nobody@customer.test",))

    assert caught.value.permanent is True
    assert caught.value.reply == "550 5.1.1 no such user"
    assert caught.value.attempts == 1
    assert sink.handler.mail_commands == 1
    assert sink.handler.rcpt_commands == ["nobody@customer.test"]
    assert sink.handler.delivered == []


async def test_5xx_on_data_is_permanent(sink: Sink) -> None:
    _, raw = acknowledgement_bytes()
    sink.handler.data_replies = ["554 5.7.1 message rejected as spam"]

    with pytest.raises(DeliveryError) as caught:
        await send(sink.server, raw)

    assert caught.value.permanent is True
    assert caught.value.reply == "554 5.7.1 message rejected as spam"
    assert len(sink.handler.data_payloads) == 1


async def test_transient_failures_give_up_after_max_attempts(sink: Sink) -> None:
    _, raw = acknowledgement_bytes()
    sink.handler.rcpt_replies = ["421 4.7.0 slow down"] * 5

    with pytest.raises(DeliveryError) as caught:
        await send(sink.server, raw)

    assert caught.value.permanent is False
    assert caught.value.reply == "421 4.7.0 slow down"
    assert caught.value.attempts == 3
    assert sink.handler.mail_commands == 3
    assert sink.handler.delivered == []


async def test_partial_refusal_is_reported_not_retried(sink: Sink) -> None:
    _, raw = acknowledgement_bytes()
    sink.handler.rcpt_replies = ["250 OK", "550 5.1.1 unknown"]

    result = await send(sink.server, raw, ("anna@customer.test", "gone@customer.test"))

    assert result.refused == (("gone@customer.test", "550 5.1.1 unknown"),)
    assert sink.handler.mail_commands == 1
    assert sink.handler.delivered[0].rcpt_tos == ("anna@customer.test",)


async def test_hang_up_after_data_resends_identical_bytes(sink: Sink) -> None:
    message_id, raw = acknowledgement_bytes()
    sink.handler.data_replies = [HANG_UP]

    result = await send(sink.server, raw)

    assert result.attempts == 2
    assert sink.handler.data_payloads == [raw, raw]
    assert {message_id_of(payload) for payload in sink.handler.data_payloads} == {message_id}
    assert len(sink.handler.delivered) == 1


async def test_silent_server_times_out_within_limit(silent_port: int) -> None:
    server = SmtpServer("127.0.0.1", silent_port, "none", timeout_seconds=0.4)
    started = time.monotonic()

    with pytest.raises(DeliveryError) as caught:
        await deliver(
            server,
            "support@acme.test",
            ["anna@customer.test"],
            b"Subject: x\r\n\r\nx\r\n",
            max_attempts=2,
            deadline_seconds=10.0,
            initial_backoff_seconds=0.05,
        )

    elapsed = time.monotonic() - started
    assert caught.value.permanent is False
    assert caught.value.attempts == 2
    assert "timed out" in caught.value.reply.lower()
    assert 0.8 <= elapsed < 2.0  # two 0.4 s timeouts plus a short backoff


async def test_deadline_cuts_an_attempt_short(silent_port: int) -> None:
    server = SmtpServer("127.0.0.1", silent_port, "none", timeout_seconds=30.0)
    started = time.monotonic()

    with pytest.raises(DeliveryError) as caught:
        await deliver(
            server,
            "support@acme.test",
            ["anna@customer.test"],
            b"Subject: x\r\n\r\nx\r\n",
            max_attempts=5,
            deadline_seconds=0.6,
            initial_backoff_seconds=0.05,
        )

    assert caught.value.permanent is False
    assert time.monotonic() - started < 1.5


async def test_closed_port_is_transient(closed_port: int) -> None:
    server = SmtpServer("127.0.0.1", closed_port, "none", timeout_seconds=1.0)

    with pytest.raises(DeliveryError) as caught:
        await deliver(
            server, "support@acme.test", ["anna@customer.test"], b"x\r\n", max_attempts=2,
            initial_backoff_seconds=0.01,
        )  # fmt: skip

    assert caught.value.permanent is False
    assert caught.value.attempts == 2
    assert "SMTPConnectError" in caught.value.reply


async def test_check_smtp_describes_a_working_server(sink: Sink) -> None:
    description = await check_smtp(sink.server)

    assert description.startswith(f"127.0.0.1:{sink.server.port} none: 220 sink.test")
    assert "ESMTP" in description
    assert "\n" not in description
    assert sink.handler.mail_commands == 0


async def test_check_smtp_fails_clearly_on_a_closed_port(closed_port: int) -> None:
    with pytest.raises(DeliveryError) as caught:
        await check_smtp(SmtpServer("127.0.0.1", closed_port, "none", timeout_seconds=1.0))

    assert caught.value.permanent is False
    assert f"port {closed_port}" in caught.value.reply


def _accept_bot(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"bot", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.mark.parametrize(("password", "accepted"), [("s3cret", True), ("wrong", False)])
async def test_check_smtp_authenticates(password: str, accepted: bool) -> None:
    with running_sink(
        authenticator=_accept_bot, auth_require_tls=False, auth_exclude_mechanism=["LOGIN"]
    ) as auth_sink:
        server = SmtpServer(
            "127.0.0.1", auth_sink.server.port, "none", "bot", password, timeout_seconds=2.0
        )
        if accepted:
            assert (await check_smtp(server)).endswith("authenticated as bot")
        else:
            with pytest.raises(DeliveryError) as caught:
                await check_smtp(server)
            assert caught.value.permanent is True
            assert caught.value.reply.startswith("535")


async def test_starttls_required_but_not_offered_is_permanent(sink: Sink) -> None:
    server = SmtpServer("127.0.0.1", sink.server.port, "starttls", timeout_seconds=2.0)

    with pytest.raises(DeliveryError) as caught:
        await send(server, b"x\r\n")

    assert caught.value.permanent is True
    assert "STARTTLS" in caught.value.reply
    assert sink.handler.mail_commands == 0


def test_password_stays_out_of_repr() -> None:
    server = SmtpServer("smtp.acme.test", 587, "starttls", "bot", "s3cret")

    assert "s3cret" not in repr(server)
