"""Everything a drafter may know about an incident, gathered by the application beforehand.

The drafter (a model or the offline templates) sees only this: the facts a
CSM recorded, the thread, and the times we have decided to state. Times are
decided by codered's policies and handed over already formatted, so a draft
never invents a deadline; the wording checks then hold the draft to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from drafting.kinds import DraftKind
from policies.sections import Question

__all__ = ["DraftContext", "Fact", "ThreadMessage"]


@dataclass(frozen=True)
class Fact:
    """One note a CSM recorded on the incident (``codered incidents note``)."""

    text: str
    author: str
    at: datetime
    about: Question | None = None
    """Which of the four questions it answers, when the CSM said so."""


@dataclass(frozen=True)
class ThreadMessage:
    """One message of the conversation, customer's or ours, as plain new text (no quotes)."""

    at: datetime
    from_customer: bool
    sender: str
    subject: str
    text: str
    when: str = ""
    """``at`` formatted for the customer by the application (usable in a timeline)."""


@dataclass(frozen=True)
class DraftContext:
    kind: DraftKind
    reference: str
    """Incident reference, e.g. ``CR-1042``."""
    company_name: str
    customer_name: str
    customer_email: str
    greeting: str
    """The salutation line, e.g. ``Hello Jane,`` (decided by the application)."""
    signature: str
    """The lines after the text: who writes and for which company."""
    language: str
    category: str | None
    severity: str
    subject: str
    facts: tuple[Fact, ...] = ()
    thread: tuple[ThreadMessage, ...] = ()
    """Oldest first."""
    next_update_at: str | None = None
    """When we will write again, formatted for the customer (updates, summaries)."""
    new_time: str | None = None
    """The new promised time of a delay notice, formatted for the customer."""
    missed_time: str | None = None
    """The promised time a delay notice says we will not meet."""
    source_text: str = ""
    """Call notes for a recap, the CSM's own text for a rewrite."""
    extra_known: tuple[str, ...] = field(default_factory=tuple)
    """Other text the draft may quote (our address, the formatted times, the reference)."""

    def facts_about(self, question: Question) -> tuple[Fact, ...]:
        return tuple(f for f in self.facts if f.about is question)

    def known_text(self) -> str:
        """Everything a draft may legitimately quote from: the wording checks compare
        each address, URL and figure of a draft against this."""
        parts = [
            self.reference,
            self.company_name,
            self.customer_name,
            self.customer_email,
            self.subject,
            self.greeting,
            self.signature,
            self.next_update_at or "",
            self.new_time or "",
            self.missed_time or "",
            self.source_text,
            *self.extra_known,
            *(f.text for f in self.facts),
            *(f"{m.when}\n{m.subject}\n{m.text}" for m in self.thread),
        ]
        return "\n".join(p for p in parts if p)
