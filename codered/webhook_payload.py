"""The body of an ``incident.escalated`` webhook (documented in :mod:`codered.webhook`).

Apart from the posting so that building a body needs neither httpx nor tenacity: the
escalation check builds one for every escalated incident, webhook configured or not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from mailer.headers import sanitize_header_value

__all__ = ["escalation_payload"]

_MENTION = re.compile(r"(?<!\w)@(?=\w)")
"""An ``@name`` at the start of a word: Mattermost turns it into a mention (``@channel`` too)."""


def _slack_escaped(value: str, max_length: int) -> str:
    """One line with Slack's three control characters escaped, as its formatting guide asks."""
    line = sanitize_header_value(value, max_length=max_length)
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _chat_safe(value: str) -> str:
    """One line that a chat tool shows as written: no Slack markup, no mention of anyone."""
    return _MENTION.sub("@\u200b", _slack_escaped(value, 200))


def escalation_payload(
    *,
    reference: str,
    customer: str,
    subject: str,
    severity: str,
    category: str | None,
    owner: str | None,
    reasons: Sequence[str],
    url_to_incident: str | None,
) -> dict[str, Any]:
    """The documented ``incident.escalated`` body (see the module docstring).

    Structured fields carry the values as given (JSON needs no escaping);
    only ``text`` is shaped for display in a chat channel.
    """
    kind = f"{severity}, {category}" if category else severity
    parts = [
        f"Escalated {reference} ({kind}): {subject}",
        f"customer {customer}",
        f"owner {owner}" if owner else "unassigned",
    ]
    if reasons:
        parts.append("; ".join(reasons))
    text = " | ".join(_chat_safe(part) for part in parts)
    if url_to_incident:
        link = _slack_escaped(url_to_incident, 2000).replace("|", "%7C")
        text = f"{text} | <{link}|open>"
    return {
        "event": "incident.escalated",
        "reference": reference,
        "customer": customer,
        "subject": subject,
        "severity": severity,
        "category": category,
        "owner": owner,
        "reasons": list(reasons),
        "url": url_to_incident,
        "text": text,
    }
