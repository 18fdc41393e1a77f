"""Getting the audit trail out: filtered, streamed rows for managers and auditors.

Why: the chain in ``codered.audit`` proves nothing was changed, but a manager also has
to *read* it ("everything on CR-1042", "what bob approved last month", "each reply as
drafted and as sent"). These functions answer from the database without loading the
whole table (keyset pagination on ``id``), and every export is itself recorded in the
chain: taking customer data out is an event worth auditing (DESIGN invariant 7).

Rows are JSON-ready dicts. JSON Lines is the faithful form: each row carries what
:func:`codered.audit.entry_hash` covers (``incident_id`` included), so an auditor can
re-check every hash and link of an export without our database. CSV is for spreadsheets,
guarded against formula injection, and therefore not byte-exact.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from codered import audit
from codered.db.engine import Database
from codered.db.models import AuditEntry, Draft, Incident, OutboxMessage
from codered.queries import find_incident

__all__ = [
    "CSV_COLUMNS",
    "SYSTEM_ACTOR",
    "audit_rows",
    "csv_header",
    "csv_line",
    "jsonl_line",
    "parse_time",
    "record_export",
    "sent_messages",
    "to_csv",
    "to_jsonl",
    "verified_head",
]

CSV_COLUMNS = ("id", "at", "actor", "kind", "incident", "data", "prev_hash", "hash")
SYSTEM_ACTOR = "codered"
"""The actor of everything codered does by itself (the default of :func:`codered.audit.append`)."""

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Characters JSON may leave raw but that str.splitlines() and some JSONL readers treat as
# line breaks: escaped so one entry is always exactly one line.
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _iso(value: datetime | None) -> str | None:
    """Always UTC with microseconds, so the strings sort like the times they name."""
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(value: str, *, end_of_day: bool = False) -> datetime:
    """``2026-12-01`` or a full ISO 8601 time; naive means UTC.

    With ``end_of_day`` a bare date means the *end* of that day (the next midnight), so
    that ``--until 2026-12-31`` includes the 31st, as a person reading it expects.

    >>> parse_time("2026-12-01")
    datetime.datetime(2026, 12, 1, 0, 0, tzinfo=datetime.timezone.utc)
    >>> parse_time("2026-12-01", end_of_day=True).day
    2
    """
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, time(), tzinfo=UTC)
            return start + timedelta(days=1) if end_of_day else start
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a date or time; use 2026-12-01 or 2026-12-01T09:30:00+01:00"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _customer_incidents(customer: str) -> Select[int]:
    """Ids of the incidents of ``customer`` (an email address, compared case-insensitively)."""
    wanted = customer.strip().lower()
    return select(Incident.id).where(func.lower(Incident.customer_email) == wanted)


async def audit_rows(
    session: AsyncSession,
    *,
    since: datetime | None,
    until: datetime | None,
    kind: str | None = None,
    incident: str | None = None,
    customer: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
    batch: int = 1000,
) -> AsyncIterator[dict[str, Any]]:
    """Audit entries in id order (chain order), ``since`` inclusive and ``until`` exclusive.

    ``incident`` is a reference (``CR-1042``; an unknown one raises :class:`LookupError`),
    ``customer`` selects the entries of that customer's incidents, ``actor`` and ``kind``
    match exactly. Each batch is one query ``WHERE id > last ORDER BY id LIMIT batch``, so
    memory stays flat however long the trail is, and a row appended meanwhile is either
    in the export or not, never half.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(AuditEntry.at >= since)
    if until is not None:
        conditions.append(AuditEntry.at < until)
    if kind is not None:
        conditions.append(AuditEntry.kind == kind)
    if actor is not None:
        conditions.append(AuditEntry.actor == actor)
    if incident is not None:
        conditions.append(AuditEntry.incident_id == (await find_incident(session, incident)).id)
    if customer is not None:
        conditions.append(AuditEntry.incident_id.in_(_customer_incidents(customer)))
    # Columns, not ORM objects: nothing accumulates in the session's identity map.
    query = (
        select(
            *(AuditEntry.id, AuditEntry.at, AuditEntry.actor, AuditEntry.kind),
            Incident.reference.label("incident"),
            *(AuditEntry.incident_id, AuditEntry.data, AuditEntry.prev_hash, AuditEntry.hash),
        )
        .outerjoin(Incident, Incident.id == AuditEntry.incident_id)
        .where(*conditions)
        .order_by(AuditEntry.id)
    )
    last_id, remaining = 0, limit
    while remaining is None or remaining > 0:
        size = batch if remaining is None else min(batch, remaining)
        rows = (await session.execute(query.where(AuditEntry.id > last_id).limit(size))).all()
        for row in rows:
            yield {**row._asdict(), "at": _iso(row.at)}
        if len(rows) < size:
            return
        last_id = rows[-1].id
        remaining = None if remaining is None else remaining - len(rows)


def jsonl_line(row: dict[str, Any]) -> str:
    """One entry as one line of JSON (UTF-8 text kept readable, line separators escaped)."""
    text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in _LINE_BREAKS.items():
        text = text.replace(raw, escaped)
    return text + "\n"


