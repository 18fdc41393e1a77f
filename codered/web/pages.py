"""The review desk's pages: sign-in, the queue, incidents, drafts, and the mail frame.

Server-rendered with Jinja2 (autoescaping on); every form posts back here with
the session's CSRF token, and every route names the permission it needs.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from codered.accounts import SignedIn, authenticate, end_session, start_session
from codered.approval import ApprovalBlockedError, approve_draft, reject_draft, save_edit
from codered.db.models import InboundMessage, utcnow
from codered.desk import incident_page, mark_at_risk, work_queue
from codered.drafts import request_draft
from codered.lifecycle import STATES, move_incident
from codered.notes import add_note, parse_about
from codered.queries import list_incidents
from codered.web.auth import COOKIE, client_of, requires
from codered.web.authz import Permission, allowed
from codered.web.render import page
from codered.web.sanitize import CSP_FOR_MAIL_FRAME, display_parts, frame_document
from drafting.kinds import DraftKind

__all__ = ["router"]

router = APIRouter()
Viewer = Annotated[SignedIn, Depends(requires(Permission.VIEW_INCIDENTS))]
Mover = Annotated[SignedIn, Depends(requires(Permission.MOVE_INCIDENTS))]
Caller = Annotated[SignedIn, Depends(requires(Permission.LOG_CALLS))]
Drafter = Annotated[SignedIn, Depends(requires(Permission.WORK_DRAFTS))]
NoteTaker = Annotated[SignedIn, Depends(requires(Permission.ADD_NOTES))]


def _back(path: str, flash: str = "", kind: str = "") -> RedirectResponse:
    target = path
    if flash:
        sep = "&" if "?" in path else "?"
        anchor = ""
        if "#" in target:
            target, anchor = target.split("#", 1)
            anchor = "#" + anchor
        target = f"{target}{sep}flash={quote(flash[:300])}&kind={kind}{anchor}"
    return RedirectResponse(target, status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/") -> Response:
    return page(request, "login.html", None, next=next if next.startswith("/") else "/")


@router.post("/login")
async def login(
    request: Request,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    state = request.app.state
    keys = (f"user:{name.lower()}", f"client:{client_of(request)}")
    if state.throttle.blocked(*keys):
        await state.audit_event("auth.throttled", {"user": name[:64], "client": client_of(request)})
        return page(
            request,
            "login.html",
            None,
            status=429,
            next=next,
            flash="Too many failed sign-ins; wait 15 minutes.",
            flash_kind="error",
        )
    async with state.guard.db.read() as session:
        user = await authenticate(session, name, password)
    if user is None:
        state.throttle.failed(*keys)
        await state.audit_event("auth.failed", {"user": name[:64], "client": client_of(request)})
        return page(
            request,
            "login.html",
            None,
            status=401,
            next=next,
            flash="Wrong name or password.",
            flash_kind="error",
        )
    state.throttle.succeeded(*keys)
    token, _ = await start_session(state.guard.db, user, state.guard.web.session_hours)
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    if not allowed(user.role, Permission.VIEW_INCIDENTS) and target == "/":
        target = "/users"
    response = RedirectResponse(target, status_code=303)
    secure = state.guard.web.secure_cookies
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        path="/",
        secure=request.url.scheme == "https" if secure is None else secure,
        max_age=int(state.guard.web.session_hours * 3600),
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    who = await request.app.state.guard.identify(request)
    cookie = request.cookies.get(COOKIE)
    if who is not None and who.csrf_token is not None:
        form = await request.form()
        if form.get("csrf_token") != who.csrf_token:
            raise HTTPException(403, "the form has expired or was not sent by this site")
    if cookie:
        await end_session(request.app.state.guard.db, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
async def queue(request: Request, user: Viewer) -> Response:
    async with request.app.state.guard.db.read() as session:
        rows = await work_queue(session, utcnow(), settings=request.app.state.settings)
    return page(request, "queue.html", user, rows=rows, refresh=30)


@router.get("/incidents", response_class=HTMLResponse)
async def incidents(request: Request, user: Viewer) -> Response:
    async with request.app.state.guard.db.read() as session:
        rows = await list_incidents(session, 500)
        await mark_at_risk(session, request.app.state.settings, rows)
    return page(request, "incidents.html", user, incidents=rows)


@router.get("/incidents/{reference}", response_class=HTMLResponse)
async def incident(request: Request, reference: str, user: Viewer) -> Response:
    db = request.app.state.guard.db
    async with db.read() as session:
        try:
            data = await incident_page(session, reference, request.app.state.settings)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        for message in data["thread"]:
            if message["direction"] == "in":
                row = await session.get(InboundMessage, message["id"])
                raw = row.raw if row is not None else None
                # CPU work (HTML to text): off the event loop that also sends acknowledgements.
                message["display"] = await asyncio.to_thread(display_parts, raw or b"")
    for draft in data["drafts"]:
        draft["blocking"] = sum(1 for f in draft["finding_list"] if f["severity"] == "blocking")
    busy = any(d["status"] in ("requested", "drafting") for d in data["drafts"])
    return page(request, "incident.html", user, i=data, states=STATES, refresh=3 if busy else None)


@router.get("/mail/{inbound_id}")
async def mail_frame(request: Request, inbound_id: int, user: Viewer) -> Response:
    """The sanitized HTML of one inbound message, for a sandboxed frame, under a CSP that
    forbids scripts and every remote load."""
    async with request.app.state.guard.db.read() as session:
        row = await session.get(InboundMessage, inbound_id)
    if row is None or row.raw is None or row.incident_id is None:
        raise HTTPException(404, "no such message")
    shown = await asyncio.to_thread(display_parts, row.raw)
    body = frame_document(shown.html) if shown.html else frame_document("<p>(no HTML part)</p>")
    return HTMLResponse(
        body,
        headers={
            "Content-Security-Policy": CSP_FOR_MAIL_FRAME + "; frame-ancestors 'self'",
            "X-Frame-Options": "SAMEORIGIN",
        },
    )


@router.post("/incidents/{reference}/notes")
async def note(
    request: Request,
    reference: str,
    user: NoteTaker,
    text: Annotated[str, Form()],
    about: Annotated[str, Form()] = "",
) -> Response:
    try:
        await add_note(
            request.app.state.guard.db, reference, text, author=user.name, about=parse_about(about)
        )
    except (LookupError, ValueError) as exc:
        return _back(f"/incidents/{reference}", str(exc), "error")
    return _back(f"/incidents/{reference}", "Fact recorded.")


@router.post("/incidents/{reference}/drafts")
async def new_draft(
    request: Request,
    reference: str,
    user: Drafter,
    kind: Annotated[str, Form()],
    text: Annotated[str, Form()] = "",
) -> Response:
    try:
        draft_id = await request_draft(
            request.app.state.guard.db,
            reference,
            DraftKind(kind),
            actor=user.name,
            source_text=text or None,
        )
    except (LookupError, ValueError) as exc:
        return _back(f"/incidents/{reference}", str(exc), "error")
    return _back(f"/incidents/{reference}#draft-{draft_id}", f"Draft {draft_id} is being written.")


async def _reference_of(request: Request, draft_id: int) -> str:
    from codered.draft_queries import draft_detail

    async with request.app.state.guard.db.read() as session:
        try:
            return str((await draft_detail(session, draft_id))["incident"])
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None


@router.post("/drafts/{draft_id}/save")
async def save(
    request: Request, draft_id: int, user: Drafter, text: Annotated[str, Form()]
) -> Response:
    reference = await _reference_of(request, draft_id)
    state = request.app.state
    try:
        findings = await save_edit(
            state.guard.db, state.settings, draft_id, actor=user.name, text=text
        )
    except (LookupError, ValueError) as exc:
        return _back(f"/incidents/{reference}#draft-{draft_id}", str(exc), "error")
    blocking = sum(1 for f in findings if f["severity"] == "blocking")
    message = f"Saved and re-checked: {len(findings)} finding(s), {blocking} blocking."
    return _back(f"/incidents/{reference}#draft-{draft_id}", message)


@router.post("/drafts/{draft_id}/approve")
async def approve(
    request: Request, draft_id: int, user: Drafter, override: Annotated[str, Form()] = ""
) -> Response:
    reference = await _reference_of(request, draft_id)
    state = request.app.state
    if override.strip() and not allowed(user.role, Permission.OVERRIDE_FINDINGS):
        await state.guard.deny(request, user, Permission.OVERRIDE_FINDINGS)
        raise HTTPException(403, "only a manager may approve over a blocking finding")
    try:
        approval = await approve_draft(
            state.guard.db, state.settings, draft_id, actor=user.name, override=override or None
        )
    except ApprovalBlockedError as exc:
        return _back(f"/incidents/{reference}#draft-{draft_id}", str(exc).split(":\n")[0], "error")
    except (LookupError, ValueError) as exc:
        return _back(f"/incidents/{reference}#draft-{draft_id}", str(exc), "error")
    state.on_outbox()
    return _back(
        f"/incidents/{reference}#draft-{draft_id}",
        f"Approved; sending to {', '.join(approval.recipients)}.",
    )


@router.post("/drafts/{draft_id}/reject")
async def reject(
    request: Request, draft_id: int, user: Drafter, reason: Annotated[str, Form()]
) -> Response:
    reference = await _reference_of(request, draft_id)
    try:
        await reject_draft(request.app.state.guard.db, draft_id, actor=user.name, reason=reason)
    except (LookupError, ValueError) as exc:
        return _back(f"/incidents/{reference}#draft-{draft_id}", str(exc), "error")
    return _back(f"/incidents/{reference}#draft-{draft_id}", "Rejected.")


@router.post("/incidents/{reference}/move")
async def move(
    request: Request, reference: str, user: Mover, state: Annotated[str, Form()]
) -> Response:
    try:
        before, draft_id = await move_incident(
            request.app.state.guard.db, reference, state, actor=user.name
        )
    except (LookupError, ValueError) as exc:
        return _back(f"/incidents/{reference}", str(exc), "error")
    note = f" The four-question summary draft {draft_id} is being written." if draft_id else ""
    return _back(f"/incidents/{reference}", f"Moved from {before} to {state}.{note}")


@router.post("/incidents/{reference}/calls")
async def call(
    request: Request,
    reference: str,
    user: Caller,
    notes: Annotated[str, Form()],
    participants: Annotated[str, Form()],
    minutes: Annotated[int, Form()],
    started: Annotated[str, Form()] = "",
) -> Response:
    from datetime import UTC, datetime

    from codered.calls import log_call

    try:
        when = datetime.fromisoformat(started).replace(tzinfo=UTC) if started else utcnow()
        call_id, draft_id = await log_call(
            request.app.state.guard.db,
            reference,
            started_at=when,
            duration_minutes=minutes,
            participants=participants.split(","),
            notes=notes,
            actor=user.name,
        )
    except (LookupError, ValueError) as exc:
        return _back(f"/incidents/{reference}", str(exc), "error")
    return _back(
        f"/incidents/{reference}#draft-{draft_id}",
        f"Call {call_id} logged; its recap draft is being written.",
    )


@router.post("/incidents/{reference}/owner")
async def owner(
    request: Request, reference: str, user: Mover, name: Annotated[str, Form()]
) -> Response:
    from codered.lifecycle import assign_owner_by_hand

    try:
        await assign_owner_by_hand(request.app.state.guard.db, reference, name, actor=user.name)
    except (LookupError, ValueError) as exc:
        return _back(f"/incidents/{reference}", str(exc), "error")
    return _back(f"/incidents/{reference}", f"{name} owns {reference} now.")
