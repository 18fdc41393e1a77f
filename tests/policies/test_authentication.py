"""DMARC failures reported by our own server hold a complaint for a person; others' claims
are ignored."""

from __future__ import annotations

from dataclasses import replace

from inbox.message import InboundEmail
from policies.model import Action, Category, Classification, Severity
from policies.table import decide
from tests.policies import FACTS, make_email

COMPLAINT = Classification(True, Category.BILLING, Severity.HIGH, 0.9, ("charged twice",))
TRUSTED = replace(FACTS, trusted_authserv_ids=frozenset({"mx.acme.example"}))


def _with_results(*values: str) -> InboundEmail:
    return make_email(headers={"Authentication-Results": tuple(values)})


def test_dmarc_fail_from_our_server_holds_the_complaint() -> None:
    email = _with_results(
        "mx.acme.example; spf=fail smtp.mailfrom=bank.test; dmarc=fail (p=reject)"
    )
    decision = decide(email, TRUSTED, COMPLAINT)
    assert decision.action is Action.HOLD
    assert decision.deciding_rule == "dmarc_failed"
    assert "forged" in decision.reason


def test_dmarc_fail_claimed_by_an_untrusted_server_is_ignored() -> None:
    email = _with_results("evil.example; dmarc=fail", "mx.acme.example 1; dmarc=pass")
    decision = decide(email, TRUSTED, COMPLAINT)
    assert decision.action is Action.ACKNOWLEDGE


def test_without_a_trusted_server_configured_results_are_not_read() -> None:
    email = _with_results("mx.acme.example; dmarc=fail")
    assert decide(email, FACTS, COMPLAINT).action is Action.ACKNOWLEDGE


def test_a_comment_cannot_fake_a_result_and_case_does_not_matter() -> None:
    passed = _with_results("MX.ACME.EXAMPLE; dmarc=pass (said dmarc=fail)")
    assert decide(passed, TRUSTED, COMPLAINT).action is Action.ACKNOWLEDGE
    failed = _with_results("MX.Acme.Example; DMARC=FAIL header.from=bank.test")
    assert decide(failed, TRUSTED, COMPLAINT).action is Action.HOLD


def test_the_global_circuit_breaker_holds_once_the_ceiling_is_reached() -> None:
    open_breaker = replace(FACTS, acknowledgements_last_minute=50, global_limit_per_minute=50)
    decision = decide(make_email(), open_breaker, COMPLAINT)
    assert decision.action is Action.HOLD
    assert decision.deciding_rule == "global_circuit_breaker"
    below = replace(FACTS, acknowledgements_last_minute=49, global_limit_per_minute=50)
    assert decide(make_email(), below, COMPLAINT).action is Action.ACKNOWLEDGE
