"""Who is asking, and may they: sessions, bearer tokens, the SSO header, CSRF, throttling.

Every route declares the permission it needs (:func:`requires`); the check runs
on the server for every request, and a denied attempt is written to the audit
trail. Browsers authenticate with an HttpOnly, SameSite=Lax session cookie and
send the session's CSRF token with every form; API clients send
``Authorization: Bearer <token>`` and need no CSRF token (no cookies are involved).
"""

from __future__ import annotations

import hmac
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from sqlalchemy import select

from codered import audit
from codered.accounts import SignedIn, session_for, user_for_token
from codered.db.engine import Database
from codered.db.models import User
from codered.settings import WebSettings
from codered.web.authz import Permission, allowed

__all__ = ["COOKIE", "Guard", "LoginThrottle", "SignInRequiredError", "client_of", "requires"]

COOKIE = "codered_session"


class SignInRequiredError(Exception):
    """No valid credentials: pages redirect to the sign-in form, the API answers 401."""


@dataclass
class Guard:
    """What the routes share: the database and the web settings."""

    db: Database
    web: WebSettings

    async def identify(self, request: Request) -> SignedIn | None:
        header = request.headers.get("authorization", "")
        async with self.db.read() as session:
            if header.lower().startswith("bearer "):
                return await user_for_token(session, header[7:].strip())
            if self.web.trusted_user_header:
                name = request.headers.get(self.web.trusted_user_header, "").strip()
                if name:
                    user = await session.scalar(select(User).where(User.name == name))
                    if user is not None and not user.disabled:
                        return SignedIn(user.id, user.name, user.role, via="sso")
            cookie = request.cookies.get(COOKIE)
            if cookie:
                return await session_for(session, cookie)
        return None

    async def deny(self, request: Request, who: SignedIn, permission: Permission) -> None:
        async with self.db.write() as session:
            await audit.append(
                session,
                "auth.denied",
                {
                    "user": who.name,
                    "role": who.role,
                    "permission": permission.value,
                    "method": request.method,
                    "path": request.url.path,
                },
                actor=who.name,
            )


def requires(permission: Permission) -> Callable[[Request], Awaitable[SignedIn]]:
    """A FastAPI dependency: the signed-in user, if their role grants ``permission``.

    Form posts from a browser session must carry its CSRF token (``csrf_token`` field or
    ``X-CSRF-Token`` header); a bad one is a 403, audited like any denied action.
    """

    async def dependency(request: Request) -> SignedIn:
        guard: Guard = request.app.state.guard
        who = await guard.identify(request)
        if who is None:
            raise SignInRequiredError
        if not allowed(who.role, permission):
            await guard.deny(request, who, permission)
            raise HTTPException(403, f"your role ({who.role}) may not {permission.value}")
        if request.method not in ("GET", "HEAD") and who.via == "sso" and not _same_origin(request):
            # The proxy's own cookie signs every request in, forged ones too: only forms
            # sent by a page of this site are accepted.
            await guard.deny(request, who, permission)
            raise HTTPException(403, "the form was not sent by this site")
        if request.method not in ("GET", "HEAD") and who.csrf_token is not None:
            sent = request.headers.get("x-csrf-token")
            if sent is None:
                form = await request.form()
                value = form.get("csrf_token")
                sent = value if isinstance(value, str) else None
            if not sent or not hmac.compare_digest(sent, who.csrf_token):
                await guard.deny(request, who, permission)
                raise HTTPException(403, "the form has expired or was not sent by this site")
        request.state.user = who
        return who

    return dependency


def _same_origin(request: Request) -> bool:
    if request.headers.get("sec-fetch-site") == "same-origin":
        return True
    origin = request.headers.get("origin")
    return bool(origin) and urlsplit(origin).netloc == request.headers.get("host")


class LoginThrottle:
    """At most ``limit`` failed sign-ins per user name and per client in 15 minutes.

    Kept in memory per process: it slows a password guesser down, and the failures are in
    the audit trail for a person to see."""

    WINDOW = 15 * 60.0

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        entries = self._failures[key]
        while entries and entries[0] < self.clock() - self.WINDOW:
            entries.popleft()
        return entries

    def blocked(self, *keys: str) -> bool:
        return any(len(self._recent(k)) >= self.limit for k in keys)

    def failed(self, *keys: str) -> None:
        for key in keys:
            self._recent(key).append(self.clock())
        if len(self._failures) > 10_000:  # bounded: forget the oldest keys
            for stale in list(self._failures)[:5_000]:
                del self._failures[stale]

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"
