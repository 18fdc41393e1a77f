"""The JSON API: the desk's operations for scripts, phone systems and chat tools.

Authenticate with ``Authorization: Bearer <token>`` (``codered tokens create --user NAME``);
a token acts with its user's role. Missing or bad credentials: 401; a role that may not: 403.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from codered.accounts import SignedIn
from codered.approval import ApprovalBlockedError, approve_draft, reject_draft
from codered.calls import log_call
from codered.desk import incident_page
from codered.draft_queries import draft_detail, list_drafts
from codered.drafts import request_draft
from codered.notes import add_note, parse_about
from codered.queries import list_incidents
from codered.web.auth import requires
from codered.web.authz import Permission, allowed
from drafting.kinds import DraftKind

__all__ = ["router"]

router = APIRouter(prefix="/api")
Viewer = Annotated[SignedIn, Depends(requires(Permission.VIEW_INCIDENTS))]
Drafter = Annotated[SignedIn, Depends(requires(Permission.WORK_DRAFTS))]
NoteTaker = Annotated[SignedIn, Depends(requires(Permission.ADD_NOTES))]
Caller = Annotated[SignedIn, Depends(requires(Permission.LOG_CALLS))]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NoteIn(_Body):
    text: str = Field(min_length=1, max_length=10_000)
    about: str | None = Field(default=None, description="what, why, resolve or prevent")


class DraftIn(_Body):
    kind: DraftKind
    text: str | None = Field(default=None, max_length=50_000)


class ApproveIn(_Body):
    text: str | None = Field(default=None, max_length=100_000, description="your edit")
    override: str | None = Field(default=None, max_length=2000)


class RejectIn(_Body):
    reason: str = Field(min_length=1, max_length=2000)


class CallIn(_Body):
    incident: str = Field(description="The incident reference, e.g. CR-1042.")
    started_at: datetime
    duration_minutes: int = Field(ge=0, le=24 * 60)
    participants: list[str] = Field(min_length=1, max_length=50)
    notes: str = Field(min_length=1, max_length=50_000)


def _state(request: Request) -> Any:
    return request.app.state


@router.get("/incidents")
async def incidents(request: Request, user: Viewer, limit: int = 100) -> list[dict[str, Any]]:
    async with _state(request).guard.db.read() as session:
        return await list_incidents(session, max(1, min(limit, 1000)))


@router.get("/incidents/{reference}")
async def incident(request: Request, reference: str, user: Viewer) -> dict[str, Any]:
    async with _state(request).guard.db.read() as session:
        try:
            return await incident_page(session, reference)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None


@router.post("/incidents/{reference}/notes", status_code=201)
async def note(request: Request, reference: str, body: NoteIn, user: NoteTaker) -> dict[str, Any]:
    try:
        note_id = await add_note(
            _state(request).guard.db,
            reference,
            body.text,
            author=user.name,
            about=parse_about(body.about),
        )
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"id": note_id}


@router.post("/incidents/{reference}/drafts", status_code=202)
async def new_draft(
    request: Request, reference: str, body: DraftIn, user: Drafter
) -> dict[str, Any]:
    try:
        draft_id = await request_draft(
            _state(request).guard.db, reference, body.kind, actor=user.name, source_text=body.text
        )
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"id": draft_id, "status": "requested"}


@router.get("/drafts")
async def drafts(
    request: Request,
    user: Viewer,
    status: str | None = None,
    incident: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    async with _state(request).guard.db.read() as session:
        return await list_drafts(session, max(1, min(limit, 1000)), status, incident)


@router.get("/drafts/{draft_id}")
async def draft(request: Request, draft_id: int, user: Viewer) -> dict[str, Any]:
    async with _state(request).guard.db.read() as session:
        try:
            return await draft_detail(session, draft_id)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None


@router.post("/drafts/{draft_id}/approve")
async def approve(
    request: Request, draft_id: int, body: ApproveIn, user: Drafter
) -> dict[str, Any]:
    state = _state(request)
    if body.override and not allowed(user.role, Permission.OVERRIDE_FINDINGS):
        await state.guard.deny(request, user, Permission.OVERRIDE_FINDINGS)
        raise HTTPException(403, "only a manager may approve over a blocking finding")
    try:
        approval = await approve_draft(
            state.guard.db,
            state.settings,
            draft_id,
            actor=user.name,
            edited_text=body.text,
            override=body.override,
        )
    except ApprovalBlockedError as exc:
        raise HTTPException(
            409, {"message": str(exc).split(":\n")[0], "findings": exc.findings}
        ) from None
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    state.on_outbox()
    return {
        "draft_id": draft_id,
        "outbox_id": approval.outbox_id,
        "message_id": approval.message_id,
        "to": list(approval.recipients),
        "edited": approval.edited,
    }


@router.post("/drafts/{draft_id}/reject")
async def reject(request: Request, draft_id: int, body: RejectIn, user: Drafter) -> dict[str, Any]:
    try:
        await reject_draft(_state(request).guard.db, draft_id, actor=user.name, reason=body.reason)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"draft_id": draft_id, "status": "rejected"}


@router.post("/calls", status_code=201)
async def call(request: Request, body: CallIn, user: Caller) -> dict[str, Any]:
    """Log a phone call; a call recap draft is requested at once from its notes."""
    try:
        call_id, draft_id = await log_call(
            _state(request).guard.db,
            body.incident,
            started_at=body.started_at,
            duration_minutes=body.duration_minutes,
            participants=body.participants,
            notes=body.notes,
            actor=user.name,
        )
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"id": call_id, "recap_draft_id": draft_id}
