"""The floor: the least any IMAP-to-SMTP responder must do, to measure codered against.

IDLE on the folder; when the server says anything, leave IDLE, ``UID SEARCH`` for mail
above the last UID seen, fetch each new message whole (``BODY.PEEK[]``, as codered
does), read its From address and send one fixed reply over a kept-open SMTP
connection. No storage, no parsing beyond one header, no classification, no audit.

What codered adds on top of this (the difference the latency benchmark reports) is
therefore its own work: durable storage before and after deciding, parsing and
classifying, the audit trail, composing and the outbox; the server's notification
delay and the network are paid by both.
"""

from __future__ import annotations

import contextlib
import select
import smtplib
import threading
import time
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from typing import Any

from inbox.imap import input_pending, take_exists_reports
from tests.bench.servers import BenchError, ImapServer

__all__ = ["FloorRelay"]

_TICK = 0.2
"""How often the IDLE wait looks at the stop flag."""
_RENEW = 2.0
"""Leave a silent IDLE this often and search anyway: a notification the server never
sends then costs at most this long, and is counted (``unannounced``) instead of hanging
the benchmark. codered renews its IDLE only every nine minutes, so it has no such net."""


class FloorRelay:
    """A background thread that answers every new message in ``folder`` once."""

    def __init__(self, imap: ImapServer, smtp_port: int, folder: str = "INBOX") -> None:
        self.imap = imap
        self.smtp_port = smtp_port
        self.folder = folder
        self.sent = 0
        self.unannounced = 0
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="floor-relay", daemon=True)
        self._smtp: smtplib.SMTP | None = None

    def start(self, timeout: float = 15.0) -> FloorRelay:
        """Start, and return once the first IDLE is established (mail from now on counts)."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise BenchError(f"the floor relay did not reach IDLE within {timeout:g} s")
        if self.error is not None:
            raise BenchError(f"the floor relay failed to start: {self.error!r}")
        return self

    def check(self) -> None:
        """BenchError when the relay thread has failed (instead of waiting for a timeout)."""
        if self.error is not None or not self._thread.is_alive():
            raise BenchError(f"the floor relay failed: {self.error!r}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self.error is not None:
            raise BenchError(f"the floor relay failed: {self.error!r}")

    def _main(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by start()/stop(); the thread ends quietly
            self.error = exc
            self._ready.set()
        finally:
            if self._smtp is not None:
                with contextlib.suppress(Exception):
                    self._smtp.quit()

    def _run(self) -> None:
        client = self.imap.connect()
        try:
            info = client.select_folder(self.folder, readonly=True)
            last_uid = int(info.get(b"UIDNEXT", 1)) - 1
            self._smtp = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10)
            woken = True
            while not self._stop.is_set():
                before = last_uid
                last_uid = self._drain(client, last_uid)
                if not woken and last_uid > before:
                    self.unannounced += 1  # found by the renewal, never announced in IDLE
                client.idle()
                self._ready.set()
                woken = _already_told(client)
                renew = time.monotonic() + _RENEW
                while not woken and not self._stop.is_set() and time.monotonic() < renew:
                    woken = bool(select.select([client.socket()], [], [], _TICK)[0])
                client.idle_done()
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def _drain(self, client: Any, last_uid: int) -> int:
        """Answer everything above ``last_uid``; stop only when a SEARCH found nothing and
        a NOOP right after it brought no news.

        The NOOP is for pymap: mail appended while our SEARCH ran is neither in its answer
        nor announced by the IDLE that follows, only by the next command's untagged
        ``EXISTS`` (Dovecot announces it at IDLE start, so the NOOP only costs it a round
        trip while the mailbox is busy)."""
        for _ in range(50):
            found = sorted(u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)
            if found:
                for uid, data in sorted(client.fetch(found, ["BODY.PEEK[]"]).items()):
                    self._reply(data.get(b"BODY[]") or b"")
                    last_uid = max(last_uid, uid)
                continue
            _, responses = client.noop()
            told = any(isinstance(r, tuple) and b"EXISTS" in r for r in responses)
            if not (told or _already_told(client)):
                break
        return last_uid

    def _reply(self, raw: bytes) -> None:
        headers = BytesHeaderParser().parsebytes(raw)
        sender = parseaddr(str(headers.get("From", "")))[1]
        if not sender:
            return
        reply = EmailMessage()
        reply["From"] = "support@acme.example"
        reply["To"] = sender
        reply["Subject"] = "We received your message"
        reply["Auto-Submitted"] = "auto-replied"
        message_id = " ".join(str(headers.get("Message-ID", "")).split())  # unfolded
        if message_id:
            reply["In-Reply-To"] = message_id
        reply.set_content("Thank you for writing. We are on it and will reply soon.\n")
        assert self._smtp is not None
        self._smtp.send_message(reply, from_addr="support@acme.example", to_addrs=[sender])
        self.sent += 1


def _already_told(client: Any) -> bool:
    """Whether the server already announced new mail where ``select`` cannot see it:
    an untagged ``EXISTS`` filed during another command, or lines buffered with the IDLE
    continuation. The same imaplib internals the watcher reads, so one helper serves."""
    return take_exists_reports(client) or input_pending(client)
