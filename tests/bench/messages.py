"""The mail a benchmark delivers, built with ``tests/support/mail.py`` and labelled.

Every complaint comes from its own address and carries its own Message-ID: the service
limits acknowledgements per sender and ignores a Message-ID it has seen, so repeating
either would measure those guards rather than the pipeline. The address is also how an
acknowledgement at the sink is matched to its complaint (its envelope recipient).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import make_msgid

from tests.support import mail

__all__ = ["Planned", "complaints", "flood_mix", "run_token"]

COMPLAINT_SHARE = 0.7


@dataclass(frozen=True)
class Planned:
    """One message to deliver: its bytes, who it is from, and whether it must be answered."""

    raw: bytes
    sender: str
    complaint: bool
    kind: str
    to: str = mail.SUPPORT


def run_token() -> str:
    """A short random tag put into every address of one run, so runs never collide."""
    return uuid.uuid4().hex[:6]


def _address(prefix: str, number: int, token: str) -> str:
    return f"{prefix}{number}.{token}@contoso.example"


def complaint(number: int, token: str, *, to: str = mail.SUPPORT) -> Planned:
    """An outage or a billing complaint (alternating) from a sender of its own."""
    address = _address("c", number, token)
    build = mail.outage_complaint if number % 2 == 0 else mail.billing_complaint
    _, raw = build(
        sender=f"Customer {number} <{address}>",
        to=to,
        message_id=make_msgid(f"c{number}.{token}", domain="contoso.example"),
    )
    return Planned(raw, address, True, "complaint", to)


def complaints(count: int, token: str, *, start: int = 0, to: str = mail.SUPPORT) -> list[Planned]:
    return [complaint(start + n, token, to=to) for n in range(count)]


def _non_complaint(kind: str, number: int, token: str, to: str) -> Planned:
    """A question, an out-of-office reply or a bounce: none of them may be answered."""
    if kind == "bounce":
        _, raw = mail.bounce(to=to)
        return Planned(raw, "mailer-daemon@mx.northwind.example", False, kind, to)
    address = _address("q" if kind == "question" else "ooo", number, token)
    build = mail.question if kind == "question" else mail.out_of_office
    _, raw = build(
        sender=f"Person {number} <{address}>",
        to=to,
        message_id=make_msgid(f"{kind}{number}.{token}", domain="contoso.example"),
    )
    return Planned(raw, address, False, kind, to)


def flood_mix(
    count: int, token: str, *, seed: int = 7, recipients: tuple[str, ...] = (mail.SUPPORT,)
) -> list[Planned]:
    """``count`` messages in a shuffled but repeatable order: 70% complaints, the rest
    questions, auto-replies and bounces in equal parts, spread over ``recipients``."""
    rng = random.Random(seed)
    wanted = round(count * COMPLAINT_SHARE)
    others = ("question", "out_of_office", "bounce")
    planned: list[Planned] = []
    for number in range(count):
        to = recipients[number % len(recipients)]
        if number < wanted:
            planned.append(complaint(number, token, to=to))
        else:
            planned.append(_non_complaint(others[number % 3], number, token, to))
    rng.shuffle(planned)
    return planned


def history(count: int, token: str) -> Iterator[Planned]:
    """Mail that was in the mailbox before codered first looked: half of it complaints
    from senders of their own, which must never be acknowledged (they are history)."""
    for number in range(count):
        if number % 2 == 0:
            yield complaint(number, "h" + token)
        else:
            yield _non_complaint(
                ("question", "out_of_office", "bounce")[number % 3],
                number,
                "h" + token,
                mail.SUPPORT,
            )
