"""One incident, start to finish, as a document a manager or the customer's account team reads.

Why it is built from the audit trail: the trail is the record nobody can quietly change, so a
timeline taken from it is one we can stand behind. The other tables only add what the trail
does not say well (message subjects, call notes, how each promise ended).

:func:`incident_report` reads once; :func:`to_markdown` and :func:`to_pdf` only format, from the
same rows (:func:`_sections`), so the two documents can never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from codered.db.models import AuditEntry, Call, Draft, InboundMessage, OutboxMessage, Promise
from codered.queries import find_incident

__all__ = [
    "FONT_CANDIDATES",
    "CallLine",
    "IncidentReport",
    "MessageLine",
    "PromiseLine",
    "TimelineEvent",
    "describe",
    "duration_words",
    "incident_report",
]

FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),  # Debian fonts-dejavu-core
    Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"),
    Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"),
)
"""Unicode TTF fonts tried in order; without any, the PDF falls back to core Helvetica."""


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    actor: str
    kind: str
    description: str


@dataclass(frozen=True)
class MessageLine:
    at: datetime | None
    direction: str
    """``in`` (from the customer) or ``out`` (from us)."""
    kind: str
    address: str
    """The sender of an inbound message, the recipients of an outbound one."""
    subject: str
    status: str


@dataclass(frozen=True)
class CallLine:
    started_at: datetime
    duration_minutes: int
    participants: tuple[str, ...]
    notes: str


@dataclass(frozen=True)
class PromiseLine:
    due_at: datetime
    stated_at: datetime
    source: str
    status: str
    settled_at: datetime | None


@dataclass(frozen=True)
class IncidentReport:
    reference: str
    customer: str
    customer_name: str
    subject: str
    category: str | None
    severity: str
    owner: str | None
    status: str
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    generated_at: datetime
    time_to_acknowledge: timedelta | None
    time_to_resolve: timedelta | None
    """None while unresolved."""
    timeline: tuple[TimelineEvent, ...]
    messages: tuple[MessageLine, ...]
    calls: tuple[CallLine, ...]
    promises: tuple[PromiseLine, ...]
    summary: str | None
    """The final text of the latest approved four-question summary, if one was approved."""
    summary_status: str | None
    """Its outbox status: ``sent``, or ``pending``/``failed`` when it has not reached SMTP."""

    def promise_counts(self) -> dict[str, int]:
        counts = {"kept": 0, "missed": 0, "open": 0, "superseded": 0}
        for promise in self.promises:
            counts[promise.status] = counts.get(promise.status, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601, durations as ``*_seconds``."""
        data: dict[str, Any] = json.loads(json.dumps(asdict(self), default=_json_value))
        data["time_to_acknowledge_seconds"] = data.pop("time_to_acknowledge")
        data["time_to_resolve_seconds"] = data.pop("time_to_resolve")
        data["promise_counts"] = self.promise_counts()
        return data


def _json_value(value: datetime | timedelta) -> str | float:
    return value.total_seconds() if isinstance(value, timedelta) else value.isoformat()


def duration_words(value: timedelta) -> str:
    """``4 min``, ``2 h 10 min``, ``1 d 3 h``; whole minutes, rounded down."""
    minutes = max(0, int(value.total_seconds() // 60))
    if minutes == 0:
        return "under 1 min"
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    parts = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "min")) if n]
    return " ".join(parts)


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _words(value: Any) -> str:
    """An audit value in a sentence: lists joined, ISO times shortened to the minute."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    text = str(value)
    if len(text) >= 16 and text[4:5] == "-" and text[10:11] == "T":
        try:
            return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M UTC")
        except ValueError:
            pass
    return text


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _fields(data: dict[str, Any]) -> _Fields:
    fields = _Fields({k: _words(v) for k, v in data.items() if v is not None})
    fields.update({f"n_{k}": str(len(v)) for k, v in data.items() if isinstance(v, list)})
    fields["on"] = f" ({fields['about'].replace('_', ' ')})" if "about" in fields else ""
    fields["edits"] = " with edits" if data.get("edited") else ""
    return fields


_TEMPLATES = {
    "incident.opened": "opened for {customer}",
    "incident.held": "held for a person: {reason}",
    "incident.escalated": "escalated by rule {rule}: {reasons}",
    "incident.moved": "moved from {from} to {to}",
    "incident.promise_moved": "promised time moved from {from} to {to}",
    "acknowledgement.queued": "acknowledgement queued to {to}, reply promised by {reply_by}",
    "mail.sent": "sent {kind} to {to}",
    "mail.deferred": "sending deferred: {error}",
    "mail.failed": "sending failed: {error}",
    "mail.retry_requested": "retry of outbox message {outbox_id} requested",
    "draft.requested": "{kind} draft {draft_id} requested",
    "draft.created": "{kind} draft {draft_id} written by {drafter}, {n_findings} finding(s)",
    "draft.failed": "{kind} draft {draft_id} failed: {reason}",
    "draft.edited": "draft {draft_id} edited",
    "draft.approved": "{kind} draft {draft_id} approved{edits}, to {to}",
    "draft.rejected": "{kind} draft {draft_id} rejected: {reason}",
    "note.added": "note{on}: {text}",
    "call.logged": "call of {duration_minutes} min with {participants}",
    "promise.stated": "promised a reply by {due_at} ({source})",
    "promise.kept": "promise due {due_at} kept",
    "promise.missed": "promise due {due_at} missed",
    "policy.violation": "{policy} policy violated (due {due})",
    "policy.cleared": "{policy} policy cleared",
    "policy.promise_lapsing": "promise due {due_at} is about to lapse",
}
"""One sentence per audit kind; ``{key}`` is a field of the entry's data (``?`` if absent)."""
_SUFFIXES = {"owner": ", owner {owner}", "because": " ({because})"}
"""Said after the sentence when the entry has the field."""


