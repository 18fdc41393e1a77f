"""IMAP network faults injected by a TCP proxy between the service and pymap: a connection
cut in the middle of a large FETCH, and a server that is unreachable for a while."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codered.db.models import InboundMessage
from codered.embedded import EmbeddedImapServer, SmtpSink
from codered.settings import Settings
from tests.e2e.helpers import inbound, processed
from tests.support import mail
from tests.support.faultproxy import FaultProxy
from tests.support.service import RunningService, make_settings, wait_until

pytestmark = pytest.mark.slow

CUSTOMER = "dana@northwind.example"


@pytest.fixture
def proxy(pymap_server: EmbeddedImapServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", pymap_server.port) as fault_proxy:
        yield fault_proxy


def _settings(
    tmp_path: Path, proxy: FaultProxy, pymap: EmbeddedImapServer, sink: SmtpSink
) -> Settings:
    return make_settings(
        tmp_path, proxy.port, sink.port, username=pymap.username, password=pymap.password
    )


def _crlf(raw: bytes) -> bytes:
    """IMAP messages use CRLF; giving pymap CRLF already makes byte-for-byte checks exact."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _rows_for(settings: Settings, message_id: str) -> list[InboundMessage]:
    wanted = message_id.strip("<>")
    return [r for r in inbound(settings) if (r.message_id or "").strip("<>") == wanted]


def test_connection_cut_during_fetch_stores_and_acknowledges_once(
    pymap_server: EmbeddedImapServer,
    smtp_sink: SmtpSink,
    proxy: FaultProxy,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    settings = _settings(tmp_path, proxy, pymap_server, smtp_sink)
    log_lines = "".join(
        f"2024-05-02T10:{i // 60 % 60:02d}:{i % 60:02d}Z api-gw-7 GET /v2/login -> 503 "
        f"upstream timeout (request {i:06d})\n"
        for i in range(4000)
    )
    message_id, raw = mail.message(
        "URGENT: production API down for all our users",
        "Our production API has been failing with 503 errors for 40 minutes. None of our\n"
        "customers can log in. This is unacceptable, we are losing money every minute.\n"
        "Our gateway log is below.\n\n" + log_lines,
    )
    raw = _crlf(raw)
    assert len(raw) > 250_000

    with RunningService(settings) as service:
        service.wait_for_baseline()
        before = proxy.connections
        # The watcher FETCHes on its IDLE connection. Drop it so the watcher reconnects
        # through an armed connection, and only then append: the FETCH of the big
        # message is on the armed connection whether it comes from the catch-up or IDLE.
        proxy.cut_after_server_bytes(50_000)
        proxy.drop_all()
        pymap_server.append(raw)
        wait_until(lambda: proxy.cuts == 1, 15, "the armed cut to fire during the FETCH")
        proxy.disarm()
        smtp_sink.wait_for(1, timeout=20)
        wait_until(lambda: processed(settings, 1), 10, "the complaint processed")
        time.sleep(1.5)  # a duplicate store or acknowledgement would show by now
        after = proxy.connections

    # armed connection, then at least one reconnect after the cut
    assert after >= before + 2, (before, after)
    rows = _rows_for(settings, message_id)
    assert len(rows) == 1, [r.id for r in rows]
    assert len(inbound(settings)) == 1
    stored = rows[0].raw
    assert stored is not None and len(stored) == len(raw) and stored == raw
    sent = smtp_sink.messages
    assert len(sent) == 1 and sent[0].recipients == (CUSTOMER,), sent
    records = caplog.records
    assert not [r for r in records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in records if r.levelno >= logging.ERROR
    ]
    assert not [r for r in records if r.exc_info], "a traceback was logged"
    assert any(
        r.levelno == logging.WARNING and "mailbox support" in r.getMessage() for r in records
    ), "the lost connection was not reported"


def test_unreachable_server_backs_off_then_acknowledges(
    pymap_server: EmbeddedImapServer,
    smtp_sink: SmtpSink,
    proxy: FaultProxy,
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, proxy, pymap_server, smtp_sink)
    message_id, raw = mail.outage_complaint()

    with RunningService(settings) as service:
        service.wait_for_baseline()
        proxy.refuse(True)
        proxy.drop_all()
        start = proxy.connections
        pymap_server.append(raw)  # directly: the service cannot see it yet
        time.sleep(3.0)
        attempts = proxy.connections - start
        proxy.refuse(False)
        assert smtp_sink.messages == [], "acknowledged while the server was unreachable"
        back = time.monotonic()
        smtp_sink.wait_for(1, timeout=20)
        recovered_in = time.monotonic() - back
        wait_until(lambda: processed(settings, 1), 10, "the complaint processed")
        time.sleep(1.0)

    assert 1 <= attempts <= 15, f"{attempts} connection attempts in 3 s while refused"
    assert proxy.refused >= attempts
    assert recovered_in < 20
    assert len(_rows_for(settings, message_id)) == 1
    sent = smtp_sink.messages
    assert len(sent) == 1 and sent[0].recipients == (CUSTOMER,), sent
