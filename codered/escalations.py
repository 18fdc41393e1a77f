"""Escalation: each new incident is checked once against the rules; a hit tells the people
who talk to that customer (internal mail, an optional webhook for chat tools) before they do.

Rules are ``[policies] escalation`` (the defaults of :mod:`policies.escalation` when not
given). An account can be flagged "at risk" by ``[[accounts]] at_risk`` or by a rule with
``mark_at_risk``; every page that mentions the customer shows the flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from codered import audit
from codered.db.core import table_of
from codered.db.engine import Database
from codered.db.models import InboundMessage, Incident, PolicyEvent
from codered.notifications import queue_internal_mail_sync
from codered.policy_events import EventsOnce
from codered.recent_texts import RecentTexts
from codered.settings import Settings
from codered.webhook_payload import escalation_payload
from inbox.message import ParseError
from inbox.parse import parse_email
from policies.escalation import (
    DEFAULT_RULES,
    EscalationFacts,
    EscalationHit,
    EscalationRule,
    escalate,
    required_windows,
    rule_from_mapping,
)

__all__ = ["Escalator", "at_risk", "domain_of"]

log = logging.getLogger(__name__)
CHECK_WINDOW = timedelta(days=7)
CHECK_BATCH = 100
"""Incidents whose facts are read in one session before their checks are written."""
MAX_BATCHES = 20
"""Incidents opened longer ago than this are not checked (a first start on an old database)."""


def domain_of(email: str) -> str:
    return email.rpartition("@")[2].lower()


async def at_risk(session: AsyncSession, settings: Settings, email: str) -> bool:
    """Whether the customer's account is flagged at risk, by configuration or by a rule."""
    account = settings.account(email)
    if account is not None and account.at_risk:
        return True
    key = f"at_risk:{domain_of(email)}"
    return await session.scalar(select(PolicyEvent.id).where(PolicyEvent.key == key)) is not None


