"""Composing acknowledgements: headers, threading, wording in four languages, injection."""

from __future__ import annotations

import dataclasses
import email
import re
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from inbox.message import EmailAddress
from mailer import (
    LOOP_HEADER,
    AcknowledgementFacts,
    ComposedMessage,
    acknowledgement_message_id,
    compose_acknowledgement,
    format_reply_by,
    greeting_name,
    loop_marker,
    references_chain,
    reply_subject,
    sanitize_header_value,
    sanitize_message_id,
)
from mailer.headers import header_names
from policies.model import Category, Severity

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
LANGUAGES = ("en", "de", "fr", "es")

EXPECTED_HEADERS = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Auto-Submitted",
    "X-Auto-Response-Suppress",
    "X-Codered-Loop",
    "X-Codered-Reference",
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
    "Content-Language",
]

# Second person and blame, per language: the acknowledgement talks about the problem, never
# about what anyone did, so none of these may appear (word-boundary, case-sensitive for "Sie").
BLAME = {
    "en": r"\byou\b|\byour\b|fault|user error|mistake|\bvendor|supplier|colleague|partner",
    "de": r"\bSie\b|\bIhr|\bdu\b|\bdein|Schuld|Bedienfehler|Fehler des Benutzers|Lieferant"
    r"|Dienstleister|Kolleg",
    "fr": r"\bvous\b|\bvotre\b|\bvos\b|\btu\b|faute|erreur de l'utilisateur|fournisseur"
    r"|prestataire|collègue",
    "es": r"\busted|\bsu\b|\bsus\b|\btú\b|culpa|error del usuario|proveedor|compañero",
}
APOLOGY = {
    "en": r"sorry|apolog",
    "de": r"leid\b|entschuldig",
    "fr": r"désolé|excus|pardon",
    "es": r"lament|disculp|perd[oó]n|sentimos",
}
SOONER = {
    "en": "sooner if we can",
    "de": "wenn möglich auch früher",
    "fr": "plus tôt si possible",
    "es": "antes si nos es posible",
}
ONE_THREAD = {
    "en": "Replying to this email keeps everything in one thread",
    "de": "Eine Antwort auf diese E-Mail hält den gesamten Austausch in einem Verlauf zusammen",
    "fr": "Répondre à cet e-mail permet de conserver tout l'échange dans un même fil",
    "es": "Responder a este correo mantiene toda la conversación en un mismo hilo",
}
LOOKING_NOW = {
    "en": "looking into it now",
    "de": "kümmert sich ab sofort darum",
    "fr": "s'en occupe dès maintenant",
    "es": "ya lo está revisando",
}
GREETING = {"en": "Hello Anna,", "de": "Hallo Anna,", "fr": "Bonjour Anna,", "es": "Hola, Anna:"}
BILLING = {
    "en": "a billing problem",
    "de": "ein Problem mit der Abrechnung",
    "fr": "un problème de facturation",
    "es": "un problema de facturación",
}


def make_facts(**changes: object) -> AcknowledgementFacts:
    facts = AcknowledgementFacts(
        reference="CR-1042",
        customer=EmailAddress("anna.berg@customer.test", "Anna Berg"),
        original_subject="Invoice charged twice",
        original_message_id="<q2@customer.test>",
        original_references=("<q1@customer.test>",),
        category=Category.BILLING,
        severity=Severity.HIGH,
        reply_by=datetime(2025, 3, 4, 13, 30, tzinfo=UTC),
        display_tz=BERLIN,
        language="en",
        company_name="Acme",
        from_address=EmailAddress("support@acme.test", "Acme Support"),
    )
    return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]


