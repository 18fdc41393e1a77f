"""Handing composed bytes to an SMTP server, retrying only what may succeed later.

The outbox owns durability; this module owns one delivery: connect, send the
stored bytes with an explicit envelope (DESIGN invariant 6), and sort every
failure into *transient* (4xx, disconnects, timeouts: retried with backoff
until ``max_attempts`` or the deadline) or *permanent* (5xx, bad
configuration: reported at once, since repeating it cannot help and may annoy
the receiving server). aiosmtplib's exceptions are translated here into
:class:`DeliveryError`, so callers never import aiosmtplib.

Duplicates: once the server has answered ``250`` to DATA the message is
delivered, so nothing after that point (QUIT, closing) can cause a retry. A
connection lost after the data but before that answer is retried, and may
deliver twice; the bytes, Message-ID included, are identical, so the copies
thread together and a receiving system can drop one (DESIGN invariant 2).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import aiosmtplib
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from mailer.smtp_pool import SmtpPool

__all__ = ["DeliveryError", "DeliveryResult", "SmtpServer", "check_smtp", "deliver"]

log = logging.getLogger(__name__)

_MAX_REPLY_CHARS = 500
_MAX_BACKOFF_SECONDS = 30.0
_QUIT_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to submit mail.

    ``security``: ``tls`` connects with implicit TLS (port 465), ``starttls``
    upgrades a plain connection and fails if the server cannot, ``none`` never
    encrypts (local relays and tests only). Certificates are always verified.
    """

    host: str
    port: int
    security: Literal["tls", "starttls", "none"]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    """Kept out of ``repr`` so it never lands in a log line or a traceback."""
    timeout_seconds: float = 30.0
    """Limit for connecting and for each reply from the server."""
    token_provider: Callable[[], str] | None = field(default=None, repr=False, compare=False)
    """When set, authenticate as ``username`` with SASL XOAUTH2 using the access token it
    returns (called in a worker thread, as it may block to refresh); ``password`` unused."""


class DeliveryError(Exception):
    """Delivery failed; ``permanent`` says whether trying again later could help.

    ``reply`` is the server's code and text (``550 5.1.1 no such user``) or a
    description of the network error, one line, for the outbox and audit trail.
    ``attempts`` is how many connections were tried.
    """

    def __init__(self, reply: str, *, permanent: bool, attempts: int = 1) -> None:
        super().__init__(reply)
        self.reply = reply
        self.permanent = permanent
        self.attempts = attempts


@dataclass(frozen=True)
class DeliveryResult:
    """The server accepted the message for at least one recipient."""

    reply: str
    """The server's reply to DATA, e.g. ``250 2.0.0 OK queued as 4XyZ``."""
    refused: tuple[tuple[str, str], ...] = ()
    """Recipients the server refused while accepting others, with its reply to each.

    Not retried here, even for 4xx: a retry would re-send to those who accepted.
    """
    attempts: int = 1


class _TransientError(Exception):
    """Internal: a failure worth retrying. Escapes only as a DeliveryError."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_REPLY_CHARS else line[: _MAX_REPLY_CHARS - 1] + "…"


def _is_permanent_code(code: int) -> bool:
    return 500 <= code <= 599


def _translate(exc: BaseException) -> DeliveryError | _TransientError:
    """Sort one aiosmtplib/network failure into permanent or transient.

    Order matters: several aiosmtplib exceptions inherit from more than one
    family (a connect timeout is both a timeout and a connect error, a bad
    greeting is both a response and a connect error).
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        if len(refused) == 1:
            reply = f"{refused[0].code} {refused[0].message}"
        else:
            reply = "; ".join(f"{r.code} {r.message} ({r.recipient})" for r in refused)
        if any(not _is_permanent_code(r.code) for r in refused):
            return _TransientError(_one_line(reply))
        return DeliveryError(_one_line(reply), permanent=True)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reply = _one_line(f"{exc.code} {exc.message}")
        if _is_permanent_code(exc.code):
            return DeliveryError(reply, permanent=True)
        return _TransientError(reply)
    if isinstance(exc, aiosmtplib.SMTPConnectError) and isinstance(
        exc.__cause__, ssl.SSLCertVerificationError
    ):
        return DeliveryError(_one_line(f"TLS certificate rejected: {exc}"), permanent=True)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return _TransientError(_one_line(f"timed out: {exc}" if str(exc) else "timed out"))
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError):
        return _TransientError(_one_line(f"{type(exc).__name__}: {exc}"))
    if isinstance(exc, aiosmtplib.SMTPException):
        # STARTTLS or AUTH not offered, SMTPUTF8 unsupported: configuration, not weather.
        return DeliveryError(_one_line(f"{type(exc).__name__}: {exc}"), permanent=True)
    if isinstance(exc, OSError):
        return _TransientError(_one_line(f"{type(exc).__name__}: {exc}"))
    return DeliveryError(_one_line(f"{type(exc).__name__}: {exc}"), permanent=True)


