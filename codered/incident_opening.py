"""What a decision to acknowledge (or hold) creates: the incident, its acknowledgement
in the outbox, the promise it states, and their audit entries, in the caller's transaction.

Kept apart from :mod:`codered.pipeline`, which decides and batches; this module knows how
an incident is opened and worded for its mailbox (its calendar, timeline, owner team,
template and company name).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, tzinfo

from sqlalchemy.orm import Session

from codered import audit
from codered.db.models import InboundMessage, Incident
from codered.outbox import outbox_row
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

__all__ = ["IncidentOpener"]

log = logging.getLogger(__name__)


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
        self, session: Session, row: InboundMessage, email: InboundEmail, decision: Decision
    ) -> Incident | None:
        """The incident ``decision`` concerns: the thread's for an attach, a new one for an
        acknowledgement (with its outbox row and promise) or a hold, else None.

        Synchronous: it runs inside the pipeline's batch transaction on a worker thread."""
        if decision.action is Action.ATTACH:
            return find_thread_incident_sync(session, email)
        if decision.action not in (Action.ACKNOWLEDGE, Action.HOLD):
            return None
        incident = self._open(session, row, email, decision)
        if decision.action is Action.HOLD:
            incident.status = "held"
            incident.held_reason = decision.reason
            audit.append_sync(
                session,
                "incident.held",
                {"rule": decision.deciding_rule, "reason": decision.reason},
                incident_id=incident.id,
            )
            if decision.deciding_rule == "global_circuit_breaker":
                audit.append_sync(session, "alert.circuit_breaker", {"reason": decision.reason})
                log.error("automatic acknowledgements stopped: %s", decision.reason)
            return incident
        composed = self._compose(row, email, incident)
        ack = outbox_row(
            composed,
            incident_id=incident.id,
            kind="acknowledgement",
            mailbox=row.mailbox,
            due=self.clock(),
        )
        incident.acknowledged_at = self.clock()
        session.add(ack)
        session.flush()
        record_promise_sync(
            session,
            incident_id=incident.id,
            due_at=incident.reply_by,
            stated_at=incident.acknowledged_at,
            source="acknowledgement",
            outbox_id=ack.id,
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
        return incident

    def _open(
        self, session: Session, row: InboundMessage, email: InboundEmail, decision: Decision
    ) -> Incident:
        classification = decision.classification
        assert classification is not None and email.reply_address is not None
        received = self.clock()
        local = self.settings.for_mailbox(row.mailbox)
        promised = reply_by(
            received,
            classification.severity,
            self._calendar(row.mailbox),
            local.timeline.targets(),
            buffer=local.timeline.buffer,
        )
        offset = email.date.utcoffset() if email.date else None
        incident = Incident(
            reference="pending",
            mailbox=row.mailbox,
            customer_email=email.reply_address.email,
            customer_name=email.reply_address.name[:256],
            subject=email.subject[:2000],
            category=classification.category.value if classification.category else None,
            severity=classification.severity.value,
            confidence=classification.confidence,
            language=detect_language(email.new_text),
            status="acknowledged",
            opened_at=received,
            reply_by=promised,
            customer_utc_offset_minutes=int(offset.total_seconds() // 60)
            if offset is not None
            else None,
        )
        session.add(incident)
        session.flush()
        # Not flushed here: these go out with the next statement's flush (one UPDATE).
        incident.reference = f"{self.settings.limits.reference_prefix}-{1000 + incident.id}"
        incident.owner = assign_owner(local, incident.customer_email, incident.id)
        incident.status_changed_at = received
        audit.append_sync(
            session,
            "incident.opened",
            {
                "reference": incident.reference,
                "customer": incident.customer_email,
                "category": incident.category,
                "severity": incident.severity,
                "confidence": incident.confidence,
                "reply_by": promised.isoformat(),
                "signals": list(classification.signals),
                "classified_by": classification.source,
                "owner": incident.owner,
            },
            incident_id=incident.id,
        )
        return incident

    def _compose(
        self, row: InboundMessage, email: InboundEmail, incident: Incident
    ) -> ComposedMessage:
        assert email.reply_address is not None
        mailbox = self.settings.mailbox(row.mailbox)
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

    def _display_tz(self, incident: Incident) -> tzinfo:
        zone = self._calendar(incident.mailbox).tz
        return customer_zone(incident.customer_utc_offset_minutes, zone)
