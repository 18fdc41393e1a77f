"""Authentication before answering: no acknowledgement to a sender whose domain's DMARC
check failed at a server we trust (RFC 8601 ``Authentication-Results``).

Why: an automatic reply to a forged From address is backscatter: it mails an
innocent third party and tells an attacker our mailbox is live. Only results
stamped by our own receiving server (its ``authserv-id``, configured per
mailbox) count; anyone can write an Authentication-Results header into a
message, so results from other servers are ignored.
"""

from __future__ import annotations

import re

from inbox.message import InboundEmail
from policies.model import Classification, Facts

__all__ = ["dmarc_failed", "dmarc_results"]

_COMMENT = re.compile(r"\([^()]*\)")
_DMARC = re.compile(r"(?:^|;)\s*dmarc\s*=\s*([a-z]+)", re.IGNORECASE)
_FAILED = frozenset({"fail", "permerror"})


def dmarc_results(email: InboundEmail, trusted: frozenset[str]) -> list[str]:
    """DMARC results (lower-cased) from headers stamped by a trusted ``authserv-id``.

    ``mx.acme.example; spf=pass; dmarc=fail (p=reject)`` gives ``["fail"]`` when
    ``mx.acme.example`` is trusted, and nothing otherwise. Comments are removed first.
    """
    results: list[str] = []
    for value in email.headers.get("authentication-results", ()):
        text = _COMMENT.sub(" ", value)
        server = text.split(";", 1)[0].split()
        if not server or server[0].lower() not in trusted:
            continue
        results.extend(match.group(1).lower() for match in _DMARC.finditer(text))
    return results


def dmarc_failed(
    email: InboundEmail, facts: Facts, classification: Classification | None
) -> str | None:
    """Hold a message for a person when our own server says its DMARC check failed."""
    if not facts.trusted_authserv_ids:
        return None
    failed = [r for r in dmarc_results(email, facts.trusted_authserv_ids) if r in _FAILED]
    if failed:
        return f"DMARC {failed[0]} at our trusted server: the sender may be forged"
    return None