def parsed(composed: ComposedMessage) -> EmailMessage:
    message = email.message_from_bytes(composed.raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body_of(composed: ComposedMessage) -> str:
    part = parsed(composed).get_body(("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


# --- headers and threading -------------------------------------------------------------


def test_header_block_is_exactly_what_we_set() -> None:
    composed = compose_acknowledgement(make_facts(), now=NOW)

    assert header_names(composed.raw) == EXPECTED_HEADERS


def test_threading_headers_point_at_the_customer_message() -> None:
    message = parsed(compose_acknowledgement(make_facts(), now=NOW))

    assert message["In-Reply-To"] == "<q2@customer.test>"
    assert message["References"].split() == ["<q1@customer.test>", "<q2@customer.test>"]


def test_long_message_ids_are_not_encoded() -> None:
    long_id = "<" + "a" * 120 + "@customer.test>"
    composed = compose_acknowledgement(make_facts(original_message_id=long_id), now=NOW)

    assert str(parsed(composed)["In-Reply-To"]) == long_id
    assert b"=?" not in composed.raw.split(b"\r\n\r\n")[0].split(b"Subject")[0]
    assert long_id.encode() in composed.raw


def test_without_an_original_id_there_is_no_in_reply_to() -> None:
    composed = compose_acknowledgement(
        make_facts(original_message_id=None, original_references=()), now=NOW
    )

    assert "In-Reply-To" not in header_names(composed.raw)
    assert "References" not in header_names(composed.raw)


def test_references_drop_invalid_and_duplicate_ids_and_cap_the_count() -> None:
    junk = ["<bad id@x>", "no-brackets@x", "<a<b>@x>", "<root@x>"]
    refs = ["<root@x>", *junk, *(f"<m{i}@x>" for i in range(30))]

    chain = references_chain("<last@x>", refs)

    assert len(chain) == 20
    assert chain[0] == "<root@x>"
    assert chain[-1] == "<last@x>"
    assert chain[-2] == "<m29@x>"
    assert all(re.fullmatch(r"<[^<> ]+>", msg_id) for msg_id in chain)


@pytest.mark.parametrize(
    "value",
    ["<a@b>\nBcc: evil@evil.test", "<a@b> <c@d>", "a@b", "<>", "<é@b>", "<" + "x" * 300 + ">"],
)
def test_unusable_message_ids_are_dropped(value: str) -> None:
    assert sanitize_message_id(value) is None


def test_auto_reply_headers_are_always_present() -> None:
    message = parsed(compose_acknowledgement(make_facts(language="fr"), now=NOW))

    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message[LOOP_HEADER] == loop_marker("support@acme.test")
    assert message["X-Codered-Reference"] == "CR-1042"
    assert message["Content-Language"] == "fr"
    assert message["Date"].datetime == NOW


def test_envelope_matches_our_address_and_the_customer() -> None:
    composed = compose_acknowledgement(make_facts(), now=NOW)

    assert composed.envelope_from == "support@acme.test"
    assert composed.recipients == ("anna.berg@customer.test",)


def test_raw_is_ascii_with_crlf_lines_within_limits() -> None:
    composed = compose_acknowledgement(make_facts(language="de"), now=NOW)

    assert composed.raw.isascii()
    lines = composed.raw.split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert all(len(line) <= 78 for line in lines)


# --- Message-ID ------------------------------------------------------------------------


def test_message_id_is_deterministic() -> None:
    first = compose_acknowledgement(make_facts(), now=NOW)
    again = compose_acknowledgement(make_facts(), now=NOW)
    later = compose_acknowledgement(make_facts(), now=NOW + timedelta(hours=1))

    assert first.message_id == again.message_id == later.message_id
    assert first.raw == again.raw
    assert first.message_id == acknowledgement_message_id("CR-1042", "acme.test")
    assert parsed(first)["Message-ID"] == first.message_id


def test_different_incidents_get_different_ids() -> None:
    ids = {
        acknowledgement_message_id("CR-1042", "acme.test"),
        acknowledgement_message_id("CR-1043", "acme.test"),
        acknowledgement_message_id("cr-1042", "acme.test"),
        acknowledgement_message_id("CR-1042", "other.test"),
    }

    assert len(ids) == 4
    assert all(re.fullmatch(r"<[a-z0-9.-]+@[a-z0-9.-]+>", msg_id) for msg_id in ids)


@pytest.mark.parametrize(("reference", "domain"), [("CR 1", "a.test"), ("CR-1", "bad domain")])
def test_message_id_rejects_unusable_parts(reference: str, domain: str) -> None:
    with pytest.raises(ValueError):
        acknowledgement_message_id(reference, domain)


# --- subject ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "language", "expected"),
    [
        ("Invoice charged twice", "en", "Re: Invoice charged twice [CR-1042]"),
        ("RE: Invoice charged twice", "en", "RE: Invoice charged twice [CR-1042]"),
        ("AW: Rechnung doppelt", "de", "AW: Rechnung doppelt [CR-1042]"),
        ("Re: Invoice [CR-1042]", "en", "Re: Invoice [CR-1042]"),
        ("  Invoice\r\n\tcharged  ", "en", "Re: Invoice charged [CR-1042]"),
        ("", "en", "Re: Support request [CR-1042]"),
        ("", "de", "Re: Supportanfrage [CR-1042]"),
        ("\r\n", "fr", "Re: Demande d'assistance [CR-1042]"),
        ("", "es", "Re: Solicitud de soporte [CR-1042]"),
    ],
)
def test_subject_rules(original: str, language: str, expected: str) -> None:
    assert reply_subject(original, "CR-1042", language) == expected
    composed = compose_acknowledgement(
        make_facts(original_subject=original, language=language), now=NOW
    )
    assert composed.subject == expected
    assert parsed(composed)["Subject"] == expected


def test_long_subject_is_cut() -> None:
    subject = reply_subject("word " * 200, "CR-1042", "en")

    assert subject.endswith("… [CR-1042]")
    assert len(subject) < 220


# --- reply-by time ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Tuesday, 4 March 2025 at 14:30 CET (UTC+01:00)"),
        ("de", "Dienstag, 4. März 2025, um 14:30 Uhr CET (UTC+01:00)"),
        ("fr", "mardi 4 mars 2025 à 14 h 30 CET (UTC+01:00)"),
        ("es", "martes 4 de marzo de 2025 a las 14:30 CET (UTC+01:00)"),
    ],
)
def test_reply_by_is_in_the_display_zone_and_language(language: str, expected: str) -> None:
    composed = compose_acknowledgement(make_facts(language=language), now=NOW)

    assert expected in composed.text
    assert expected in body_of(composed)


