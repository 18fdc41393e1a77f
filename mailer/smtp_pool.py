"""Open SMTP connections kept between messages, one per server.

Why: in an outage flood the outbox sends hundreds of acknowledgements a minute to the
same relay. A new connection per message costs a TCP handshake, the greeting, EHLO,
often TLS and AUTH, several round trips that the message itself does not need. The
outbox sends one message at a time per worker, so a connection is *taken* for one
transaction and *given back* after the server's 250; a connection that failed is
closed instead, and one unused for ``idle_seconds`` is closed before servers drop it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiosmtplib

    from mailer.deliver import SmtpServer

__all__ = ["SmtpPool"]


def _key(server: SmtpServer) -> tuple[str, int, str, str | None]:
    return (server.host, server.port, server.security, server.username)


class SmtpPool:
    def __init__(self, idle_seconds: float = 30.0) -> None:
        self.idle_seconds = idle_seconds
        self._kept: dict[tuple[str, int, str, str | None], tuple[aiosmtplib.SMTP, float]] = {}
        self.opened = 0
        """Connections made (read by tests and benchmarks)."""

    def take(self, server: SmtpServer) -> aiosmtplib.SMTP | None:
        """A connected client for ``server`` that nobody else uses now, or None."""
        kept = self._kept.pop(_key(server), None)
        if kept is None:
            return None
        client, since = kept
        if not client.is_connected or time.monotonic() - since > self.idle_seconds:
            client.close()
            return None
        return client

    def give_back(self, server: SmtpServer, client: aiosmtplib.SMTP) -> None:
        """Keep ``client`` for the next message (closing any other kept for the server)."""
        old = self._kept.pop(_key(server), None)
        if old is not None and old[0] is not client:
            old[0].close()
        if client.is_connected:
            self._kept[_key(server)] = (client, time.monotonic())

    def close_all(self) -> None:
        for client, _ in self._kept.values():
            client.close()
        self._kept.clear()
