"""People and their credentials: accounts, passwords (argon2), browser sessions, API tokens.

Why sessions and tokens live in the database: several ``codered run`` processes
may serve the same desk, and a manager must be able to see who signed in.
Only hashes are stored: a session cookie or an API token is shown once and is
a SHA-256 in the table, a password is an argon2 hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from codered import audit
from codered.db.engine import Database
from codered.db.models import ApiToken, User, WebSession, utcnow

__all__ = [
    "ROLES",
    "SignedIn",
    "add_user",
    "authenticate",
    "create_token",
    "end_session",
    "hash_secret",
    "list_users",
    "session_for",
    "start_session",
    "user_for_token",
]

ROLES = ("csm", "manager", "admin")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("codered: compare against something when the user is unknown")
MIN_PASSWORD = 10


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    user_id: int
    name: str
    role: str
    csrf_token: str | None = None
    """Set for browser sessions; API tokens need none (no cookies are involved)."""
    via: str = "session"
    """``session``, ``token`` or ``sso`` (the trusted header of a reverse proxy)."""


async def add_user(db: Database, name: str, role: str, password: str | None, *, actor: str) -> int:
    if not _NAME.match(name):
        raise ValueError("a user name is letters, digits and . _ @ - (at most 64)")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")
    async with db.write() as session:
        if await session.scalar(select(User.id).where(User.name == name)) is not None:
            raise ValueError(f"there is already a user named {name!r}")
        user = User(
            name=name,
            role=role,
            password_hash=_HASHER.hash(password) if password is not None else None,
            disabled=False,
        )
        session.add(user)
        await session.flush()
        await audit.append(session, "user.created", {"user": name, "role": role}, actor=actor)
        return user.id


async def list_users(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.name)))


async def authenticate(session: AsyncSession, name: str, password: str) -> User | None:
    """The user if the password is right; the same work is done for unknown names."""
    user = await session.scalar(select(User).where(User.name == name))
    stored = user.password_hash if user is not None and not user.disabled else None
    try:
        _HASHER.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return user if stored else None


async def start_session(
    db: Database, user: User, hours: float, clock: Callable[[], datetime] = utcnow
) -> tuple[str, str]:
    """A new session for ``user``: (cookie value, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = clock()
    async with db.write() as session:
        await session.execute(delete(WebSession).where(WebSession.expires_at < now))
        session.add(
            WebSession(
                token_hash=hash_secret(token),
                user_id=user.id,
                csrf_token=csrf,
                created_at=now,
                expires_at=now + timedelta(hours=hours),
            )
        )
        await audit.append(session, "auth.signed_in", {"user": user.name}, actor=user.name)
    return token, csrf


async def session_for(
    session: AsyncSession, cookie: str, clock: Callable[[], datetime] = utcnow
) -> SignedIn | None:
    row = (
        await session.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.token_hash == hash_secret(cookie))
        )
    ).first()
    if row is None:
        return None
    web, user = row
    if web.expires_at <= clock() or user.disabled:
        return None
    return SignedIn(user.id, user.name, user.role, web.csrf_token)


async def end_session(db: Database, cookie: str) -> None:
    async with db.write() as session:
        await session.execute(
            delete(WebSession).where(WebSession.token_hash == hash_secret(cookie))
        )


async def create_token(db: Database, user_name: str, *, actor: str) -> str:
    """A new API token for ``user_name``, shown once."""
    token = "cr_" + secrets.token_urlsafe(32)
    async with db.write() as session:
        user = await session.scalar(select(User).where(User.name == user_name))
        if user is None:
            raise LookupError(f"no user named {user_name!r} (see `codered users list`)")
        session.add(ApiToken(user_id=user.id, token_hash=hash_secret(token), revoked=False))
        await audit.append(session, "token.created", {"user": user.name}, actor=actor)
    return token


async def user_for_token(session: AsyncSession, token: str) -> SignedIn | None:
    row = (
        await session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == hash_secret(token), ApiToken.revoked.is_(False))
        )
    ).first()
    if row is None or row[1].disabled:
        return None
    return SignedIn(row[1].id, row[1].name, row[1].role, via="token")
