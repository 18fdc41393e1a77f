"""The offline drafter: the same structured drafts, from recorded facts, with templates.

Why it exists: a new user, the demo and every installation without an API
key should see the whole workflow (draft, check, edit, approve, send). It
never invents anything: each answer is made of the facts a CSM recorded, and
where none was recorded it leaves a visible placeholder, which the wording
checks treat as blocking, and says so in a note to the CSM.
"""

from __future__ import annotations

import re

from drafting.context import DraftContext, Fact
from drafting.kinds import DraftKind
from drafting.schemas import (
    AgreedAction,
    CallRecap,
    DelayNotice,
    DraftContent,
    FourQuestionSummary,
    ProgressUpdate,
    Rewrite,
    TimelineEntry,
)
from policies.sections import Question

__all__ = ["OFFLINE_NAME", "OfflineDrafter"]

OFFLINE_NAME = "offline-template"
"""How template drafts are labelled wherever a model name would appear."""

_LABEL = (
    "Template draft: built from the facts recorded on {ref} without a language model. "
    "Read it through and put it in your own words before approving."
)
_QUESTION_WORDS = {
    Question.WHAT_HAPPENED: ("what happened, with a timeline", "what"),
    Question.WHY: ("why it happened", "why"),
    Question.RESOLUTION: ("what we are doing to resolve it, with times", "resolve"),
    Question.PREVENTION: ("how we will prevent it (a process change)", "prevent"),
}
_ACTION_LINE = re.compile(r"^\s*(?:[-*]\s*)?(?:action|todo|to do|next)\s*:\s*(.+)$", re.I)
_BULLET = re.compile(r"^\s*[-*]\s+")
_SHOUT = re.compile(r"\b[A-Z]{3,}\b")
_ACRONYMS = frozenset(
    re.findall(
        r"\w+",
        "API SLA HTTP HTTPS DNS UTC CET CEST GMT SSO SAML VPN EMEA GDPR HIPAA CSV JSON PDF URL "
        "FAQ RCA CEO CTO CFO SQL AWS GCP SSL TLS CPU RAM VAT USD EUR GBP IMAP SMTP",
    )
)
"""Capitals that are names, not shouting: the offline rewrite leaves these alone."""
_BANGS = re.compile(r"!{2,}")


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if not text or text[-1] in ".!?:" else f"{text}."


def _join(facts: tuple[Fact, ...]) -> str:
    return " ".join(_sentence(f.text) for f in facts)


