"""Writes submitted together commit in one transaction, and one that fails fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from codered import audit
from codered.db.engine import Database
from codered.db.migrate import upgrade
from codered.db.models import AuditEntry
from codered.group_commit import GroupCommit
from tests.support.postgres import postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'group.db'}"
    else:
        with postgres_database() as url:
            yield url


def _write(session: Session, item: int) -> None:
    audit.append_sync(session, "test.item", {"item": item})
    if item == 3:
        raise ValueError("item 3 is refused (injected)")


async def test_a_group_commits_once_and_a_failure_stays_its_own(database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade(db)
        group: GroupCommit[int] = GroupCommit(db, _write)
        results = await asyncio.gather(*(group.submit(n) for n in range(5)), return_exceptions=True)
        assert [type(r).__name__ for r in results] == ["NoneType"] * 3 + ["ValueError", "NoneType"]
        assert group.commits == 1  # five writes that arrived together: one transaction
        async with db.read() as session:
            items = (await session.scalars(select(AuditEntry.data))).all()
            chain = await audit.verify(session)
        assert sorted(d["item"] for d in items) == [0, 1, 2, 4]
        assert chain.ok, chain.problem  # the refused item's entry went with its savepoint

        await group.submit(7)  # later writes start a new transaction
        assert group.commits == 2
    finally:
        await db.dispose()


async def test_announced_items_that_arrive_apart_still_share_one_commit(
    database_url: str,
) -> None:
    """The outbox announces a group of sends; their marks, finishing a few ms apart, wait
    for each other (at most ``gather_seconds``), and one that is withdrawn holds nobody."""
    db = Database(database_url)
    try:
        await upgrade(db)
        group: GroupCommit[int] = GroupCommit(db, _write, gather_seconds=5.0)

        async def later(item: int, delay: float) -> None:
            await asyncio.sleep(delay)
            await group.submit(item)

        group.announce(3)
        await asyncio.gather(later(10, 0.0), later(11, 0.02), later(12, 0.04))
        assert group.commits == 1  # without the announcement the first commits alone

        group.announce(2)
        submitted = asyncio.create_task(group.submit(20))
        await asyncio.sleep(0.01)
        group.withdraw()  # the other send failed: the commit goes without waiting 5 s
        await asyncio.wait_for(submitted, 2.0)
        assert group.commits == 2
        async with db.read() as session:
            items = sorted(d["item"] for d in (await session.scalars(select(AuditEntry.data))))
        assert items == [10, 11, 12, 20]
    finally:
        await db.dispose()
