"""Facts CSMs record on an incident (``codered incidents note``): what a summary is made of."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from codered import audit
from codered.db.engine import Database
from codered.db.models import IncidentNote
from codered.queries import find_incident
from policies.sections import Question

__all__ = ["ABOUT_CHOICES", "add_note", "list_notes", "parse_about"]

MAX_NOTE_CHARS = 10_000

ABOUT_CHOICES: dict[str, Question] = {
    "what": Question.WHAT_HAPPENED,
    "why": Question.WHY,
    "resolve": Question.RESOLUTION,
    "prevent": Question.PREVENTION,
}
"""The words a CSM types after ``--about``, and the question each one answers."""


def parse_about(value: str | None) -> Question | None:
    if value is None or not value.strip():
        return None
    key = value.strip().lower()
    if key in ABOUT_CHOICES:
        return ABOUT_CHOICES[key]
    try:
        return Question(key)
    except ValueError:
        choices = ", ".join(ABOUT_CHOICES)
        raise ValueError(f"--about must be one of {choices}, not {value!r}") from None


async def add_note(
    db: Database, reference: str, text: str, *, author: str, about: Question | None = None
) -> int:
    text = text.strip()
    author = author.strip()
    if not text:
        raise ValueError("the note is empty")
    if len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"the note is longer than {MAX_NOTE_CHARS} characters")
    if not author:
        raise ValueError("say who records the note (--as NAME)")
    async with db.write() as session:
        incident = await find_incident(session, reference)
        note = IncidentNote(
            incident_id=incident.id, author=author, about=about.value if about else None, text=text
        )
        session.add(note)
        await session.flush()
        await audit.append(
            session,
            "note.added",
            {"note_id": note.id, "about": note.about, "text": text},
            actor=author,
            incident_id=incident.id,
        )
        return note.id


async def list_notes(session: AsyncSession, incident_id: int) -> list[IncidentNote]:
    rows = await session.scalars(
        select(IncidentNote)
        .where(IncidentNote.incident_id == incident_id)
        .order_by(IncidentNote.id)
    )
    return list(rows)
