"""What a model (or the offline drafter) must return for each kind of draft.

Each schema is sent to the model as the JSON schema of its answer and the
answer is validated against it. The fields are only *words*: no schema has a
recipient, a header or an action, so nothing a model says can choose where a
message goes (DESIGN invariant 5). ``notes_to_csm`` is for the person who
approves, never for the customer: it is where a drafter says "no fact was
recorded for this question" instead of inventing an answer.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from drafting.kinds import DraftKind

__all__ = [
    "SCHEMAS",
    "AgreedAction",
    "CallRecap",
    "DelayNotice",
    "DraftContent",
    "FourQuestionSummary",
    "ProgressUpdate",
    "Rewrite",
    "TimelineEntry",
]

_TEXT = 4000
"""Upper bound on any one field: a runaway model must not fill the database."""


class _Schema(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    notes_to_csm: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Notes for the person who reviews this draft; never shown to the customer. "
        "Say here which facts are missing instead of inventing them.",
    )


class TimelineEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    when: str = Field(max_length=100, description="A time from the facts, as written there.")
    what: str = Field(max_length=500)


class FourQuestionSummary(_Schema):
    what_happened: str = Field(max_length=_TEXT, description="What happened, plainly.")
    timeline: list[TimelineEntry] = Field(default_factory=list, max_length=20)
    why_it_happened: str = Field(
        max_length=_TEXT, description="Why it happened, owning our part plainly, blaming no one."
    )
    resolution: str = Field(
        max_length=_TEXT, description="What we are doing to resolve it, with times."
    )
    prevention: str = Field(
        max_length=_TEXT,
        description="How we will prevent it: changes to process, not personal promises.",
    )


class ProgressUpdate(_Schema):
    what_changed: str = Field(max_length=_TEXT, description="What changed since our last message.")
    next_steps: str = Field(max_length=_TEXT, description="What happens next.")


class DelayNotice(_Schema):
    what_is_late: str = Field(max_length=_TEXT, description="What we promised that will be late.")
    reason: str = Field(max_length=_TEXT, description="Why, owning it, blaming no one.")
    meanwhile: str = Field(max_length=_TEXT, description="What we are doing until the new time.")


class AgreedAction(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    action: str = Field(max_length=500)
    owner: str = Field(default="", max_length=200, description="Who does it: us or the customer.")
    due: str = Field(default="", max_length=100, description="When, if the notes say.")


class CallRecap(_Schema):
    summary: str = Field(max_length=_TEXT, description="What was discussed, from the notes.")
    agreed_actions: list[AgreedAction] = Field(default_factory=list, max_length=20)
    open_questions: list[str] = Field(default_factory=list, max_length=10)


class Rewrite(_Schema):
    text: str = Field(max_length=3 * _TEXT, description="The rewritten text, same facts.")
    changes: list[str] = Field(
        default_factory=list, max_length=10, description="What was changed and why."
    )


DraftContent = FourQuestionSummary | ProgressUpdate | DelayNotice | CallRecap | Rewrite

SCHEMAS: dict[DraftKind, type[DraftContent]] = {
    DraftKind.SUMMARY: FourQuestionSummary,
    DraftKind.UPDATE: ProgressUpdate,
    DraftKind.DELAY: DelayNotice,
    DraftKind.RECAP: CallRecap,
    DraftKind.REWRITE: Rewrite,
}
