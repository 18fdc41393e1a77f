"""Posting events to a webhook (Slack, Mattermost, an on-call tool), retrying transient failures.

A webhook is a side channel: a failed post must never stop the pipeline or
lose the escalation, which is also mailed and audited. So :func:`post_webhook`
never raises for network or HTTP trouble; it returns a :class:`WebhookResult`
for the audit trail. Connection errors, timeouts, 429 and 5xx are retried
with a short exponential backoff; any other status (4xx, 3xx: we do not
follow redirects) is final, since sending the same body again cannot help.

A retry after a timeout may deliver the same event twice; receivers can
drop the copy by ``event`` and ``reference``. The URL is never logged or
returned: incoming-webhook URLs carry their secret in the path.

The body of an escalation (:func:`escalation_payload`, built in
:mod:`codered.webhook_payload`) is one JSON object::

    {
      "event": "incident.escalated",
      "reference": "CR-1042",
      "customer": "Dana Ortiz <dana@acme.example>",
      "subject": "Payments failing since 9:00",
      "severity": "critical",
      "category": "service_outage",        // or null
      "owner": "sam@support.example.com",  // or null when unassigned
      "reasons": ["severity critical", "mentions \\"lawyer\\""],
      "url": "https://codered.example.com/incidents/CR-1042",  // or null
      "text": "Escalated CR-1042 (critical, service_outage) ..."
    }

``text`` is one line for chat tools that show only a ``text`` field (Slack's
incoming webhooks, Mattermost): Slack's control characters ``& < >`` are
escaped (so ``<!channel>`` shows as text) and an ``@`` that starts a word gets a
zero-width space after it (Mattermost links ``@channel`` and ``@name`` itself),
because the subject and customer name come from the customer's mail and must
not ping a whole channel. The link to the incident is Slack's ``<url|open>``,
which Mattermost translates.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from codered.webhook_payload import escalation_payload
from mailer.headers import sanitize_header_value

__all__ = ["WebhookResult", "escalation_payload", "post_webhook"]

log = logging.getLogger(__name__)

_MAX_ERROR_CHARS = 300
_MAX_BACKOFF_SECONDS = 5.0
_HEADERS = {"Content-Type": "application/json", "User-Agent": "codered"}


@dataclass(frozen=True)
class WebhookResult:
    """The outcome of one post, for the audit trail.

    ``status_code`` is the last HTTP status received (None when no response
    came at all); ``error`` is one line saying what went wrong, None on success.
    """

    ok: bool
    status_code: int | None
    error: str | None
    attempts: int


class _TransientError(Exception):
    """A failure worth another attempt; carries what to report if none succeeds."""

    def __init__(self, status_code: int | None, error: str) -> None:
        super().__init__(error)
        self.status_code = status_code
        self.error = error


def _one_line(text: str) -> str:
    return sanitize_header_value(text, max_length=_MAX_ERROR_CHARS) if text else ""


def _describe(exc: Exception) -> str:
    detail = _one_line(str(exc))
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _http_error(response: httpx.Response) -> str:
    detail = _one_line(response.text)
    return f"HTTP {response.status_code}: {detail}" if detail else f"HTTP {response.status_code}"


def _checked_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError("not a usable webhook URL") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"webhook URL must be http or https with a host, not {parsed.scheme!r}")
    return parsed


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("webhook attempt %d failed (%s); retrying", state.attempt_number, exc)


async def post_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 (per attempt, passed to httpx, not a deadline)
    attempts: int = 3,
    backoff_seconds: float = 0.5,
) -> WebhookResult:
    """POST ``payload`` as JSON to ``url``; return how it went, never raise for HTTP trouble.

    ``timeout`` bounds connecting and each read or write of one attempt;
    ``attempts`` counts the first try; the waits between attempts grow from
    ``backoff_seconds`` (with jitter) to at most 5 seconds. A 2xx answer is
    success. Raises ValueError for a URL that is not http(s) or for bad
    arguments, and TypeError for a payload that is not JSON-serialisable.
    """
    target = _checked_url(url)
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    if timeout <= 0 or backoff_seconds < 0:
        raise ValueError("timeout must be positive and backoff_seconds not negative")
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")

    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(
            multiplier=backoff_seconds, max=_MAX_BACKOFF_SECONDS, jitter=backoff_seconds / 2
        ),
        retry=retry_if_exception_type(_TransientError),
        before_sleep=_log_retry,
        reraise=True,
    )
    tried = 0
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        try:
            async for attempt in retrying:
                with attempt:
                    tried = attempt.retry_state.attempt_number
                    return await _attempt(client, target, body, tried)
        except _TransientError as exc:
            return WebhookResult(False, exc.status_code, exc.error, tried)
    raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover


async def _attempt(
    client: httpx.AsyncClient, url: httpx.URL, body: bytes, tried: int
) -> WebhookResult:
    """One POST: a result when final, :class:`_TransientError` when another try may help."""
    try:
        response = await client.post(url, content=body, headers=_HEADERS)
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise _TransientError(None, _describe(exc)) from exc
    except httpx.HTTPError as exc:
        return WebhookResult(False, None, _describe(exc), tried)
    status = response.status_code
    if 200 <= status < 300:
        return WebhookResult(True, status, None, tried)
    if status == 429 or status >= 500:
        raise _TransientError(status, _http_error(response))
    return WebhookResult(False, status, _http_error(response), tried)
