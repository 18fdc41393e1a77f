"""The manager overview: how fast we acknowledge and answer, how drafts fare, which promises held.

Why the work is split this way: the period filters run in SQL, so an overview of one week
reads one week of rows; medians and percentiles run in Python (:mod:`statistics`), because
SQLite has no percentile function and one code path for both databases is easier to trust.

The rules, so that every number on a manager's screen can be explained:

* **Incident metrics** cover incidents *opened* in ``[since, until)``. Their acknowledgements
  and replies count whenever they happened, also after ``until``.
* **Time to acknowledge**: ``opened_at`` → ``acknowledged_at``. Held incidents have no
  acknowledgement and are not counted.
* **Time to first human reply**: ``opened_at`` → ``sent_at`` of the earliest *sent* outbox row
  whose kind starts with ``reply.``. Incidents without one are ``awaiting_first_reply``.
* **Draft counts** cover drafts *decided* in ``[since, until)``. "Unchanged" means the approved
  text equals the drafted text ignoring surrounding whitespace, the same test
  :func:`codered.approval.approve_draft` uses to decide whether an approval was an edit.
* **Promises**: the promise is the reply-by time the acknowledgement gave the customer, i.e. the
  ``from`` of the incident's earliest ``incident.promise_moved`` audit entry, else
  ``Incident.reply_by`` (never moved). Not the current ``reply_by``: approving a draft that
  names a new time moves ``reply_by`` in the same transaction, before that draft is sent, so
  the current value would judge the first reply against the promise it makes itself.
  *Kept*: the first sent reply went out at or before the promise. *Missed*: it went out after,
  or none went out and ``now`` is past the promise. *Open*: none went out and the promise is
  still ahead. Held incidents were never acknowledged, so no promise reached the customer:
  they count as *not promised*.
* **By CSM**: draft counts by ``Draft.decided_by``; time to first human reply is credited to
  whoever approved the draft behind that first reply (``Draft.outbox_id``).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from codered.db.models import AuditEntry, Draft, Incident, OutboxMessage

__all__ = [
    "CategoryRow",
    "CsmRow",
    "DraftCounts",
    "Durations",
    "Overview",
    "Promises",
    "Totals",
    "overview",
    "percentile",
]

UNCATEGORISED = "uncategorised"
UNKNOWN_CSM = "(unknown)"
PROMISE_MOVED = "incident.promise_moved"


def percentile(values: Sequence[float], pct: int) -> float | None:
    """Nearest-rank percentile: the smallest value with at least ``pct``% of values at or below.

    Why nearest-rank: the answer is always an observed value, so "p90 = 2 h" means that some
    real incident took 2 h. Integer arithmetic for the rank, so 90 % of 10 is exactly 9.
    """
    if not 0 < pct <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {pct}")
    if not values:
        return None
    ordered = sorted(values)
    rank = (pct * len(ordered) + 99) // 100
    return float(ordered[rank - 1])


def _median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


@dataclass(frozen=True)
class Durations:
    """Seconds: median, p90 (nearest rank) and how many incidents they are computed from."""

    median: float | None = None
    p90: float | None = None
    count: int = 0

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Durations:
        return cls(_median(seconds), percentile(seconds, 90), len(seconds))


@dataclass(frozen=True)
class DraftCounts:
    approved_unchanged: int = 0
    approved_edited: int = 0
    rejected: int = 0

    @classmethod
    def of(cls, outcomes: Counter[str]) -> DraftCounts:
        return cls(
            outcomes["approved_unchanged"], outcomes["approved_edited"], outcomes["rejected"]
        )


@dataclass(frozen=True)
class Promises:
    """Per incident exactly one of these, so the four add up to the number of incidents."""

    kept: int = 0
    missed: int = 0
    open: int = 0
    not_promised: int = 0

    @classmethod
    def of(cls, outcomes: Counter[str]) -> Promises:
        return cls(outcomes["kept"], outcomes["missed"], outcomes["open"], outcomes["not_promised"])


@dataclass(frozen=True)
class Totals:
    incidents: int
    time_to_acknowledge: Durations
    time_to_first_human_reply: Durations
    awaiting_first_reply: int
    drafts: DraftCounts
    promises: Promises


@dataclass(frozen=True)
class CsmRow:
    csm: str
    drafts: DraftCounts
    time_to_first_human_reply: Durations


@dataclass(frozen=True)
class CategoryRow:
    category: str
    incidents: int
    median_time_to_acknowledge: float | None
    median_time_to_first_human_reply: float | None
    promises: Promises


@dataclass(frozen=True)
class Overview:
    since: datetime
    until: datetime
    now: datetime
    totals: Totals
    by_csm: tuple[CsmRow, ...]
    """Sorted by name."""
    by_category: tuple[CategoryRow, ...]
    """Sorted by name; a missing category is shown as ``uncategorised``."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (times as ISO 8601), for the JSON API and ``--json``."""
        return {
            "period": {"since": self.since.isoformat(), "until": self.until.isoformat()},
            "now": self.now.isoformat(),
            "totals": asdict(self.totals),
            "by_csm": [asdict(row) for row in self.by_csm],
            "by_category": [asdict(row) for row in self.by_category],
        }


@dataclass(frozen=True)
class _Facts:
    """What the overview needs to know about one incident, gathered from three queries."""

    category: str
    ack_seconds: float | None
    reply_seconds: float | None
    replied_by: str | None
    promise: str


