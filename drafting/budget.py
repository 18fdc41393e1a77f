"""Keeping a prompt within ``max_input_tokens``: newest and most relevant text first.

Why an estimate and not a tokenizer: a tokenizer for an arbitrary model may need
a download (no network at run time) and differs per provider. Four characters
per token is the usual English average; we round up and keep a margin, so a
prompt we think fits does fit.
"""

from __future__ import annotations

import math

__all__ = ["CHARS_PER_TOKEN", "estimate_tokens", "fit_newest"]

CHARS_PER_TOKEN = 3.5
"""Conservative: real English text averages about four characters per token."""


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def fit_newest(blocks: list[str], budget_tokens: int) -> tuple[list[str], int]:
    """The newest blocks (``blocks`` is oldest first) that fit in ``budget_tokens``, in their
    original order, and how many older ones were left out. The newest block is always kept,
    shortened from its start if it alone is too long, because the latest message matters most.
    """
    kept: list[str] = []
    used = 0
    for block in reversed(blocks):
        cost = estimate_tokens(block)
        if used + cost > budget_tokens:
            if not kept:
                room = max(0, int(budget_tokens * CHARS_PER_TOKEN))
                kept.append("[…] " + block[len(block) - room :] if room else "")
            break
        kept.append(block)
        used += cost
    kept = [k for k in reversed(kept) if k]
    return kept, len(blocks) - len(kept)
