"""Accounts, for admins: who may sign in, with which role."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from codered.accounts import ROLES, SignedIn, add_user, list_users
from codered.web.auth import requires
from codered.web.authz import Permission
from codered.web.render import page

__all__ = ["router"]

router = APIRouter()
Admin = Annotated[SignedIn, Depends(requires(Permission.MANAGE_USERS))]


@router.get("/users", response_class=HTMLResponse)
async def users(request: Request, user: Admin) -> Response:
    async with request.app.state.guard.db.read() as session:
        rows = await list_users(session)
    return page(request, "users.html", user, users=rows, roles=ROLES)


@router.post("/users")
async def create_user(
    request: Request,
    user: Admin,
    name: Annotated[str, Form()],
    role: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    try:
        await add_user(request.app.state.guard.db, name.strip(), role, password, actor=user.name)
    except ValueError as exc:
        async with request.app.state.guard.db.read() as session:
            rows = await list_users(session)
        return page(request, "users.html", user, status=422, users=rows, roles=ROLES,
                    flash=str(exc), flash_kind="error")  # fmt: skip
    return RedirectResponse("/users?flash=User+created.", status_code=303)
