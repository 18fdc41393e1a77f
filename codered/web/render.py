"""Rendering a page: the template, the signed-in user, their permissions, a flash message."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from codered.accounts import SignedIn
from codered.web.authz import Permission, allowed

__all__ = ["page", "templates"]

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def when(value: str | None) -> str:
    """An ISO time as the desk shows it (UTC, minutes)."""
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def left(minutes: int) -> str:
    sign = "-" if minutes < 0 else ""
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours} h {mins:02d} min" if hours else f"{sign}{mins} min"


def duration(seconds: float | None) -> str:
    from codered.web.charts import format_duration

    return "-" if seconds is None else format_duration(seconds)


templates.env.filters.update(when=when, left=left, duration=duration)


def page(
    request: Request,
    name: str,
    user: SignedIn | None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    def can(permission: str) -> bool:
        return user is not None and allowed(user.role, Permission(permission))

    context.setdefault("flash", request.query_params.get("flash", ""))
    # Operational alerts only for people signed in: the sign-in page tells strangers nothing.
    context.setdefault("alerts", getattr(request.state, "alerts", []) if user else [])
    context.setdefault("flash_kind", request.query_params.get("kind", ""))
    return templates.TemplateResponse(
        request,
        name,
        {"user": user, "csrf": user.csrf_token if user else "", "can": can, **context},
        status_code=status,
    )
