"""Vocabulary shared by every rule: categories, severities, classifications, decisions."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Action",
    "Category",
    "Classification",
    "Decision",
    "Facts",
    "RuleHit",
    "Severity",
]


class Category(StrEnum):
    TECHNICAL_ISSUE = "technical_issue"
    SERVICE_OUTAGE = "service_outage"
    PERFORMANCE = "performance"
    CONTRACT_DISPUTE = "contract_dispute"
    BILLING = "billing"
    COMMUNICATION_BREAKDOWN = "communication_breakdown"
    COMPLIANCE = "compliance"
    STRATEGIC_SHIFT = "strategic_shift"
    EMERGENCY = "emergency"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"


class Action(StrEnum):
    """What the pipeline does with a message once the rules have spoken."""

    ACKNOWLEDGE = "acknowledge"
    """Open an incident and send the template acknowledgement."""
    ATTACH = "attach"
    """Add the message to an incident that already exists (no new acknowledgement)."""
    HOLD = "hold"
    """Open an incident for a person, but send nothing automatically."""
    IGNORE = "ignore"
    """Record and audit only."""


@dataclass(frozen=True)
class Classification:
    """The verdict of complaint detection, offline scorer or model alike."""

    is_complaint: bool
    category: Category | None
    severity: Severity
    confidence: float
    """0.0 to 1.0."""
    signals: tuple[str, ...]
    """Human-readable evidence, e.g. ``'phrase "is down" (+3.0, service_outage)'``."""
    source: str = "offline"
    """``offline`` or ``model:<model name>``."""


@dataclass(frozen=True)
class RuleHit:
    """One rule that fired, with a sentence a manager can read."""

    rule: str
    reason: str


@dataclass(frozen=True)
class Facts:
    """What the pipeline looked up in storage before deciding; rules stay pure."""

    own_addresses: frozenset[str]
    """Lower-cased addresses of our own mailboxes and sender identities."""
    acknowledgements_to_sender_24h: int = 0
    sender_limit_24h: int = 3
    existing_incident: str | None = None
    """Reference of the incident this message's thread already belongs to."""
    trusted_authserv_ids: frozenset[str] = frozenset()
    """Lower-cased ``authserv-id`` values of our own receiving servers (RFC 8601)."""
    acknowledgements_last_minute: int = 0
    """Automatic acknowledgements queued in the last 60 seconds, across all mailboxes."""
    global_limit_per_minute: int = 1000
    """Above this rate automatic sending stops (circuit breaker) and a person takes over."""


@dataclass(frozen=True)
class Decision:
    action: Action
    hits: tuple[RuleHit, ...]
    """Every rule that fired, in table order; the first decided the action."""
    classification: Classification | None

    @property
    def deciding_rule(self) -> str:
        return self.hits[0].rule if self.hits else "default"

    @property
    def reason(self) -> str:
        return self.hits[0].reason if self.hits else "no rule fired"