@pytest.mark.parametrize(
    ("tz", "language", "expected"),
    [
        (timezone(timedelta(hours=9)), "en", "Wednesday, 5 March 2025 at 08:30 (UTC+09:00)"),
        (timezone(timedelta(hours=-5)), "es", "martes 4 de marzo de 2025 a las 18:30 (UTC-05:00)"),
        (ZoneInfo("America/New_York"), "fr", "mardi 4 mars 2025 à 18 h 30 EST (UTC-05:00)"),
        (UTC, "de", "Dienstag, 4. März 2025, um 23:30 Uhr UTC"),
        (timezone(timedelta(hours=5, minutes=30)), "en", "at 05:00 (UTC+05:30)"),
    ],
)
def test_reply_by_with_fixed_offsets_and_named_zones(
    tz: timezone | ZoneInfo, language: str, expected: str
) -> None:
    reply_by = datetime(2025, 3, 4, 23, 30, tzinfo=UTC)

    assert expected in format_reply_by(reply_by, tz, language)


def test_reply_by_small_details() -> None:
    first_of_month = datetime(2025, 6, 1, 1, 5, tzinfo=UTC)

    assert format_reply_by(first_of_month, UTC, "fr") == "dimanche 1er juin 2025 à 1 h 05 UTC"
    assert format_reply_by(first_of_month, UTC, "es").endswith("a la 1:05 UTC")
    assert format_reply_by(first_of_month, BERLIN, "de").endswith("03:05 Uhr CEST (UTC+02:00)")


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        format_reply_by(datetime(2025, 3, 4, 12, 0), UTC, "en")
    with pytest.raises(ValueError):
        compose_acknowledgement(make_facts(), now=datetime(2025, 3, 4, 12, 0))


