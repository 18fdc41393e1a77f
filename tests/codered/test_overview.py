"""The manager overview gives exact numbers from a real database, and its charts are safe SVG.

The data set, all in March 2025 (the period is the first week):

====  ============  =====  ===============  ===========================  =========  ============
inc   category      ack    promise          first sent reply             by         promise
====  ============  =====  ===============  ===========================  =========  ============
I1    billing       60 s   +4 h             +1 h (a later one too)       alice      kept
I2    billing       120 s  +2 h, moved 10h  +5 h                         bob        missed
I3    outage        300 s  +1 h             none (ack, failed reply)     –          missed
I4    (none)        30 s   after ``now``    none (a pending reply)       –          open
I5    outage        held   +1 h             none                         –          not promised
I6    billing       Feb    –                Feb                          bob        outside
I7    billing       –      –                –                            –          at ``until``
====  ============  =====  ===============  ===========================  =========  ============
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from codered import audit
from codered.db.engine import Database
from codered.db.migrate import upgrade
from codered.db.models import Draft, Incident, OutboxMessage
from codered.overview import (
    CategoryRow,
    CsmRow,
    DraftCounts,
    Durations,
    Promises,
    overview,
    percentile,
)
from codered.web.charts import bar_chart, format_duration, format_value, stacked_bar

SINCE = datetime(2025, 3, 1, tzinfo=UTC)
UNTIL = datetime(2025, 3, 8, tzinfo=UTC)
NOW = datetime(2025, 3, 7, 12, tzinfo=UTC)
T0 = datetime(2025, 3, 3, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SVG = "{http://www.w3.org/2000/svg}"
NASTY = "<script>&\"'"

_numbers = count(1)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'overview.db'}")
    await upgrade(database)
    yield database
    await database.dispose()


async def _incident(
    session: AsyncSession,
    *,
    opened: datetime,
    category: str | None,
    reply_by: datetime,
    ack_after: timedelta | None,
) -> Incident:
    number = next(_numbers)
    incident = Incident(
        reference=f"CR-{number}",
        mailbox="support",
        customer_email=f"customer{number}@example.com",
        subject="It is broken",
        category=category,
        severity="high",
        confidence=0.9,
        status="acknowledged" if ack_after is not None else "held",
        opened_at=opened,
        acknowledged_at=opened + ack_after if ack_after is not None else None,
        reply_by=reply_by,
    )
    session.add(incident)
    await session.flush()
    return incident


async def _outbox(
    session: AsyncSession,
    incident: Incident,
    kind: str,
    *,
    sent_at: datetime | None,
    status: str = "sent",
) -> OutboxMessage:
    row = OutboxMessage(
        incident_id=incident.id,
        kind=kind,
        mailbox="support",
        message_id=f"<{next(_numbers)}@codered.test>",
        envelope_from="support@example.com",
        recipients=[incident.customer_email],
        subject="Re: It is broken",
        body_text="text",
        raw=b"raw",
        status=status,
        created_at=incident.opened_at,
        sent_at=sent_at,
    )
    session.add(row)
    await session.flush()
    return row


def _draft(
    session: AsyncSession,
    incident: Incident,
    *,
    status: str,
    by: str | None,
    at: datetime | None,
    text: str = "Dear customer,\nwe are on it.\n",
    final: str | None = None,
    outbox: OutboxMessage | None = None,
) -> None:
    session.add(
        Draft(
            incident_id=incident.id,
            kind="update",
            status=status,
            requested_by="carol",
            drafter="offline-template",
            text=text,
            final_text=final,
            decided_by=by,
            decided_at=at,
            outbox_id=outbox.id if outbox is not None else None,
        )
    )


async def _populate(db: Database) -> None:
    async with db.write() as s:
        i1 = await _incident(
            s,
            opened=T0,
            category="billing",
            reply_by=T0 + 4 * HOUR,
            ack_after=timedelta(seconds=60),
        )
        await _outbox(s, i1, "acknowledgement", sent_at=T0 + timedelta(seconds=61))
        first = await _outbox(s, i1, "reply.update", sent_at=T0 + HOUR)
        later = await _outbox(s, i1, "reply.update", sent_at=T0 + 6 * HOUR)
        # Whitespace around the text does not make an edit.
        _draft(
            s,
            i1,
            status="approved",
            by="alice",
            at=T0 + HOUR,
            text="Hello\n",
            final="  Hello \n\n",
            outbox=first,
        )
        _draft(
            s,
            i1,
            status="approved",
            by="bob",
            at=T0 + 6 * HOUR,
            text="Again",
            final="Again",
            outbox=later,
        )

        t2 = T0 + DAY
        original, moved = t2 + 2 * HOUR, t2 + 10 * HOUR
        i2 = await _incident(
            s, opened=t2, category="billing", reply_by=moved, ack_after=timedelta(seconds=120)
        )
        await audit.append(
            s,
            "incident.promise_moved",
            {"from": original.isoformat(), "to": moved.isoformat(), "draft_id": 0},
            actor="bob",
            incident_id=i2.id,
        )
        reply2 = await _outbox(s, i2, "reply.update", sent_at=t2 + 5 * HOUR)
        _draft(
            s, i2, status="approved", by="bob", at=t2 + 5 * HOUR, text="A", final="B", outbox=reply2
        )

        t3 = T0 + 2 * DAY
        i3 = await _incident(
            s, opened=t3, category="outage", reply_by=t3 + HOUR, ack_after=timedelta(seconds=300)
        )
        await _outbox(s, i3, "acknowledgement", sent_at=t3 + timedelta(seconds=300))
        await _outbox(s, i3, "reply.update", sent_at=None, status="failed")
        _draft(s, i3, status="rejected", by="alice", at=t3 + HOUR)
        _draft(s, i3, status="pending", by=None, at=None)
        _draft(s, i3, status="approved", by="alice", at=UNTIL + HOUR, final="late")

        t4 = T0 + 3 * DAY
        i4 = await _incident(
            s, opened=t4, category=None, reply_by=NOW + DAY, ack_after=timedelta(seconds=30)
        )
        await _outbox(s, i4, "reply.update", sent_at=None, status="pending")

        t5 = t4 + HOUR
        await _incident(s, opened=t5, category="outage", reply_by=t5 + HOUR, ack_after=None)

        t6 = datetime(2025, 2, 20, 9, tzinfo=UTC)
        i6 = await _incident(
            s, opened=t6, category="billing", reply_by=t6 + HOUR, ack_after=timedelta(seconds=5)
        )
        reply6 = await _outbox(s, i6, "reply.update", sent_at=t6 + 10 * HOUR)
        _draft(
            s, i6, status="approved", by="bob", at=t6 + 10 * HOUR, final="changed", outbox=reply6
        )
        _draft(s, i6, status="rejected", by="bob", at=T0)  # decided in the period: it counts

        await _incident(s, opened=UNTIL, category="billing", reply_by=UNTIL + HOUR, ack_after=None)


async def test_totals(db: Database) -> None:
    await _populate(db)
    async with db.read() as session:
        result = await overview(session, since=SINCE, until=UNTIL, now=NOW)
    totals = result.totals
    assert totals.incidents == 5
    assert totals.time_to_acknowledge == Durations(median=90.0, p90=300.0, count=4)
    assert totals.time_to_first_human_reply == Durations(median=10800.0, p90=18000.0, count=2)
    assert totals.awaiting_first_reply == 3
    assert totals.drafts == DraftCounts(approved_unchanged=2, approved_edited=1, rejected=2)
    assert totals.promises == Promises(kept=1, missed=2, open=1, not_promised=1)


async def test_by_csm(db: Database) -> None:
    await _populate(db)
    async with db.read() as session:
        result = await overview(session, since=SINCE, until=UNTIL, now=NOW)
    assert result.by_csm == (
        CsmRow("alice", DraftCounts(1, 0, 1), Durations(3600.0, 3600.0, 1)),
        CsmRow("bob", DraftCounts(1, 1, 1), Durations(18000.0, 18000.0, 1)),
    )


async def test_by_category(db: Database) -> None:
    await _populate(db)
    async with db.read() as session:
        result = await overview(session, since=SINCE, until=UNTIL, now=NOW)
    assert result.by_category == (
        CategoryRow("billing", 2, 90.0, 10800.0, Promises(kept=1, missed=1)),
        CategoryRow("outage", 2, 300.0, None, Promises(missed=1, not_promised=1)),
        CategoryRow("uncategorised", 1, 30.0, None, Promises(open=1)),
    )


async def test_promise_turns_missed_once_now_passes_it(db: Database) -> None:
    await _populate(db)
    async with db.read() as session:
        later = await overview(session, since=SINCE, until=UNTIL, now=NOW + 2 * DAY)
    assert later.totals.promises == Promises(kept=1, missed=3, open=0, not_promised=1)


async def test_period_filtering(db: Database) -> None:
    await _populate(db)
    async with db.read() as session:
        february = await overview(
            session, since=datetime(2025, 2, 1, tzinfo=UTC), until=SINCE, now=NOW
        )
        last_instant = await overview(session, since=UNTIL, until=UNTIL + DAY, now=NOW)
    assert february.totals.incidents == 1
    assert february.totals.time_to_acknowledge == Durations(5.0, 5.0, 1)
    assert february.totals.time_to_first_human_reply == Durations(36000.0, 36000.0, 1)
    assert february.totals.drafts == DraftCounts(approved_edited=1)
    assert february.totals.promises == Promises(missed=1)
    assert [row.csm for row in february.by_csm] == ["bob"]
    # since is inclusive (I7 opened exactly at UNTIL), and the late approval counts there.
    assert last_instant.totals.incidents == 1
    assert last_instant.totals.promises == Promises(not_promised=1)
    assert last_instant.totals.drafts == DraftCounts(approved_edited=1)


async def test_empty_database(db: Database) -> None:
    async with db.read() as session:
        result = await overview(session, since=SINCE, until=UNTIL, now=NOW)
    assert result.totals.incidents == 0
    assert result.totals.time_to_acknowledge == Durations(None, None, 0)
    assert result.totals.time_to_first_human_reply == Durations(None, None, 0)
    assert result.totals.awaiting_first_reply == 0
    assert result.totals.drafts == DraftCounts(0, 0, 0)
    assert result.totals.promises == Promises(0, 0, 0, 0)
    assert result.by_csm == () and result.by_category == ()
    assert json.loads(json.dumps(result.to_dict()))["totals"]["incidents"] == 0


async def test_to_dict_is_json_ready(db: Database) -> None:
    await _populate(db)
    async with db.read() as session:
        result = await overview(session, since=SINCE, until=UNTIL, now=NOW)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["period"] == {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}
    assert data["totals"]["time_to_acknowledge"] == {"median": 90.0, "p90": 300.0, "count": 4}
    assert data["totals"]["promises"]["kept"] == 1
    assert data["by_csm"][0]["csm"] == "alice"
    assert data["by_csm"][0]["drafts"]["rejected"] == 1
    assert data["by_category"][2]["category"] == "uncategorised"


async def test_naive_times_and_reversed_period_are_refused(db: Database) -> None:
    async with db.read() as session:
        with pytest.raises(ValueError, match="timezone-aware"):
            await overview(session, since=datetime(2025, 3, 1), until=UNTIL, now=NOW)
        with pytest.raises(ValueError, match="before since"):
            await overview(session, since=UNTIL, until=SINCE, now=NOW)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 90) is None
    assert percentile([7.0], 90) == 7.0
    assert percentile([float(n) for n in range(10, 0, -1)], 90) == 9.0
    assert percentile([float(n) for n in range(1, 21)], 90) == 18.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 90) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    with pytest.raises(ValueError):
        percentile([1.0], 0)


# --- charts -------------------------------------------------------------------------------


def _texts(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter(f"{SVG}text")]


def test_bar_chart_is_valid_escaped_svg() -> None:
    svg = bar_chart(f"Reply time {NASTY}", [("alice", 3600), (NASTY, 1800)], unit="s")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == f"Reply time {NASTY}"
    assert root.findtext(f"{SVG}title") == f"Reply time {NASTY}"
    assert "<script>" not in svg
    assert "&lt;script&gt;&amp;" in svg
    texts = _texts(root)
    assert NASTY in texts and "alice" in texts
    assert "1 h" in texts and "30 min" in texts


def test_bar_widths_are_proportional() -> None:
    svg = bar_chart("Drafts", [("a", 40), ("b", 10), ("c", 0), ("d", 20)], width=480)
    rects = ET.fromstring(svg).iter(f"{SVG}rect")
    widths = [float(r.get("width", "nan")) for r in rects if r.get("class") == "chart-bar"]
    assert len(widths) == 4
    assert widths[0] == pytest.approx(4 * widths[1])
    assert widths[3] == pytest.approx(2 * widths[1])
    assert widths[2] == 0.0
    assert widths[0] < 480


def test_empty_charts_say_no_data() -> None:
    for svg in (
        bar_chart("Nothing", []),
        bar_chart("Zeros", [("alice", 0), ("bob", 0)]),
        stacked_bar("Nothing", []),
        stacked_bar("Zeros", [("kept", 0, "kept"), ("missed", 0, "missed")]),
    ):
        root = ET.fromstring(svg)
        assert root.get("role") == "img"
        assert "no data" in _texts(root)


def test_stacked_bar_segments_and_legend() -> None:
    svg = stacked_bar(
        "Drafts",
        [("unchanged", 3, "unchanged"), (NASTY, 1, "edited"), ("rejected", 0, "rejected")],
        width=480,
    )
    root = ET.fromstring(svg)
    segments = [
        r
        for r in root.iter(f"{SVG}rect")
        if "chart-segment" in r.get("class", "") and r.get("y") == "28"
    ]
    assert [s.get("class") for s in segments] == ["chart-segment unchanged", "chart-segment edited"]
    assert [float(s.get("width", "nan")) for s in segments] == [360.0, 120.0]
    assert [float(s.get("x", "nan")) for s in segments] == [0.0, 360.0]
    texts = _texts(root)
    assert f"{NASTY}: 1 (25%)" in texts
    assert "rejected: 0 (0%)" in texts
    assert "<script>" not in svg


def test_control_characters_do_not_break_the_svg() -> None:
    root = ET.fromstring(bar_chart("x\x00y", [("a\x07b", 1)]))
    assert root.findtext(f"{SVG}title") == "xy"
    assert "ab" in _texts(root)


def test_numbers_are_formatted_for_people() -> None:
    assert format_duration(45) == "45 s"
    assert format_duration(240) == "4 min"
    assert format_duration(9000) == "2.5 h"
    assert format_duration(7200) == "2 h"
    assert format_duration(3 * 86400) == "3 d"
    assert format_duration(3599) == "1 h"
    assert format_duration(59.6) == "1 min"
    assert format_duration(30 * 3600) == "30 h"
    assert format_duration(-120) == "-2 min"
    assert format_value(3) == "3"
    assert format_value(2.5, "%") == "2.5%"
    assert format_value(12, "drafts") == "12 drafts"
    assert format_value(float("nan")) == "–"
