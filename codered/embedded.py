"""Real mail servers inside this process, for ``codered demo`` and the test suite.

Both servers bind to 127.0.0.1 on a free port and run on their own thread with
their own event loop, so the blocking IMAP watcher and the asyncio application
can talk to them exactly as they would to a production server: over TCP, with
the real protocol, and with no mocks in between.

* :class:`EmbeddedImapServer` runs pymap's in-memory ("dict") backend. It offers
  IDLE (RFC 2177) and wakes idling clients as soon as another connection
  APPENDs (RFC 3501 section 6.3.11), which makes it a fast stand-in for Dovecot.
* :class:`SmtpSink` is an aiosmtpd server that accepts every message and keeps
  it, so tests and the demo can show what codered would have sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import socket
import threading
import time
from argparse import ArgumentParser
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from imapclient import IMAPClient

from inbox.ports import ImapAccount

__all__ = ["EmbeddedImapServer", "ReceivedMail", "SmtpSink", "free_port"]

_LOCALHOST = "127.0.0.1"


def free_port(host: str = _LOCALHOST) -> int:
    """A TCP port that was free a moment ago.

    The kernel picks it (bind to port 0), so it never collides with a fixed
    list; another process could still take it before we bind, which is why
    the servers below retry with a new port when binding fails.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing accepted connections on {host}:{port}") from None
            time.sleep(0.05)


class EmbeddedImapServer:
    """pymap's in-memory IMAP server on 127.0.0.1, plain text (no TLS), one user.

    Mail lives only in memory and disappears on :meth:`stop`. Use it as a
    context manager, or call :meth:`start` and :meth:`stop` yourself::

        with EmbeddedImapServer() as server:
            server.append(b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
            account = server.account(poll_interval_seconds=1)
    """

    def __init__(
        self,
        *,
        username: str = "demouser",
        password: str = "demopass",  # noqa: S107 - a throwaway local demo account
        demo_data: bool = False,
    ) -> None:
        self.host = _LOCALHOST
        self.username = username
        self.password = password
        self.demo_data = demo_data
        self._port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the embedded IMAP server is not running")
        return self._port

    def start(self, timeout: float = 10.0) -> Self:
        """Start serving; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the embedded IMAP server is already running")
        for _attempt in range(5):
            self._port = free_port()
            self._ready.clear()
            self._error = None
            self._thread = threading.Thread(
                target=self._serve, name=f"pymap-{self._port}", daemon=True
            )
            self._thread.start()
            if not self._ready.wait(timeout):
                raise TimeoutError("pymap did not start in time")
            if self._error is None:
                _wait_for_port(self.host, self._port, timeout)
                return self
            self._thread.join(timeout)
            self._thread = None
            if not (isinstance(self._error, OSError) and self._error.errno == errno.EADDRINUSE):
                raise RuntimeError(f"pymap failed to start: {self._error}") from self._error
        raise RuntimeError("pymap could not find a free port after 5 attempts")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and drop every connection and message."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        self._thread = None
        self._port = 0

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def account(self, name: str = "support", **overrides: Any) -> ImapAccount:
        """Settings a :class:`~inbox.watcher.MailboxWatcher` can use to watch this server."""
        base = ImapAccount(
            name=name,
            host=self.host,
            port=self.port,
            security="none",
            username=self.username,
            password=self.password,
        )
        return dataclasses.replace(base, **overrides)

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver ``raw`` into ``folder`` the way an MDA would: with IMAP APPEND."""
        with IMAPClient(self.host, port=self.port, ssl=False, timeout=10) as client:
            client.login(self.username, self.password)
            client.append(folder, raw)

    # --- the server thread ------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); the thread must end quietly
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        # Imported here: pymap pulls in a lot, and only the demo and tests need it.
        from pymap.backend.dict import DictBackend
        from pymap.imap import IMAPService

        parser = ArgumentParser(prog="codered-embedded-imap")
        IMAPService.add_arguments(parser)
        backends = parser.add_subparsers(dest="backend")
        DictBackend.add_subparser("dict", backends)
        argv = ["--host", self.host, "--port", str(self._port), "--no-tls", "dict"]
        argv += ["--demo-user", self.username, "--demo-password", self.password]
        if self.demo_data:
            argv.append("--demo-data")
        args = parser.parse_args(argv)
        args.passlib_cfg = None
        args.debug = False
        backend, config = await DictBackend.init(args)
        config.apply_context()
        service = IMAPService(backend, config)
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with AsyncExitStack() as stack:
            await backend.start(stack)
            await service.start(stack)
            self._ready.set()
            await self._stopping.wait()


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the SMTP sink received it: envelope plus exact bytes."""

    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes
    received_at: datetime


class _Recorder:
    """aiosmtpd handler: accepts everything and hands each message to the sink."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        self._sink._record(
            ReceivedMail(
                envelope_from=str(envelope.mail_from or ""),
                recipients=tuple(str(r) for r in envelope.rcpt_tos),
                raw=bytes(raw),
                received_at=datetime.now(UTC),
            )
        )
        return "250 2.0.0 Message accepted for delivery"


class SmtpSink:
    """An SMTP server on 127.0.0.1 that accepts and records every message.

    ``raw`` is the DATA payload exactly as sent (after dot-unstuffing, RFC 5321
    section 4.5.2), so tests can assert on headers byte for byte.
    """

    def __init__(self) -> None:
        self.host = _LOCALHOST
        self.port = 0
        self._controller: Controller | None = None
        self._messages: list[ReceivedMail] = []
        self._arrived = threading.Condition()

    def start(self) -> Self:
        if self._controller is not None:
            raise RuntimeError("the SMTP sink is already running")
        last_error: OSError | None = None
        for _attempt in range(5):
            port = free_port()
            controller = Controller(_Recorder(self), hostname=self.host, port=port)
            try:
                controller.start()
            except OSError as exc:  # the port was taken in the meantime
                last_error = exc
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"the SMTP sink could not bind a port: {last_error}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _record(self, mail: ReceivedMail) -> None:
        with self._arrived:
            self._messages.append(mail)
            self._arrived.notify_all()

    @property
    def messages(self) -> list[ReceivedMail]:
        """A snapshot of everything received so far, oldest first."""
        with self._arrived:
            return list(self._messages)

    def clear(self) -> None:
        with self._arrived:
            self._messages.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until at least ``count`` messages have arrived and return them all.

        Raises :class:`TimeoutError` (naming how many did arrive) when they do
        not come within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"expected {count} messages within {timeout:g}s, "
                        f"received {len(self._messages)}"
                    )
                self._arrived.wait(remaining)
            return list(self._messages)
