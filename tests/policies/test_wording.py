"""Wording checks: each rule fires where it should, stays quiet where it should, and a good
draft comes back clean (a checker that flags good drafts teaches people to override it)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.sections import Question, heading
from policies.wording import (
    KINDS,
    SUMMARY_QUESTIONS,
    TIME_REQUIRED_KINDS,
    Finding,
    FindingSeverity,
    blocking,
    check_wording,
    summary_question_label,
)

BLOCKING, WARNING = FindingSeverity.BLOCKING, FindingSeverity.WARNING

ANSWERS = {
    Question.WHAT_HAPPENED: (
        "On 4 March 2026 between 09:12 and 10:40 CET, 12% of API requests to the EU region "
        "failed with HTTP 503, and invoices for 38 accounts were sent twice."
    ),
    Question.WHY: (
        "A configuration change in our deployment removed a database index. We made a mistake: "
        "our release checks did not cover that index."
    ),
    Question.RESOLUTION: (
        "We restored the index at 10:40 CET, cancelled the duplicate invoices and refunded "
        "$1,200.50 to your account; the refund reaches you within 5 business days."
    ),
    Question.PREVENTION: (
        "We have added a QA step to our release process: every schema change now runs against "
        "a copy of production data, and an alert fires when the error rate passes 1%."
    ),
}
KNOWN = (
    "CR-1042\nJane Doe\njane@customer.example\nHello Jane,\nAnna Berg, ACME Support\n"
    "Fact: 4 March 2026 09:12-10:40 CET, 12 % of EU API requests returned 503.\n"
    "Fact: 38 accounts were invoiced twice; refund of 1200.50 USD, 5 business days.\n"
    "Fact: alert threshold 1 %.\nTuesday, 10 March 2026 at 14:00 CET"
)


def summary(answers: dict[Question, str] | None = None, *, language: str = "en") -> str:
    """A well-formed four-question summary, framed like the drafts we render."""
    answers = ANSWERS if answers is None else answers
    sections = "\n\n".join(f"{heading(q, language)}\n{text}" for q, text in answers.items())
    return (
        "Hello Jane,\n\nHere is our summary of CR-1042, answering the four questions we owe "
        f"you.\n\n{sections}\n\nWe will write to you again by Tuesday, 10 March 2026 at 14:00 "
        "CET.\n\nBest regards,\nAnna Berg, ACME Support\n"
    )


def with_answer(question: Question, text: str) -> str:
    return summary({**ANSWERS, question: text})


def rules(text: str, kind: str = "rewrite", known_text: str = KNOWN) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {}
    for finding in check_wording(text, kind=kind, known_text=known_text):
        found.setdefault(finding.rule, []).append(finding)
    return found


def only(text: str, rule: str, kind: str = "rewrite", known_text: str = KNOWN) -> Finding:
    """The single finding of ``rule`` (fails if there are none or several)."""
    found = rules(text, kind, known_text).get(rule, [])
    assert len(found) == 1, found
    return found[0]


# --- a good draft is clean ---------------------------------------------------------------


def test_a_good_summary_has_no_findings() -> None:
    assert check_wording(summary(), kind="summary", known_text=KNOWN) == []


@pytest.mark.parametrize("language", ["de", "fr", "es"])
def test_summary_headings_are_recognised_in_every_language(language: str) -> None:
    findings = check_wording(summary(language=language), kind="summary", known_text=KNOWN)

    assert [f for f in findings if f.rule == "missing_answer"] == []


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (
            "update",
            "Hello Jane,\n\nHere is where we stand on CR-1042. The duplicate invoices are "
            "cancelled. We will write to you again by Tuesday, 10 March 2026 at 14:00 CET, even "
            "if there is no news.\n\nBest regards,\nAnna Berg, ACME Support",
        ),
        (
            "delay",
            "Hello Jane,\n\nWe will not have the refund for CR-1042 ready by the time we gave. "
            "You will hear from us by Tuesday, 10 March 2026 at 14:00 CET.",
        ),
        (
            "recap",
            "Thank you for your time on the phone. We agreed that we cancel the duplicate "
            "invoices of the 38 accounts. If I have missed anything, please reply to this email.",
        ),
        ("rewrite", "You can now log in again. You will receive a confirmation by email."),
    ],
)
def test_good_drafts_of_every_kind_are_clean(kind: str, text: str) -> None:
    assert check_wording(text, kind=kind, known_text=KNOWN) == []


def test_the_customers_words_quoted_back_are_not_ours() -> None:
    timeline = '- Wednesday, 4 March 2026 at 09:20 CET: You wrote to us: "API DOWN, your fault!!"'
    text = with_answer(Question.WHAT_HAPPENED, f"{ANSWERS[Question.WHAT_HAPPENED]}\n\n{timeline}")
    known = f"{KNOWN}\nAPI DOWN, your fault!!\nWednesday, 4 March 2026 at 09:20 CET"

    assert check_wording(text, kind="summary", known_text=known) == []
    assert {"blame", "emotional_language"} <= set(rules(text, "summary", known_text=KNOWN))


# --- blame -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "You failed to configure the webhook.",
        "This was your mistake.",
        "It was your fault.",
        "You should have updated the client first.",
        "The sync stopped due to your misconfiguration.",
        "It broke because you changed the password.",
        "You didn't read the release notes.",
        "This is a user error.",
        "It was your team's error.",
        "If you had followed the guide, this would not have happened.",
        "This was caused by our vendor's fault.",
        "Our provider caused the outage.",
        "The vendor is to blame.",
        "The delay was because of our supplier.",
        "It failed due to a third-party error.",
        "It was AWS's fault.",
        "It was AWS’s fault.",
        "The hosting company caused the outage.",
        "John made a mistake.",
        "Dave forgot to renew the certificate.",
        "It was caused by Priya.",
        "An engineer's error deleted the index.",
        "It was human error.",
        "The intern deleted the table.",
        "One of our engineers forgot to renew it.",
        "This was not our fault.",
        "This wasn’t our fault.",
    ],
)
def test_blame_is_blocking(text: str) -> None:
    finding = only(text, "blame")

    assert finding.severity is BLOCKING
    assert finding.excerpt and finding.excerpt in text
    assert finding.message.startswith("Blames ")


@pytest.mark.parametrize(
    "text",
    [
        "We made a mistake in our deployment.",
        "Our deployment caused the outage.",
        "We are to blame for the delay.",
        "It was our fault, and we are sorry.",
        "You can now log in again.",
        "You will receive a new invoice.",
        "You should have received an email from us.",
        "If you didn't receive the invoice, reply to this email.",
        "Because you asked, here are the logs.",
        "Due to your request, we moved the call.",
        "If you had any trouble, please tell us.",
        "The error message in your error log shows code 503.",
        "The outage was caused by Redis running out of memory.",
        "The restart was caused by Tuesday's maintenance window.",
        "It was nobody's fault that the mail was late.",
        "We are working with our provider to restore the service.",
    ],
)
def test_owning_our_part_and_neutral_you_are_not_blame(text: str) -> None:
    assert "blame" not in rules(text, known_text="503")


def test_blame_names_whom_it_points_at() -> None:
    assert "the customer" in only("You failed to configure it.", "blame").message
    assert "a third party" in only("Our vendor's fault.", "blame").message
    assert "a person" in only("It was human error.", "blame").message


# --- apologies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["We are sorry for the trouble.", "Our apologies for the double invoice.", "Thanks!"]
)
def test_one_apology_is_fine(text: str) -> None:
    assert "apologies" not in rules(text)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("We are sorry. Our apologies again.", 2),
        ("We apologise. We regret this. Sorry again.", 3),
        ("We apologize for the outage and apologize for the delay.", 2),
    ],
)
def test_more_than_one_apology_is_a_warning_that_counts_them(text: str, count: int) -> None:
    finding = only(text, "apologies")

    assert finding.severity is WARNING
    assert f"{count} times" in finding.message


# --- personal commitments ----------------------------------------------------------------

PERSONAL = "I'll check my work twice before publishing."


def test_a_personal_promise_as_prevention_blocks() -> None:
    finding = only(with_answer(Question.PREVENTION, PERSONAL), "personal_commitment", "summary")

    assert finding.severity is BLOCKING
    assert finding.section == Question.PREVENTION.value
    assert finding.excerpt == "I'll check my work"
    assert "process" in finding.message


@pytest.mark.parametrize(
    "text",
    [
        "I will check my work before every release.",
        "I personally make sure this is reviewed.",
        "I promise to be more careful.",
        "I’ll double-check every release.",
    ],
)
def test_personal_promises_in_the_prevention_section_block(text: str) -> None:
    found = rules(with_answer(Question.PREVENTION, text), "summary")["personal_commitment"]

    assert {f.severity for f in found} == {BLOCKING}


def test_a_process_change_is_no_personal_promise() -> None:
    text = with_answer(Question.PREVENTION, "We have added a QA step to our release process.")

    assert "personal_commitment" not in rules(text, "summary")


def test_personal_wording_outside_the_prevention_section_of_a_summary_is_not_checked() -> None:
    text = with_answer(Question.RESOLUTION, "I will call you once the refund is booked.")

    assert "personal_commitment" not in rules(text, "summary")


@pytest.mark.parametrize("kind", ["update", "delay", "recap", "rewrite"])
def test_personal_promises_in_other_kinds_are_warnings(kind: str) -> None:
    text = f"{PERSONAL} I will call you at 14:00 on Tuesday, 10 March 2026."

    found = rules(text, kind)["personal_commitment"]

    assert [f.excerpt for f in found] == ["I'll check my work", "I will call"]
    assert {f.severity for f in found} == {WARNING}
    assert all(f.section is None for f in found)


# --- absolute promises -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "This will never happen again.",
        "It won't happen again.",
        "It won’t happen again.",
        "This will not happen again.",
        "Never again will you lose data.",
        "We guarantee that the export works.",
        "The service is now guaranteed to be available.",
        "We cannot guarantee that.",
        "We are 100% sure the bug is gone.",
        "The new cluster is 100 % reliable.",
        "We will ensure this never recurs.",
    ],
)
def test_absolute_promises_block(text: str) -> None:
    finding = only(text, "absolute_promise", known_text="100")

    assert finding.severity is BLOCKING
    assert "describe the change" in finding.message


def test_overlapping_absolute_phrases_make_one_finding() -> None:
    assert only("It will never happen again.", "absolute_promise").excerpt == (
        "It will never happen again"
    )


@pytest.mark.parametrize(
    "text",
    [
        "We added an alert that fires when the error rate passes 1%.",
        "Every schema change now runs against a copy of production data.",
        "We never store card numbers.",
    ],
)
def test_describing_a_change_is_no_absolute_promise(text: str) -> None:
    assert "absolute_promise" not in rules(text)


# --- timelines ---------------------------------------------------------------------------


def test_soon_in_an_update_blocks_twice() -> None:
    found = rules("We will write again soon.", "update")

    assert found["vague_timeline"][0].severity is BLOCKING
    assert found["no_concrete_time"][0].severity is BLOCKING
    assert found["vague_timeline"][0].excerpt == "soon"


def test_a_concrete_time_in_an_update_is_fine() -> None:
    text = "We will write again by Tuesday, 1 December 2026 at 14:30 CET (UTC+01:00)."

    found = rules(text, "update", known_text="Tuesday, 1 December 2026 at 14:30 CET (UTC+01:00)")

    assert "vague_timeline" not in found
    assert "no_concrete_time" not in found
    assert found == {}


@pytest.mark.parametrize(
    "phrase",
    [
        "soon",
        "ASAP",
        "as soon as possible",
        "shortly",
        "in due course",
        "at some point",
        "in the near future",
        "when we can",
        "at the earliest opportunity",
        "promptly",
        "in a bit",
        "later today",
    ],
)
@pytest.mark.parametrize("kind", sorted(TIME_REQUIRED_KINDS))
def test_vague_timelines_block_where_a_time_is_owed(phrase: str, kind: str) -> None:
    text = f"We will send the fix {phrase}, by 10 March 2026 at 14:00 CET."

    finding = only(text, "vague_timeline", kind)

    assert finding.severity is BLOCKING
    assert finding.excerpt.lower() == phrase.lower()


@pytest.mark.parametrize("kind", ["recap", "rewrite"])
def test_vague_timelines_elsewhere_are_warnings(kind: str) -> None:
    assert only("We will look into it soon.", "vague_timeline", kind).severity is WARNING
    assert "no_concrete_time" not in rules("We will look into it soon.", kind)


def test_vague_timelines_block_only_in_the_summarys_resolution_section() -> None:
    in_resolution = with_answer(Question.RESOLUTION, "We will restore the index soon.")
    in_prevention = with_answer(Question.PREVENTION, "We will add a QA step soon.")

    blocked = only(in_resolution, "vague_timeline", "summary")
    warned = only(in_prevention, "vague_timeline", "summary")

    assert (blocked.severity, blocked.section) == (BLOCKING, Question.RESOLUTION.value)
    assert (warned.severity, warned.section) == (WARNING, Question.PREVENTION.value)


def test_a_repeated_vague_phrase_is_reported_once() -> None:
    assert len(rules("Soon. Soon. Very soon.", "update")["vague_timeline"]) == 1


@pytest.mark.parametrize(
    "when",
    [
        "at 14:30",
        "at 2 pm",
        "at 2:30 p.m.",
        "at 14 h 30",
        "on 4 March 2026",
        "on 2026-03-04",
        "on 04.03.2026",
        "on Tuesday, 4 March",
        "on March 4th",
    ],
)
@pytest.mark.parametrize("kind", sorted(TIME_REQUIRED_KINDS))
def test_any_clock_time_or_date_is_a_concrete_time(when: str, kind: str) -> None:
    assert "no_concrete_time" not in rules(f"We will write again {when}.", kind)


@pytest.mark.parametrize(
    "text", ["We will write again on Tuesday.", "We will write within two hours.", "Hello."]
)
def test_no_date_or_clock_time_in_an_update_blocks(text: str) -> None:
    finding = only(text, "no_concrete_time", "update")

    assert finding.severity is BLOCKING
    assert finding.excerpt == ""


@pytest.mark.parametrize("kind", ["summary", "recap", "rewrite"])
def test_other_kinds_need_no_concrete_time(kind: str) -> None:
    assert "no_concrete_time" not in rules("We are looking into it.", kind)


# --- emotional language ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "excerpts"),
    [
        ("This is RIDICULOUS!!", ["RIDICULOUS", "!!"]),
        ("We are furious about this outcome.", ["furious"]),
        ("The outage was a disaster.", ["disaster"]),
        ("Please calm down.", ["calm down"]),
        ("Obviously the export works.", ["Obviously"]),
        ("Frankly, this is terrible.", ["Frankly", "terrible"]),
        ("That is unacceptable and outrageous.", ["unacceptable", "outrageous"]),
        ("Please READ the guide.", ["READ"]),
        ("Obviously, obviously, OBVIOUSLY.", ["Obviously"]),
        ("Done!!! Really!!", ["!!!"]),
    ],
)
def test_emotional_language_is_a_warning_once_per_phrase(text: str, excerpts: list[str]) -> None:
    found = rules(text)["emotional_language"]

    assert [f.excerpt for f in found] == excerpts
    assert {f.severity for f in found} == {WARNING}


@pytest.mark.parametrize(
    "text",
    [
        "The API returned HTTP 503.",
        "Your reference is CR-1042.",
        "We process your data under GDPR and HIPAA in EMEA.",
        "The JSON export and the SAML login work again; see the FAQ.",
        "The ACME dashboard works again.",
        "Thank you!",
        "Your invoice is at https://billing.example.com/INVOICE/ABCD.",
    ],
)
def test_acronyms_identifiers_and_known_names_are_not_shouting(text: str) -> None:
    known = f"{KNOWN}\nhttps://billing.example.com/INVOICE/ABCD"

    assert "emotional_language" not in rules(text, known_text=known)


# --- missing answers and placeholders ----------------------------------------------------


@pytest.mark.parametrize("question", list(Question))
def test_a_missing_heading_is_one_missing_answer(question: Question) -> None:
    text = summary().replace(f"{heading(question, 'en')}\n", "")

    finding = only(text, "missing_answer", "summary")

    assert finding.severity is BLOCKING
    assert finding.section == question.value
    assert SUMMARY_QUESTIONS[question] in finding.message
    assert heading(question, "en") in finding.message


@pytest.mark.parametrize("question", [Question.WHAT_HAPPENED, Question.WHY, Question.RESOLUTION])
def test_an_empty_section_is_a_missing_answer(question: Question) -> None:
    finding = only(with_answer(question, ""), "missing_answer", "summary")

    assert finding.section == question.value
    assert "empty" in finding.message


def test_an_empty_last_section_is_a_missing_answer() -> None:
    # The last section runs to the end of the text (policies.sections), so it is only empty
    # when nothing follows its heading.
    text = "\n\n".join(f"{heading(q, 'en')}\n{ANSWERS[q]}" for q in list(Question)[:3])
    finding = only(f"{text}\n\n{heading(Question.PREVENTION, 'en')}\n", "missing_answer", "summary")

    assert finding.section == Question.PREVENTION.value


@pytest.mark.parametrize(
    "placeholder", ["[To be completed by the CSM]", "[TODO: root cause]", "[missing: dates]"]
)
def test_a_placeholder_in_a_section_is_a_missing_answer(placeholder: str) -> None:
    text = with_answer(Question.WHY, f"Our analysis: {placeholder}")

    found = rules(text, "summary")

    assert [f.section for f in found["missing_answer"]] == [Question.WHY.value]
    assert found["missing_answer"][0].excerpt == placeholder
    assert "placeholder" not in found  # one finding for one problem


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_placeholder_anywhere_blocks(kind: str) -> None:
    text = "Hello Jane,\n\n[To be completed: the new time]\n\n" + (
        summary() if kind == "summary" else "We will write by 10 March 2026 at 14:00 CET."
    )

    finding = only(text, "placeholder", kind)

    assert finding.severity is BLOCKING
    assert finding.excerpt == "[To be completed: the new time]"
    assert finding.section is None


def test_missing_answers_are_only_checked_in_summaries() -> None:
    assert "missing_answer" not in rules("Hello.", "recap")


def test_summary_question_labels() -> None:
    assert [summary_question_label(q) for q in Question] == [
        "What happened?",
        "Why did it happen?",
        "What are we doing to resolve it?",
        "How will we prevent it?",
    ]


# --- addresses, links and figures we were not given --------------------------------------


@pytest.mark.parametrize(
    ("text", "known", "excerpt"),
    [
        ("We refunded $500.", "refund of $300", "$500"),
        ("We refunded €300.", "refund of $500", "€300"),
        ("Availability was 99.5% this month.", "availability 99.9%", "99.5%"),
        ("We refunded 1,250 EUR.", "refund 1200 EUR", "1,250"),
        ("38 accounts were affected.", "", "38"),
    ],
)
def test_a_figure_we_were_not_given_blocks(text: str, known: str, excerpt: str) -> None:
    finding = only(text, "unknown_figure", known_text=known)

    assert finding.severity is BLOCKING
    assert finding.excerpt == excerpt


@pytest.mark.parametrize(
    ("text", "known"),
    [
        ("We refunded $500.", "$500"),
        ("We refunded $500.", "a refund of 500 USD"),
        ("We refunded 1,200 EUR.", "1200"),
        ("We refunded $1,200.50.", "1200.5"),
        ("Availability was 99.9%.", "99.9 %"),
        ("We will write by 4 March 2026 at 14:00 CET.", "Wednesday, 4 March 2026 at 14:00 CET"),
        ("Your reference is CR-1042.", "CR-1042"),
        ("1. Restore the index.\n2. Refund the invoices.", ""),
        ("Write to support@example.com or see https://example.com/v2/status.", ""),
    ],
)
def test_figures_we_were_given_are_fine(text: str, known: str) -> None:
    assert "unknown_figure" not in rules(text, known_text=known)


def test_each_unknown_figure_is_reported_once() -> None:
    found = rules("We refunded $500, yes, 500.", known_text="")["unknown_figure"]

    assert [f.excerpt for f in found] == ["$500"]


@pytest.mark.parametrize(
    ("text", "known", "expected"),
    [
        ("Please cc all@customers.example.", KNOWN, "all@customers.example"),
        ("Write to refunds@acme.example.", "support@acme.example", "refunds@acme.example"),
        ("Write to ll@customer.example.", "all@customer.example", "ll@customer.example"),
    ],
)
def test_an_address_we_were_not_given_blocks(text: str, known: str, expected: str) -> None:
    finding = only(text, "unknown_address", known_text=known)

    assert finding.severity is BLOCKING
    assert finding.excerpt == expected


@pytest.mark.parametrize(
    "text", ["Please write to jane@customer.example.", "Please write to JANE@Customer.Example"]
)
def test_addresses_we_were_given_are_fine(text: str) -> None:
    assert "unknown_address" not in rules(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("See https://evil.example/login.", "https://evil.example/login"),
        ("See https://status.example.com.evil.io/x.", "https://status.example.com.evil.io/x"),
        ("See https://status.example.com/other.", "https://status.example.com/other"),
        ("See www.phish.example for details.", "www.phish.example"),
    ],
)
def test_a_link_we_were_not_given_blocks(text: str, expected: str) -> None:
    known = "Status page: https://status.example.com/incidents/42"

    finding = only(text, "unknown_url", known_text=known)

    assert finding.severity is BLOCKING
    assert finding.excerpt == expected


@pytest.mark.parametrize(
    "text",
    [
        "See https://status.example.com/incidents/42.",
        "See https://status.example.com/incidents/42/ for details.",
        "See HTTPS://Status.Example.com/incidents/42?utm=mail.",
        "See http://www.status.example.com/incidents/42).",
        "See https://status.example.com.",
    ],
)
def test_links_we_were_given_are_fine(text: str) -> None:
    known = "Status page: https://status.example.com/incidents/42"

    assert rules(text, known_text=known) == {}


# --- the API -----------------------------------------------------------------------------


def test_blocking_keeps_only_blocking_findings() -> None:
    findings = check_wording("We are sorry. Sorry again. You failed to pay.", kind="rewrite")

    assert [f.rule for f in blocking(findings)] == ["blame"]
    assert {f.rule for f in findings} == {"blame", "apologies"}


def test_findings_are_json_ready() -> None:
    finding = only(with_answer(Question.PREVENTION, PERSONAL), "personal_commitment", "summary")

    assert finding.to_dict() == {
        "rule": "personal_commitment",
        "severity": "blocking",
        "message": finding.message,
        "excerpt": "I'll check my work",
        "section": "prevention",
    }


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown draft kind"):
        check_wording("Hello.", kind="newsletter")


def test_long_excerpts_are_clipped() -> None:
    text = f"Please see https://status.example.com/{'a' * 300} now."

    assert len(only(text, "unknown_url", known_text="").excerpt) == 120


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(
        alphabet=st.sampled_from("aAyoU’'!?.:, \n$%0123456789@[]/-IPSWw\"“”"), max_size=200
    ),
    kind=st.sampled_from(sorted(KINDS)),
)
def test_any_text_gets_the_same_well_formed_findings(text: str, kind: str) -> None:
    findings = check_wording(text, kind=kind, known_text="0")

    assert findings == check_wording(text, kind=kind, known_text="0")
    for finding in findings:
        assert len(finding.excerpt) <= 120
        assert finding.excerpt.rstrip("…") in text
        assert finding.message.endswith((".", "!", ")"))
        assert finding.section is None or finding.section in {q.value for q in Question}
