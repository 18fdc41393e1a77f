"""Drafters: the offline templates or a language model, behind one interface.

A drafter turns a :class:`~drafting.context.DraftContext` into a
:class:`DraftResult`: the structured content, the rendered customer text, and
what produced it (model, prompt and version, every call with tokens and
cost). A model that fails raises :class:`DraftingError` with the reason and the
calls it made; the application stores that as a failed draft. Nothing here
sends anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Protocol

import prompts
from drafting.budget import CHARS_PER_TOKEN, estimate_tokens, fit_newest
from drafting.context import DraftContext
from drafting.kinds import DraftKind
from drafting.model import CallRecord, ModelClient, ModelError
from drafting.offline import OFFLINE_NAME, OfflineDrafter
from drafting.render import render_text
from drafting.schemas import SCHEMAS, DraftContent

__all__ = [
    "PROMPTS",
    "RULES_PROMPT",
    "DraftResult",
    "Drafter",
    "DraftingError",
    "ModelDrafter",
    "TemplateDrafter",
    "build_messages",
]

RULES_PROMPT = "drafting_rules.v1"
PROMPTS: dict[DraftKind, str] = {
    DraftKind.SUMMARY: "four_question_summary.v1",
    DraftKind.UPDATE: "progress_update.v1",
    DraftKind.DELAY: "delay_notice.v1",
    DraftKind.RECAP: "call_recap.v1",
    DraftKind.REWRITE: "blameless_rewrite.v1",
}
_FACT_CHARS = 2000
_SOURCE_CHARS = 12000
_ENVELOPE = 80
"""Tokens for the delimiters and omission notes around the blocks."""
_OUR_TAGS = re.compile(
    r"<(/?)\s*(data|incident|facts|fact|times|source_text|thread|message)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class DraftResult:
    content: DraftContent
    text: str
    """What the customer would read."""
    drafter: str
    """The model string, or ``offline-template``."""
    template: bool
    prompt: str | None = None
    """``name.version`` of the task prompt (with the rules prompt), None for templates."""
    calls: list[CallRecord] = field(default_factory=list)
    omitted_messages: int = 0
    """Older thread messages left out to respect ``max_input_tokens``."""


class DraftingError(Exception):
    def __init__(self, reason: str, *, drafter: str, prompt: str | None, calls: list[CallRecord]):
        super().__init__(reason)
        self.reason = reason
        self.drafter = drafter
        self.prompt = prompt
        self.calls = calls


class Drafter(Protocol):
    name: str

    async def draft(self, ctx: DraftContext) -> DraftResult: ...


class TemplateDrafter:
    """The offline drafter as a :class:`Drafter` (the default when no model is configured)."""

    name = OFFLINE_NAME

    def __init__(self) -> None:
        self._offline = OfflineDrafter()

    async def draft(self, ctx: DraftContext) -> DraftResult:
        content = self._offline.draft(ctx)
        return DraftResult(content, render_text(content, ctx), OFFLINE_NAME, template=True)


def _delimit(text: str) -> str:
    """Customer text cannot open or close one of our data tags: ``<`` becomes ``‹``."""
    return _OUR_TAGS.sub(lambda m: f"‹{m.group(1)}{m.group(2)}", text)


def _thread_block(ctx: DraftContext) -> list[str]:
    blocks = []
    for message in ctx.thread:
        who = "customer" if message.from_customer else "us"
        blocks.append(
            f'<message from="{who}" at="{_delimit(message.when)}">\n'
            f"Subject: {_delimit(message.subject)}\n{_delimit(message.text)}\n</message>"
        )
    return blocks


def build_messages(ctx: DraftContext, max_input_tokens: int) -> tuple[list[dict[str, str]], int]:
    """The chat messages for ``ctx`` and how many thread messages did not fit the budget.

    Order of priority when space is short: the rules and schema, the incident and times,
    every recorded fact, the source text, then the thread from the newest message back.
    """
    rules = prompts.load_prompt(RULES_PROMPT).text
    schema = json.dumps(SCHEMAS[ctx.kind].model_json_schema(), ensure_ascii=False)
    system = (
        rules.replace("{company}", ctx.company_name).replace("{schema}", schema)
        + "\n\n"
        + prompts.load_prompt(PROMPTS[ctx.kind]).text
    )
    fact_blocks = [
        f'<fact about="{f.about.value if f.about else "general"}" by="{_delimit(f.author)}">'
        f"{_delimit(f.text[:_FACT_CHARS])}</fact>"
        for f in ctx.facts
    ]
    times = "\n".join(
        f"{label}: {value}"
        for label, value in (
            ("next update", ctx.next_update_at),
            ("new time", ctx.new_time),
            ("missed", ctx.missed_time),
        )
        if value
    )
    incident = (
        f"<incident>\nreference: {ctx.reference}\nsubject: {_delimit(ctx.subject)}\n"
        f"category: {ctx.category or 'unknown'}\nseverity: {ctx.severity}\n"
        f"customer: {_delimit(ctx.customer_name)}\n</incident>\n"
        f"<times>\n{times}\n</times>\n"
    )
    # Spend what the budget leaves in priority order, so the prompt never exceeds it:
    # facts (the newest first, if even they do not all fit), the source text, the thread.
    room = max_input_tokens - estimate_tokens(system) - estimate_tokens(incident) - _ENVELOPE
    facts, facts_omitted = fit_newest(fact_blocks, max(room, 0))
    facts_note = f"[{facts_omitted} earlier facts omitted]\n" if facts_omitted else ""
    head = f"{incident}<facts>\n{facts_note}{chr(10).join(facts)}\n</facts>\n"
    room -= estimate_tokens(head) - estimate_tokens(incident)
    if ctx.source_text:
        allowed = min(_SOURCE_CHARS, max(0, int((room - 10) * CHARS_PER_TOKEN)))
        source = _delimit(ctx.source_text[:allowed])
        head += f"<source_text>\n{source}\n</source_text>\n"
        room -= estimate_tokens(source) + 10
    thread, omitted = fit_newest(_thread_block(ctx), max(room, 0))
    note = f"[{omitted} earlier messages omitted]\n" if omitted else ""
    user = f"<data>\n{head}<thread>\n{note}{chr(10).join(thread)}\n</thread>\n</data>"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}], omitted


class ModelDrafter:
    """Drafts with a language model; the model writes only the schema's content fields."""

    def __init__(self, client: ModelClient, *, max_input_tokens: int = 6000) -> None:
        self.client = client
        self.name = client.settings.model
        self.max_input_tokens = max_input_tokens

    async def draft(self, ctx: DraftContext) -> DraftResult:
        prompt = f"{PROMPTS[ctx.kind]}+{RULES_PROMPT}"
        messages, omitted = build_messages(ctx, self.max_input_tokens)
        try:
            answer = await self.client.complete_json(messages, SCHEMAS[ctx.kind])
        except ModelError as exc:
            failure = DraftingError(str(exc), drafter=self.name, prompt=prompt, calls=exc.calls)
            raise failure from exc
        content = answer.value
        return DraftResult(
            content,
            render_text(content, ctx),
            self.name,
            template=False,
            prompt=prompt,
            calls=answer.calls,
            omitted_messages=omitted,
        )
