"""Gathering what a drafter may know about one incident, from the database.

Facts are the notes CSMs recorded; the thread is every inbound message of the
incident (its new text, quotes removed) and everything we sent; times are
computed here by the same timeline policy the acknowledgement uses, and
formatted for the customer, so a drafter never chooses a deadline.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from codered.db.models import InboundMessage, Incident, OutboxMessage
from codered.notes import list_notes
from codered.settings import Settings
from drafting.context import DraftContext, Fact, ThreadMessage
from drafting.kinds import DraftKind
from inbox.message import ParseError
from inbox.parse import parse_email
from mailer.acknowledgement import format_reply_by, greeting_name
from policies.model import Severity
from policies.sections import Question
from policies.timeline import customer_zone, reply_by

__all__ = ["GatheredContext", "gather_context"]

MAX_THREAD_MESSAGES = 50
"""Newest messages read from storage; the prompt budget may keep fewer."""


@dataclass(frozen=True)
class GatheredContext:
    context: DraftContext
    promise_at: datetime | None
    """The time the draft will state as our next message (update, summary, recap, delay)."""


async def _thread(session: AsyncSession, incident: Incident) -> list[ThreadMessage]:
    inbound = (
        await session.scalars(
            select(InboundMessage)
            .where(InboundMessage.incident_id == incident.id, InboundMessage.raw.is_not(None))
            .order_by(InboundMessage.id.desc())
            .limit(MAX_THREAD_MESSAGES)
        )
    ).all()
    sent = (
        await session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.incident_id == incident.id,
                OutboxMessage.kind.notlike("internal.%"),  # our own team's mail is not the thread
            )
            .order_by(OutboxMessage.id.desc())
            .limit(MAX_THREAD_MESSAGES)
        )
    ).all()
    messages: list[ThreadMessage] = []
    for row in inbound:
        assert row.raw is not None
        try:
            email = await asyncio.to_thread(parse_email, row.raw)
        except ParseError:
            continue  # it was processed once, so this is rare; the thread goes on without it
        messages.append(
            ThreadMessage(
                at=row.fetched_at,
                from_customer=True,
                sender=email.sender.email if email.sender else "",
                subject=email.subject,
                text=email.new_text,
            )
        )
    for out in sent:
        messages.append(
            ThreadMessage(
                at=out.sent_at or out.created_at,
                from_customer=False,
                sender=out.envelope_from,
                subject=out.subject,
                text=out.body_text,
            )
        )
    messages.sort(key=lambda m: m.at)
    return messages[-MAX_THREAD_MESSAGES:]


def _signature(settings: Settings, incident: Incident) -> str:
    """Signed by the owner CSM where we know them: someone in the customer's corner."""
    owner = settings.member(incident.owner)
    who = (owner.display_name or owner.name) if owner else settings.sender_name(incident.mailbox)
    return f"Kind regards,\n{who}\n{settings.company.name}"


async def gather_context(
    session: AsyncSession,
    settings: Settings,
    incident: Incident,
    kind: DraftKind,
    *,
    now: datetime,
    source_text: str = "",
) -> GatheredContext:
    settings = settings.for_mailbox(incident.mailbox)
    calendar = settings.company.calendar()
    tz = customer_zone(incident.customer_utc_offset_minutes, calendar.tz)

    def shown(moment: datetime) -> str:
        return format_reply_by(moment, tz, "en")

    notes = await list_notes(session, incident.id)
    facts = tuple(
        Fact(
            text=n.text,
            author=n.author,
            at=n.created_at,
            about=Question(n.about) if n.about in set(Question) else None,
        )
        for n in notes
    )
    thread = [
        ThreadMessage(m.at, m.from_customer, m.sender, m.subject, m.text, when=shown(m.at))
        for m in await _thread(session, incident)
    ]
    timeline = settings.timeline
    next_time = reply_by(
        now, Severity(incident.severity), calendar, timeline.targets(), timeline.buffer
    )
    missed = new = None
    promise: datetime | None = next_time
    if kind is DraftKind.DELAY:
        missed = incident.reply_by
        if next_time <= missed:
            next_time = reply_by(
                missed, Severity(incident.severity), calendar, timeline.targets(), timeline.buffer
            )
        new, promise = next_time, next_time
    elif kind is DraftKind.REWRITE:
        promise = None
    name = greeting_name(incident.customer_name, incident.customer_email)
    mailbox = settings.mailbox(incident.mailbox)
    context = DraftContext(
        kind=kind,
        reference=incident.reference,
        company_name=settings.company.name,
        customer_name=incident.customer_name,
        customer_email=incident.customer_email,
        greeting=f"Hello {name}," if name else "Hello,",
        signature=_signature(settings, incident),
        language=incident.language,
        category=incident.category,
        severity=incident.severity,
        subject=incident.subject,
        facts=facts,
        thread=tuple(thread),
        next_update_at=shown(next_time)
        if kind not in (DraftKind.DELAY, DraftKind.REWRITE)
        else None,
        new_time=shown(new) if new else None,
        missed_time=shown(missed) if missed else None,
        source_text=source_text,
        extra_known=(mailbox.address,),
    )
    return GatheredContext(context, promise)
