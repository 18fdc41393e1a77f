"""OAuth2 for mailboxes: refresh tokens encrypted at rest, access tokens refreshed in time.

The flow: an operator runs ``codered auth login`` once per mailbox, which stores the
provider's *refresh token* in a :class:`TokenStore`. While the service runs,
:class:`AccessTokens` trades it for short-lived *access tokens* (RFC 6749 section 6,
the ``refresh_token`` grant) five minutes before the cached one expires, and the IMAP
and SMTP clients present them with SASL XOAUTH2 (:func:`xoauth2_string`).

Refresh tokens are secrets that outlive any password rotation, so the store encrypts
each one with Fernet (AES-128-CBC plus HMAC-SHA256). The key comes from the environment
variable ``CODERED_TOKEN_KEY`` or, failing that, from a key file; when neither exists
the key file is created, readable by its owner only (mode 0600), on first use.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet, InvalidToken

from codered.settings import MailboxSettings, Settings

__all__ = [
    "KEY_ENV",
    "PRESETS",
    "AccessTokens",
    "OAuthClient",
    "OAuthRefreshError",
    "Preset",
    "TokenStore",
    "TokenStoreError",
    "access_tokens",
    "client_for",
    "exchange_refresh_token",
    "xoauth2_string",
]

log = logging.getLogger(__name__)

KEY_ENV = "CODERED_TOKEN_KEY"
REFRESH_MARGIN_SECONDS = 300.0
_HTTP_TIMEOUT_SECONDS = 15.0
_MAX_REASON_CHARS = 300


@dataclass(frozen=True)
class Preset:
    """A provider's token endpoint (``{tenant}`` is filled in) and default scopes."""

    token_url: str
    scope: str


PRESETS: dict[str, Preset] = {
    "google": Preset("https://oauth2.googleapis.com/token", "https://mail.google.com/"),
    "microsoft": Preset(
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "https://outlook.office.com/IMAP.AccessAsUser.All "
        "https://outlook.office.com/SMTP.Send offline_access",
    ),
}


class OAuthRefreshError(Exception):
    """No access token could be obtained; ``str(error)`` is one line for the operator."""


class TokenStoreError(Exception):
    """The token file or key cannot be read (wrong key, corrupt file)."""