class Escalator:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        on_outbox: Callable[[], None] = lambda: None,
        webhook: Callable[..., Any] | None = None,
        texts: RecentTexts | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.texts = texts or RecentTexts()
        """Texts the pipeline parsed lately: a first message found here is not parsed again."""
        self.on_outbox = on_outbox
        self.webhook = webhook
        self._rules: dict[str, tuple[EscalationRule, ...]] = {}

    def rules(self, mailbox: str) -> tuple[EscalationRule, ...]:
        """The mailbox's escalation rules: its own, else ``[policies]``'s, else the defaults."""
        if mailbox not in self._rules:
            configured = self.settings.for_mailbox(mailbox).policies.escalation
            self._rules[mailbox] = (
                tuple(rule_from_mapping(r) for r in configured)
                if configured is not None
                else DEFAULT_RULES
            )
        return self._rules[mailbox]

    async def pending(self, now: datetime) -> list[str]:
        """Check every recent incident that has not been checked yet (bounded per pass)."""
        done: list[str] = []
        for _ in range(MAX_BATCHES):
            escalated, checked = await self._check_batch(now)
            done += escalated
            if checked < CHECK_BATCH:
                break
        return done

    async def _check_batch(self, now: datetime) -> tuple[list[str], int]:
        """Check up to CHECK_BATCH unchecked incidents; return what escalated and how many
        were looked at.

        The facts (the first message parsed again, complaint counts, flags) are read first,
        a bounded batch at a time and a few queries per batch, not per incident; only the
        checks and escalations are then written, in one short transaction. In an outage
        flood the writers that acknowledge customers must not wait behind this."""
        batch = await self.db.run_read(partial(self._read_batch, now))
        if not batch.incidents:
            return [], 0
        texts = batch.first_texts
        if batch.first_raws:
            texts = {**texts, **await asyncio.to_thread(_first_texts, batch.first_raws)}
        facts = [self._facts(batch, incident, texts) for incident in batch.incidents]
        done, payloads = await self.db.run_write(
            partial(self._write_batch, batch.incidents, facts, now)
        )
        for url, payload in payloads:
            await self._post(url, payload)
        return done, len(batch.incidents)

    def _read_batch(self, now: datetime, session: Session) -> _Batch:
        checked = select(PolicyEvent.incident_id).where(PolicyEvent.policy == "escalation_check")
        incidents = [
            _Checked(*row)
            for row in session.connection().execute(
                select(*_CHECKED_COLUMNS)
                .where(Incident.opened_at >= now - CHECK_WINDOW, Incident.id.not_in(checked))
                .order_by(Incident.id)
                .limit(CHECK_BATCH)
            )
        ]
        if not incidents:
            return _Batch([], {}, {}, {}, set())
        ids = [incident.id for incident in incidents]
        first: dict[int, int] = {
            incident_id: inbound_id
            for incident_id, inbound_id in session.connection().execute(
                select(InboundMessage.incident_id, func.min(InboundMessage.id))
                .where(InboundMessage.incident_id.in_(ids))
                .group_by(InboundMessage.incident_id)
            )
            if incident_id is not None
        }
        texts: dict[int, str] = {}
        unknown: dict[int, int] = {}
        for incident_id, inbound_id in first.items():
            text = self.texts.get(inbound_id)
            if text is None:
                unknown[inbound_id] = incident_id
            else:
                texts[incident_id] = text
        raws: dict[int, bytes | None] = {}
        if unknown:
            raws = {
                unknown[inbound_id]: raw
                for inbound_id, raw in session.execute(
                    select(InboundMessage.id, InboundMessage.raw).where(
                        InboundMessage.id.in_(list(unknown))
                    )
                )
            }
        domains = {domain_of(incident.customer_email) for incident in incidents}
        flagged_keys = session.scalars(
            select(PolicyEvent.key).where(PolicyEvent.key.in_([f"at_risk:{d}" for d in domains]))
        ).all()
        windows = {days for i in incidents for days in required_windows(self.rules(i.mailbox))}
        counts = _complaints_by_domain(session, domains, windows, now)
        flagged = {k.partition(":")[2] for k in flagged_keys}
        return _Batch(list(incidents), texts, raws, counts, flagged)

    def _facts(self, batch: _Batch, incident: _Checked, texts: dict[int, str]) -> EscalationFacts:
        domain = domain_of(incident.customer_email)
        account = self.settings.account(incident.customer_email)
        text = incident.subject
        if incident.id in texts:
            text += "\n" + texts[incident.id]
        return EscalationFacts(
            severity=incident.severity,
            category=incident.category,
            tier=account.tier if account else None,
            at_risk=bool(account is not None and account.at_risk) or domain in batch.flagged,
            text=text,
            complaints_in_window={
                days: batch.complaints.get((domain, days), 0)
                for days in required_windows(self.rules(incident.mailbox))
            },
        )

    def _write_batch(
        self,
        incidents: list[_Checked],
        facts: list[EscalationFacts],
        now: datetime,
        session: Session,
    ) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
        with audit.appending_together(session):
            return self._write_checks(incidents, facts, now, session)

    def _write_checks(
        self,
        incidents: list[_Checked],
        facts: list[EscalationFacts],
        now: datetime,
        session: Session,
    ) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
        done: list[str] = []
        payloads: list[tuple[str, dict[str, Any]]] = []
        with EventsOnce(
            session,
            [
                key
                for i in incidents
                for key in (
                    f"escalation_check:{i.reference}",
                    f"escalated:{i.reference}",
                    f"at_risk:{domain_of(i.customer_email)}",
                )
            ],
        ) as events:
            for incident, known in zip(incidents, facts, strict=True):
                key = f"escalation_check:{incident.reference}"
                if not events.once(key, "escalation_check", incident.id, {}):
                    continue  # another pass checked it meanwhile
                hits = escalate(known, self.rules(incident.mailbox))
                if hits:  # one escalation per incident, however many rules fired
                    payload = self._escalate(session, events, incident, hits, now)
                    if payload is not None:
                        done.append(f"escalated:{incident.reference}")
                        url = self.settings.for_mailbox(incident.mailbox).policies.webhook_url
                        if url:
                            payloads.append((url, payload))
        return done, payloads

    def _escalate(
        self,
        session: Session,
        events: EventsOnce,
        incident: _Checked,
        hits: list[EscalationHit],
        now: datetime,
    ) -> dict[str, Any] | None:
        key = f"escalated:{incident.reference}"
        reasons = list(dict.fromkeys(r for hit in hits for r in hit.reasons))
        data = {"rules": [hit.rule for hit in hits], "reasons": reasons}
        if not events.once(key, "escalation", incident.id, data):
            return None
        # Core, and COALESCE: ``incident`` is this pass's copy, and a person may have
        # escalated it by hand since; their time stands.
        session.connection().execute(_MARK_ESCALATED, {"incident": incident.id, "now": now})
        audit.append_sync(session, "incident.escalated", data, incident_id=incident.id)
        if any(hit.mark_at_risk for hit in hits):
            domain = domain_of(incident.customer_email)
            rule = next(hit.rule for hit in hits if hit.mark_at_risk)
            events.once(
                f"at_risk:{domain}",
                "at_risk",
                incident.id,
                {"domain": domain, "rule": rule},
            )
        copies = [address for hit in hits for address in hit.copy_to]
        notify = self.settings.for_mailbox(incident.mailbox).policies.notify
        people = [(address, "") for address in (*notify, *copies)]
        owner = self.settings.member(incident.owner)
        if owner is not None:
            people.append((owner.email, owner.display_name or owner.name))
        manager = self.settings.member(owner.manager) if owner and owner.manager else None
        if manager is not None and any(hit.notify_manager for hit in hits):
            people.append((manager.email, manager.display_name or manager.name))
        unique = list(dict.fromkeys(people))
        link = f"{self.settings.policies.desk_url.rstrip('/')}/incidents/{incident.reference}"
        if unique:
            queue_internal_mail_sync(
                session,
                self.settings,
                incident,
                key=key,
                subject=f"[{incident.reference}] Escalated: {incident.subject}",
                lines=[
                    f"{incident.customer_name} <{incident.customer_email}> "
                    f"({incident.severity}, {incident.category or 'uncategorised'}).",
                    "Why: " + "; ".join(reasons) + ".",
                    f"Owner: {incident.owner or 'nobody yet'}. Talk to them before you "
                    "contact this customer.",
                    link,
                ],
                to=unique,
            )
        return escalation_payload(
            reference=incident.reference,
            customer=incident.customer_email,
            subject=incident.subject,
            severity=incident.severity,
            category=incident.category,
            owner=incident.owner,
            reasons=reasons,
            url_to_incident=link,
        )

    async def _post(self, url: str, payload: dict[str, Any]) -> None:
        from codered.webhook import post_webhook

        poster = self.webhook or post_webhook
        result = await poster(url, payload)
        async with self.db.write() as session:
            await audit.append(
                session,
                "notification.webhook",
                {"url": url, "reference": payload.get("reference"), "result": repr(result)[:500]},
            )