# --- wording ---------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("category", [*Category, None])
def test_wording_is_blame_free_with_at_most_one_apology(
    language: str, category: Category | None
) -> None:
    text = compose_acknowledgement(make_facts(language=language, category=category), now=NOW).text

    assert not re.search(BLAME[language], text, re.IGNORECASE if language != "de" else 0)
    assert len(re.findall(APOLOGY[language], text, re.IGNORECASE)) <= 1
    assert SOONER[language] in text
    assert LOOKING_NOW[language] in text
    assert ONE_THREAD[language] in text
    assert "CR-1042" in text
    assert "{" not in text and "}" not in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_text_names_the_issue_in_the_customers_terms(language: str) -> None:
    text = compose_acknowledgement(make_facts(language=language), now=NOW).text

    assert "Invoice charged twice" in text
    assert BILLING[language] in text
    assert text.splitlines()[0] == GREETING[language]


@pytest.mark.parametrize("language", ["pt", "", "EN-gb", "xx-YY"])
def test_unknown_languages_fall_back_to_english(language: str) -> None:
    composed = compose_acknowledgement(make_facts(language=language), now=NOW)

    assert composed.text.startswith("Hello Anna,")
    assert parsed(composed)["Content-Language"] == "en"


def test_regional_variants_use_their_language() -> None:
    composed = compose_acknowledgement(make_facts(language="de-AT"), now=NOW)

    assert composed.text.startswith("Hallo Anna,")


def test_braces_in_the_subject_are_data() -> None:
    text = compose_acknowledgement(make_facts(original_subject="{reference} {0}"), now=NOW).text

    assert '"{reference} {0}"' in text


@pytest.mark.parametrize(
    ("display_name", "email_address", "expected"),
    [
        ("Anna Berg", "a@x", "Anna"),
        ("Berg, Anna", "a@x", "Anna"),
        ("Dr. Jürgen Weiß", "j@x", "Jürgen"),
        ("JEAN-PIERRE DUPONT", "jp@x", "Jean-Pierre"),
        ("Mme Zoé d'Arc", "z@x", "Zoé"),
        ("Support Team", "support@x", None),
        ("jsmith", "jsmith@x", None),
        ("", "a@x", None),
        ("anna@customer.test", "anna@customer.test", None),
        ("R2D2 Unit", "r@x", None),
        ("=?utf-8?q?Anna?=", "a@x", None),
    ],
)
def test_greeting_name(display_name: str, email_address: str, expected: str | None) -> None:
    assert greeting_name(display_name, email_address) == expected


@pytest.mark.parametrize(
    ("language", "greeting"),
    [("en", "Hello,"), ("de", "Guten Tag,"), ("fr", "Bonjour,"), ("es", "Hola:")],
)
def test_neutral_greeting_without_a_name(language: str, greeting: str) -> None:
    facts = make_facts(customer=EmailAddress("billing@customer.test", "Billing"), language=language)

    assert compose_acknowledgement(facts, now=NOW).text.splitlines()[0] == greeting


# --- injection and encoding ------------------------------------------------------------

CVE_2024_6923_SUBJECTS = [
    "x\nBcc: attacker@evil.test",
    "x\r\nBcc: attacker@evil.test",
    "x\rBcc: attacker@evil.test",
    "x\x00\nBcc: attacker@evil.test",
    "x\u2028Bcc: attacker@evil.test",
    "x\x85Bcc: attacker@evil.test",
    "=?UTF-8?Q?x=0ABcc:_attacker@evil.test?=",
    "=?utf-8?b?eApCY2M6IGF0dGFja2VyQGV2aWwudGVzdA==?=",
]


@pytest.mark.parametrize("subject", CVE_2024_6923_SUBJECTS)
def test_header_injection_in_subject_adds_no_header(subject: str) -> None:
    composed = compose_acknowledgement(make_facts(original_subject=subject), now=NOW)
    message = parsed(composed)

    assert header_names(composed.raw) == EXPECTED_HEADERS
    assert list(message.keys()) == EXPECTED_HEADERS
    assert message["Bcc"] is None
    assert b"\nBcc:" not in composed.raw
    assert message["Subject"] == composed.subject  # shown literally, never decoded into lines
    assert "\n" not in composed.subject


