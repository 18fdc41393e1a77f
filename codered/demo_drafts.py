"""The demo's second act: facts recorded on an incident, a draft, its checks, and the commands.

Why in the demo: a new user without any API key should see the whole
workflow, not only the acknowledgement. The draft is requested like any other
and drafted by the running service's drafting task with the offline templates.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Group
from rich.panel import Panel
from rich.text import Text
from sqlalchemy import select

from codered.db.engine import Database
from codered.db.models import Draft, Incident
from codered.drafts import request_draft
from codered.notes import add_note
from drafting.kinds import DraftKind
from policies.sections import Question

__all__ = ["DEMO_FACTS", "show_a_draft"]

DEMO_FACTS = (
    (
        Question.WHAT_HAPPENED,
        "Our API gateway returned 503 errors to every request for 40 minutes.",
    ),
    (Question.WHY, "A configuration change we deployed removed the route to the login service."),
    (Question.RESOLUTION, "We rolled the change back and every request succeeds again."),
)
"""Three of the four answers: the fourth stays open, so the demo shows a blocking finding."""


async def show_a_draft(
    db: Database, config: Path, stop: asyncio.Event, wait_seconds: float = 20.0
) -> Group | None:
    """Record facts on the first outage incident, have it drafted, and render the result."""
    async with db.read() as session:
        incident = await session.scalar(
            select(Incident)
            .where(Incident.category == "service_outage", Incident.status == "acknowledged")
            .order_by(Incident.id)
            .limit(1)
        )
    if incident is None:
        return None
    for question, text in DEMO_FACTS:
        await add_note(db, incident.reference, text, author="demo-csm", about=question)
    draft_id = await request_draft(db, incident.reference, DraftKind.SUMMARY, actor="demo-csm")
    draft = None
    for _ in range(int(wait_seconds / 0.2)):  # the service's drafting task picks it up
        async with db.read() as session:
            draft = await session.get(Draft, draft_id)
        if stop.is_set() or (draft is not None and draft.status in ("pending", "failed")):
            break
        await asyncio.sleep(0.2)
    if draft is None or draft.status != "pending":
        return None
    findings = [
        Text.from_markup(f"[red]{f['severity']}[/] {f['rule']}: ").append(f["message"])
        for f in draft.findings
    ]
    panel = Panel(
        Text(draft.text or ""),
        title=f"[bold yellow]draft {draft.id}[/] · four-question summary of {incident.reference} "
        "· template (no model) · waiting for a person",
        title_align="left",
        border_style="yellow",
        padding=(0, 2),
    )
    hint = Text.from_markup(
        f"Fill the gap and approve: [cyan]codered drafts show {draft.id} --config {config}[/], "
        f"then [cyan]codered drafts approve {draft.id} --edit-file FILE --as you "
        f"--config {config}[/]"
    )
    return Group(panel, *findings, hint)
