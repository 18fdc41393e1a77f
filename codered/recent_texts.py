"""The new text of messages the pipeline parsed lately, by inbound row id.

Why: the escalation check of a new incident reads the new text of its first message
(what the customer wrote, for the rules' keywords). That message was parsed moments
before, when it was decided; parsing it again cost as much as the rest of the check.
The pipeline remembers each parsed text here and the escalator asks first. An inbound
row's bytes never change and its id is never reused, so a remembered text is always the
one a fresh parse would give; anything not remembered (another process decided it, the
service restarted, it fell out) is parsed from the stored bytes as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["RecentTexts"]

KEPT = 5000
"""Texts kept (the newest): more than one flood's escalation lag."""
KEPT_CHARACTERS = 4_000_000
"""And at most this much text in all (a few MB), however long single messages are."""


class RecentTexts:
    def __init__(self, kept: int = KEPT, characters: int = KEPT_CHARACTERS) -> None:
        self.kept = kept
        self.characters = characters
        self._texts: OrderedDict[int, str] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # written on the event loop, read on worker threads

    def remember(self, inbound_id: int, text: str) -> None:
        if len(text) > self.characters:
            return  # a huge message is parsed again from its bytes instead
        with self._lock:
            old = self._texts.pop(inbound_id, None)
            self._size -= len(old) if old is not None else 0
            self._texts[inbound_id] = text
            self._size += len(text)
            # Bounded: each turn removes one entry, and the newest always fits.
            while len(self._texts) > self.kept or self._size > self.characters:
                _, dropped = self._texts.popitem(last=False)
                self._size -= len(dropped)

    def get(self, inbound_id: int) -> str | None:
        with self._lock:
            return self._texts.get(inbound_id)