@pytest.mark.parametrize("payload", CVE_2024_6923_SUBJECTS)
def test_header_injection_in_display_names_and_ids_adds_no_header(payload: str) -> None:
    facts = make_facts(
        customer=EmailAddress("anna@customer.test", payload),
        from_address=EmailAddress("support@acme.test", payload),
        original_message_id="<a@b>\nBcc: attacker@evil.test",
        original_references=(payload,),
    )
    composed = compose_acknowledgement(facts, now=NOW)

    unthreaded = [h for h in EXPECTED_HEADERS if h not in ("In-Reply-To", "References")]
    assert header_names(composed.raw) == unthreaded
    assert parsed(composed)["Bcc"] is None
    assert composed.recipients == ("anna@customer.test",)


@pytest.mark.parametrize(
    "name",
    ['O\'Brien, "Jo" Müller', "Zoë, Ünal & Søn", 'Back\\slash "quoted" (comment)', "李小龍"],
)
def test_display_names_with_specials_round_trip(name: str) -> None:
    facts = make_facts(
        customer=EmailAddress("jo@customer.test", name),
        from_address=EmailAddress("support@acme.test", f"Café {name}"),
    )
    message = parsed(compose_acknowledgement(facts, now=NOW))

    to = message["To"].addresses
    sender = message["From"].addresses
    assert len(to) == 1 and len(sender) == 1
    assert (to[0].display_name, to[0].addr_spec) == (name, "jo@customer.test")
    assert (sender[0].display_name, sender[0].addr_spec) == (f"Café {name}", "support@acme.test")


def test_comma_in_display_name_is_not_a_second_recipient() -> None:
    facts = make_facts(customer=EmailAddress("jo@customer.test", "evil@evil.test, Jo"))
    message = parsed(compose_acknowledgement(facts, now=NOW))

    assert [a.addr_spec for a in message["To"].addresses] == ["jo@customer.test"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a\r\nb", "a b"),
        ("a\x00b", "a b"),
        ("  a \t\t b  ", "a b"),
        ("a\u2028b\u2029c\x85d\x0be", "a b c d e"),
        ("abc\u202edef", "abcdef"),
        ("\ud800x", "x"),
        ("", ""),
    ],
)
def test_sanitize_header_value(value: str, expected: str) -> None:
    assert sanitize_header_value(value) == expected


def test_sanitize_header_value_caps_length() -> None:
    cut = sanitize_header_value("x" * 2000)

    assert len(cut) == 998
    assert cut.endswith("…")
    assert sanitize_header_value("abcdef", max_length=4) == "abc…"


def test_internationalized_domain_is_sent_in_ascii_form() -> None:
    facts = make_facts(customer=EmailAddress("anna@exämple.test", "Anna"))
    composed = compose_acknowledgement(facts, now=NOW)

    assert composed.recipients == ("anna@xn--exmple-cua.test",)
    assert parsed(composed)["To"].addresses[0].addr_spec == "anna@xn--exmple-cua.test"


@pytest.mark.parametrize("address", ["jürgen@customer.test", "a@", "a b@c.test", "a@b@c.test"])
def test_unusable_recipient_is_refused_not_mangled(address: str) -> None:
    with pytest.raises(ValueError):
        compose_acknowledgement(make_facts(customer=EmailAddress(address, "")), now=NOW)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"customer": EmailAddress("j@kunde.example", 'Jürgen "Ops" Müller, Ltd.')},
        {"original_subject": "Ausfall — bitte sofort! " * 12, "language": "de"},
        {"original_references": tuple(f"<r{n}@x.example>" for n in range(30))},
    ],
)
def test_the_cached_header_classes_give_the_same_bytes_as_the_standard_registry(
    changes: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compose policy makes each header class once; the bytes must not change."""
    import mailer.compose as compose

    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    facts = make_facts(**changes)
    cached = [compose.compose_acknowledgement(facts, now=now).raw for _ in range(2)]
    monkeypatch.setattr(compose, "_POLICY", policy.SMTP.clone(refold_source="none"))
    standard = compose.compose_acknowledgement(facts, now=now).raw
    assert cached == [standard, standard]
