"""Never a loop: a naive autoresponder talks to the real service for a bounded time.

The peer is an aiosmtpd server that answers every message codered sends by APPENDing a
reply into the watched pymap mailbox. The reply carries none of the headers that mark
machine mail (no Auto-Submitted, Precedence, X-Autoreply, List-*), no threading headers,
a fresh Message-ID and a body that reads like a complaint, so only the thread tag, the
per-sender limit and the global circuit breaker can stop the exchange.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from codered.db.engine import Database
from codered.db.models import AuditEntry
from codered.embedded import EmbeddedImapServer, free_port
from codered.settings import Settings
from tests.e2e.helpers import inbound, incidents, outbox
from tests.support import mail
from tests.support.service import RunningService, make_settings, query, wait_until

pytestmark = pytest.mark.slow

SUPPORT = "support@acme.example"
COMPLAINT_BODY = "This is unacceptable, the service is down, we need help urgently!!"
# An autoresponder that forgets every convention, including an automatic-looking subject
# (the guards ignore "Out of the office ..." subjects, which would hide the backstops).
UNTAGGED_SUBJECT = "URGENT: system down, we need help"
MAX_REPLIES = 40  # the peer's own hard bound, whatever codered does
EXCHANGE_SECONDS = 8.0
QUIET_SECONDS = 2.0


class NaiveAutoresponder:
    """aiosmtpd handler: records what codered sends and answers every message."""

    def __init__(self, imap: EmbeddedImapServer, *, keep_subject: bool) -> None:
        self.imap = imap
        self.keep_subject = keep_subject
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.replies = 0
        self._lock = threading.Lock()

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [msg for rcpts, msg in self.received if address in rcpts]

    def reply(self, recipient: str, original: EmailMessage) -> bytes:
        msg = EmailMessage()
        msg["From"] = recipient
        msg["To"] = SUPPORT
        subject = f"Re: {original['Subject']}" if self.keep_subject else UNTAGGED_SUBJECT
        msg["Subject"] = subject
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = make_msgid(domain=recipient.rpartition("@")[2])
        msg.set_content(f"I am away. {COMPLAINT_BODY}" if self.keep_subject else COMPLAINT_BODY)
        return bytes(msg)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = BytesParser(policy=default).parsebytes(envelope.content)
        assert isinstance(parsed, EmailMessage)
        rcpts = [parseaddr(r)[1].lower() for r in envelope.rcpt_tos]
        with self._lock:
            self.received.append((rcpts, parsed))
        for rcpt in rcpts:
            with self._lock:
                if self.replies >= MAX_REPLIES:
                    break
                self.replies += 1
            await asyncio.to_thread(self.imap.append, self.reply(rcpt, parsed))
        return "250 OK"


@pytest.fixture
def peer_factory(pymap_server: EmbeddedImapServer) -> Iterator[Any]:
    controllers: list[Controller] = []

    def start(*, keep_subject: bool) -> tuple[NaiveAutoresponder, int]:
        bot = NaiveAutoresponder(pymap_server, keep_subject=keep_subject)
        port = free_port()
        controller = Controller(bot, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return bot, port

    yield start
    for controller in controllers:
        controller.stop()


def _settings(
    tmp_path: Path, pymap_server: EmbeddedImapServer, smtp_port: int, **limits: int
) -> Settings:
    return make_settings(
        tmp_path,
        pymap_server.port,
        smtp_port,
        limits={"acknowledgements_per_sender_24h": 3, **limits},
    )


def _audit_kinds(settings: Settings) -> list[str]:
    async def work(db: Database) -> list[str]:
        async with db.read() as session:
            return list((await session.scalars(select(AuditEntry.kind))).all())

    return query(settings, work)


def _settled(bot: NaiveAutoresponder, settings: Settings) -> bool:
    """Nothing pending inbound or outbound, and the peer saw no new mail for a while."""
    before = bot.count()
    if any(m.status == "pending" for m in inbound(settings)):
        return False
    if any(o.status not in ("sent", "failed") for o in outbox(settings)):
        return False
    time.sleep(QUIET_SECONDS)
    return bot.count() == before and not any(m.status == "pending" for m in inbound(settings))


def _acks_to(settings: Settings, address: str) -> list[Any]:
    return [
        o
        for o in outbox(settings)
        if o.kind == "acknowledgement" and address in [r.lower() for r in o.recipients]
    ]


def test_a_tagged_autoreply_joins_the_thread_and_gets_no_second_acknowledgement(
    pymap_server: EmbeddedImapServer, peer_factory: Any, tmp_path: Path
) -> None:
    bot, smtp_port = peer_factory(keep_subject=True)
    settings = _settings(tmp_path, pymap_server, smtp_port)
    started = time.monotonic()
    with RunningService(settings) as service:
        service.wait_for_baseline()
        pymap_server.append(mail.outage_complaint(sender="Loop Bot <bot@loop.example>")[1])
        wait_until(lambda: bot.count() >= 1, EXCHANGE_SECONDS, "the acknowledgement")
        wait_until(lambda: len(inbound(settings)) >= 2, EXCHANGE_SECONDS, "the bot's reply")
        wait_until(lambda: _settled(bot, settings), EXCHANGE_SECONDS, "the exchange to stop")
    assert time.monotonic() - started < 4 * EXCHANGE_SECONDS

    assert len(bot.to("bot@loop.example")) == 1
    assert bot.count() == 1
    assert len(_acks_to(settings, "bot@loop.example")) == 1
    [incident] = incidents(settings)
    assert incident.status == "acknowledged"
    assert f"[{incident.reference}]" in str(bot.to("bot@loop.example")[0]["Subject"])
    messages = inbound(settings)
    assert len(messages) == 2 == bot.replies + 1
    reply = messages[1]
    assert reply.sender == "bot@loop.example"
    assert reply.action == "attach"
    assert reply.deciding_rule == "existing_thread"
    assert reply.incident_id == incident.id


def test_an_untagged_autoreply_stops_at_the_per_sender_limit(
    pymap_server: EmbeddedImapServer, peer_factory: Any, tmp_path: Path
) -> None:
    bot, smtp_port = peer_factory(keep_subject=False)
    settings = _settings(tmp_path, pymap_server, smtp_port)
    limit = settings.limits.acknowledgements_per_sender_24h
    assert limit == 3
    with RunningService(settings) as service:
        service.wait_for_baseline()
        started = time.monotonic()
        pymap_server.append(mail.outage_complaint(sender="Loop Bot <bot@loop.example>")[1])
        wait_until(
            lambda: any(i.status == "held" for i in incidents(settings)),
            EXCHANGE_SECONDS,
            "an incident held by the per-sender limit",
        )
        wait_until(lambda: _settled(bot, settings), EXCHANGE_SECONDS, "the exchange to stop")
        elapsed = time.monotonic() - started
        # the peer's count is the same at t and t + 2 s: the exchange stopped by itself
        at_t = bot.count()
        time.sleep(QUIET_SECONDS)
        assert bot.count() == at_t
    assert elapsed < 2 * EXCHANGE_SECONDS + QUIET_SECONDS

    acks = _acks_to(settings, "bot@loop.example")
    assert 1 <= len(acks) <= limit
    assert len(bot.to("bot@loop.example")) == len(acks) == bot.count()
    assert bot.replies == len(acks) < MAX_REPLIES
    held = [i for i in incidents(settings) if i.status == "held"]
    assert held
    assert all("acknowledgements to this sender" in (i.held_reason or "") for i in held)
    # every acknowledged incident came before the first held one
    statuses = [i.status for i in incidents(settings)]
    assert statuses == ["acknowledged"] * len(acks) + ["held"] * len(held)
    decided = [m.deciding_rule for m in inbound(settings)]
    assert decided[-1] == "sender_rate_limit"


def test_many_autoresponders_trip_the_global_circuit_breaker(
    pymap_server: EmbeddedImapServer, peer_factory: Any, tmp_path: Path
) -> None:
    bot, smtp_port = peer_factory(keep_subject=False)
    settings = _settings(tmp_path, pymap_server, smtp_port, acknowledgements_per_minute=4)
    ceiling = settings.limits.acknowledgements_per_minute
    senders = [f"bot{n}@loop{n}.example" for n in range(6)]
    with RunningService(settings) as service:
        service.wait_for_baseline()
        for n, sender in enumerate(senders):
            pymap_server.append(mail.outage_complaint(sender=f"Loop Bot {n} <{sender}>")[1])
        wait_until(
            lambda: len(inbound(settings)) >= len(senders), EXCHANGE_SECONDS, "six complaints"
        )
        wait_until(lambda: _settled(bot, settings), EXCHANGE_SECONDS, "the exchange to stop")

    acks = [o for o in outbox(settings) if o.kind == "acknowledgement"]
    assert len(acks) <= ceiling
    assert bot.count() == len(acks)
    assert bot.replies == len(acks) < MAX_REPLIES
    held = [i for i in incidents(settings) if i.status == "held"]
    assert held
    assert any("circuit breaker" in (i.held_reason or "") for i in held)
    assert _audit_kinds(settings).count("alert.circuit_breaker") >= 1
    # every inbound message was decided, and nothing beyond the ceiling was acknowledged
    assert all(m.status != "pending" for m in inbound(settings))
    assert len(inbound(settings)) == len(senders) + len(acks)
