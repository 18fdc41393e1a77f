"""Every real bounce, abuse report and auto-reply in the Sisimai corpus: parsed, and never
answered (no acknowledgement, no incident held for a person)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from inbox.parse import parse_email
from policies.detect import classify_offline
from policies.model import Action, Facts
from policies.table import decide

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "sisimai" / "eml"
FACTS = Facts(own_addresses=frozenset({"support@acme.example"}))


def test_no_machine_message_in_the_corpus_would_be_answered() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS} (it lives in ../shared beside the checkout)")
    files = sorted(CORPUS.glob("*.eml"))
    assert len(files) > 600
    answered = []
    rules: Counter[str] = Counter()
    for path in files:
        email = parse_email(path.read_bytes())
        decision = decide(email, FACTS, classify_offline(email.subject, email.new_text))
        rules[decision.deciding_rule] += 1
        if decision.action in (Action.ACKNOWLEDGE, Action.HOLD):
            answered.append(f"{path.name}: {decision.deciding_rule}: {decision.reason}")
    assert answered == [], "\n".join(answered)
    # The guards, not luck in the complaint scorer, must be what stops most of them.
    assert rules["not_a_complaint"] < len(files) * 0.05, rules
