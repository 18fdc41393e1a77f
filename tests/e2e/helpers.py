"""Reading the service's database from tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from codered.db.engine import Database
from codered.db.models import DeadLetter, InboundMessage, Incident, OutboxMessage
from codered.settings import Settings
from tests.support.service import query


def rows(settings: Settings, model: Any) -> list[Any]:
    async def work(db: Database) -> list[Any]:
        async with db.read() as session:
            return list((await session.scalars(select(model).order_by(model.id))).all())

    return query(settings, work)


def inbound(settings: Settings) -> list[InboundMessage]:
    return rows(settings, InboundMessage)


def incidents(settings: Settings) -> list[Incident]:
    return rows(settings, Incident)


def outbox(settings: Settings) -> list[OutboxMessage]:
    return rows(settings, OutboxMessage)


def dead_letters(settings: Settings) -> list[DeadLetter]:
    return rows(settings, DeadLetter)


def processed(settings: Settings, count: int) -> bool:
    done = [m for m in inbound(settings) if m.status != "pending"]
    return len(done) >= count
