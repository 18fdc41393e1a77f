"""The policy table: its order, the recorded hits, and the action each situation gets."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from inbox.message import InboundEmail
from policies.detect import classify_offline
from policies.guards import GUARDS
from policies.model import Action, Category, Classification, Facts, Severity
from policies.table import DEFAULT_POLICY, Rule, decide
from tests.policies import CORPORA, FACTS, email_from_bytes, make_email

COMPLAINT = Classification(
    is_complaint=True,
    category=Category.BILLING,
    severity=Severity.HIGH,
    confidence=0.9,
    signals=('phrase "charged me twice" (+4.0, billing)',),
)
NEUTRAL = Classification(False, None, Severity.NORMAL, 0.8, ())
GUARD_NAMES = [guard.__name__ for guard in GUARDS]


def names(policy: tuple[Rule, ...] = DEFAULT_POLICY) -> list[str]:
    return [rule.name for rule in policy]


def test_table_order_reads_top_to_bottom() -> None:
    assert names()[:2] == ["no_usable_sender", "own_message"]
    assert names()[: len(GUARD_NAMES)] == GUARD_NAMES
    assert names()[len(GUARD_NAMES) :] == [
        "existing_thread",
        "not_a_complaint",
        "dmarc_failed",
        "sender_rate_limit",
        "global_circuit_breaker",
        "complaint",
    ]
    assert all(rule.action is Action.IGNORE for rule in DEFAULT_POLICY[: len(GUARD_NAMES)])
    assert [rule.action for rule in DEFAULT_POLICY[len(GUARD_NAMES) :]] == [
        Action.ATTACH,
        Action.IGNORE,
        Action.HOLD,
        Action.HOLD,
        Action.HOLD,
        Action.ACKNOWLEDGE,
    ]


def test_rules_are_named_uniquely_and_described() -> None:
    assert len(set(names())) == len(DEFAULT_POLICY)
    assert all(rule.description for rule in DEFAULT_POLICY)
    assert all(rule.check.__doc__ for rule in DEFAULT_POLICY)


def test_a_human_complaint_is_acknowledged() -> None:
    decision = decide(make_email(), FACTS, COMPLAINT)
    assert decision.action is Action.ACKNOWLEDGE
    assert decision.deciding_rule == "complaint"
    assert [hit.rule for hit in decision.hits] == ["complaint"]
    assert "high billing complaint" in decision.reason
    assert decision.classification is COMPLAINT


def test_not_a_complaint_is_ignored() -> None:
    decision = decide(make_email(), FACTS, NEUTRAL)
    assert decision.action is Action.IGNORE
    assert decision.deciding_rule == "not_a_complaint"


def test_missing_classification_is_ignored() -> None:
    decision = decide(make_email(), FACTS, None)
    assert decision.action is Action.IGNORE
    assert decision.deciding_rule == "not_a_complaint"
    assert "no classification" in decision.reason


def test_every_hit_is_recorded_in_table_order() -> None:
    email = make_email(
        sender="noreply@shop.example",
        subject="Automatic reply: your order",
        headers={"Auto-Submitted": "auto-replied", "List-Id": "<x.lists.example>"},
    )
    decision = decide(email, FACTS, COMPLAINT)
    assert decision.action is Action.IGNORE
    assert [hit.rule for hit in decision.hits] == [
        "auto_submitted",
        "mailing_list",
        "machine_sender",
        "auto_reply_subject",
        "complaint",
    ]
    assert decision.deciding_rule == "auto_submitted"
    assert "auto-replied" in decision.reason


def test_existing_thread_attaches_even_without_a_complaint() -> None:
    facts = replace(FACTS, existing_incident="CR-2025-0042")
    for classification in (COMPLAINT, NEUTRAL, None):
        decision = decide(make_email(), facts, classification)
        assert decision.action is Action.ATTACH
        assert decision.deciding_rule == "existing_thread"
        assert "CR-2025-0042" in decision.reason


def test_machine_mail_in_an_existing_thread_is_still_ignored() -> None:
    facts = replace(FACTS, existing_incident="CR-2025-0042")
    email = make_email(headers={"Auto-Submitted": "auto-replied"})
    assert decide(email, facts, COMPLAINT).action is Action.IGNORE


def test_rate_limit_holds_a_complaint() -> None:
    facts = replace(FACTS, acknowledgements_to_sender_24h=3, sender_limit_24h=3)
    decision = decide(make_email(), facts, COMPLAINT)
    assert decision.action is Action.HOLD
    assert [hit.rule for hit in decision.hits] == ["sender_rate_limit", "complaint"]
    assert "limit 3" in decision.reason


def test_below_the_rate_limit_acknowledges() -> None:
    facts = replace(FACTS, acknowledgements_to_sender_24h=2, sender_limit_24h=3)
    assert decide(make_email(), facts, COMPLAINT).action is Action.ACKNOWLEDGE


def test_own_message_is_ignored_before_anything_else() -> None:
    email = make_email(sender="support@example.com")
    decision = decide(email, FACTS, COMPLAINT)
    assert decision.deciding_rule == "own_message"
    assert decision.action is Action.IGNORE


def test_no_usable_sender_comes_first() -> None:
    decision = decide(make_email(sender=None), FACTS, COMPLAINT)
    assert decision.deciding_rule == "no_usable_sender"


def test_nothing_fires_gives_a_default_ignore() -> None:
    decision = decide(make_email(), FACTS, COMPLAINT, policy=())
    assert decision.action is Action.IGNORE
    assert decision.deciding_rule == "default"
    assert [hit.rule for hit in decision.hits] == ["default"]


def test_custom_policy_is_honoured() -> None:
    def always(email: InboundEmail, facts: Facts, c: Classification | None) -> str | None:
        """Fires for everything."""
        return "always"

    policy = (Rule("hold_everything", always, Action.HOLD, "hold all mail"), *DEFAULT_POLICY)
    decision = decide(make_email(), FACTS, COMPLAINT, policy=policy)
    assert decision.action is Action.HOLD
    assert [hit.rule for hit in decision.hits] == ["hold_everything", "complaint"]


def test_offline_classification_end_to_end() -> None:
    email = make_email(subject="Charged twice!", text="You charged me twice, I want a refund.")
    decision = decide(email, FACTS, classify_offline(email.subject, email.new_text))
    assert decision.action is Action.ACKNOWLEDGE
    question = make_email(subject="Question", text="How do I fix error 404 in my config?")
    decision = decide(question, FACTS, classify_offline(question.subject, question.new_text))
    assert decision.action is Action.IGNORE


def corpus(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared corpus not found at {path}; clone it beside the checkout")
    return path


def test_no_sisimai_message_is_ever_acknowledged() -> None:
    folder = corpus(CORPORA / "sisimai" / "eml")
    decided = 0
    for path in sorted(folder.glob("*.eml")):
        email = email_from_bytes(path.read_bytes())
        decision = decide(email, FACTS, classify_offline(email.subject, email.new_text))
        assert decision.action is Action.IGNORE, (path.name, decision.hits)
        assert decision.deciding_rule in GUARD_NAMES, (path.name, decision.hits)
        decided += 1
    assert decided > 600


def test_cfpb_complaints_from_people_are_acknowledged() -> None:
    path = corpus(CORPORA / "cfpb-narratives.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    acknowledged = 0
    for number, row in enumerate(rows):
        email = make_email(
            sender=f"customer{number}@mail.example", subject=row["issue"], text=row["narrative"]
        )
        decision = decide(email, FACTS, classify_offline(email.subject, email.new_text))
        assert decision.deciding_rule in {"complaint", "not_a_complaint"}
        acknowledged += decision.action is Action.ACKNOWLEDGE
    assert acknowledged / len(rows) >= 0.85
