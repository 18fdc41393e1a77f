"""Escalation rules: each default rule on a positive and a negative case, boundaries, config.

Word matching is whole words and phrases, no stemming: "cancel" does not match
"cancelled", while "cancellation" is listed on its own and matches whatever
is cancelled, a meeting included. A false alarm to a manager costs less than
a missed threat to leave.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from policies.escalation import (
    DEFAULT_RULES,
    EscalationFacts,
    EscalationHit,
    EscalationRule,
    escalate,
    required_windows,
    rule_from_mapping,
)

CALM = EscalationFacts(
    severity="normal",
    category="technical_issue",
    tier="standard",
    at_risk=False,
    text="Export button greyed out\nThe export button is greyed out since this morning.",
    complaints_in_window={30: 1},
)


def fired(facts: EscalationFacts, rules: tuple[EscalationRule, ...] = DEFAULT_RULES) -> list[str]:
    return [hit.rule for hit in escalate(facts, rules)]


def with_text(text: str) -> EscalationFacts:
    return dataclasses.replace(CALM, text=text)


def test_a_calm_complaint_escalates_nothing() -> None:
    assert fired(CALM) == []


def test_critical_severity_fires_and_high_does_not() -> None:
    assert fired(dataclasses.replace(CALM, severity="critical")) == ["critical_severity"]
    assert fired(dataclasses.replace(CALM, severity="high")) == []


def test_hit_carries_reasons_and_actions() -> None:
    hits = escalate(dataclasses.replace(CALM, severity="critical"), DEFAULT_RULES)
    assert hits == [
        EscalationHit(
            rule="critical_severity",
            reasons=("severity critical",),
            notify_manager=True,
            copy_to=(),
            mark_at_risk=False,
        )
    ]


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("We will cancel our contract at the end of the month.", "cancel"),
        ("CANCEL the subscription now", "cancel"),
        ("Our lawyer will be in touch.", "lawyer"),
        ("We are considering legal action.", "legal action"),
        ("We are considering legal\n  action.", "legal action"),
        ("I'll file a chargeback with my bank.", "chargeback"),
        ("We’ll terminate the agreement.", "terminate"),
        ("Please confirm the cancellation of the meeting.", "cancellation"),
    ],
)
def test_legal_and_cancellation_words_fire(text: str, word: str) -> None:
    hits = escalate(with_text(text), DEFAULT_RULES)
    assert [hit.rule for hit in hits] == ["legal_or_cancellation"]
    assert hits[0].reasons == (f'mentions "{word}"',)
    assert not hits[0].mark_at_risk  # a word may be a false alarm; a person decides


def test_only_repeated_complaints_mark_the_account_at_risk_by_default() -> None:
    assert [rule.name for rule in DEFAULT_RULES if rule.mark_at_risk] == ["repeated_complaints"]


@pytest.mark.parametrize(
    "text",
    [
        "Our flight was cancelled, so we missed the training.",
        "The job was terminated by the scheduler.",
        "Nothing legal here, just an action item.",
        "The courtesy call never happened.",
        "Lawyers' offices are closed today",  # plural is a different word; list it if wanted
    ],
)
def test_words_match_whole_words_only(text: str) -> None:
    assert fired(with_text(text)) == []


def test_every_listed_word_is_named_once() -> None:
    hits = escalate(
        with_text("Cancel it, or our attorney and our lawyer call. Cancel!"), DEFAULT_RULES
    )
    assert hits[0].reasons == ('mentions "cancel", "lawyer", "attorney"',)


def test_typographic_apostrophes_and_accents_are_folded() -> None:
    rule = EscalationRule("french", words=("l'avocat", "won't renew", "résiliation"))
    assert fired(with_text("Nous contactons l’avocat."), (rule,)) == ["french"]
    assert fired(with_text("We WON\u2019T RENEW."), (rule,)) == ["french"]
    assert fired(with_text("Demande de resiliation"), (rule,)) == ["french"]


def test_compliance_category_fires_and_others_do_not() -> None:
    assert fired(dataclasses.replace(CALM, category="compliance")) == ["compliance"]
    assert fired(dataclasses.replace(CALM, category="billing")) == []
    assert fired(dataclasses.replace(CALM, category=None)) == []


def test_repeated_complaints_fire_exactly_at_the_threshold() -> None:
    for count, expected in ((2, []), (3, ["repeated_complaints"]), (4, ["repeated_complaints"])):
        facts = dataclasses.replace(CALM, complaints_in_window={30: count})
        assert fired(facts) == expected, count
    hit = escalate(dataclasses.replace(CALM, complaints_in_window={30: 3}), DEFAULT_RULES)[0]
    assert hit.reasons == ("3 complaints from this account in 30 days",)


def test_repeated_complaints_use_the_rule_window() -> None:
    rule = EscalationRule("twice_a_week", repeated_complaints=2, window_days=7)
    assert required_windows((*DEFAULT_RULES, rule)) == {7, 30}
    facts = dataclasses.replace(CALM, complaints_in_window={30: 5, 7: 1})
    assert fired(facts, (rule,)) == []
    assert fired(dataclasses.replace(facts, complaints_in_window={7: 2}), (rule,)) == [
        "twice_a_week"
    ]


def test_a_missing_window_is_an_error_not_a_quiet_account() -> None:
    with pytest.raises(ValueError, match="30 days"):
        escalate(dataclasses.replace(CALM, complaints_in_window={}), DEFAULT_RULES)


def test_tier_condition() -> None:
    rule = EscalationRule(
        "enterprise_high", severities=frozenset({"high"}), tiers=frozenset({"enterprise"})
    )
    high = dataclasses.replace(CALM, severity="high")
    assert fired(dataclasses.replace(high, tier="Enterprise"), (rule,)) == ["enterprise_high"]
    assert fired(dataclasses.replace(high, tier="standard"), (rule,)) == []
    assert fired(dataclasses.replace(high, tier=None), (rule,)) == []
    assert fired(dataclasses.replace(CALM, tier="enterprise"), (rule,)) == []  # severity normal
    hit = escalate(dataclasses.replace(high, tier="enterprise"), (rule,))[0]
    assert hit.reasons == ("severity high", "enterprise customer")


def test_at_risk_only() -> None:
    rule = EscalationRule(
        "at_risk_complaint", at_risk_only=True, copy_to=("am@example.com",), notify_manager=False
    )
    assert fired(CALM, (rule,)) == []
    hit = escalate(dataclasses.replace(CALM, at_risk=True), (rule,))[0]
    assert (hit.reasons, hit.copy_to, hit.notify_manager) == (
        ("account at risk",),
        ("am@example.com",),
        False,
    )


def test_all_conditions_must_hold() -> None:
    rule = EscalationRule("angry_enterprise", tiers=frozenset({"enterprise"}), words=("cancel",))
    assert fired(with_text("we will cancel"), (rule,)) == []
    enterprise = dataclasses.replace(CALM, tier="enterprise")
    assert fired(enterprise, (rule,)) == []
    assert fired(dataclasses.replace(enterprise, text="we will cancel"), (rule,)) == [
        "angry_enterprise"
    ]


def test_a_rule_without_conditions_never_fires() -> None:
    empty = EscalationRule("everything", copy_to=("all@example.com",))
    assert not empty.has_conditions
    loud = dataclasses.replace(
        CALM, severity="critical", category="compliance", at_risk=True, text="lawyer"
    )
    assert fired(loud, (empty,)) == []


def test_every_default_rule_reports_together() -> None:
    loud = EscalationFacts(
        severity="critical",
        category="compliance",
        tier="enterprise",
        at_risk=True,
        text="GDPR breach: our attorney will call",
        complaints_in_window={30: 3},
    )
    assert fired(loud) == [
        "critical_severity",
        "legal_or_cancellation",
        "compliance",
        "repeated_complaints",
    ]


def test_rule_validation_in_the_dataclass() -> None:
    with pytest.raises(ValueError, match="window_days"):
        EscalationRule("x", repeated_complaints=2, window_days=0)
    with pytest.raises(ValueError, match="words"):
        EscalationRule("x", words=("cancel", " "))


def test_rule_from_mapping_builds_a_rule() -> None:
    rule = rule_from_mapping(
        {
            "name": "vip",
            "severities": ["High", "critical"],
            "tiers": ["Enterprise"],
            "words": ["cancel"],
            "repeated_complaints": 2,
            "window_days": 14,
            "copy_to": ["AM@example.com", "am@example.com"],
            "mark_at_risk": True,
        }
    )
    assert rule == EscalationRule(
        "vip",
        severities=frozenset({"high", "critical"}),
        tiers=frozenset({"enterprise"}),
        words=("cancel",),
        repeated_complaints=2,
        window_days=14,
        copy_to=("am@example.com",),
        mark_at_risk=True,
    )


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"name": "x", "severity": ["critical"]}, "unknown key 'severity'"),
        ({"name": "x", "severities": "critical"}, "severities"),
        ({"name": "x", "severities": ["critcal"]}, "severities"),
        ({"name": "x", "categories": ["outage"]}, "categories"),
        ({"name": "x", "words": ["cancel", 3]}, "words"),
        ({"name": "x", "words": [""]}, "words"),
        ({"name": "x", "tiers": "enterprise"}, "tiers"),
        ({"name": "x", "repeated_complaints": "3"}, "repeated_complaints"),
        ({"name": "x", "repeated_complaints": True}, "repeated_complaints"),
        ({"name": "x", "repeated_complaints": -1}, "repeated_complaints"),
        ({"name": "x", "repeated_complaints": 2, "window_days": 0}, "window_days"),
        ({"name": "x", "at_risk_only": "yes"}, "at_risk_only"),
        ({"name": "x", "words": ["cancel"], "notify_manager": 1}, "notify_manager"),
        ({"name": "x", "words": ["cancel"], "copy_to": ["not an address"]}, "copy_to"),
        ({"name": "x", "words": ["cancel"], "copy_to": "am@example.com"}, "copy_to"),
        ({"words": ["cancel"]}, "name"),
        ({"name": 5, "words": ["cancel"]}, "name"),
    ],
)
def test_rule_from_mapping_errors_name_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        rule_from_mapping(data)


def test_rule_from_mapping_refuses_a_rule_without_conditions() -> None:
    with pytest.raises(ValueError, match="no conditions"):
        rule_from_mapping({"name": "everything", "copy_to": ["all@example.com"]})
