"""Read-only views of drafts and of one incident, for the CLI (and later the web UI)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from codered.db.models import Draft, Incident, ModelCall, OutboxMessage
from codered.notes import list_notes
from codered.queries import find_incident, incident_dict, iso

__all__ = ["draft_detail", "incident_detail", "list_drafts", "model_usage"]


def _blocking(findings: list[dict[str, Any]]) -> int:
    return sum(1 for f in findings if f.get("severity") == "blocking")


def _summary(draft: Draft, reference: str) -> dict[str, Any]:
    return {
        "id": draft.id,
        "incident": reference,
        "kind": draft.kind,
        "status": draft.status,
        "model": draft.drafter,
        "template": draft.template,
        "created_at": iso(draft.created_at),
        "findings": len(draft.findings),
        "blocking": _blocking(draft.findings),
        "requested_by": draft.requested_by,
        "decided_by": draft.decided_by,
        "error": draft.error,
    }


async def list_drafts(
    session: AsyncSession,
    limit: int = 100,
    status: str | None = None,
    reference: str | None = None,
) -> list[dict[str, Any]]:
    query = (
        select(Draft, Incident.reference)
        .join(Incident, Incident.id == Draft.incident_id)
        .order_by(Draft.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(Draft.status == status)
    if reference:
        query = query.where(Incident.reference == reference.strip().upper())
    return [_summary(draft, ref) for draft, ref in (await session.execute(query)).all()]


async def draft_detail(session: AsyncSession, draft_id: int) -> dict[str, Any]:
    draft = await session.get(Draft, draft_id)
    if draft is None:
        raise LookupError(f"no draft with id {draft_id} (see `codered drafts list`)")
    incident = await session.get(Incident, draft.incident_id)
    assert incident is not None
    delivery = None
    if draft.outbox_id is not None:
        out = await session.get(OutboxMessage, draft.outbox_id)
        if out is not None:
            delivery = {
                "outbox_id": out.id,
                "status": out.status,
                "message_id": out.message_id,
                "to": list(out.recipients),
                "sent_at": iso(out.sent_at),
                "smtp_reply": out.smtp_reply,
                "last_error": out.last_error,
            }
    return {
        **_summary(draft, incident.reference),
        "prompt": draft.prompt,
        "text": draft.text,
        "edited_text": draft.edited_text,
        "final_text": draft.final_text,
        "notes_to_csm": list(draft.notes_to_csm),
        "finding_list": list(draft.findings),
        "content": draft.content,
        "source_text": draft.source_text,
        "promise_at": iso(draft.promise_at),
        "omitted_messages": draft.omitted_messages,
        "prompt_tokens": draft.prompt_tokens,
        "completion_tokens": draft.completion_tokens,
        "cost_usd": draft.cost_usd,
        "decided_at": iso(draft.decided_at),
        "override_reason": draft.override_reason,
        "reject_reason": draft.reject_reason,
        "delivery": delivery,
    }


async def model_usage(session: AsyncSession, incident_id: int) -> dict[str, Any]:
    """Calls, tokens and cost of every model call made for one incident."""
    row = (
        await session.execute(
            select(
                func.count(ModelCall.id),
                func.coalesce(func.sum(ModelCall.prompt_tokens), 0),
                func.coalesce(func.sum(ModelCall.completion_tokens), 0),
                func.sum(ModelCall.cost_usd),
                func.count(ModelCall.id).filter(ModelCall.ok.is_(False)),
            ).where(ModelCall.incident_id == incident_id)
        )
    ).one()
    calls, prompt, completion, cost, failed = row
    return {
        "calls": int(calls),
        "failed_calls": int(failed),
        "prompt_tokens": int(prompt),
        "completion_tokens": int(completion),
        "cost_usd": None if cost is None else round(float(cost), 6),
    }


async def incident_detail(session: AsyncSession, reference: str) -> dict[str, Any]:
    incident = await find_incident(session, reference)
    notes = await list_notes(session, incident.id)
    drafts = (
        await session.scalars(
            select(Draft).where(Draft.incident_id == incident.id).order_by(Draft.id)
        )
    ).all()
    return {
        **incident_dict(incident),
        "notes": [
            {
                "id": n.id,
                "about": n.about,
                "author": n.author,
                "at": iso(n.created_at),
                "text": n.text,
            }
            for n in notes
        ],
        "drafts": [_summary(d, incident.reference) for d in drafts],
        "model_usage": await model_usage(session, incident.id),
    }
