"""Policies on a clock: an email after every call, updates on a cadence, promises kept,
escalation. It runs inside ``codered run`` every ``[policies] clock_seconds``.

Each pass reads the state, decides, and does each thing at most once: every
action is recorded as a :class:`~codered.db.models.PolicyEvent` with a unique
key (``update_due:CR-1042:2026-12-01T14:00``), checked and written in the same
transaction as the action, so a second pass, a restart or a second process
never drafts twice or notifies twice. Time comes from an injectable clock, so
tests move it; business hours, weekends, holidays and zones come from the
company calendar, as for acknowledgements.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from codered import audit
from codered.db.engine import Database
from codered.db.models import Call, Draft, Incident, OutboxMessage, PolicyEvent, Promise, utcnow
from codered.drafts import request_draft
from codered.escalations import Escalator
from codered.job_leases import claim_lease
from codered.leaseholders import worker_identity
from codered.lifecycle import OPEN_STATES
from codered.notifications import queue_internal_mail
from codered.policy_events import once
from codered.settings import Settings
from drafting.kinds import DraftKind
from policies.model import Severity
from policies.timeline import Target, add_business_time

__all__ = ["CLOCK_LEASE", "PolicyClock", "due_after", "once"]

CLOCK_LEASE = "policy_clock"

log = logging.getLogger(__name__)


def due_after(start: datetime, target: Target, settings: Settings) -> datetime:
    """``start`` plus ``target``, in business time where the target says so."""
    calendar = settings.company.calendar()
    span = target.duration(calendar)
    return add_business_time(start, span, calendar) if target.business else start + span


async def _last_sent(
    session: AsyncSession, incident_id: int, *, human: bool = False
) -> datetime | None:
    """When we last wrote to the customer of this incident: any message, or with ``human``
    only replies a person approved (the template acknowledgement documents no call)."""
    kinds = (
        OutboxMessage.kind.like("reply.%") if human else OutboxMessage.kind.notlike("internal.%")
    )
    return await session.scalar(
        select(func.max(OutboxMessage.sent_at)).where(
            OutboxMessage.incident_id == incident_id, OutboxMessage.status == "sent", kinds
        )
    )


async def _clear_missed_updates(
    session: AsyncSession, incident: Incident, last: datetime, now: datetime
) -> list[str]:
    """A message went out after a missed update: the violation stays recorded, but it no
    longer waits in the queue."""
    cleared = []
    events = await session.scalars(
        select(PolicyEvent).where(
            PolicyEvent.incident_id == incident.id,
            PolicyEvent.key.like("update_missed:%"),
            PolicyEvent.cleared_at.is_(None),
        )
    )
    for event in events:
        if last > datetime.fromisoformat(str(event.data.get("last_sent"))):
            event.cleared_at = now
            cleared.append(f"clear:{event.key}")
    return cleared


class PolicyClock:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_outbox: Callable[[], None] = lambda: None,
        escalator: Escalator | None = None,
        identity: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.on_outbox = on_outbox
        self.escalator = escalator or Escalator(db, settings, on_outbox=on_outbox)
        self.identity = identity or worker_identity()

    @property
    def lease_seconds(self) -> float:
        """Long enough to outlast a slow pass; short enough that a dead holder is replaced
        within a couple of minutes."""
        return self.settings.policies.clock_seconds * 3 + 60

    async def _holds_lease(self, now: datetime) -> bool:
        """Claim or renew the clock's lease; False while another live process holds it."""
        return await claim_lease(
            self.db, CLOCK_LEASE, self.identity, now=now, seconds=self.lease_seconds
        )

    def _longest_lead(self) -> timedelta:
        leads = [
            self.settings.for_mailbox(m.name).policies.promise_lead_minutes
            for m in self.settings.mailboxes
        ]
        return timedelta(minutes=max([self.settings.policies.promise_lead_minutes, *leads]))

    async def escalate_new(self) -> list[str]:
        """Only the escalation check of new incidents (the service runs it as soon as an
        incident opens; everything else waits for the next :meth:`tick`)."""
        now = self.clock()
        if not await self._holds_lease(now):
            return []
        done = await self.escalator.pending(now)
        if done:
            self.on_outbox()
        return done

    async def tick(self) -> list[str]:
        """One pass of every policy, when this process holds the clock's lease (one process
        at a time runs it; the others stand by); returns the keys of what it did."""
        now = self.clock()
        if not await self._holds_lease(now):
            return []
        done: list[str] = []
        for step in (self._calls, self._cadence, self._promises, self.escalator.pending):
            try:
                done += await step(now)
            except Exception:  # one broken policy must not stop the others
                log.exception("policy step %s failed; it runs again next time", step.__name__)
        if any(not key.startswith("clear") for key in done):
            self.on_outbox()
        return done

    # --- an email after every call ------------------------------------------------------

    async def _calls(self, now: datetime) -> list[str]:
        done: list[str] = []
        async with self.db.write() as session:
            rows = (
                await session.execute(
                    select(Call, Incident)
                    .join(Incident, Incident.id == Call.incident_id)
                    .where(Call.started_at >= now - timedelta(days=30))
                )
            ).all()
            for call, incident in rows:
                ended = call.started_at + timedelta(minutes=call.duration_minutes)
                last = await _last_sent(session, incident.id, human=True)
                followed = last is not None and last >= ended
                key = f"call_overdue:{call.id}"
                if followed:
                    cleared = await session.scalar(
                        select(PolicyEvent).where(
                            PolicyEvent.key == key, PolicyEvent.cleared_at.is_(None)
                        )
                    )
                    if cleared is not None:
                        cleared.cleared_at = now
                        await audit.append(
                            session,
                            "policy.cleared",
                            {"policy": "call_followup", "call_id": call.id},
                            incident_id=incident.id,
                        )
                        done.append(f"clear:{key}")
                    continue
                local = self.settings.for_mailbox(incident.mailbox)
                due = due_after(ended, Target.parse(local.policies.call_followup), local)
                if now < due:
                    continue
                data = {"call_id": call.id, "due": due.isoformat(), "ended": ended.isoformat()}
                if not await once(session, key, "call_followup", incident.id, data):
                    continue
                await audit.append(
                    session,
                    "policy.violation",
                    {"policy": "call_followup", **data},
                    incident_id=incident.id,
                )
                await self._tell_owner(
                    session,
                    incident,
                    key,
                    f"[{incident.reference}] No email yet after the call with "
                    f"{incident.customer_email}",
                    [
                        f"A call ended at {ended:%Y-%m-%d %H:%M} UTC and no email reached the "
                        f"customer within {local.policies.call_followup} "
                        f"(due {due:%H:%M} UTC).",
                        "The call recap draft is waiting in the queue: approve it, "
                        "or write to them.",
                    ],
                )
                done.append(key)
        return done

    async def _tell_owner(
        self, session: AsyncSession, incident: Incident, key: str, subject: str, lines: list[str]
    ) -> None:
        owner = self.settings.member(incident.owner)
        people = [owner] if owner else []
        manager = self.settings.member(owner.manager) if owner and owner.manager else None
        if manager:
            people.append(manager)
        if not people:
            log.warning("%s: nobody to notify (no owner in [[team]])", incident.reference)
            return
        link = f"{self.settings.policies.desk_url.rstrip('/')}/incidents/{incident.reference}"
        await queue_internal_mail(
            session,
            self.settings,
            incident,
            key=key,
            subject=subject,
            lines=[*lines, link],
            to=[(p.email, p.display_name or p.name) for p in people],
        )

    # --- updates on a cadence -----------------------------------------------------------

    async def _cadence(self, now: datetime) -> list[str]:
        """Updates on a cadence. What is due is worked out in one read (the last message to
        each open incident's customer in a single grouped query); only incidents with
        something to do take part in the short write that follows."""
        done: list[str] = []
        async with self.db.read() as session:
            open_ids = select(Incident.id).where(Incident.status.in_(OPEN_STATES))
            incidents = (
                await session.scalars(select(Incident).where(Incident.id.in_(open_ids)))
            ).all()
            last_sent = dict(
                (
                    await session.execute(
                        select(OutboxMessage.incident_id, func.max(OutboxMessage.sent_at))
                        .where(
                            OutboxMessage.incident_id.in_(open_ids),
                            OutboxMessage.status == "sent",
                            OutboxMessage.kind.notlike("internal.%"),
                        )
                        .group_by(OutboxMessage.incident_id)
                    )
                ).all()
            )
            missed_open = set(
                (
                    await session.scalars(
                        select(PolicyEvent.incident_id).where(
                            PolicyEvent.key.like("update_missed:%"),
                            PolicyEvent.cleared_at.is_(None),
                        )
                    )
                ).all()
            )
        work: list[tuple[Incident, datetime, datetime, datetime]] = []
        for incident in incidents:
            last = last_sent.get(incident.id)
            if last is None:
                continue  # nothing sent yet: the acknowledgement is on its way
            local = self.settings.for_mailbox(incident.mailbox)
            lead = timedelta(minutes=local.policies.update_lead_minutes)
            due = due_after(last, local.policies.cadence()[Severity(incident.severity)], local)
            if incident.id in missed_open or now >= due - lead:
                work.append((incident, last, due, due - lead))
        if not work:
            return done
        async with self.db.write() as session:
            for incident, last, due, prepare_at in work:
                done += await _clear_missed_updates(session, incident, last, now)
                stamp = due.strftime("%Y-%m-%dT%H:%M")
                if now >= prepare_at:
                    key = f"update_due:{incident.reference}:{stamp}"
                    data = {"due": due.isoformat()}
                    if await once(session, key, "update_cadence", incident.id, data):
                        done.append(key)
                if now >= due:
                    key = f"update_missed:{incident.reference}:{stamp}"
                    data = {
                        "policy": "update_cadence",
                        "due": due.isoformat(),
                        "last_sent": last.isoformat(),
                    }
                    if await once(session, key, "update_cadence", incident.id, data):
                        await audit.append(
                            session, "policy.violation", data, incident_id=incident.id
                        )
                        done.append(key)
        for key in done:
            if key.startswith("update_due:"):
                reference = key.split(":")[1]
                await request_draft(self.db, reference, DraftKind.UPDATE, actor="policy:cadence")
        return done

    # --- promises kept ------------------------------------------------------------------

    async def _promises(self, now: datetime) -> list[str]:
        done: list[str] = []
        delays: list[str] = []
        async with self.db.write() as session:
            rows = (
                await session.execute(
                    select(Promise, Incident)
                    .join(Incident, Incident.id == Promise.incident_id)
                    # Only promises close to their time: a flood's thousand fresh ones wait.
                    .where(Promise.status == "open", Promise.due_at <= now + self._longest_lead())
                )
            ).all()
            for promise, incident in rows:
                if incident.status == "closed":
                    continue
                if now >= promise.due_at:
                    promise.status, promise.settled_at = "missed", now
                    data = {
                        "promise_id": promise.id,
                        "due_at": promise.due_at.isoformat(),
                        "reason": "nothing was sent by then",
                    }
                    await audit.append(session, "promise.missed", data, incident_id=incident.id)
                    done.append(f"promise_missed:{promise.id}")
                    continue
                local = self.settings.for_mailbox(incident.mailbox)
                lead = timedelta(minutes=local.policies.promise_lead_minutes)
                if now < promise.due_at - lead:
                    continue
                answered = await session.scalar(
                    select(func.count())
                    .select_from(Draft)
                    .where(
                        Draft.incident_id == incident.id,
                        Draft.status == "approved",
                        Draft.decided_at >= promise.stated_at,
                    )
                )
                if answered:
                    continue  # a reply is on its way
                key = f"promise_lapsing:{promise.id}"
                data = {"promise_id": promise.id, "due_at": promise.due_at.isoformat()}
                if await once(session, key, "promises", incident.id, data):
                    await audit.append(
                        session, "policy.promise_lapsing", data, incident_id=incident.id
                    )
                    delays.append(incident.reference)
                    done.append(key)
        for reference in delays:
            await request_draft(self.db, reference, DraftKind.DELAY, actor="policy:promises")
        return done
