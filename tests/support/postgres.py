"""A throw-away PostgreSQL database per test, on the server named by CODERED_TEST_POSTGRES_URL."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from sqlalchemy.engine.url import make_url

ENV = "CODERED_TEST_POSTGRES_URL"


class PostgresUnusableError(Exception):
    """The server could not create a database: why, in one line."""


@contextmanager
def scratch_database(base_url: str, prefix: str) -> Iterator[str]:
    """CREATE a new empty database on the server of ``base_url`` and yield its URL; DROP it
    afterwards. Raises :class:`PostgresUnusableError` when the server cannot be used."""
    import asyncpg

    url = make_url(base_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        problem = f"PostgreSQL at {url.host}:{url.port} is not usable: {exc}"
        raise PostgresUnusableError(problem) from exc
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def postgres_database() -> Iterator[str]:
    """Yield the SQLAlchemy URL of a new empty database; drop it afterwards. Skips the test
    when CODERED_TEST_POSTGRES_URL is unset or its server cannot be used."""
    base = os.environ.get(ENV)
    if not base:
        pytest.skip(f"{ENV} is not set (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)")
    with ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_database(base, "codered_test"))
        except PostgresUnusableError as exc:
            pytest.skip(str(exc))
        yield url
