"""The life of an incident, in the five steps of handling a customer incident.

acknowledged → gathering_facts → investigating → resolving → resolved → summarized → closed.
The state decides which policies apply: updates on a cadence while it is open
(acknowledged to resolving), promises until it is closed. Moving to
``resolved`` drafts the four-question summary (the debrief); sending that
summary moves it to ``summarized`` (see ``codered.outbox``). Every move records
who made it and when.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from codered import audit
from codered.db.engine import Database
from codered.db.models import utcnow
from codered.drafts import request_draft
from codered.queries import find_incident
from drafting.kinds import DraftKind

__all__ = ["OPEN_STATES", "STATES", "assign_owner_by_hand", "move_incident"]

STATES = (
    "acknowledged",
    "gathering_facts",
    "investigating",
    "resolving",
    "resolved",
    "summarized",
    "closed",
)
OPEN_STATES = frozenset(STATES[:4])
"""Where the update cadence applies: the customer is still waiting for a fix."""
_FROM = frozenset({*STATES, "held"})


async def move_incident(
    db: Database,
    reference: str,
    to: str,
    *,
    actor: str,
    clock: Callable[[], datetime] = utcnow,
) -> tuple[str, int | None]:
    """Move ``reference`` to state ``to``; returns the previous state and, on ``resolved``,
    the id of the summary draft requested for the debrief."""
    to = to.strip().lower().replace("-", "_").replace(" ", "_")
    if to not in STATES:
        raise ValueError(f"unknown state {to!r}; one of: {', '.join(STATES)}")
    if not actor.strip():
        raise ValueError("say who moves it (--as NAME)")
    async with db.write() as session:
        incident = await find_incident(session, reference)
        before = incident.status
        if before not in _FROM:
            raise ValueError(f"{incident.reference} is {before!r} and cannot be moved")
        if before == to:
            raise ValueError(f"{incident.reference} is already {to}")
        now = clock()
        incident.status = to
        incident.status_changed_at = now
        if to == "resolved":
            incident.resolved_at = now
        await audit.append(
            session,
            "incident.moved",
            {"from": before, "to": to},
            actor=actor.strip(),
            incident_id=incident.id,
        )
        reference = incident.reference
    draft_id = None
    if to == "resolved":
        draft_id = await request_draft(db, reference, DraftKind.SUMMARY, actor="debrief")
    return before, draft_id


async def assign_owner_by_hand(
    db: Database, reference: str, owner: str, *, actor: str
) -> str | None:
    """Give the incident to ``owner`` (a CSM); returns the previous owner."""
    owner, actor = owner.strip(), actor.strip()
    if not owner or not actor:
        raise ValueError("name the new owner and who assigns (--as NAME)")
    async with db.write() as session:
        incident = await find_incident(session, reference)
        before = incident.owner
        incident.owner = owner[:64]
        await audit.append(
            session,
            "incident.assigned",
            {"from": before, "to": incident.owner},
            actor=actor,
            incident_id=incident.id,
        )
        return before
