"""The offline drafter: recorded facts only, placeholders where facts are missing, and text
that passes its own wording checks when the facts are complete."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from drafting.context import Fact
from drafting.drafter import TemplateDrafter
from drafting.kinds import DraftKind
from drafting.schemas import CallRecap, FourQuestionSummary, ProgressUpdate
from policies.sections import Question, split_sections
from policies.wording import check_wording
from tests.drafting.helpers import NEXT, T0, context


def _draft(**changes: object) -> tuple[object, str, list[str]]:
    ctx = context(**changes)  # type: ignore[arg-type]
    result = asyncio.run(TemplateDrafter().draft(ctx))
    findings = check_wording(result.text, kind=ctx.kind.value, known_text=ctx.known_text())
    assert result.template and result.drafter == "offline-template" and not result.calls
    return result.content, result.text, [f.rule for f in findings]


def test_a_summary_with_every_fact_is_complete_and_clean() -> None:
    content, text, rules = _draft()
    assert isinstance(content, FourQuestionSummary)
    sections = split_sections(text)
    assert set(sections) == set(Question)
    assert "removed a route" in sections[Question.WHY]
    assert "staged rollout" in sections[Question.PREVENTION]
    assert NEXT in text and text.startswith("Hello Dana,")
    assert "Template draft" in content.notes_to_csm[0]
    # The timeline comes from the thread, with the times as the customer saw them.
    assert content.timeline[0].what.startswith("You wrote to us")
    assert content.timeline[0].when == context().thread[0].when
    assert rules == []


def test_missing_facts_become_placeholders_and_notes_never_guesses() -> None:
    only_what = context().facts[:1]
    content, _, rules = _draft(facts=only_what)
    assert isinstance(content, FourQuestionSummary)
    assert content.why_it_happened.startswith("[To be completed")
    assert content.prevention.startswith("[To be completed")
    notes = " ".join(content.notes_to_csm)
    assert "--about why" in notes and "--about prevent" in notes
    assert rules.count("missing_answer") == 3


def test_untagged_facts_answer_what_happened_with_a_note() -> None:
    untagged = (Fact("Logins failed for an hour.", "alice", T0),)
    content, _, _ = _draft(facts=untagged)
    assert isinstance(content, FourQuestionSummary)
    assert content.what_happened == "Logins failed for an hour."
    assert any("without --about" in note for note in content.notes_to_csm)


def test_updates_report_only_facts_recorded_since_our_last_message() -> None:
    old = Fact("The API returned 503 errors.", "alice", T0 - timedelta(minutes=5))
    new = Fact("Replays finished for 98% of requests.", "alice", T0 + timedelta(hours=1))
    content, text, rules = _draft(kind=DraftKind.UPDATE, facts=(old, new))
    assert isinstance(content, ProgressUpdate)
    assert content.what_changed == "Replays finished for 98% of requests."
    assert NEXT in text and "even if there is no news" in text
    assert rules == []


def test_an_update_without_new_facts_says_there_is_no_news_yet() -> None:
    old = Fact("The API returned 503 errors.", "alice", T0 - timedelta(minutes=5))
    content, _, rules = _draft(kind=DraftKind.UPDATE, facts=(old,))
    assert isinstance(content, ProgressUpdate)
    assert "no news yet" in content.what_changed
    assert any("no-news update" in note for note in content.notes_to_csm)
    assert rules == []


def test_a_recap_turns_call_notes_into_actions_and_questions() -> None:
    notes = "Walked through the timeline\n- action: send the RCA by Friday\nWill credits apply?"
    content, text, _ = _draft(kind=DraftKind.RECAP, source_text=notes)
    assert isinstance(content, CallRecap)
    assert content.summary == "Walked through the timeline."
    assert [a.action for a in content.agreed_actions] == ["send the RCA by Friday."]
    assert content.open_questions == ["Will credits apply?"]
    assert "What we agreed:" in text and "Still open:" in text


def test_a_delay_notice_names_the_missed_and_the_new_time() -> None:
    missed, new = "Tuesday, 1 December 2026 at 12:00", "Tuesday, 1 December 2026 at 16:00"
    _, text, rules = _draft(kind=DraftKind.DELAY, missed_time=missed, new_time=new,
                            next_update_at=None)  # fmt: skip
    assert f"by {missed}" in text and f"You will hear from us by {new}." in text
    assert rules == []
