"""A throw-away PostgreSQL database per test, on the server named by CODERED_TEST_POSTGRES_URL."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.engine.url import make_url

ENV = "CODERED_TEST_POSTGRES_URL"


@contextmanager
def postgres_database() -> Iterator[str]:
    """Yield the SQLAlchemy URL of a new empty database; drop it afterwards."""
    base = os.environ.get(ENV)
    if not base:
        pytest.skip(f"{ENV} is not set (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)")
    import asyncpg

    url = make_url(base)
    name = f"codered_test_{uuid.uuid4().hex[:12]}"
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
        pytest.skip(f"PostgreSQL at {url.host}:{url.port} is not usable: {exc}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
