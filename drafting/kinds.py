"""The kinds of draft codered writes, and what each is for."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DraftKind"]


class DraftKind(StrEnum):
    SUMMARY = "summary"
    """The four-question incident summary: what happened, why, what we do, how we prevent it."""
    UPDATE = "update"
    """A progress update: what changed since our last message, what is next, when we write again."""
    DELAY = "delay"
    """A promised time cannot be met: say so before it passes, and give the new time."""
    RECAP = "recap"
    """The email after a phone call: what was discussed and agreed, from the call notes."""
    REWRITE = "rewrite"
    """A blame-free, calm rewrite of text a CSM wrote."""
