"""Turning a structured draft into the plain text a customer would read.

The model (or the offline drafter) fills in the *content* fields; the frame
around them (greeting, headings, the sentence with our next time, the
signature) is ours and fixed. That way the four headings are always there for
the wording checks to find, the promised time is the one codered computed,
and a model cannot add a postscript with a link or a new address of its own.
"""

from __future__ import annotations

from drafting.context import DraftContext
from drafting.schemas import (
    CallRecap,
    DelayNotice,
    DraftContent,
    FourQuestionSummary,
    ProgressUpdate,
)
from policies.sections import Question, heading

__all__ = ["render_text"]


def render_text(content: DraftContent, ctx: DraftContext) -> str:
    """The customer-facing body for ``content``; ``notes_to_csm`` never appear in it."""
    if isinstance(content, FourQuestionSummary):
        body = _summary(content, ctx)
    elif isinstance(content, ProgressUpdate):
        body = _update(content, ctx)
    elif isinstance(content, DelayNotice):
        body = _delay(content, ctx)
    elif isinstance(content, CallRecap):
        body = _recap(content, ctx)
    else:
        # A rewrite keeps the CSM's own frame: their text may already greet and sign.
        return content.text.strip() + "\n"
    return _frame(ctx, body)


def _frame(ctx: DraftContext, paragraphs: list[str]) -> str:
    parts = [ctx.greeting, *(p.strip() for p in paragraphs if p and p.strip()), ctx.signature]
    return "\n\n".join(parts).strip() + "\n"


def _section(question: Question, text: str, ctx: DraftContext) -> str:
    """A heading and its answer; an empty answer becomes a placeholder, so the wording checks
    see it as unanswered (the closing lines after the last section would hide it otherwise)."""
    title = heading(question, ctx.language)
    return f"{title}\n{text.strip() or f'[To be completed: {title.lower()}.]'}"


def _summary(content: FourQuestionSummary, ctx: DraftContext) -> list[str]:
    what = content.what_happened.strip()
    if content.timeline:
        lines = "\n".join(f"- {entry.when}: {entry.what}" for entry in content.timeline)
        what = f"{what}\n\n{lines}" if what else lines
    paragraphs = [
        f"Here is our summary of {ctx.reference}, answering the four questions we owe you.",
        _section(Question.WHAT_HAPPENED, what, ctx),
        _section(Question.WHY, content.why_it_happened, ctx),
        _section(Question.RESOLUTION, content.resolution, ctx),
        _section(Question.PREVENTION, content.prevention, ctx),
    ]
    if ctx.next_update_at:
        paragraphs.append(f"We will write to you again by {ctx.next_update_at}.")
    paragraphs.append(
        "If anything here does not match what you saw, reply to this email: your reply "
        f"reaches the team working on {ctx.reference}."
    )
    return paragraphs


def _update(content: ProgressUpdate, ctx: DraftContext) -> list[str]:
    paragraphs = [
        f"Here is where we stand on {ctx.reference}.",
        content.what_changed,
        content.next_steps,
    ]
    if ctx.next_update_at:
        paragraphs.append(
            f"We will write to you again by {ctx.next_update_at}, even if there is no news."
        )
    return paragraphs


def _delay(content: DelayNotice, ctx: DraftContext) -> list[str]:
    paragraphs = [content.what_is_late, content.reason, content.meanwhile]
    if ctx.new_time:
        paragraphs.append(f"You will hear from us by {ctx.new_time}.")
    return paragraphs


def _recap(content: CallRecap, ctx: DraftContext) -> list[str]:
    paragraphs = [
        f"Thank you for your time on the phone. So that we both have it in writing, here is "
        f"what we discussed about {ctx.reference}.",
        content.summary,
    ]
    if content.agreed_actions:
        lines = []
        for item in content.agreed_actions:
            detail = ", ".join(part for part in (item.owner, item.due) if part)
            lines.append(f"- {item.action}" + (f" ({detail})" if detail else ""))
        paragraphs.append("What we agreed:\n" + "\n".join(lines))
    if content.open_questions:
        paragraphs.append(
            "Still open:\n" + "\n".join(f"- {question}" for question in content.open_questions)
        )
    if ctx.next_update_at:
        paragraphs.append(f"We will write to you again by {ctx.next_update_at}.")
    paragraphs.append("If I have missed or misunderstood anything, please reply to this email.")
    return paragraphs