def xoauth2_string(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response, before base64 (Google's and Microsoft's format).

    >>> xoauth2_string("support@acme.example", "ya29.x")
    'user=support@acme.example\\x01auth=Bearer ya29.x\\x01\\x01'
    """
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


# --- the store --------------------------------------------------------------------------------


class TokenStore:
    """Refresh tokens per mailbox in a JSON file, each value Fernet-encrypted.

    The key is ``$CODERED_TOKEN_KEY`` when set, else the contents of ``key_file``; when
    neither exists, a new key is written to ``key_file`` with mode 0600 on first use.
    Losing the key loses the tokens (run ``codered auth login`` again), nothing else.
    """

    def __init__(
        self, path: Path, key_file: Path, *, environ: Mapping[str, str] | None = None
    ) -> None:
        self.path = path
        self.key_file = key_file
        self._environ = os.environ if environ is None else environ
        self._lock = threading.Lock()
        self._fernet: Fernet | None = None

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(self._key())
        return self._fernet

    def _key(self) -> bytes:
        from_env = self._environ.get(KEY_ENV)
        if from_env:
            return from_env.strip().encode("ascii")
        try:
            return self.key_file.read_bytes().strip()
        except FileNotFoundError:
            pass
        key = Fernet.generate_key()
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use its key
            return self.key_file.read_bytes().strip()
        with os.fdopen(fd, "wb") as out:
            out.write(key + b"\n")
        log.info("created the token key file %s (mode 0600)", self.key_file)
        return key

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise TokenStoreError(f"{self.path}: cannot read the token file: {exc}") from None
        mailboxes = data.get("mailboxes") if isinstance(data, dict) else None
        return mailboxes if isinstance(mailboxes, dict) else {}

    def _write(self, mailboxes: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"version": 1, "mailboxes": mailboxes}, out, indent=2, sort_keys=True)
        staged.replace(self.path)

    def save(self, mailbox: str, refresh_token: str, *, provider: str | None = None) -> None:
        with self._lock:
            mailboxes = self._read()
            mailboxes[mailbox] = {
                "refresh_token": self._cipher().encrypt(refresh_token.encode()).decode("ascii"),
                "provider": provider,
                "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            self._write(mailboxes)

    def load(self, mailbox: str) -> str | None:
        """The refresh token of ``mailbox``, or None when none was stored."""
        with self._lock:
            entry = self._read().get(mailbox)
        if not isinstance(entry, dict) or not isinstance(entry.get("refresh_token"), str):
            return None
        try:
            return self._cipher().decrypt(entry["refresh_token"].encode("ascii")).decode()
        except InvalidToken:
            raise TokenStoreError(
                f"{self.path}: the token of {mailbox} does not match the key "
                f"(${KEY_ENV} or {self.key_file})"
            ) from None

    def delete(self, mailbox: str) -> bool:
        with self._lock:
            mailboxes = self._read()
            if mailboxes.pop(mailbox, None) is None:
                return False
            self._write(mailboxes)
            return True


# --- access tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OAuthClient:
    """How one mailbox refreshes: its token endpoint and OAuth client registration."""

    token_url: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    scope: str = ""


def client_for(mailbox: MailboxSettings) -> OAuthClient:
    """The OAuth client of an ``auth = "oauth2"`` mailbox, presets filled in."""
    provider = mailbox.oauth_provider or "custom"
    preset = PRESETS.get(provider)
    if preset is not None:
        url = mailbox.oauth_token_url or preset.token_url.format(tenant=mailbox.oauth_tenant)
        scope = mailbox.oauth_scope or preset.scope
    else:
        url, scope = mailbox.oauth_token_url or "", mailbox.oauth_scope or ""
    return OAuthClient(url, mailbox.oauth_client_id or "", mailbox.oauth_client_secret(), scope)


@dataclass
class _Cached:
    token: str
    expires_at: float


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_REASON_CHARS else line[: _MAX_REASON_CHARS - 1] + "…"


def exchange_refresh_token(
    http: httpx.Client, client: OAuthClient, refresh_token: str
) -> dict[str, Any]:
    """POST the ``refresh_token`` grant (RFC 6749 section 6); the JSON answer on success.

    Raises :class:`OAuthRefreshError` with the provider's ``error`` and
    ``error_description`` (RFC 6749 section 5.2) or the network error, in one line.
    """
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    form["client_id"] = client.client_id
    if client.client_secret:
        form["client_secret"] = client.client_secret
    if client.scope:
        form["scope"] = client.scope
    try:
        response = http.post(client.token_url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise OAuthRefreshError(_one_line(f"token endpoint unreachable: {exc}")) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    if response.status_code != 200:
        error = body.get("error") or f"HTTP {response.status_code}"
        description = body.get("error_description")
        reason = f"{error}: {description}" if description else str(error)
        raise OAuthRefreshError(_one_line(f"token endpoint refused the refresh: {reason}"))
    if not isinstance(body.get("access_token"), str):
        raise OAuthRefreshError("token endpoint answered without an access_token")
    return body


class AccessTokens:
    """Valid access tokens per mailbox, refreshed ``margin_seconds`` before they expire.

    Thread-safe: watcher threads and the outbox (through ``asyncio.to_thread``) ask at
    the same time; one lock per mailbox makes a second caller wait for the refresh in
    flight rather than start another. ``on_failure(mailbox, reason)`` is called once per
    failure streak (again only after a refresh has succeeded in between).
    """

    def __init__(
        self,
        store: TokenStore,
        *,
        on_failure: Callable[[str, str], None] | None = None,
        margin_seconds: float = REFRESH_MARGIN_SECONDS,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.on_failure = on_failure
        self.margin_seconds = margin_seconds
        self._http = http or httpx.Client(timeout=_HTTP_TIMEOUT_SECONDS)
        self._clock = clock
        self._clients: dict[str, OAuthClient] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._cache: dict[str, _Cached] = {}
        self._failing: set[str] = set()
        self._guard = threading.Lock()

    def register(self, mailbox: str, client: OAuthClient) -> None:
        with self._guard:
            self._clients[mailbox] = client
            self._locks.setdefault(mailbox, threading.Lock())
            self._cache.pop(mailbox, None)

    def provider(self, mailbox: str) -> Callable[[], str]:
        """A zero-argument callable for ``ImapAccount``/``SmtpServer.token_provider``."""
        return lambda: self.get(mailbox)

    def get(self, mailbox: str) -> str:
        """A token valid for at least ``margin_seconds``; :class:`OAuthRefreshError` if none."""
        with self._guard:
            client = self._clients.get(mailbox)
            lock = self._locks.get(mailbox)
        if client is None or lock is None:
            raise OAuthRefreshError(f"mailbox {mailbox} is not set up for OAuth2")
        with lock:
            cached = self._cache.get(mailbox)
            if cached is not None and cached.expires_at - self.margin_seconds > self._clock():
                return cached.token
            try:
                token = self._refresh(mailbox, client)
            except OAuthRefreshError as exc:
                self._failed(mailbox, str(exc))
                raise
            with self._guard:
                self._failing.discard(mailbox)
            return token

    def _refresh(self, mailbox: str, client: OAuthClient) -> str:
        try:
            refresh_token = self.store.load(mailbox)
        except TokenStoreError as exc:
            raise OAuthRefreshError(str(exc)) from None
        if refresh_token is None:
            raise OAuthRefreshError(
                f"no refresh token stored for {mailbox}: run codered auth login --mailbox {mailbox}"
            )
        now = self._clock()
        body = exchange_refresh_token(self._http, client, refresh_token)
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != refresh_token:
            with contextlib.suppress(OSError, TokenStoreError):  # the old one still works once
                self.store.save(mailbox, rotated)
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        self._cache[mailbox] = _Cached(body["access_token"], now + lifetime)
        log.info("mailbox %s: access token refreshed, valid %.0f s", mailbox, lifetime)
        return str(body["access_token"])

    def _failed(self, mailbox: str, reason: str) -> None:
        self._cache.pop(mailbox, None)
        with self._guard:
            first = mailbox not in self._failing
            self._failing.add(mailbox)
        if first and self.on_failure is not None:
            try:
                self.on_failure(mailbox, reason)
            except Exception:  # an alert that fails must not hide the real error
                log.exception("mailbox %s: on_failure hook raised", mailbox)

    def close(self) -> None:
        self._http.close()


def access_tokens(
    settings: Settings, *, on_failure: Callable[[str, str], None] | None = None
) -> AccessTokens:
    """An :class:`AccessTokens` with every ``auth = "oauth2"`` mailbox of ``settings``."""
    security = settings.security
    tokens = AccessTokens(
        TokenStore(security.token_store_path(settings), security.key_file_path(settings)),
        on_failure=on_failure,
    )
    for mailbox in settings.mailboxes:
        if mailbox.auth == "oauth2":
            tokens.register(mailbox.name, client_for(mailbox))
    return tokens