_EXPECTED = (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError, UnicodeError)


def _client(server: SmtpServer) -> aiosmtplib.SMTP:
    """An unconnected client configured exactly as ``server.security`` says.

    ``start_tls=False`` is explicit for ``tls`` and ``none``: aiosmtplib would
    otherwise upgrade opportunistically whenever STARTTLS is offered.
    """
    oauth = server.token_provider is not None
    return aiosmtplib.SMTP(
        hostname=server.host,
        port=server.port,
        # With XOAUTH2 we authenticate ourselves after connecting (see _xoauth2).
        username=None if oauth else server.username,
        password=None if oauth else server.password,
        timeout=server.timeout_seconds,
        use_tls=server.security == "tls",
        start_tls=server.security == "starttls",
    )


async def _access_token(server: SmtpServer) -> str:
    """The provider's token, fetched off the event loop; its failure is worth a retry later
    (an operator can repair the grant without the message being given up)."""
    assert server.token_provider is not None
    try:
        return await asyncio.to_thread(server.token_provider)
    except Exception as exc:
        raise _TransientError(_one_line(f"no access token for SMTP: {exc}")) from None


async def _xoauth2(client: aiosmtplib.SMTP, server: SmtpServer, token: str) -> None:
    """AUTH XOAUTH2 after EHLO (and STARTTLS, which aiosmtplib did in connect)."""
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    await client.auth_xoauth2(server.username or "", token)


async def _close(client: aiosmtplib.SMTP) -> None:
    """Say QUIT politely if still connected; failures here change nothing."""
    try:
        if client.is_connected:
            async with asyncio.timeout(_QUIT_TIMEOUT_SECONDS):
                await client.quit()
    except _EXPECTED:
        pass
    finally:
        client.close()


async def _attempt(
    server: SmtpServer,
    envelope_from: str,
    recipients: Sequence[str],
    raw: bytes,
    budget_seconds: float,
    pool: SmtpPool | None = None,
) -> DeliveryResult:
    """One transaction, on a kept connection when ``pool`` has one that still answers
    ``NOOP`` (else a new one); raises DeliveryError or _TransientError."""
    needs_utf8 = not envelope_from.isascii() or not all(r.isascii() for r in recipients)
    client = pool.take(server) if pool is not None else None
    if client is not None:
        try:
            async with asyncio.timeout(min(budget_seconds, server.timeout_seconds)):
                await client.noop()
        except (*_EXPECTED, asyncio.CancelledError):
            client.close()  # dropped while kept: nothing of this message was sent on it
            client = None
    fresh = client is None
    if client is None:
        token = await _access_token(server) if server.token_provider is not None else None
        client = _client(server)
    try:
        async with asyncio.timeout(budget_seconds):
            if fresh:
                await client.connect()
                if pool is not None:
                    pool.opened += 1
                if token is not None:
                    await _xoauth2(client, server, token)
            errors, data_reply = await client.sendmail(
                envelope_from,
                list(recipients),
                raw,
                mail_options=["SMTPUTF8"] if needs_utf8 else None,
            )
    except _EXPECTED as exc:
        client.close()
        raise _translate(exc) from exc
    except asyncio.CancelledError:
        client.close()
        raise
    # DATA was answered 250: delivered. Nothing below may turn this into a retry.
    if pool is not None:
        pool.give_back(server, client)
    else:
        await _close(client)
    refused = tuple((rcpt, _one_line(str(reply))) for rcpt, reply in errors.items())
    return DeliveryResult(reply=_one_line(f"250 {data_reply}"), refused=refused)