def describe(kind: str, data: dict[str, Any]) -> str:
    """One line a person understands; an unknown kind is named rather than guessed at."""
    f = _fields(data)
    c = data.get("classification")
    if kind == "decision" and isinstance(c, dict):
        text = f"classified as {c.get('severity')} {c.get('category') or 'uncategorised'}"
        text += f" (rule {f['rule']})" + (
            "" if f["action"] == "acknowledge" else f"; {f['action']}"
        )
    elif kind == "decision":
        text = "message from {from}: {action} (rule {rule})".format_map(f)
    elif kind in _TEMPLATES:
        text = _TEMPLATES[kind].format_map(f)
        text += "".join(more.format_map(f) for key, more in _SUFFIXES.items() if key in f)
    elif kind.startswith("policy."):  # a policy newer than this table: name what we know
        text = kind.removeprefix("policy.").replace("_", " ")
        text = f"{f['policy']}: {text}" if "policy" in f else text
        detail = next((f[k] for k in ("message", "reason", "detail", "due") if k in f), "")
        text += f": {detail}" if detail else ""
    else:
        text = kind
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:299] + "…"


async def incident_report(
    session: AsyncSession, reference: str, *, now: datetime
) -> IncidentReport:
    """Everything about one incident; raises :class:`LookupError` for an unknown reference."""
    i = await find_incident(session, reference)

    async def rows(model: Any, where: Any, order: Any) -> Sequence[Any]:
        return (await session.scalars(select(model).where(where).order_by(order))).all()

    audit = await rows(AuditEntry, AuditEntry.incident_id == i.id, AuditEntry.id)
    inbound = await rows(InboundMessage, InboundMessage.incident_id == i.id, InboundMessage.id)
    outbound = await rows(OutboxMessage, OutboxMessage.incident_id == i.id, OutboxMessage.id)
    calls = await rows(Call, Call.incident_id == i.id, Call.started_at)
    promises = await rows(Promise, Promise.incident_id == i.id, Promise.due_at)
    summary = (
        await session.execute(
            select(Draft.final_text, OutboxMessage.status)
            .outerjoin(OutboxMessage, OutboxMessage.id == Draft.outbox_id)
            .where(Draft.incident_id == i.id, Draft.kind == "summary", Draft.status == "approved")
            .order_by(Draft.decided_at.desc(), Draft.id.desc())
            .limit(1)
        )
    ).first()
    messages = [
        MessageLine(m.fetched_at, "in", "email", m.sender or "", m.subject or "", m.status)
        for m in inbound
    ]
    messages += [
        MessageLine(o.sent_at or o.created_at, "out", o.kind, ", ".join(o.recipients), o.subject,
                    o.status)
        for o in outbound
    ]  # fmt: skip
    messages.sort(key=lambda m: m.at or now)
    return IncidentReport(
        reference=i.reference,
        customer=i.customer_email,
        customer_name=i.customer_name,
        subject=i.subject,
        category=i.category,
        severity=i.severity,
        owner=i.owner,
        status=i.status,
        opened_at=i.opened_at,
        acknowledged_at=i.acknowledged_at,
        resolved_at=i.resolved_at,
        generated_at=now,
        time_to_acknowledge=i.acknowledged_at - i.opened_at if i.acknowledged_at else None,
        time_to_resolve=i.resolved_at - i.opened_at if i.resolved_at else None,
        timeline=tuple(
            TimelineEvent(a.at, a.actor, a.kind, describe(a.kind, a.data)) for a in audit
        ),
        messages=tuple(messages),
        calls=tuple(
            CallLine(c.started_at, c.duration_minutes, tuple(c.participants), c.notes)
            for c in calls
        ),
        promises=tuple(
            PromiseLine(p.due_at, p.stated_at, p.source, p.status, p.settled_at) for p in promises
        ),
        summary=summary[0] if summary else None,
        summary_status=summary[1] if summary else None,
    )
