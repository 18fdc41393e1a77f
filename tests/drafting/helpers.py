"""Contexts for drafting tests: what the application would gather for one incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from drafting.context import DraftContext, Fact, ThreadMessage
from drafting.kinds import DraftKind
from drafting.model import ModelClient, ModelSettings
from policies.sections import Question

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NEXT = "Tuesday, 1 December 2026 at 14:30 CET (UTC+01:00)"


def context(kind: DraftKind = DraftKind.SUMMARY, **changes: Any) -> DraftContext:
    values: dict[str, Any] = {
        "kind": kind,
        "reference": "CR-1042",
        "company_name": "Acme Cloud",
        "customer_name": "Dana Whitfield",
        "customer_email": "dana@northwind.example",
        "greeting": "Hello Dana,",
        "signature": "Kind regards,\nAcme Customer Success\nAcme Cloud",
        "language": "en",
        "category": "service_outage",
        "severity": "critical",
        "subject": "Production API down",
        "facts": (
            Fact(
                "The API returned 503 errors for EU customers from 09:10 to 09:55 UTC.",
                "alice",
                T0 + timedelta(minutes=30),
                Question.WHAT_HAPPENED,
            ),
            Fact(
                "A configuration change we deployed removed a route.",
                "alice",
                T0 + timedelta(minutes=31),
                Question.WHY,
            ),
            Fact(
                "We rolled the change back at 09:55 UTC and are replaying failed requests.",
                "alice",
                T0 + timedelta(minutes=32),
                Question.RESOLUTION,
            ),
            Fact(
                "Every routing change now goes through a staged rollout with automatic checks.",
                "alice",
                T0 + timedelta(minutes=33),
                Question.PREVENTION,
            ),
        ),
        "thread": (
            ThreadMessage(
                T0,
                True,
                "dana@northwind.example",
                "Production API down",
                "Our API is down!",
                when="Tuesday, 1 December 2026 at 10:00 CET (UTC+01:00)",
            ),
            ThreadMessage(
                T0 + timedelta(minutes=1),
                False,
                "support@acme.example",
                "Re: Production API down [CR-1042]",
                "We are on it.",
                when="Tuesday, 1 December 2026 at 10:01 CET (UTC+01:00)",
            ),
        ),
        "next_update_at": NEXT,
    }
    values.update(changes)
    return DraftContext(**values)


def client(api_base: str, **changes: Any) -> ModelClient:
    settings: dict[str, Any] = {
        "model": "openai/stub-model",
        "api_base": api_base,
        "api_key": "sk-test",
        "timeout_seconds": 5.0,
        "max_attempts": 3,
        "retry_initial_seconds": 0.05,
        "retry_deadline_seconds": 20.0,
    }
    settings.update(changes)
    return ModelClient(ModelSettings(**settings))