def to_jsonl(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield jsonl_line(row)


def _guard(text: str) -> str:
    """A spreadsheet runs a cell starting with = + - @ (or tab/CR before one) as a formula:
    ``=HYPERLINK(...)`` in an actor name would become a live link. A leading apostrophe
    makes it text (OWASP "CSV injection")."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_record(values: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def csv_header() -> str:
    return _csv_record(CSV_COLUMNS)


def csv_line(row: dict[str, Any]) -> str:
    """One entry as one CSV record; ``data`` as compact JSON with sorted keys."""
    cells: list[str] = []
    for column in CSV_COLUMNS:
        value = row.get(column)
        if value is None:
            cells.append("")
        elif column == "data":
            cells.append(
                _guard(json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")))
            )
        else:
            cells.append(_guard(str(value)))
    return _csv_record(cells)


def to_csv(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The header, then one record per row (RFC 4180 CRLF line ends, as the csv module writes)."""
    yield csv_header()
    for row in rows:
        yield csv_line(row)


def _diff(drafted: str, final: str) -> str:
    """The same shape as the ``draft.edited`` audit entry's diff, so the two can be compared."""
    lines = difflib.unified_diff(
        drafted.splitlines(), final.splitlines(), "drafted", "approved", lineterm="", n=1
    )
    return "\n".join(lines)


async def sent_messages(
    session: AsyncSession,
    *,
    since: datetime | None,
    until: datetime | None,
    incident: str | None = None,
    customer: str | None = None,
    actor: str | None = None,
) -> list[dict[str, Any]]:
    """Every message that left (outbox status ``sent``), oldest first, as a manager reviews it.

    ``since``/``until`` bound ``sent_at`` (inclusive/exclusive). A reply made from a draft
    carries what was drafted, by which drafter, who approved it and when, the override
    reason and a unified diff from drafted to approved text (empty when unchanged). An
    acknowledgement has ``None`` in those fields (the keys stay, so every row has one
    shape). ``final_text`` is always the body that was actually sent. ``actor`` is the
    approver; :data:`SYSTEM_ACTOR` selects the messages codered sent by itself.
    """
    query = (
        select(
            OutboxMessage.id.label("outbox_id"),
            Incident.reference.label("incident"),
            Incident.customer_email.label("customer"),
            *(OutboxMessage.kind, OutboxMessage.sent_at, OutboxMessage.message_id),
            OutboxMessage.recipients.label("to"),
            OutboxMessage.subject,
            Draft.id.label("draft_id"),
            Draft.drafter,
            Draft.text.label("drafted_text"),
            Draft.decided_by.label("approved_by"),
            Draft.decided_at.label("approved_at"),
            Draft.override_reason,
            Draft.final_text.label("approved_text"),
            OutboxMessage.body_text.label("final_text"),
        )
        .outerjoin(Incident, Incident.id == OutboxMessage.incident_id)
        .outerjoin(Draft, Draft.outbox_id == OutboxMessage.id)
        .where(OutboxMessage.status == "sent")
        .order_by(OutboxMessage.sent_at, OutboxMessage.id)
    )
    if incident is not None:
        query = query.where(
            OutboxMessage.incident_id == (await find_incident(session, incident)).id
        )
    if customer is not None:
        query = query.where(OutboxMessage.incident_id.in_(_customer_incidents(customer)))
    if since is not None:
        query = query.where(OutboxMessage.sent_at >= since)
    if until is not None:
        query = query.where(OutboxMessage.sent_at < until)
    if actor is not None:
        by_actor = Draft.decided_by == actor
        query = query.where(
            or_(by_actor, Draft.id.is_(None)) if actor == SYSTEM_ACTOR else by_actor
        )
    result: list[dict[str, Any]] = []
    for row in (await session.execute(query)).all():
        message = row._asdict()
        approved = message.pop("approved_text")
        drafted = row.drafted_text or ""
        message.update(
            sent_at=_iso(row.sent_at),
            approved_at=_iso(row.approved_at),
            to=list(row.to),
            diff=None if row.draft_id is None else _diff(drafted, approved or drafted),
        )
        result.append(message)
    return result


async def verified_head(session: AsyncSession, entries: int) -> tuple[int, str] | None:
    """Id and hash of the ``entries``-th entry in chain order: the head that verify checked.

    Counting by position rather than taking the newest row keeps the answer right when
    another process appended after verify had finished reading."""
    if entries < 1:
        return None
    row = (
        await session.execute(
            select(AuditEntry.id, AuditEntry.hash)
            .order_by(AuditEntry.id)
            .offset(entries - 1)
            .limit(1)
        )
    ).first()
    return None if row is None else (row.id, row.hash)


async def record_export(
    db: Database,
    *,
    actor: str,
    filters: dict[str, Any],
    rows: int,
    fmt: str = "jsonl",
    output: str | None = None,
    complete: bool = True,
) -> None:
    """Append ``audit.exported``: who took which entries (the filters), how many, in what
    form and where to, and whether the export ran to its end."""
    actor = actor.strip()
    if not actor:
        raise ValueError("say who exports (--as NAME)")
    async with db.write() as session:
        await audit.append(
            session,
            "audit.exported",
            {
                "filters": filters,
                "rows": rows,
                "format": fmt,
                "output": output or "stdout",
                "complete": complete,
            },
            actor=actor,
        )
