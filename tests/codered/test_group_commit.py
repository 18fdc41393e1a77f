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