def _log_retry(state: RetryCallState) -> None:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    sleep = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning(
        "SMTP attempt %d failed (%s); retrying in %.2fs", state.attempt_number, error, sleep
    )


async def deliver(
    server: SmtpServer,
    envelope_from: str,
    recipients: Sequence[str],
    raw: bytes,
    *,
    max_attempts: int = 3,
    deadline_seconds: float = 60.0,
    initial_backoff_seconds: float = 0.5,
    pool: SmtpPool | None = None,
) -> DeliveryResult:
    """Send ``raw`` unchanged from ``envelope_from`` to ``recipients``.

    With ``pool``, the connection is reused from the last message to the same server
    and kept for the next one.

    Transient failures are retried with exponential backoff plus jitter
    (``initial_backoff_seconds`` doubling, capped at 30 s) until
    ``max_attempts`` connections were tried or the next one would start after
    ``deadline_seconds``; each attempt is also cut off at the deadline. Then
    DeliveryError(permanent=False) carries the last error. A 5xx reply raises
    DeliveryError(permanent=True) at once.

    The envelope is passed explicitly, never derived from the headers, so a
    Bcc or To in ``raw`` can never add a recipient.
    """
    rcpts = tuple(recipients)
    if not rcpts:
        raise ValueError("at least one recipient is required")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    retrying = AsyncRetrying(
        stop=stop_after_attempt(max_attempts) | stop_before_delay(deadline_seconds),
        wait=wait_exponential_jitter(
            multiplier=initial_backoff_seconds,
            max=max(initial_backoff_seconds, _MAX_BACKOFF_SECONDS),
            jitter=initial_backoff_seconds,
        ),
        retry=retry_if_exception_type(_TransientError),
        before_sleep=_log_retry,
        reraise=True,
    )
    attempts = 0
    try:
        async for attempt in retrying:
            with attempt:
                attempts = attempt.retry_state.attempt_number
                budget = deadline - loop.time()
                if budget <= 0:
                    raise _TransientError(f"deadline of {deadline_seconds:g}s reached")
                result = await _attempt(server, envelope_from, rcpts, raw, budget, pool)
                return dataclasses.replace(result, attempts=attempts)
    except _TransientError as exc:
        raise DeliveryError(exc.reply, permanent=False, attempts=attempts) from exc
    except DeliveryError as exc:
        exc.attempts = attempts
        raise
    raise AssertionError("unreachable: tenacity stops only by raising")


async def check_smtp(server: SmtpServer) -> str:
    """Connect, greet, secure and authenticate exactly as delivery would; send nothing.

    Returns one line for the operator, e.g. ``smtp.example.com:587 starttls:
    220 smtp.example.com ESMTP; ESMTP 8BITMIME AUTH PIPELINING SIZE;
    authenticated as bot``. Raises DeliveryError with the reason on failure.
    The whole check is bounded by three times ``timeout_seconds`` (connect,
    TLS, AUTH).
    """
    try:
        token = await _access_token(server) if server.token_provider is not None else None
    except _TransientError as exc:
        raise DeliveryError(exc.reply, permanent=False) from None
    client = _client(server)
    try:
        async with asyncio.timeout(server.timeout_seconds * 3):
            greeting = await client.connect()
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
            if token is not None:
                await _xoauth2(client, server, token)
    except _EXPECTED as exc:
        client.close()
        translated = _translate(exc)
        if isinstance(translated, DeliveryError):
            raise translated from exc
        raise DeliveryError(translated.reply, permanent=False) from exc
    parts = [f"{server.host}:{server.port} {server.security}: {greeting}"]
    if client.supports_esmtp:
        names = " ".join(sorted(ext.upper() for ext in client.esmtp_extensions))
        parts.append(f"ESMTP {names}" if names else "ESMTP")
    if server.username:
        how = " with XOAUTH2" if token is not None else ""
        parts.append(f"authenticated as {server.username}{how}")
    await _close(client)
    return _one_line("; ".join(parts))
