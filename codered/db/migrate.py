"""Schema creation and upgrades through Alembic, callable from the CLI and the service."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from codered.db.engine import Database

__all__ = ["current_revision", "head_revision", "upgrade"]


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("codered") / "migrations"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision; a no-op when it already is."""

    def _run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Several processes may start at once on a new database: one migrates, the
            # others wait here and then find nothing left to do.
            connection.execute(text("SELECT pg_advisory_xact_lock(7243102)"))
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with db.write_engine.begin() as connection:
        await connection.run_sync(_run)


async def current_revision(db: Database) -> str | None:
    def _read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as connection:
        return await connection.run_sync(_read)