@dataclass(frozen=True)
class _Checked:
    """What checking an incident needs of its row (read as plain columns, not ORM objects:
    a flood checks every complaint)."""

    id: int
    reference: str
    mailbox: str
    customer_email: str
    customer_name: str
    subject: str
    severity: str
    category: str | None
    owner: str | None


_CHECKED_COLUMNS = (
    Incident.id,
    Incident.reference,
    Incident.mailbox,
    Incident.customer_email,
    Incident.customer_name,
    Incident.subject,
    Incident.severity,
    Incident.category,
    Incident.owner,
)

_INCIDENTS = table_of(Incident)
_MARK_ESCALATED = (
    update(_INCIDENTS)
    .where(_INCIDENTS.c.id == bindparam("incident"))
    .values(
        escalated_at=func.coalesce(
            _INCIDENTS.c.escalated_at, bindparam("now", type_=_INCIDENTS.c.escalated_at.type)
        )
    )
)
"""Set ``escalated_at`` unless a person already did; one statement object, compiled once."""


@dataclass
class _Batch:
    """What one escalation pass read for its incidents, before parsing and deciding."""

    incidents: list[_Checked]
    first_texts: dict[int, str]
    """Incident id → the new text of its first message, where the pipeline remembered it."""
    first_raws: dict[int, bytes | None]
    """Incident id → the raw bytes of its first message, for the others."""
    complaints: dict[tuple[str, int], int]
    """(domain, days) → incidents opened from that domain within that many days."""
    flagged: set[str]
    """Domains flagged at risk by an earlier escalation."""


def _first_texts(raws: dict[int, bytes | None]) -> dict[int, str]:
    """The new text of each incident's first message; one that no longer parses (it was
    parsed once, when it arrived) simply contributes nothing."""
    texts: dict[int, str] = {}
    for incident_id, raw in raws.items():
        if raw:
            with contextlib.suppress(ParseError):
                texts[incident_id] = parse_email(raw).new_text
    return texts


def _complaints_by_domain(
    session: Session, domains: set[str], windows: set[int], now: datetime
) -> dict[tuple[str, int], int]:
    """How many incidents each of ``domains`` opened within each of ``windows`` days: one
    query for the whole batch instead of a scan of the incidents per incident and window."""
    if not domains or not windows:
        return {}
    rows = session.execute(
        select(Incident.customer_email, Incident.opened_at).where(
            Incident.opened_at >= now - timedelta(days=max(windows)),
            or_(*(Incident.customer_email.like(f"%@{domain}") for domain in sorted(domains))),
        )
    ).all()
    counts: dict[tuple[str, int], int] = {}
    for email, opened_at in rows:
        domain = domain_of(email)
        for days in windows:
            if domain in domains and opened_at >= now - timedelta(days=days):
                counts[domain, days] = counts.get((domain, days), 0) + 1
    return counts
