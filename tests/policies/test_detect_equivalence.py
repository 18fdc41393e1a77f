"""The fast offline detector gives exactly the verdicts of the plain one.

``classify_offline`` finds lexicon phrases through ``policies.scanner.Scanner``, which
skips regexes that cannot match. Here the same messages are classified twice, once
as shipped and once with a stand-in scanner that runs ``finditer`` of every regex over
the whole text (what the detector did before), and every field of every verdict must
agree: complaint or not, category, severity, confidence and each signal.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator

import pytest

import policies.detect as detect
from policies.detect import classify_offline
from policies.model import Category, Classification, Severity
from tests.policies import CORPORA, email_from_bytes
from tests.support import mail


class PlainScanner:
    """Every regex over the whole text, in lexicon order: the detector's old loop."""

    def __init__(self, regexes: list[re.Pattern[str]]) -> None:
        self.regexes = regexes

    def scan(self, text: str) -> Iterator[tuple[int, re.Match[str]]]:
        for index, regex in enumerate(self.regexes):
            for match in regex.finditer(text):
                yield index, match


def plain_classify(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], Classification]:
    plain = PlainScanner([regex for _, regex in detect._compiled()])

    def classify(subject: str, text: str) -> Classification:
        with monkeypatch.context() as patch:
            patch.setattr(detect, "_scanner", lambda: plain)
            return classify_offline(subject, text)

    return classify


SAMPLES = [
    mail.outage_complaint,
    mail.billing_complaint,
    mail.question,
    mail.out_of_office,
    mail.newsletter,
]


def sample_messages() -> list[tuple[str, str]]:
    emails = [email_from_bytes(build()[1]) for build in SAMPLES]
    emails.append(email_from_bytes(mail.bounce()[1]))
    return [(email.subject, email.new_text) for email in emails]


def corpus_messages() -> list[tuple[str, str]]:
    folder = CORPORA / "sisimai" / "eml"
    narratives = CORPORA / "cfpb-narratives.csv"
    if not folder.is_dir() or not narratives.is_file():
        pytest.skip(f"shared corpora not found at {CORPORA}")
    messages: list[tuple[str, str]] = []
    for path in sorted(folder.glob("*.eml")):
        email = email_from_bytes(path.read_bytes())
        messages.append((email.subject, email.new_text))
    with narratives.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            messages.append((row["issue"], row["narrative"]))
            messages.append(("", row["narrative"].upper()))
    return messages


def test_samples_keep_their_verdicts() -> None:
    verdicts = [classify_offline(subject, text) for subject, text in sample_messages()]
    outage, billing, question, out_of_office, newsletter, bounce = verdicts
    assert outage.is_complaint and outage.category is Category.SERVICE_OUTAGE
    assert outage.severity is Severity.CRITICAL
    assert 'phrase "api down" (+3.0, service_outage)' in outage.signals
    assert billing.is_complaint and billing.category is Category.BILLING
    assert billing.severity is Severity.HIGH
    assert 'phrase "charged twice" (+4.0, billing)' in billing.signals
    assert not question.is_complaint and question.category is None
    assert not out_of_office.is_complaint
    assert 'machine text "i am out of the office" (-4.0)' in out_of_office.signals
    assert newsletter.is_complaint and newsletter.category is Category.SERVICE_OUTAGE
    assert not bounce.is_complaint
    assert 'machine text "could not be delivered" (-4.0)' in bounce.signals


def test_samples_agree_with_the_plain_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = plain_classify(monkeypatch)
    for subject, text in sample_messages():
        assert classify_offline(subject, text) == plain(subject, text), subject


def test_corpora_agree_with_the_plain_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = plain_classify(monkeypatch)
    messages = corpus_messages()
    assert len(messages) > 1000
    differ = [
        subject or text[:60]
        for subject, text in messages
        if classify_offline(subject, text) != plain(subject, text)
    ]
    assert differ == []
    complaints = sum(classify_offline(s, t).is_complaint for s, t in messages)
    assert complaints > 300  # the corpora are mostly real complaints and real bounces


@pytest.mark.parametrize(
    ("subject", "text"),
    [
        ("", "The site is not down, false alarm."),
        ("", "I was not charged twice, the second line is a refund."),
        ("Re: billing", "You charged me twice. This is the third time!!"),
        ("AW: Re: Fwd: Website is down", "See subject."),
        ("Rechnung", "Sie haben doppelt abgebucht, ich will mein Geld zurück."),
        ("Facture", "Vous m'avez facturé deux fois ce mois-ci, c'est inacceptable."),
        ("Factura", "Me cobraron dos veces la factura, quiero un reembolso."),
        ("", "XXXX XXXX charged a fee on XX/XX/XXXX via the API and SLA."),
        ("", "I can't log in, it crashed, the site is down. Unacceptable!!"),
        ("", "Our lawyer will take legal action. This is RIDICULOUS and UNACCEPTABLE!!"),
        ("", "ＣＨＡＲＧＥＤ ＴＷＩＣＥ — café naïve don’t can`t won't ﬁle İstanbul"),
        ("", ""),
    ],
)
def test_hand_picked_messages_agree_with_the_plain_loop(
    monkeypatch: pytest.MonkeyPatch, subject: str, text: str
) -> None:
    assert classify_offline(subject, text) == plain_classify(monkeypatch)(subject, text)
