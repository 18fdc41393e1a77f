# ruff: noqa: E501  (the table below is laid out one rule per line, in columns, on purpose)
"""The policy table: one literal, ordered list of rule -> action, in the manner of GNU Mailman.

Every rule is evaluated and every one that fires is recorded on the decision,
so a manager reading the audit trail sees, for example, that a message was an
auto-reply *and* came from a list *and* mentioned an outage. The first rule
that fired decides the action. Order therefore is the policy:

1. who can we answer at all (a sender, not ourselves),
2. is it machine mail (never answer a machine),
3. does it belong to an incident we already have (attach, no second ack),
4. is it a complaint at all,
5. may we answer automatically: authenticated sender, within the per-sender and global
   limits (else hold for a person),
6. acknowledge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from inbox.message import InboundEmail
from policies import guards
from policies.authentication import dmarc_failed
from policies.model import Action, Classification, Decision, Facts, RuleHit

__all__ = [
    "DEFAULT_POLICY",
    "Rule",
    "RuleCheck",
    "complaint",
    "decide",
    "existing_thread",
    "global_circuit_breaker",
    "not_a_complaint",
    "sender_rate_limit",
]

RuleCheck = Callable[[InboundEmail, Facts, Classification | None], str | None]
"""A rule: returns a reason a manager can read when it fires, else None."""


@dataclass(frozen=True)
class Rule:
    """One row of the table: when ``check`` fires, ``action`` is proposed."""

    name: str
    check: RuleCheck
    action: Action
    description: str


def _guard(guard: guards.Guard) -> RuleCheck:
    """Let a guard, which needs no classification, sit in the table."""

    def check(
        email: InboundEmail, facts: Facts, classification: Classification | None
    ) -> str | None:
        return guard(email, facts)

    check.__name__ = guard.__name__
    check.__doc__ = guard.__doc__
    return check


def existing_thread(
    email: InboundEmail, facts: Facts, classification: Classification | None
) -> str | None:
    """A reply in a thread we already track joins that incident; the customer has an ack."""
    if facts.existing_incident:
        return f"the thread already belongs to incident {facts.existing_incident}"
    return None


def not_a_complaint(
    email: InboundEmail, facts: Facts, classification: Classification | None
) -> str | None:
    """Only complaints are acknowledged automatically."""
    if classification is None:
        return "no classification is available"
    if not classification.is_complaint:
        return (
            f"not a complaint ({classification.source}, confidence {classification.confidence:.2f})"
        )
    return None


def sender_rate_limit(
    email: InboundEmail, facts: Facts, classification: Classification | None
) -> str | None:
    """The backstop against loops we failed to recognise: a person looks after N acks a day."""
    if facts.acknowledgements_to_sender_24h >= facts.sender_limit_24h:
        return (
            f"{facts.acknowledgements_to_sender_24h} acknowledgements to this sender in 24 hours "
            f"(limit {facts.sender_limit_24h})"
        )
    return None


def global_circuit_breaker(
    email: InboundEmail, facts: Facts, classification: Classification | None
) -> str | None:
    """The last backstop against a loop spread over many senders: stop sending automatically."""
    if facts.acknowledgements_last_minute >= facts.global_limit_per_minute:
        return (
            f"circuit breaker open: {facts.acknowledgements_last_minute} acknowledgements in "
            f"the last minute (ceiling {facts.global_limit_per_minute})"
        )
    return None


def complaint(
    email: InboundEmail, facts: Facts, classification: Classification | None
) -> str | None:
    """A complaint from a person, in a new thread, within limits: acknowledge it."""
    if classification is None or not classification.is_complaint:
        return None
    category = classification.category.value if classification.category else "general"
    return (
        f"{classification.severity.value} {category} complaint "
        f"({classification.source}, confidence {classification.confidence:.2f})"
    )


IGNORE, ATTACH, HOLD, ACKNOWLEDGE = Action.IGNORE, Action.ATTACH, Action.HOLD, Action.ACKNOWLEDGE

# fmt: off
DEFAULT_POLICY: tuple[Rule, ...] = (
    Rule("no_usable_sender",       _guard(guards.no_usable_sender),       IGNORE,      "no From address to answer"),
    Rule("own_message",            _guard(guards.own_message),            IGNORE,      "sent by us or carries our loop marker"),
    Rule("auto_submitted",         _guard(guards.auto_submitted),         IGNORE,      "RFC 3834 Auto-Submitted"),
    Rule("precedence_bulk",        _guard(guards.precedence_bulk),        IGNORE,      "Precedence bulk/junk/list/auto_reply"),
    Rule("autoreply_header",       _guard(guards.autoreply_header),       IGNORE,      "vendor auto-responder header"),
    Rule("auto_response_suppress", _guard(guards.auto_response_suppress), IGNORE,      "sender asks for no auto-replies"),
    Rule("loop_header",            _guard(guards.loop_header),            IGNORE,      "X-Loop names our address"),
    Rule("exchange_generated",     _guard(guards.exchange_generated),     IGNORE,      "generated by an Exchange rule"),
    Rule("mailing_list",           _guard(guards.mailing_list),           IGNORE,      "mailing list traffic"),
    Rule("newsletter_header",      _guard(guards.newsletter_header),      IGNORE,      "newsletter or marketing mail"),
    Rule("delivery_report",        _guard(guards.delivery_report),        IGNORE,      "bounce, read receipt or abuse report"),
    Rule("null_return_path",       _guard(guards.null_return_path),       IGNORE,      "null Return-Path <>"),
    Rule("machine_sender",         _guard(guards.machine_sender),         IGNORE,      "mailer-daemon or no-reply sender"),
    Rule("failed_recipients",      _guard(guards.failed_recipients),      IGNORE,      "X-Failed-Recipients bounce"),
    Rule("auto_reply_subject",     _guard(guards.auto_reply_subject),     IGNORE,      "out-of-office or bounce subject"),
    Rule("existing_thread",        existing_thread,                       ATTACH,      "reply in a thread we track"),
    Rule("not_a_complaint",        not_a_complaint,                       IGNORE,      "not a complaint"),
    Rule("dmarc_failed",           dmarc_failed,                          HOLD,        "forged sender? no backscatter"),
    Rule("sender_rate_limit",      sender_rate_limit,                     HOLD,        "too many acks to this sender"),
    Rule("global_circuit_breaker", global_circuit_breaker,                HOLD,        "too many acks overall"),
    Rule("complaint",              complaint,                             ACKNOWLEDGE, "acknowledge the complaint"),
)
# fmt: on
"""The default policy, top to bottom; the first rule that fires decides."""


def decide(
    email: InboundEmail,
    facts: Facts,
    classification: Classification | None,
    policy: Sequence[Rule] = DEFAULT_POLICY,
) -> Decision:
    """Run every rule of ``policy`` and let the first that fires decide.

    All hits are kept, in table order. When nothing fires the message is
    ignored with a single ``default`` hit, so every decision names a rule.
    """
    hits: list[RuleHit] = []
    action: Action | None = None
    for rule in policy:
        reason = rule.check(email, facts, classification)
        if reason is None:
            continue
        hits.append(RuleHit(rule.name, reason))
        if action is None:
            action = rule.action
    if action is None:
        return Decision(Action.IGNORE, (RuleHit("default", "no rule fired"),), classification)
    return Decision(action, tuple(hits), classification)
