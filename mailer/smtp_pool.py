"""Open SMTP connections kept between messages, one per server.

Why: in an outage flood the outbox sends hundreds of acknowledgements a minute to the
same relay. A new connection per message costs a TCP handshake, the greeting, EHLO,
often TLS and AUTH, several round trips that the message itself does not need. A
connection is *taken* for one transaction and *given back* after the server's 250; a
connection that failed is closed instead, and one unused for ``idle_seconds`` is closed
before servers drop it. The outbox sends a few messages at once, so up to ``per_server``
connections are kept for each server.
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
    def __init__(self, idle_seconds: float = 30.0, per_server: int = 1) -> None:
        self.idle_seconds = idle_seconds
        self.per_server = max(1, per_server)
        self._kept: dict[tuple[str, int, str, str | None], list[tuple[aiosmtplib.SMTP, float]]]
        self._kept = {}
        self.opened = 0
        """Connections made (read by tests and benchmarks)."""

    def take(self, server: SmtpServer) -> aiosmtplib.SMTP | None:
        """A connected client for ``server`` that nobody else uses now, or None.

        The most recently used one first: it is the least likely to have been dropped."""
        kept = self._kept.get(_key(server), [])
        while kept:
            client, since = kept.pop()
            if client.is_connected and time.monotonic() - since <= self.idle_seconds:
                return client
            client.close()
        return None

    def give_back(self, server: SmtpServer, client: aiosmtplib.SMTP) -> None:
        """Keep ``client`` for a next message; beyond ``per_server`` kept, the oldest goes."""
        if not client.is_connected:
            return
        kept = self._kept.setdefault(_key(server), [])
        kept.append((client, time.monotonic()))
        while len(kept) > self.per_server:
            oldest, _ = kept.pop(0)
            oldest.close()

    def close_all(self) -> None:
        for kept in self._kept.values():
            for client, _ in kept:
                client.close()
        self._kept.clear()
