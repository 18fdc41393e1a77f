"""The escalation check reads the first message's text from what the pipeline just parsed,
and parses the stored message only for what it was not handed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from codered.db.engine import Database
from codered.db.migrate import upgrade
from codered.db.models import InboundMessage, Incident
from codered.escalations import Escalator
from codered.pipeline import Pipeline
from codered.recent_texts import RecentTexts
from tests.support import mail
from tests.support.service import make_settings

CALM = (
    "Our dashboard is extremely slow since this morning and reports keep timing out. "
    "This is a problem for us, please fix it."
)
THREAT = "We will cancel our contract and call our lawyer if this is not fixed today."


def test_only_the_newest_texts_are_kept() -> None:
    texts = RecentTexts(kept=3)
    for inbound_id in range(1, 6):
        texts.remember(inbound_id, f"text {inbound_id}")
    assert [texts.get(n) for n in range(1, 6)] == [None, None, "text 3", "text 4", "text 5"]


def test_the_kept_text_is_bounded_in_size_too() -> None:
    texts = RecentTexts(kept=100, characters=10)
    texts.remember(1, "aaaa")
    texts.remember(2, "bbbb")
    texts.remember(3, "cccc")  # 12 characters: the oldest goes
    texts.remember(4, "x" * 11)  # larger than everything allowed: not kept at all
    assert [texts.get(n) for n in range(1, 5)] == [None, "bbbb", "cccc", None]


async def _one_incident(
    tmp_path: Path, texts: RecentTexts, body: str = CALM
) -> tuple[Database, int]:
    """A complaint decided by the real pipeline, which remembers its text in ``texts``."""
    db = Database(make_settings(tmp_path, 1, 2).database.url)
    await upgrade(db)
    raw = mail.message("Slow dashboard", f"{CALM} {body}" if body != CALM else CALM)[1]
    async with db.write() as session:
        row = InboundMessage(mailbox="support", uidvalidity=1, uid=1, size=len(raw), raw=raw)
        session.add(row)
        await session.flush()
        inbound_id = row.id
    [outcome] = await Pipeline(db, make_settings(tmp_path, 1, 2), texts=texts).process_pending()
    assert outcome.action == "acknowledge"
    return db, inbound_id


async def _escalated(db: Database, escalator: Escalator) -> list[str | None]:
    await escalator.pending(datetime.now(UTC))
    async with db.read() as session:
        return [i.escalated_at and i.reference for i in (await session.scalars(select(Incident)))]


async def test_a_remembered_text_is_used_instead_of_parsing_again(tmp_path: Path) -> None:
    texts = RecentTexts()
    db, inbound_id = await _one_incident(tmp_path, texts)
    try:
        assert texts.get(inbound_id) is not None and "dashboard" in (texts.get(inbound_id) or "")
        # Swap in words the stored message does not contain: only the handed text has them.
        texts.remember(inbound_id, THREAT)
        escalator = Escalator(db, make_settings(tmp_path, 1, 2), texts=texts)
        [reference] = await _escalated(db, escalator)
        assert reference is not None  # escalated on the remembered words
    finally:
        await db.dispose()


async def test_without_a_remembered_text_the_stored_message_is_parsed(tmp_path: Path) -> None:
    db, _ = await _one_incident(tmp_path, RecentTexts(), THREAT)
    try:
        escalator = Escalator(db, make_settings(tmp_path, 1, 2), texts=RecentTexts())
        [reference] = await _escalated(db, escalator)
        assert reference is not None  # escalated on the words of the stored message
    finally:
        await db.dispose()


async def test_a_calm_complaint_is_not_escalated(tmp_path: Path) -> None:
    """The control for the two above: neither the subject nor CALM escalates by itself."""
    db, _ = await _one_incident(tmp_path, RecentTexts())
    try:
        escalator = Escalator(db, make_settings(tmp_path, 1, 2), texts=RecentTexts())
        assert await _escalated(db, escalator) == [None]
    finally:
        await db.dispose()