def _aware(name: str, value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _parse_time(value: object) -> datetime | None:
    """An ISO time from audit data; our own entries are always aware, but be lenient."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


def _between(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else (end - start).total_seconds()


def _promise_outcome(
    acknowledged: bool, promise: datetime, first_reply: datetime | None, now: datetime
) -> str:
    if not acknowledged:
        return "not_promised"
    if first_reply is not None:
        return "kept" if first_reply <= promise else "missed"
    return "missed" if now > promise else "open"


def _draft_outcome(status: str, text: str | None, final_text: str | None) -> str:
    if status == "rejected":
        return "rejected"
    unchanged = (final_text or "").strip() == (text or "").strip()
    return "approved_unchanged" if unchanged else "approved_edited"


async def _incident_facts(
    session: AsyncSession, since: datetime, until: datetime, now: datetime
) -> list[_Facts]:
    opened = select(Incident.id).where(Incident.opened_at >= since, Incident.opened_at < until)
    incidents = (
        await session.execute(
            select(
                Incident.id,
                Incident.category,
                Incident.opened_at,
                Incident.acknowledged_at,
                Incident.reply_by,
            ).where(Incident.id.in_(opened))
        )
    ).all()
    replies = await session.execute(
        select(OutboxMessage.incident_id, OutboxMessage.sent_at, Draft.decided_by)
        .outerjoin(Draft, Draft.outbox_id == OutboxMessage.id)
        .where(
            OutboxMessage.incident_id.in_(opened),
            OutboxMessage.status == "sent",
            OutboxMessage.sent_at.is_not(None),
            OutboxMessage.kind.startswith("reply.", autoescape=True),
        )
        .order_by(OutboxMessage.incident_id, OutboxMessage.sent_at, OutboxMessage.id)
    )
    first_reply: dict[int, tuple[datetime, str | None]] = {}
    for incident_id, sent_at, decided_by in replies:
        if incident_id is not None and sent_at is not None:
            first_reply.setdefault(incident_id, (sent_at, decided_by))
    moves = await session.execute(
        select(AuditEntry.incident_id, AuditEntry.data)
        .where(AuditEntry.kind == PROMISE_MOVED, AuditEntry.incident_id.in_(opened))
        .order_by(AuditEntry.id)
    )
    original: dict[int, datetime | None] = {}
    for incident_id, data in moves:
        if incident_id is not None:
            original.setdefault(incident_id, _parse_time(data.get("from")))

    facts = []
    for incident_id, category, opened_at, acknowledged_at, reply_by in incidents:
        sent_at, replied_by = first_reply.get(incident_id, (None, None))
        promise = original.get(incident_id) or reply_by
        outcome = _promise_outcome(acknowledged_at is not None, promise, sent_at, now)
        ack, reply = _between(opened_at, acknowledged_at), _between(opened_at, sent_at)
        facts.append(_Facts(category or UNCATEGORISED, ack, reply, replied_by, outcome))
    return facts


async def _draft_outcomes(
    session: AsyncSession, since: datetime, until: datetime
) -> list[tuple[str, str]]:
    """(CSM, outcome) for every draft approved or rejected in the period."""
    rows = await session.execute(
        select(Draft.decided_by, Draft.status, Draft.text, Draft.final_text).where(
            Draft.decided_at >= since,
            Draft.decided_at < until,
            Draft.status.in_(("approved", "rejected")),
        )
    )
    return [
        (decided_by or UNKNOWN_CSM, _draft_outcome(status, text, final_text))
        for decided_by, status, text, final_text in rows
    ]


def _acks(facts: Sequence[_Facts]) -> list[float]:
    return [f.ack_seconds for f in facts if f.ack_seconds is not None]


def _replies(facts: Sequence[_Facts]) -> list[float]:
    return [f.reply_seconds for f in facts if f.reply_seconds is not None]


def _by_csm(facts: Sequence[_Facts], drafts: Sequence[tuple[str, str]]) -> tuple[CsmRow, ...]:
    outcomes: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for csm, outcome in drafts:
        outcomes[csm][outcome] += 1
    replies: defaultdict[str, list[float]] = defaultdict(list)
    for f in facts:
        if f.replied_by is not None and f.reply_seconds is not None:
            replies[f.replied_by].append(f.reply_seconds)
    names = sorted(set(outcomes) | set(replies))
    return tuple(
        CsmRow(name, DraftCounts.of(outcomes[name]), Durations.of(replies[name])) for name in names
    )


def _by_category(facts: Sequence[_Facts]) -> tuple[CategoryRow, ...]:
    groups: defaultdict[str, list[_Facts]] = defaultdict(list)
    for f in facts:
        groups[f.category].append(f)
    return tuple(
        CategoryRow(
            category=name,
            incidents=len(group),
            median_time_to_acknowledge=_median(_acks(group)),
            median_time_to_first_human_reply=_median(_replies(group)),
            promises=Promises.of(Counter(f.promise for f in group)),
        )
        for name, group in sorted(groups.items())
    )


async def overview(
    session: AsyncSession, *, since: datetime, until: datetime, now: datetime
) -> Overview:
    """The overview of incidents opened and drafts decided in ``[since, until)``.

    ``now`` only decides whether an unanswered promise has passed (missed) or is still
    ahead (open); replies are counted whenever they were sent, so pass the real time.
    """
    since, until, now = _aware("since", since), _aware("until", until), _aware("now", now)
    if until < since:
        raise ValueError("until is before since")
    facts = await _incident_facts(session, since, until, now)
    drafts = await _draft_outcomes(session, since, until)
    totals = Totals(
        incidents=len(facts),
        time_to_acknowledge=Durations.of(_acks(facts)),
        time_to_first_human_reply=Durations.of(_replies(facts)),
        awaiting_first_reply=sum(1 for f in facts if f.reply_seconds is None),
        drafts=DraftCounts.of(Counter(outcome for _, outcome in drafts)),
        promises=Promises.of(Counter(f.promise for f in facts)),
    )
    return Overview(since, until, now, totals, _by_csm(facts, drafts), _by_category(facts))
