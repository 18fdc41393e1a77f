"""A database write error while storing fetched mail leaves no half state and no advanced
cursor: the watcher will fetch the same UIDs again (real SQLite, a trigger makes it fail)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from codered.db.engine import Database
from codered.db.migrate import upgrade
from codered.db.models import InboundMessage
from codered.mailstore import DatabaseMailboxStore
from inbox.ports import Cursor, FetchedMessage


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[DatabaseMailboxStore, Database]]:
    """The store as the service runs it: database on an event loop, called from a thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    asyncio.run_coroutine_threadsafe(upgrade(db), loop).result(30)
    try:
        yield DatabaseMailboxStore(db, loop), db
    finally:
        asyncio.run_coroutine_threadsafe(db.dispose(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def _message(uid: int) -> FetchedMessage:
    raw = f"From: a@b.example\r\nSubject: {uid}\r\n\r\nbody\r\n".encode()
    return FetchedMessage(uid=uid, size=len(raw), raw=raw)


def _count(store: DatabaseMailboxStore, db: Database) -> int:
    async def work() -> int:
        async with db.read() as session:
            return await session.scalar(select(func.count()).select_from(InboundMessage)) or 0

    return asyncio.run_coroutine_threadsafe(work(), store.loop).result(10)


def test_a_failed_write_stores_nothing_and_keeps_the_cursor(
    store: tuple[DatabaseMailboxStore, Database],
) -> None:
    mailstore, db = store
    mailstore.save_baseline("support", Cursor(7, 10))

    async def break_uid_13() -> None:
        async with db.write() as session:
            await session.execute(
                text(
                    "CREATE TRIGGER fail_13 BEFORE INSERT ON inbound_messages "
                    "WHEN NEW.uid = 13 BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                )
            )

    asyncio.run_coroutine_threadsafe(break_uid_13(), mailstore.loop).result(10)
    with pytest.raises(Exception, match="disk full"):
        mailstore.store_batch("support", 7, [_message(11), _message(12), _message(13)])
    assert _count(mailstore, db) == 0
    cursor = mailstore.load_cursor("support")
    assert cursor is not None and (cursor.uidvalidity, cursor.last_uid) == (7, 10)

    # Once the cause is gone the same batch goes through, and storing it twice is a no-op.
    async def repair() -> None:
        async with db.write() as session:
            await session.execute(text("DROP TRIGGER fail_13"))

    asyncio.run_coroutine_threadsafe(repair(), mailstore.loop).result(10)
    batch = [_message(11), _message(12), _message(13)]
    mailstore.store_batch("support", 7, batch)
    mailstore.store_batch("support", 7, batch)
    assert _count(mailstore, db) == 3
    cursor = mailstore.load_cursor("support")
    assert cursor is not None and cursor.last_uid == 13