class OfflineDrafter:
    """Pure: the same context gives the same draft."""

    name = OFFLINE_NAME

    def draft(self, ctx: DraftContext) -> DraftContent:
        if ctx.kind is DraftKind.SUMMARY:
            return self._summary(ctx)
        if ctx.kind is DraftKind.UPDATE:
            return self._update(ctx)
        if ctx.kind is DraftKind.DELAY:
            return self._delay(ctx)
        if ctx.kind is DraftKind.RECAP:
            return self._recap(ctx)
        return self._rewrite(ctx)

    def _notes(self, ctx: DraftContext) -> list[str]:
        notes = [_LABEL.format(ref=ctx.reference)]
        if ctx.language != "en":
            notes.append(
                f"The customer writes in '{ctx.language}'; template drafts are in English."
            )
        return notes

    def _missing(self, ctx: DraftContext, question: Question, notes: list[str]) -> str:
        words, about = _QUESTION_WORDS[question]
        notes.append(
            f"No fact is recorded for {words}. Add one with: codered incidents note "
            f'{ctx.reference} --about {about} "..." and draft again, or write it in yourself.'
        )
        return f"[To be completed: {words}.]"

    def _summary(self, ctx: DraftContext) -> FourQuestionSummary:
        notes = self._notes(ctx)
        untagged = tuple(f for f in ctx.facts if f.about is None)
        what_facts = ctx.facts_about(Question.WHAT_HAPPENED)
        if not what_facts and untagged:
            what_facts = untagged
            notes.append(
                "Facts recorded without --about were placed under 'What happened'; "
                "move any that answer another question."
            )
        answers: dict[Question, str] = {}
        for question in Question:
            facts = what_facts if question is Question.WHAT_HAPPENED else ctx.facts_about(question)
            answers[question] = _join(facts) if facts else self._missing(ctx, question, notes)
        return FourQuestionSummary(
            what_happened=answers[Question.WHAT_HAPPENED],
            timeline=self._timeline(ctx),
            why_it_happened=answers[Question.WHY],
            resolution=answers[Question.RESOLUTION],
            prevention=answers[Question.PREVENTION],
            notes_to_csm=notes,
        )

    def _timeline(self, ctx: DraftContext) -> list[TimelineEntry]:
        entries: list[TimelineEntry] = []
        first_ours = True
        for message in ctx.thread:
            if not message.when:
                continue
            if message.from_customer:
                what = f'You wrote to us: "{message.subject}"'
            elif first_ours:
                what, first_ours = "We acknowledged your message", False
            else:
                what = "We wrote to you with an update"
            entries.append(TimelineEntry(when=message.when, what=what))
        return entries[:20]

    def _update(self, ctx: DraftContext) -> ProgressUpdate:
        notes = self._notes(ctx)
        ours = [m.at for m in ctx.thread if not m.from_customer]
        since = max(ours) if ours else None
        new = tuple(f for f in ctx.facts if since is None or f.at > since)
        if new:
            changed = _join(new)
        else:
            changed = "There is no news yet since our last message; the work on it continues."
            notes.append("No fact was recorded since our last message: this is a no-news update.")
        # A plan already told as news is not repeated as the next step.
        plans = [f for f in ctx.facts_about(Question.RESOLUTION) if f not in new]
        next_steps = _sentence(plans[-1].text) if plans else "We are continuing to work on it."
        return ProgressUpdate(what_changed=changed, next_steps=next_steps, notes_to_csm=notes)

    def _delay(self, ctx: DraftContext) -> DelayNotice:
        notes = self._notes(ctx)
        missed = f"by {ctx.missed_time}" if ctx.missed_time else "by the time we gave you"
        why = ctx.facts_about(Question.WHY)
        plans = ctx.facts_about(Question.RESOLUTION)
        if not why:
            notes.append("Say in your own words why the time cannot be met, if you can.")
        return DelayNotice(
            what_is_late=f"We promised to get back to you {missed}, and we will not be able "
            "to give you a complete answer by then.",
            reason=_sentence(why[-1].text)
            if why
            else "We do not yet have everything we need for a complete and accurate answer, "
            "and we would rather tell you now than send you something incomplete.",
            meanwhile=_sentence(plans[-1].text)
            if plans
            else "The team is continuing to work on it in the meantime.",
            notes_to_csm=notes,
        )

    def _recap(self, ctx: DraftContext) -> CallRecap:
        notes = self._notes(ctx)
        summary: list[str] = []
        actions: list[AgreedAction] = []
        questions: list[str] = []
        for line in ctx.source_text.splitlines():
            if not line.strip():
                continue
            if match := _ACTION_LINE.match(line):
                actions.append(AgreedAction(action=_sentence(match.group(1))))
            elif line.strip().endswith("?"):
                questions.append(_BULLET.sub("", line).strip())
            else:
                summary.append(_sentence(_BULLET.sub("", line)))
        if not summary:
            notes.append("No call notes were given: add them with --text or --text-file.")
        return CallRecap(
            summary=" ".join(summary) or "[To be completed: what we discussed on the call.]",
            agreed_actions=actions[:20],
            open_questions=questions[:10],
            notes_to_csm=notes,
        )

    def _rewrite(self, ctx: DraftContext) -> Rewrite:
        notes = self._notes(ctx)
        notes.append(
            "Without a language model only punctuation and capitals were calmed; the wording "
            "findings show what else to change."
        )
        text = _BANGS.sub("!", ctx.source_text)
        text = _SHOUT.sub(
            lambda m: m.group(0) if m.group(0) in _ACRONYMS else m.group(0).capitalize(), text
        )
        changes = []
        if text != ctx.source_text:
            changes.append("Calmed repeated exclamation marks and words in capitals.")
        return Rewrite(text=text.strip(), changes=changes, notes_to_csm=notes)
