"""Escalation: which incidents a manager or account team must hear about now.

A rule is a set of conditions that must *all* hold; an empty condition means
"any". Every rule that fires is returned with sentences a manager can read
("severity critical", 'mentions "lawyer"'), so the audit trail records why a
notification went out, in the manner of :mod:`policies.table`.

A rule with no condition at all never fires. A typo in the settings file that
drops every condition (``severity = ...`` instead of ``severities = ...``) would
otherwise escalate every complaint and teach people to ignore escalations;
:func:`rule_from_mapping` rejects both the unknown key and the empty rule.

Words are matched as whole words or phrases, case-insensitively, with accents
and typographic apostrophes folded, and nothing more: no stemming and no
reading of context. So ``cancel`` does not match "cancelled flight", while
``cancellation`` (listed on its own) does match "cancellation of the meeting".
An escalation is a note to a person, so a false alarm is cheaper than a miss;
words that must catch inflections are listed in each form.

Pure: the caller counts complaints per account (see :func:`required_windows`)
and passes them in :class:`EscalationFacts`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

from policies.model import Category, Severity

__all__ = [
    "DEFAULT_RULES",
    "LEGAL_AND_CANCELLATION_WORDS",
    "EscalationFacts",
    "EscalationHit",
    "EscalationRule",
    "escalate",
    "required_windows",
    "rule_from_mapping",
]

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'", "`": "'"})


@dataclass(frozen=True)
class EscalationRule:
    """One escalation rule; each non-empty (non-zero, true) condition must hold."""

    name: str
    severities: frozenset[str] = frozenset()
    """e.g. ``{"critical"}``; empty = any severity."""
    categories: frozenset[str] = frozenset()
    """e.g. ``{"compliance", "contract_dispute"}``; empty = any category (or none)."""
    tiers: frozenset[str] = frozenset()
    """Customer tiers, e.g. ``{"enterprise"}``, compared case-insensitively; empty = any."""
    words: tuple[str, ...] = ()
    """Any of these whole words or phrases in the subject or new text; empty = off."""
    repeated_complaints: int = 0
    """Fire at this many complaints from the account within ``window_days`` (0 = off)."""
    window_days: int = 30
    at_risk_only: bool = False
    """Fire only for accounts already flagged at risk."""
    notify_manager: bool = True
    copy_to: tuple[str, ...] = ()
    """Internal addresses to copy on the notification."""
    mark_at_risk: bool = False
    """Flag the account at risk when this rule fires."""

    def __post_init__(self) -> None:
        if self.repeated_complaints < 0:
            raise ValueError(f"escalation rule {self.name!r}: repeated_complaints must be >= 0")
        if self.window_days < 1:
            raise ValueError(f"escalation rule {self.name!r}: window_days must be >= 1")
        if any(not word.strip() for word in self.words):
            raise ValueError(f"escalation rule {self.name!r}: words must not be blank")

    @property
    def has_conditions(self) -> bool:
        """False for a rule that would match everything, and therefore never fires."""
        return bool(
            self.severities
            or self.categories
            or self.tiers
            or self.words
            or self.repeated_complaints
            or self.at_risk_only
        )


@dataclass(frozen=True)
class EscalationFacts:
    """What the caller knows about the incident and its account when rules run."""

    severity: str
    category: str | None
    tier: str | None
    at_risk: bool
    text: str
    """Subject plus the new text of the customer's message (quotes removed)."""
    complaints_in_window: Mapping[int, int] = field(default_factory=dict)
    """``window_days -> complaints`` from this account within that many days, this one
    included; must hold every window of :func:`required_windows`."""


@dataclass(frozen=True)
class EscalationHit:
    """One rule that fired, what it found, and what it asks for."""

    rule: str
    reasons: tuple[str, ...]
    notify_manager: bool
    copy_to: tuple[str, ...]
    mark_at_risk: bool


def required_windows(rules: Iterable[EscalationRule]) -> set[int]:
    """The ``window_days`` for which the caller must count complaints."""
    return {rule.window_days for rule in rules if rule.repeated_complaints > 0}


