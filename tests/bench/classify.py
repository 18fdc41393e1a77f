"""The offline detector's speed on real mail, and the size of the prompts the drafter sends.

Classification is timed apart from parsing because the two cost very different things
and are tuned in different places: ``inbox.parse.parse_email`` (MIME, HTML, quote
removal) and ``policies.detect.classify_offline`` (the phrase scorer), called exactly as
``codered/pipeline.py`` calls them, ``classify_offline(email.subject, email.new_text)``.
The process is pinned to one core while it measures, so the rate is per core.

Prompt tokens are counted the way the drafter counts them (``drafting.budget``'s
estimate over every message ``build_messages`` returns), for DraftContexts with long
threads and many facts, against ``[llm] max_input_tokens``.
"""

from __future__ import annotations

import csv
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drafting.budget import estimate_tokens
from drafting.context import DraftContext, Fact, ThreadMessage
from drafting.drafter import build_messages
from drafting.kinds import DraftKind
from inbox.message import InboundEmail, ParseError
from inbox.parse import parse_email
from policies.detect import classify_offline
from policies.sections import Question
from tests.bench.results import Result, percentile
from tests.support import mail

__all__ = ["CORPORA", "classify", "prompt_tokens"]

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"


@contextmanager
def one_core() -> Iterator[int]:
    """Pin this process to its first allowed core for the duration; yields the core."""
    allowed = os.sched_getaffinity(0)
    core = min(allowed)
    os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, allowed)


def _samples(copies: int) -> list[bytes]:
    builders: list[Callable[..., tuple[str, bytes]]] = [
        mail.outage_complaint,
        mail.billing_complaint,
        mail.question,
        mail.out_of_office,
    ]
    raws = [
        build(sender=f"P{n} <p{n}@contoso.example>")[1] for n in range(copies) for build in builders
    ]
    raws += [mail.newsletter()[1] for _ in range(copies)]
    raws += [mail.bounce()[1] for _ in range(copies)]
    return raws


def corpora(root: Path, sample_copies: int) -> dict[str, list[bytes]]:
    """Raw messages by corpus: sisimai bounces, CFPB narratives in mail headers, samples."""
    found: dict[str, list[bytes]] = {"samples": _samples(sample_copies)}
    eml = root / "sisimai" / "eml"
    if eml.is_dir():
        found["sisimai"] = [p.read_bytes() for p in sorted(eml.glob("*.eml"))]
    narratives = root / "cfpb-narratives.csv"
    if narratives.is_file():
        with narratives.open(encoding="utf-8", newline="") as handle:
            found["cfpb"] = [
                mail.message(
                    row["issue"] or "Complaint",
                    row["narrative"],
                    sender=f"Consumer {n} <consumer{n}@example.org>",
                )[1]
                for n, row in enumerate(csv.DictReader(handle))
            ]
    return found


def _parse_all(raws: list[bytes], rounds: int) -> tuple[list[InboundEmail], float, int]:
    """Parse every message ``rounds`` times; returns the emails, seconds, failures."""
    emails: list[InboundEmail] = []
    failures = 0
    began = time.perf_counter()
    for round_number in range(rounds):
        for raw in raws:
            try:
                email = parse_email(raw)
            except ParseError:
                failures += round_number == 0
                continue
            if round_number == 0:
                emails.append(email)
    return emails, time.perf_counter() - began, failures


def _classify_all(emails: list[InboundEmail], rounds: int) -> tuple[float, int]:
    inputs = [(e.subject, e.new_text) for e in emails]
    flagged = sum(classify_offline(s, t).is_complaint for s, t in inputs)  # also warms caches
    began = time.perf_counter()
    for _ in range(rounds):
        for subject, text in inputs:
            classify_offline(subject, text)
    return time.perf_counter() - began, flagged


def classify(
    root: Path,
    rounds: int,
    sample_copies: int,
    max_input_tokens: int,
    contexts_per_kind: int,
    limit: int = 0,
) -> list[Result]:
    """Parse and classify each corpus (``limit`` messages of each, 0 for all), then size
    the prompts; returns the classify result and the prompt-token result."""
    result = Result("classify", {"variant": "offline detector, one core"})
    sets = {
        name: raws[:limit] if limit else raws for name, raws in corpora(root, sample_copies).items()
    }
    if not root.is_dir():
        result.notes.append(f"corpora not found at {root}: only tests/support/mail.py samples")
    total_parse = total_classify = 0.0
    total = 0
    with one_core() as core:
        result.values["core"] = core
        for name, raws in sets.items():
            emails, parse_s, failed = _parse_all(raws, rounds)
            classify_s, flagged = _classify_all(emails, rounds)
            rate = len(emails) * rounds / max(classify_s, 1e-9)
            result.values[f"{name}_messages"] = len(raws)
            result.values[f"{name}_parse_msgs_per_s"] = round(len(raws) * rounds / parse_s, 1)
            result.values[f"{name}_classify_msgs_per_s"] = round(rate, 1)
            result.values[f"{name}_flagged_as_complaint"] = flagged
            result.values[f"{name}_parse_failures"] = failed
            total_parse += parse_s
            total_classify += classify_s
            total += len(emails) * rounds
    result.values["classify_msgs_per_s"] = round(total / max(total_classify, 1e-9), 1)
    result.values["parse_msgs_per_s"] = round(total / max(total_parse, 1e-9), 1)
    result.values["slowest_corpus_classify_msgs_per_s"] = min(
        v for k, v in result.values.items() if k.endswith("_classify_msgs_per_s")
    )
    result.target("classification rate, one core (msgs/s)", "classify_msgs_per_s", ">=", 2000)
    result.target("slowest corpus (msgs/s)", "slowest_corpus_classify_msgs_per_s", ">=", 2000)
    result.correct("the samples parse", "samples_parse_failures")
    return [result, prompt_tokens(root, max_input_tokens, contexts_per_kind)]


