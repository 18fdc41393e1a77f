"""The audit chain detects any change or deletion and names the first broken link."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from codered import audit
from codered.db.engine import Database
from codered.db.migrate import upgrade
from codered.db.models import AuditEntry


async def _db(tmp_path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    await upgrade(db)
    return db


async def test_intact_chain_verifies(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    async with db.write() as session:
        for number in range(5):
            await audit.append(session, "decision", {"n": number, "text": "Grüße"})
    async with db.read() as session:
        result = await audit.verify(session)
    await db.dispose()
    assert result.ok and result.entries == 5


async def test_edited_entry_is_named(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    async with db.write() as session:
        entries = [await audit.append(session, "decision", {"n": n}) for n in range(4)]
    async with db.write() as session:
        await session.execute(
            update(AuditEntry).where(AuditEntry.id == entries[2].id).values(data={"n": 99})
        )
    async with db.read() as session:
        result = await audit.verify(session)
    await db.dispose()
    assert not result.ok
    assert result.first_broken_id == entries[2].id
    assert result.problem == "content does not match its hash"


async def test_deleted_entry_breaks_the_next_link(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    async with db.write() as session:
        entries = [await audit.append(session, "decision", {"n": n}) for n in range(4)]
    async with db.write() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.id == entries[1].id))
    async with db.read() as session:
        result = await audit.verify(session)
    await db.dispose()
    assert result.first_broken_id == entries[2].id
    assert result.problem == "previous-hash link does not match"


def _append_together(session: Session) -> list[str]:
    """Two entries waiting, an empty savepoint rolled back, one entry under a savepoint
    that commits, one under a savepoint that is rolled back, then two more waiting: the
    chain must come out whole."""
    hashes: list[str] = []
    with audit.appending_together(session):
        for n in range(2):
            appended = audit.append_sync(session, "decision", {"n": n})
            assert appended.id is None  # waiting for the others
            hashes.append(appended.hash)
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0
        with pytest.raises(RuntimeError), session.begin_nested():
            raise RuntimeError("rolled back with nothing in it, while two entries wait")
        with session.begin_nested():
            inside = audit.append_sync(session, "decision", {"n": "kept"})
            assert inside.id is not None  # under a savepoint: at once, after those waiting
            hashes.append(inside.hash)
        with pytest.raises(RuntimeError), session.begin_nested():
            audit.append_sync(session, "decision", {"n": "taken back"})
            raise RuntimeError("rolled back")
        for n in range(2, 4):
            hashes.append(audit.append_sync(session, "decision", {"n": n}).hash)
    return hashes


async def test_entries_appended_together_keep_the_chain(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    hashes = await db.run_write(_append_together)
    async with db.read() as session:
        result = await audit.verify(session)
        rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    await db.dispose()
    assert result.ok, result.problem
    assert [row.hash for row in rows] == hashes
    assert [row.data["n"] for row in rows] == [0, 1, "kept", 2, 3]


async def test_a_failed_block_appends_nothing(tmp_path: Path) -> None:
    db = await _db(tmp_path)

    def fails(session: Session) -> None:
        with audit.appending_together(session):
            audit.append_sync(session, "decision", {"n": 0})
            raise RuntimeError("the batch failed")

    with pytest.raises(RuntimeError, match="the batch failed"):
        await db.run_write(fails)
    await db.run_write(lambda session: audit.append_sync(session, "decision", {"n": 1}))
    async with db.read() as session:
        result = await audit.verify(session)
    await db.dispose()
    assert result.ok and result.entries == 1
