"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from codered.db.engine import Database
from codered.db.migrate import SCHEMA_HEAD, current_revision, head_revision, upgrade
from codered.db.models import Base
from tests.support.postgres import postgres_database


def _differences(url: str) -> tuple[list[Any], str | None]:
    async def run() -> tuple[list[Any], str | None]:
        db = Database(url)
        try:
            await upgrade(db)
            await upgrade(db)  # a second run is a no-op
            async with db.engine.connect() as connection:
                diff = await connection.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
                )
            return list(diff), await current_revision(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    diff, revision = _differences(f"sqlite+aiosqlite:///{tmp_path / 'schema.db'}")
    assert diff == []
    assert revision == head_revision()


@pytest.mark.postgres
def test_postgres_schema_matches_the_models() -> None:
    with postgres_database() as url:
        diff, revision = _differences(url)
    assert diff == []
    assert revision == head_revision()


@pytest.mark.postgres
def test_postgres_refuses_to_change_or_delete_audit_entries() -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from codered import audit

    async def run(url: str) -> list[str]:
        db = Database(url)
        refused = []
        try:
            await upgrade(db)
            async with db.write() as session:
                await audit.append(session, "test.entry", {"n": 1})
            for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
                try:
                    async with db.write() as session:
                        await session.execute(text(statement))
                except DBAPIError as exc:
                    refused.append(str(exc.orig))
        finally:
            await db.dispose()
        return refused

    with postgres_database() as url:
        refused = asyncio.run(run(url))
    assert len(refused) == 2 and all("append-only" in r for r in refused)


def test_the_schema_head_constant_is_alembics_head() -> None:
    """``upgrade`` skips Alembic when the stored revision equals SCHEMA_HEAD; a new migration
    that forgot to move the constant would never be applied."""
    assert head_revision() == SCHEMA_HEAD


def test_a_current_schema_starts_without_importing_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'current.db'}"
    _differences(url)  # creates the schema at the head
    script = (
        "import asyncio, sys\n"
        "from codered.db.engine import Database\n"
        "from codered.db.migrate import upgrade\n"
        "async def main():\n"
        f"    db = Database({url!r})\n"
        "    await upgrade(db)\n"
        "    await db.dispose()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "False"
