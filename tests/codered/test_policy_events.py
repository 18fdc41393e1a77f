"""Policy events happen once: across transactions, and within one that records many."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from codered.db.engine import Database
from codered.db.migrate import upgrade
from codered.db.models import PolicyEvent
from codered.policy_events import EventsOnce, once_sync


async def test_many_keys_in_one_transaction_each_happen_once(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'events.db'}")
    try:
        await upgrade(db)
        await db.run_write(lambda s: once_sync(s, "earlier", "test", None, {}))

        def record(session: Session) -> list[bool]:
            with EventsOnce(session, ["earlier", "a", "b"]) as events:
                return [
                    events.once("earlier", "test", None, {}),  # recorded by an earlier pass
                    events.once("a", "test", None, {"n": 1}),
                    events.once("a", "test", None, {"n": 2}),  # the same key again: no
                    events.once("b", "test", None, {}),
                    events.once("not-announced", "test", None, {}),  # looked up on its own
                ]

        assert await db.run_write(record) == [False, True, False, True, True]
        again = await db.run_write(lambda s: EventsOnce(s, ["a"]).once("a", "test", None, {}))

        # Not written until the block ends (or write()): an exception writes nothing.
        def fails(session: Session) -> None:
            with EventsOnce(session, ["c"]) as events:
                assert events.once("c", "test", None, {})
                raise RuntimeError("the pass failed")

        with pytest.raises(RuntimeError):
            await db.run_write(fails)
        assert again is False
        async with db.read() as session:
            rows = (await session.execute(select(PolicyEvent.key, PolicyEvent.data))).all()
        assert sorted(rows) == [
            ("a", {"n": 1}),
            ("b", {}),
            ("earlier", {}),
            ("not-announced", {}),
        ]
    finally:
        await db.dispose()
