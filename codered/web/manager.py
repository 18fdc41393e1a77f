"""Managers' pages: the audit trail (search, export, what was drafted, changed and sent) and
the overview (time to acknowledge and reply, drafts unchanged/edited/rejected, promises)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from codered.accounts import SignedIn
from codered.audit import verify
from codered.audit_export import (
    audit_rows,
    csv_header,
    csv_line,
    jsonl_line,
    parse_time,
    record_export,
    sent_messages,
)
from codered.call_metrics import call_followups
from codered.db.models import utcnow
from codered.overview import overview
from codered.promises import promises_by_owner
from codered.web.auth import requires
from codered.web.authz import Permission
from codered.web.charts import bar_chart, stacked_bar
from codered.web.render import page

__all__ = ["router"]

router = APIRouter()
Auditor = Annotated[SignedIn, Depends(requires(Permission.VIEW_AUDIT))]
Exporter = Annotated[SignedIn, Depends(requires(Permission.EXPORT_AUDIT))]
Manager = Annotated[SignedIn, Depends(requires(Permission.VIEW_OVERVIEW))]


def _time(value: str | None, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(value, end_of_day=end)
    except ValueError as exc:
        raise HTTPException(422, f"not a date or time: {value!r}") from exc


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    return {
        "since": q.get("since") or None,
        "until": q.get("until") or None,
        "kind": q.get("kind") or None,
        "incident": q.get("incident") or None,
        "customer": q.get("customer") or None,
        "actor": q.get("actor") or None,
    }


async def _rows(
    request: Request, filters: dict[str, Any], limit: int | None
) -> AsyncIterator[dict[str, Any]]:
    async with request.app.state.guard.db.read() as session:
        try:
            async for row in audit_rows(
                session,
                since=_time(filters["since"]),
                until=_time(filters["until"], end=True),
                kind=filters["kind"],
                incident=filters["incident"],
                customer=filters["customer"],
                actor=filters["actor"],
                limit=limit,
            ):
                yield row
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, user: Auditor) -> Response:
    filters = _filters(request)
    entries = [row async for row in _rows(request, filters, 500)]
    async with request.app.state.guard.db.read() as session:
        sent = await sent_messages(
            session,
            since=_time(filters["since"]),
            until=_time(filters["until"], end=True),
            incident=filters["incident"],
            customer=filters["customer"],
            actor=filters["actor"],
        )
        chain = await verify(session)
    return page(
        request,
        "audit.html",
        user,
        entries=entries,
        sent=sent,
        chain=chain,
        filters={k: v or "" for k, v in filters.items()},
    )


async def _export(request: Request, user: SignedIn, fmt: str) -> Response:
    if fmt not in ("jsonl", "csv"):
        raise HTTPException(422, "format is jsonl or csv")
    filters = _filters(request)
    _time(filters["since"]), _time(filters["until"], end=True)  # bad dates: 422 before streaming
    db = request.app.state.guard.db

    async def body() -> AsyncIterator[str]:
        count = 0
        complete = False
        try:
            if fmt == "csv":
                yield csv_header()
            async for row in _rows(request, filters, None):
                count += 1
                yield csv_line(row) if fmt == "csv" else jsonl_line(row)
            complete = True
        finally:
            await record_export(
                db,
                actor=user.name,
                filters=filters,
                rows=count,
                fmt=fmt,
                output="web",
                complete=complete,
            )

    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    media = "text/csv" if fmt == "csv" else "application/x-ndjson"
    return StreamingResponse(
        body(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="codered-audit-{stamp}.{fmt}"'},
    )


@router.get("/audit/export")
async def export_page(
    request: Request, user: Exporter, format: Annotated[str, Query()] = "jsonl"
) -> Response:
    return await _export(request, user, format)


@router.get("/api/audit/export")
async def export_api(
    request: Request, user: Exporter, format: Annotated[str, Query()] = "jsonl"
) -> Response:
    return await _export(request, user, format)


@router.get("/overview", response_class=HTMLResponse)
async def overview_page(request: Request, user: Manager, days: int = 30) -> Response:
    now = utcnow()
    days = max(1, min(days, 366))
    since = (now - timedelta(days=days)).replace(tzinfo=UTC)
    async with request.app.state.guard.db.read() as session:
        result = await overview(session, since=since, until=now + timedelta(seconds=1), now=now)
        by_owner = await promises_by_owner(session, since=since, until=now + timedelta(seconds=1))
        calls = await call_followups(
            session, request.app.state.settings, since=since, until=now + timedelta(seconds=1)
        )
    data = result.to_dict()
    t = result.totals
    charts = [
        stacked_bar(
            "Drafts",
            [
                ("approved unchanged", t.drafts.approved_unchanged, "unchanged"),
                ("approved edited", t.drafts.approved_edited, "edited"),
                ("rejected", t.drafts.rejected, "rejected"),
            ],
        ),
        stacked_bar(
            "Promises",
            [
                ("kept", t.promises.kept, "kept"),
                ("missed", t.promises.missed, "missed"),
                ("open", t.promises.open, "open"),
            ],
        ),
        bar_chart(
            "Median time to first human reply, by category",
            [(c.category, c.median_time_to_first_human_reply or 0) for c in result.by_category],
            unit="s",
        ),
        bar_chart(
            "Median time to acknowledge, by category",
            [(c.category, c.median_time_to_acknowledge or 0) for c in result.by_category],
            unit="s",
        ),
    ]
    return page(
        request,
        "overview.html",
        user,
        o=data,
        charts=charts,
        days=days,
        calls=calls,
        by_owner=by_owner,
    )