# --- prompt tokens --------------------------------------------------------------------------

_OUR_TEXT = (
    "Thank you for telling us, and we are sorry for the trouble this has caused. We have "
    "opened incident {ref} and our team is looking into it now. You will hear from us by "
    "{when} at the latest, with what we found and what we are doing about it.\n"
) * 2


def _pool(root: Path) -> list[str]:
    """Long real complaint text (CFPB narratives), or the samples when corpora are absent."""
    narratives = root / "cfpb-narratives.csv"
    if narratives.is_file():
        with narratives.open(encoding="utf-8", newline="") as handle:
            return [row["narrative"] for row in csv.DictReader(handle) if row["narrative"]]
    return [parse_email(raw).new_text for raw in _samples(1)]


def _context(
    kind: DraftKind, rng: random.Random, pool: list[str], messages: int, facts: int
) -> DraftContext:
    """A long incident: ``messages`` thread messages (customer and us in turn), ``facts``
    notes up to 2,000 characters, and for recaps and rewrites a long source text."""
    now = datetime.now(UTC)
    thread = tuple(
        ThreadMessage(
            at=now - timedelta(hours=messages - i),
            from_customer=i % 2 == 0,
            sender="dana@northwind.example" if i % 2 == 0 else "support@acme.example",
            subject="Re: production API down for all our users",
            text=rng.choice(pool) if i % 2 == 0 else _OUR_TEXT.format(ref="CR-1042", when="17:00"),
            when=f"Mon 09:{i % 60:02d} UTC-05:00",
        )
        for i in range(messages)
    )
    notes = tuple(
        Fact(rng.choice(pool)[:2000], "alice", now, rng.choice([*Question, None]))
        for _ in range(facts)
    )
    source = ""
    if kind in (DraftKind.RECAP, DraftKind.REWRITE):
        while len(source) < rng.choice((3000, 8000, 15000)):
            source += rng.choice(pool) + "\n"
    return DraftContext(
        kind=kind,
        reference="CR-1042",
        company_name="Acme Cloud",
        customer_name="Dana Whitfield",
        customer_email="dana@northwind.example",
        greeting="Hello Dana,",
        signature="Kind regards,\nAlice\nAcme Cloud",
        language="en",
        category="outage",
        severity="critical",
        subject="production API down for all our users",
        facts=notes,
        thread=thread,
        next_update_at="Monday 17:00 (UTC-05:00)",
        source_text=source,
    )


def prompt_tokens(root: Path, max_input_tokens: int, per_kind: int) -> Result:
    """Prompt tokens per draft kind (p50, p95, max) and how many exceed the budget."""
    result = Result(
        "prompt_tokens",
        {
            "variant": "drafter prompts",
            "max_input_tokens": max_input_tokens,
            "contexts_per_kind": per_kind,
        },
    )
    pool = _pool(root)
    rng = random.Random(11)
    shapes = [(m, f) for m in (1, 10, 25, 50) for f in (0, 4, 12)]
    over_total = 0
    for kind in DraftKind:
        counts, omitted = [], []
        for n in range(per_kind):
            messages, facts = shapes[n % len(shapes)]
            built, left_out = build_messages(
                _context(kind, rng, pool, messages, facts), max_input_tokens
            )
            counts.append(sum(estimate_tokens(m["content"]) for m in built))
            omitted.append(left_out)
        over = sum(c > max_input_tokens for c in counts)
        over_total += over
        result.values[f"{kind.value}_p50_tokens"] = round(percentile(counts, 50))
        result.values[f"{kind.value}_p95_tokens"] = round(percentile(counts, 95))
        result.values[f"{kind.value}_max_tokens"] = max(counts)
        result.values[f"{kind.value}_over_budget"] = over
        result.values[f"{kind.value}_max_omitted_messages"] = max(omitted)
    result.values["prompts_over_budget"] = over_total
    result.correct("every prompt within max_input_tokens", "prompts_over_budget")
    return result
