"""Phone calls with customers: logged from the desk, the CLI or the API (a phone system),
and followed by an email, so that what was said is documented."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from codered import audit
from codered.db.engine import Database
from codered.db.models import Call
from codered.drafts import request_draft
from codered.queries import find_incident
from drafting.kinds import DraftKind

__all__ = ["log_call"]


async def log_call(
    db: Database,
    reference: str,
    *,
    started_at: datetime,
    duration_minutes: int,
    participants: Sequence[str],
    notes: str,
    actor: str,
) -> tuple[int, int]:
    """Record the call and request its recap draft at once; returns (call id, draft id)."""
    notes = notes.strip()
    people = [p.strip()[:200] for p in participants if p.strip()]
    if not notes:
        raise ValueError("the call needs notes: the recap is drafted from them")
    if not people:
        raise ValueError("name at least one participant")
    if not 0 <= duration_minutes <= 24 * 60:
        raise ValueError("the duration is in minutes, from 0 to 1440")
    started = started_at if started_at.tzinfo else started_at.replace(tzinfo=UTC)
    async with db.write() as session:
        incident = await find_incident(session, reference)
        call = Call(
            incident_id=incident.id,
            started_at=started,
            duration_minutes=duration_minutes,
            participants=people,
            notes=notes,
            logged_by=actor,
        )
        session.add(call)
        await session.flush()
        await audit.append(
            session,
            "call.logged",
            {
                "call_id": call.id,
                "started_at": started.isoformat(),
                "duration_minutes": duration_minutes,
                "participants": people,
                "notes": notes,
            },
            actor=actor,
            incident_id=incident.id,
        )
        call_id, ref = call.id, incident.reference
    draft_id = await request_draft(db, ref, DraftKind.RECAP, actor=actor, source_text=notes)
    return call_id, draft_id