def _fold(text: str) -> str:
    """Lower-case, accents removed, every apostrophe as ``'``: "Won’t" -> "won't"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


@cache
def _word_pattern(word: str) -> re.Pattern[str]:
    """A whole word or phrase; any run of whitespace between the words of a phrase."""
    body = r"\s+".join(re.escape(part) for part in _fold(word).split())
    return re.compile(rf"(?<!\w){body}(?!\w)")


def _matched_words(words: Sequence[str], text: str) -> list[str]:
    folded = _fold(text)
    return [word for word in words if _word_pattern(word).search(folded)]


def _folded(values: frozenset[str]) -> set[str]:
    return {value.casefold() for value in values}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _reasons(rule: EscalationRule, facts: EscalationFacts) -> tuple[str, ...] | None:
    """Why ``rule`` fires for ``facts``, one sentence per condition, or None."""
    reasons: list[str] = []
    if rule.severities:
        if facts.severity.casefold() not in _folded(rule.severities):
            return None
        reasons.append(f"severity {facts.severity}")
    if rule.categories:
        if facts.category is None or facts.category.casefold() not in _folded(rule.categories):
            return None
        reasons.append(f"category {facts.category}")
    if rule.tiers:
        if facts.tier is None or facts.tier.casefold() not in _folded(rule.tiers):
            return None
        reasons.append(f"{facts.tier} customer")
    if rule.words:
        found = _matched_words(rule.words, facts.text)
        if not found:
            return None
        reasons.append("mentions " + ", ".join(f'"{word}"' for word in found))
    if rule.repeated_complaints:
        if rule.window_days not in facts.complaints_in_window:
            raise ValueError(
                f"escalation rule {rule.name!r} needs complaints in the last "
                f"{rule.window_days} days; see required_windows()"
            )
        count = facts.complaints_in_window[rule.window_days]
        if count < rule.repeated_complaints:
            return None
        reasons.append(
            f"{_plural(count, 'complaint')} from this account in {_plural(rule.window_days, 'day')}"
        )
    if rule.at_risk_only:
        if not facts.at_risk:
            return None
        reasons.append("account at risk")
    return tuple(reasons)


def escalate(facts: EscalationFacts, rules: Sequence[EscalationRule]) -> list[EscalationHit]:
    """Every rule of ``rules`` that fires for ``facts``, in order.

    Raises ValueError when a repeated-complaints rule finds no count for its
    window: a caller that forgot to count must not look like a quiet account.
    """
    hits: list[EscalationHit] = []
    for rule in rules:
        if not rule.has_conditions:
            continue
        reasons = _reasons(rule, facts)
        if reasons is None:
            continue
        hits.append(
            EscalationHit(rule.name, reasons, rule.notify_manager, rule.copy_to, rule.mark_at_risk)
        )
    return hits


LEGAL_AND_CANCELLATION_WORDS: tuple[str, ...] = (
    "cancel", "cancellation", "terminate", "lawyer", "attorney", "legal action",
    "sue you", "sue your company", "take you to court", "chargeback",
)  # fmt: skip
"""Phrases rather than "sue" and "court" alone, which would fire on a customer named Sue
and on a food court."""
"""Threats to leave or to go to law. Whole words, so "Sue" in a signature matches too."""

# fmt: off
DEFAULT_RULES: tuple[EscalationRule, ...] = (
    EscalationRule("critical_severity",     severities=frozenset({Severity.CRITICAL.value})),
    EscalationRule("legal_or_cancellation", words=LEGAL_AND_CANCELLATION_WORDS),
    EscalationRule("compliance",            categories=frozenset({Category.COMPLIANCE.value})),
    EscalationRule("repeated_complaints",   repeated_complaints=3, window_days=30, mark_at_risk=True),  # noqa: E501
)
# fmt: on
"""The default escalations; each notifies the manager. Only a pattern of complaints flags
the account at risk by itself: a word match may be a false alarm ("Sue", "the meeting's
cancellation"), and a flag, unlike a notification, outlives the message."""


_KNOWN = {
    "severities": frozenset(s.value for s in Severity),
    "categories": frozenset(c.value for c in Category),
}


def _strings(problem: str, value: Any) -> list[str]:
    """A list of non-blank strings; a bare string is refused (it would become its letters)."""
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise ValueError(f"{problem} must be a list of strings")
    if not all(isinstance(item, str) and item.strip() for item in value):
        raise ValueError(f"{problem} must hold non-empty strings only")
    return [item.strip() for item in value]


def _field(name: str, key: str, value: Any) -> Any:
    """``value`` of ``key`` checked and converted to the type of the field."""
    problem = f"escalation rule {name!r}: {key}"
    if key in ("severities", "categories"):
        items = {item.lower() for item in _strings(problem, value)}
        if unknown := sorted(items - _KNOWN[key]):
            raise ValueError(f"{problem} has unknown {unknown}; known: {sorted(_KNOWN[key])}")
        return frozenset(items)
    if key == "tiers":
        return frozenset(item.lower() for item in _strings(problem, value))
    if key == "words":
        return tuple(_strings(problem, value))
    if key == "copy_to":
        addresses = [item.lower() for item in _strings(problem, value)]
        for address in addresses:
            local, _, domain = address.partition("@")
            if not local or not domain or "@" in domain or any(c.isspace() for c in address):
                raise ValueError(f"{problem} has an unusable address {address!r}")
        return tuple(dict.fromkeys(addresses))
    if key in ("repeated_complaints", "window_days"):
        minimum = 0 if key == "repeated_complaints" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{problem} must be an integer >= {minimum}")
        return value
    if not isinstance(value, bool):  # at_risk_only, notify_manager, mark_at_risk
        raise ValueError(f"{problem} must be true or false")
    return value


def rule_from_mapping(data: Mapping[str, Any]) -> EscalationRule:
    """Build a rule from a TOML-style table, refusing anything doubtful with ValueError.

    Keys are the field names of :class:`EscalationRule`; lists stand for sets and
    tuples. Severities and categories must be known values (a typo would silently
    never fire), and a rule without conditions is refused. Every message names the key.

    >>> rule_from_mapping({"name": "vip", "tiers": ["Enterprise"], "severities": ["high"]}).tiers
    frozenset({'enterprise'})
    """
    known = {f.name for f in fields(EscalationRule)}
    if unknown := sorted(set(data) - known):
        raise ValueError(f"unknown key {unknown[0]!r} in escalation rule; known: {sorted(known)}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("escalation rule: name must be a non-empty string")
    name = name.strip()
    values = {key: _field(name, key, value) for key, value in data.items() if key != "name"}
    rule = EscalationRule(name=name, **values)
    if not rule.has_conditions:
        raise ValueError(f"escalation rule {name!r} has no conditions, so it would never fire")
    return rule
