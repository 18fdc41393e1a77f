"""The audit chain detects any change or deletion and names the first broken link."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, update

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
