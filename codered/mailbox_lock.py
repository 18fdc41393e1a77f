"""One watcher per mailbox across processes: a PostgreSQL advisory lock, held on its own
connection for as long as this process watches the mailbox.

Why a session-level advisory lock: PostgreSQL releases it the moment the
holding connection ends, which is also what happens when the holding process
is killed, so a standby takes over within one polling interval without any
lease bookkeeping. On SQLite (one process by design) the lock is always granted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from codered.db.engine import Database

__all__ = ["hold_mailbox", "lock_key"]

log = logging.getLogger(__name__)


def lock_key(mailbox: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` derived from the mailbox name."""
    digest = hashlib.sha256(f"codered:mailbox:{mailbox}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@asynccontextmanager
async def hold_mailbox(
    db: Database,
    mailbox: str,
    stop: asyncio.Event,
    *,
    retry_seconds: float = 2.0,
    health_seconds: float = 5.0,
    may_take: Callable[[], bool] = lambda: True,
) -> AsyncIterator[asyncio.Event | None]:
    """Wait until this process may watch ``mailbox``; yield an event set if the lock is lost.

    ``may_take`` is asked before each try: False while this process already watches its
    share of the mailboxes (see :mod:`codered.worker_share`). Yields None when ``stop``
    was set before the lock could be taken.
    """
    if db.is_sqlite:
        yield asyncio.Event()
        return
    key = lock_key(mailbox)
    connection = await _acquire(db, key, mailbox, stop, retry_seconds, may_take)
    if connection is None:
        yield None
        return
    lost = asyncio.Event()
    watchdog = asyncio.create_task(_watch(connection, lost, mailbox, health_seconds))
    try:
        yield lost
    finally:
        watchdog.cancel()
        with contextlib.suppress(BaseException):
            await watchdog
        with contextlib.suppress(Exception):
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        with contextlib.suppress(Exception):
            await connection.close()


async def _acquire(
    db: Database,
    key: int,
    mailbox: str,
    stop: asyncio.Event,
    retry_seconds: float,
    may_take: Callable[[], bool],
) -> AsyncConnection | None:
    announced = False
    while not stop.is_set():
        connection: AsyncConnection | None = None
        if not may_take():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), retry_seconds)
            continue
        try:
            connection = await db.engine.connect()
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            taken = await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
            if taken:
                log.info("%s: this process now watches the mailbox", mailbox)
                return connection
            if not announced:
                log.info("%s: another process watches this mailbox; standing by", mailbox)
                announced = True
        except Exception as exc:
            log.warning("%s: cannot take the mailbox lock: %s", mailbox, exc)
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), retry_seconds)
    return None


async def _watch(
    connection: AsyncConnection, lost: asyncio.Event, mailbox: str, every: float
) -> None:
    """If the lock's connection breaks, the lock is gone: tell the holder to stop watching."""
    while True:
        await asyncio.sleep(every)
        try:
            await connection.execute(text("SELECT 1"))
        except Exception as exc:
            log.warning("%s: lost the mailbox lock (%s); stopping the watcher", mailbox, exc)
            lost.set()
            return
