"""Schema creation and upgrades through Alembic, callable from the CLI and the service.

Alembic (with mako) takes about 120 ms to import, a tenth of a service start, and on
almost every start there is nothing to migrate. So the schema's revision is first read
with plain SQL and compared with :data:`SCHEMA_HEAD`; Alembic is imported only when they
differ. ``tests/codered/test_migrations.py`` keeps the constant equal to Alembic's head.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from codered.db.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["SCHEMA_HEAD", "current_revision", "head_revision", "upgrade"]

SCHEMA_HEAD = "0005"
"""The newest migration's revision; a new migration must change it (a test checks)."""


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("codered") / "migrations"))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision; a no-op when it already is."""
    if await _stored_revision(db) == SCHEMA_HEAD:
        return

    def _run(connection: Connection) -> None:
        from alembic import command

        if connection.dialect.name == "postgresql":
            # Several processes may start at once on a new database: one migrates, the
            # others wait here and then find nothing left to do.
            connection.execute(text("SELECT pg_advisory_xact_lock(7243102)"))
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with db.write_engine.begin() as connection:
        await connection.run_sync(_run)


async def _stored_revision(db: Database) -> str | None:
    """The revision recorded in ``alembic_version``, or None (no table yet, or no row)."""
    try:
        async with db.engine.connect() as connection:
            found = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:
        return None
    return str(found) if found is not None else None


async def current_revision(db: Database) -> str | None:
    def _read(connection: Connection) -> str | None:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as connection:
        return await connection.run_sync(_read)
