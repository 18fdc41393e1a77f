"""What a decision to acknowledge (or hold) creates: the incident, its acknowledgement
in the outbox, the promise it states, and their audit entries, in the caller's transaction.

Kept apart from :mod:`codered.pipeline`, which decides and batches; this module knows how
an incident is opened and worded for its mailbox (its calendar, timeline, owner team,
template and company name).

Every row is written at once with a Core statement (:mod:`codered.db.core`), not through
the ORM's unit of work: this runs for every complaint of a flood.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy.orm import Session

from codered import audit
from codered.db.core import insert_row, update_row
from codered.db.models import Incident, OutboxMessage
from codered.outbox_rows import outbox_values
from codered.owners import assign_owner
from codered.promises import record_promise_sync
from codered.settings import Settings
from codered.threads import find_thread_incident_sync
from inbox.language import detect_language
from inbox.message import EmailAddress, InboundEmail
from mailer.acknowledgement import normalize_language
from mailer.compose import AcknowledgementFacts, ComposedMessage, compose_acknowledgement
from policies.model import Action, Category, Decision, Severity
from policies.timeline import BusinessCalendar, customer_zone, reply_by

__all__ = ["InboundRow", "IncidentOpener", "OpenedIncident"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundRow:
    """The inbound row being recorded: what opening an incident needs of it."""

    id: int
    mailbox: str
    uid: int


@dataclass(frozen=True)
class OpenedIncident:
    """The incident a decision concerns, as the recorder needs it."""

    id: int
    reference: str


@dataclass(frozen=True)
class _NewIncident:
    """What :meth:`IncidentOpener._open` wrote, for composing the acknowledgement."""

    id: int
    reference: str
    mailbox: str
    category: str | None
    severity: str
    language: str
    reply_by: datetime
    utc_offset_minutes: int | None
    acknowledged_at: datetime | None


class IncidentOpener:
    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self._calendars = {
            m.name: settings.for_mailbox(m.name).company.calendar() for m in settings.mailboxes
        }
        self._calendars[""] = settings.company.calendar()

    def _calendar(self, mailbox: str) -> BusinessCalendar:
        """The mailbox's business calendar (its own hours and zone where it sets them)."""
        return self._calendars.get(mailbox, self._calendars[""])

    def apply(
        self,
        session: Session,
        inbound: InboundRow,
        email: InboundEmail,
        decision: Decision,
        language: str | None = None,
    ) -> OpenedIncident | None:
        """The incident ``decision`` concerns: the thread's for an attach, a new one for an
        acknowledgement (with its outbox row and promise) or a hold, else None.
        ``language`` is the one detected when the message was parsed (None: detect it now).

        Synchronous: it runs inside the pipeline's batch transaction on a worker thread."""
        if decision.action is Action.ATTACH:
            found = find_thread_incident_sync(session, email)
            return OpenedIncident(found.id, found.reference) if found is not None else None
        if decision.action not in (Action.ACKNOWLEDGE, Action.HOLD):
            return None
        if decision.action is Action.HOLD:
            held = self._open(session, inbound, email, decision, language, held=True)
            audit.append_sync(
                session,
                "incident.held",
                {"rule": decision.deciding_rule, "reason": decision.reason},
                incident_id=held.id,
            )
            if decision.deciding_rule == "global_circuit_breaker":
                audit.append_sync(session, "alert.circuit_breaker", {"reason": decision.reason})
                log.error("automatic acknowledgements stopped: %s", decision.reason)
            return OpenedIncident(held.id, held.reference)
        incident = self._open(session, inbound, email, decision, language, held=False)
        composed = self._compose(email, incident)
        now = incident.acknowledged_at
        assert now is not None
        ack_id = insert_row(
            session,
            OutboxMessage,
            outbox_values(
                composed,
                incident_id=incident.id,
                kind="acknowledgement",
                mailbox=inbound.mailbox,
                due=now,
            ),
        )
        record_promise_sync(
            session,
            incident_id=incident.id,
            due_at=incident.reply_by,
            stated_at=now,
            source="acknowledgement",
            outbox_id=ack_id,
        )
        audit.append_sync(
            session,
            "acknowledgement.queued",
            {
                "message_id": composed.message_id,
                "to": list(composed.recipients),
                "subject": composed.subject,
                "reply_by": incident.reply_by.isoformat(),
            },
            incident_id=incident.id,
        )
        return OpenedIncident(incident.id, incident.reference)

    def _open(
        self,
        session: Session,
        inbound: InboundRow,
        email: InboundEmail,
        decision: Decision,
        language: str | None,
        *,
        held: bool,
    ) -> _NewIncident:
        classification = decision.classification
        assert classification is not None and email.reply_address is not None
        received = self.clock()
        local = self.settings.for_mailbox(inbound.mailbox)
        promised = reply_by(
            received,
            classification.severity,
            self._calendar(inbound.mailbox),
            local.timeline.targets(),
            buffer=local.timeline.buffer,
        )
        offset = email.date.utcoffset() if email.date else None
        offset_minutes = int(offset.total_seconds() // 60) if offset is not None else None
        customer = email.reply_address.email
        category = classification.category.value if classification.category else None
        if language is None:
            language = detect_language(email.new_text)
        incident_id = insert_row(
            session,
            Incident,
            {
                # Unique until the id is known: the reference is made from it just below.
                "reference": f"new-{uuid.uuid4().hex[:24]}",
                "mailbox": inbound.mailbox,
                "customer_email": customer,
                "customer_name": email.reply_address.name[:256],
                "subject": email.subject[:2000],
                "category": category,
                "severity": classification.severity.value,
                "confidence": classification.confidence,
                "language": language,
                "status": "held" if held else "acknowledged",
                "held_reason": decision.reason if held else None,
                "opened_at": received,
                "reply_by": promised,
                "customer_utc_offset_minutes": offset_minutes,
            },
        )
        reference = f"{self.settings.limits.reference_prefix}-{1000 + incident_id}"
        owner = assign_owner(local, customer, incident_id)
        # Acknowledged now: its outbox row is written in this same transaction.
        acknowledged = None if held else self.clock()
        update_row(
            session,
            Incident,
            incident_id,
            {
                "reference": reference,
                "owner": owner,
                "status_changed_at": received,
                "acknowledged_at": acknowledged,
            },
        )
        audit.append_sync(
            session,
            "incident.opened",
            {
                "reference": reference,
                "customer": customer,
                "category": category,
                "severity": classification.severity.value,
                "confidence": classification.confidence,
                "reply_by": promised.isoformat(),
                "signals": list(classification.signals),
                "classified_by": classification.source,
                "owner": owner,
            },
            incident_id=incident_id,
        )
        return _NewIncident(
            incident_id,
            reference,
            inbound.mailbox,
            category,
            classification.severity.value,
            language,
            promised,
            offset_minutes,
            acknowledged,
        )

    def _compose(self, email: InboundEmail, incident: _NewIncident) -> ComposedMessage:
        assert email.reply_address is not None
        mailbox = self.settings.mailbox(incident.mailbox)
        from_address = EmailAddress(
            mailbox.address.lower(), self.settings.sender_name(mailbox.name)
        )
        return compose_acknowledgement(
            AcknowledgementFacts(
                reference=incident.reference,
                customer=email.reply_address,
                original_subject=email.subject,
                original_message_id=email.message_id,
                original_references=email.references,
                category=Category(incident.category) if incident.category else None,
                severity=Severity(incident.severity),
                reply_by=incident.reply_by,
                display_tz=self._display_tz(incident),
                language=incident.language,
                company_name=self.settings.for_mailbox(mailbox.name).company.name,
                from_address=from_address,
                template=mailbox.acknowledgement_template(normalize_language(incident.language)),
            ),
            now=self.clock(),
        )

    def _display_tz(self, incident: _NewIncident) -> tzinfo:
        zone = self._calendar(incident.mailbox).tz
        return customer_zone(incident.utc_offset_minutes, zone)
