"""What the review desk shows: the queue of what needs a person now, and one incident whole.

Plain dicts, JSON-ready, shared by the HTML pages and the JSON API.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from codered.db.models import (
    Call,
    DeadLetter,
    Draft,
    InboundMessage,
    Incident,
    OutboxMessage,
    PolicyEvent,
)
from codered.draft_queries import draft_detail, model_usage
from codered.escalations import at_risk
from codered.notes import list_notes
from codered.queries import find_incident, incident_dict, iso
from codered.settings import Settings

__all__ = ["PROMISE_WARNING", "incident_page", "mark_at_risk", "work_queue"]

PROMISE_WARNING = timedelta(hours=1)
"""An incident whose promised time is this close (or passed) is in the queue."""
_PROMISING = ("acknowledged", "gathering_facts", "investigating", "resolving")


def _row(
    kind: str,
    due: datetime,
    now: datetime,
    reference: str | None,
    title: str,
    detail: str,
    link: str,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "due": iso(due),
        "minutes_left": int((due - now).total_seconds() // 60),
        "reference": reference,
        "title": title,
        "detail": detail,
        "link": link,
    }


async def work_queue(
    session: AsyncSession, now: datetime, limit: int = 200, settings: Settings | None = None
) -> list[dict[str, Any]]:
    """Everything waiting for a person, most urgent first."""
    rows: list[dict[str, Any]] = []
    drafts = await session.execute(
        select(Draft, Incident)
        .join(Incident, Incident.id == Draft.incident_id)
        .where(Draft.status.in_(("pending", "failed", "requested", "drafting")))
        .order_by(Draft.id)
        .limit(limit)
    )
    for draft, incident in drafts.all():
        blocking = sum(1 for f in draft.findings if f.get("severity") == "blocking")
        if draft.status == "pending":
            detail = f"{draft.kind} draft waiting for approval"
            if draft.requested_by == "policy:promises":
                detail = "URGENT: a promised time is about to pass; delay notice " + detail[6:]
            detail += f", {blocking} blocking finding(s)" if blocking else ""
            kind = "draft"
        elif draft.status == "failed":
            kind, detail = "draft_failed", f"{draft.kind} draft failed: {draft.error or ''}"
        else:
            kind, detail = "drafting", f"{draft.kind} draft is being written"
        rows.append(
            _row(
                kind,
                incident.reply_by,
                now,
                incident.reference,
                incident.subject,
                detail,
                f"/incidents/{incident.reference}#draft-{draft.id}",
            )
        )
    events = await session.execute(
        select(PolicyEvent, Incident)
        .join(Incident, Incident.id == PolicyEvent.incident_id)
        .where(
            PolicyEvent.policy.in_(("call_followup", "update_cadence")),
            PolicyEvent.key.notlike("update_due:%"),
            PolicyEvent.cleared_at.is_(None),
        )
        .order_by(PolicyEvent.id)
        .limit(limit)
    )
    for event, incident in events.all():
        due = datetime.fromisoformat(str(event.data.get("due")))
        if event.policy == "call_followup":
            detail = "overdue: no email yet after the call"
        else:
            detail = "overdue: the scheduled update was not sent"
        rows.append(
            _row(
                "overdue",
                due,
                now,
                incident.reference,
                incident.subject,
                detail,
                f"/incidents/{incident.reference}",
            )
        )
    promised = await session.scalars(
        select(Incident)
        .where(Incident.status.in_(_PROMISING), Incident.reply_by <= now + PROMISE_WARNING)
        .order_by(Incident.reply_by)
        .limit(limit)
    )
    for incident in promised:
        late = incident.reply_by <= now
        detail = "promised time passed" if late else "promised time is close"
        rows.append(
            _row(
                "promise_passed" if late else "promise_close",
                incident.reply_by,
                now,
                incident.reference,
                incident.subject,
                detail,
                f"/incidents/{incident.reference}",
            )
        )
    held = await session.scalars(
        select(Incident).where(Incident.status == "held").order_by(Incident.id).limit(limit)
    )
    for incident in held:
        rows.append(
            _row(
                "held",
                incident.opened_at,
                now,
                incident.reference,
                incident.subject,
                f"held for a person: {incident.held_reason or ''}",
                f"/incidents/{incident.reference}",
            )
        )
    failed = await session.execute(
        select(OutboxMessage, Incident.reference)
        .outerjoin(Incident, Incident.id == OutboxMessage.incident_id)
        .where(OutboxMessage.status == "failed")
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    for out, reference in failed.all():
        link = f"/incidents/{reference}" if reference else "/"
        rows.append(
            _row(
                "send_failed",
                out.created_at,
                now,
                reference,
                out.subject,
                f"sending failed: {out.last_error or ''}",
                link,
            )
        )
    dead = await session.scalars(
        select(DeadLetter).where(DeadLetter.status == "open").order_by(DeadLetter.id).limit(limit)
    )
    for letter in dead:
        title = f"dead letter {letter.id} in {letter.mailbox}"
        rows.append(_row("dead_letter", letter.created_at, now, None, title, letter.reason, "/"))
    rows.sort(key=lambda r: r["due"] or "")
    await mark_at_risk(session, settings, rows)
    return rows[:limit]


async def mark_at_risk(
    session: AsyncSession, settings: Settings | None, rows: list[dict[str, Any]]
) -> None:
    """Add ``at_risk`` to each row that names an incident (the flag shows on every page)."""
    references = {r["reference"] for r in rows if r.get("reference")}
    if settings is None or not references:
        return
    emails = dict(
        (
            await session.execute(
                select(Incident.reference, Incident.customer_email).where(
                    Incident.reference.in_(references)
                )
            )
        ).all()
    )
    flagged: dict[str, bool] = {}
    for email in set(emails.values()):
        flagged[email] = await at_risk(session, settings, email)
    for row in rows:
        row["at_risk"] = flagged.get(emails.get(row.get("reference") or "", ""), False)


async def incident_page(
    session: AsyncSession, reference: str, settings: Settings | None = None
) -> dict[str, Any]:
    """One incident for the desk: thread, classification, promises, notes, calls, drafts."""
    incident = await find_incident(session, reference)
    inbound = (
        await session.scalars(
            select(InboundMessage)
            .where(InboundMessage.incident_id == incident.id)
            .order_by(InboundMessage.id)
        )
    ).all()
    outbound = (
        await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.incident_id == incident.id)
            .order_by(OutboxMessage.id)
        )
    ).all()
    thread: list[dict[str, Any]] = [
        {
            "direction": "in",
            "id": m.id,
            "at": iso(m.fetched_at),
            "from": m.sender,
            "subject": m.subject,
            "decision": m.decision,
        }
        for m in inbound
    ]
    thread += [
        {
            "direction": "out",
            "id": o.id,
            "at": iso(o.sent_at or o.created_at),
            "from": o.envelope_from,
            "to": list(o.recipients),
            "subject": o.subject,
            "text": o.body_text,
            "kind": o.kind,
            "status": o.status,
            "smtp_reply": o.smtp_reply,
            "last_error": o.last_error,
        }
        for o in outbound
    ]
    thread.sort(key=lambda m: m["at"] or "")
    calls = (
        await session.scalars(select(Call).where(Call.incident_id == incident.id).order_by(Call.id))
    ).all()
    draft_ids = (
        await session.scalars(
            select(Draft.id).where(Draft.incident_id == incident.id).order_by(Draft.id.desc())
        )
    ).all()
    first_decision = inbound[0].decision if inbound else None
    return {
        **incident_dict(incident),
        "owner": incident.owner,
        "at_risk": settings is not None
        and await at_risk(session, settings, incident.customer_email),
        "decision": first_decision,
        "thread": thread,
        "notes": [
            {
                "id": n.id,
                "about": n.about,
                "author": n.author,
                "at": iso(n.created_at),
                "text": n.text,
            }
            for n in await list_notes(session, incident.id)
        ],
        "calls": [
            {
                "id": c.id,
                "started_at": iso(c.started_at),
                "duration_minutes": c.duration_minutes,
                "participants": list(c.participants),
                "notes": c.notes,
                "logged_by": c.logged_by,
            }
            for c in calls
        ],
        "drafts": [await draft_detail(session, draft_id) for draft_id in draft_ids],
        "model_usage": await model_usage(session, incident.id),
    }
