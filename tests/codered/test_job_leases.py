"""One process at a time runs the policy clock: a lease claimed with SKIP LOCKED."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from codered.db.engine import Database
from codered.db.migrate import upgrade
from codered.job_leases import claim_lease, release_lease
from tests.support.postgres import postgres_database

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'leases.db'}"
    else:
        with postgres_database() as url:
            yield url


async def test_one_holder_at_a_time_until_the_lease_lapses_or_is_released(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        await upgrade(db)
        # "remote-host:..." is never judged dead by its pid: only its lease can lapse.
        first, second = "remote-a:1:x", "remote-b:2:y"
        assert await claim_lease(db, "clock", first, now=T0, seconds=120)
        assert not await claim_lease(
            db, "clock", second, now=T0 + timedelta(seconds=5), seconds=120
        )
        # The holder renews on every pass and keeps it.
        assert await claim_lease(db, "clock", first, now=T0 + timedelta(seconds=60), seconds=120)
        assert not await claim_lease(
            db, "clock", second, now=T0 + timedelta(seconds=170), seconds=120
        )
        # The holder stopped renewing (it died on another machine): the lease is taken over.
        later = T0 + timedelta(seconds=181)
        assert await claim_lease(db, "clock", second, now=later, seconds=120)
        assert not await claim_lease(db, "clock", first, now=later, seconds=120)
        # A clean stop hands over at once; releasing another's lease does nothing.
        await release_lease(db, "clock", first)
        assert not await claim_lease(db, "clock", first, now=later, seconds=120)
        await release_lease(db, "clock", second)
        assert await claim_lease(db, "clock", first, now=later, seconds=120)
    finally:
        await db.dispose()


async def test_a_holder_on_this_host_that_died_is_replaced_at_once(tmp_path: Path) -> None:
    import socket

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'leases.db'}")
    try:
        await upgrade(db)
        gone = f"{socket.gethostname()}:999999999:dead"  # no such process
        assert await claim_lease(db, "clock", gone, now=T0, seconds=600)
        assert await claim_lease(db, "clock", "remote-b:2:y", now=T0, seconds=600)
    finally:
        await db.dispose()


async def test_many_claims_at_once_give_exactly_one_holder(database_url: str) -> None:
    """Ten processes' first claims race (row missing, then locked): exactly one wins."""
    dbs = [Database(database_url) for _ in range(10)]
    try:
        await upgrade(dbs[0])
        won = await asyncio.gather(
            *(
                claim_lease(db, "clock", f"remote-{n}:1:x", now=T0, seconds=60)
                for n, db in enumerate(dbs)
            )
        )
        assert sum(won) == 1
    finally:
        for db in dbs:
            await db.dispose()
