"""Facts about what a part of a regex can consume, and about the characters around it.

Why: :mod:`policies.prefilter` has to prove things like "any match contains the whole
word *refund*". That rests on two kinds of facts kept here: what each part of the
tree from :mod:`policies.regex_reader` can consume (its spellings when there are
few, whether it can start or end with a word character, how many words it can
span), and, inside a sequence, whether the character just before or after a part
is known not to be a word character (thanks to ``(?<!\\w)``, ``(?!\\w)`` or a space).

Every fact errs on the safe side: "may start with a word character" is True when
unsure, "at most N words" is None when no bound is known.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from itertools import product

from policies.regex_reader import WORD, Alt, Anchor, Chars, Look, Node, Repeat, is_word_char

__all__ = [
    "Shape",
    "concat",
    "contexts",
    "is_left_guard",
    "is_right_guard",
    "seq_shape",
    "shape",
    "stretches",
    "word_runs",
]

_WORD_RUN = re.compile(r"\w+")
MAX_STRINGS = 256
"""Beyond this many spellings a part of a regex is reasoned about as a whole, not spelled out."""


@dataclass(frozen=True)
class Shape:
    """Context-free facts about a node (each flag True when unsure, except ``pure_word``)."""

    strings: frozenset[str] | None
    """Every string the node can consume, when there are few; lookarounds consume ''."""
    empty: bool
    starts_word: bool
    """Whether a match may start with a word character."""
    starts_other: bool
    """Whether a match may start with a non-word character."""
    ends_word: bool
    pure_word: bool
    """Whether a match is certainly made of word characters only."""
    runs: int | None
    """At most this many runs of word characters in a match (None: no bound known)."""


def is_left_guard(node: Node) -> bool:
    """``(?<!\\w)``: the character before is not a word character (or there is none)."""
    return isinstance(node, Look) and not node.ahead and node.negative and node.body == WORD


def is_right_guard(node: Node) -> bool:
    """``(?!\\w)``: the character after is not a word character (or there is none)."""
    return isinstance(node, Look) and node.ahead and node.negative and node.body == WORD


def _bounded(strings: set[str]) -> frozenset[str] | None:
    return frozenset(strings) if len(strings) <= MAX_STRINGS else None


def concat(parts: list[frozenset[str]]) -> frozenset[str] | None:
    """Every way of spelling the parts one after the other, unless there are too many."""
    total = 1
    for part in parts:
        total *= len(part)
        if total > MAX_STRINGS:
            return None
    return frozenset("".join(combo) for combo in product(*parts))


def _repeat_strings(item: frozenset[str], low: int, high: int) -> frozenset[str] | None:
    found: set[str] = {""} if low == 0 else set()
    layer: set[str] = {""}
    for count in range(1, high + 1):
        layer = {head + tail for head in layer for tail in item}
        if len(layer) > MAX_STRINGS:
            return None
        if count >= low:
            found |= layer
    return _bounded(found)


def word_runs(string: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each maximal run of word characters in ``string``."""
    return [match.span() for match in _WORD_RUN.finditer(string)]


def _of_strings(strings: frozenset[str]) -> Shape:
    """Exact facts for a node whose spellings are all known."""
    spelled = [string for string in strings if string]
    return Shape(
        strings,
        len(spelled) < len(strings),
        any(is_word_char(string[0]) for string in spelled),
        any(not is_word_char(string[0]) for string in spelled),
        any(is_word_char(string[-1]) for string in spelled),
        all(is_word_char(char) for string in spelled for char in string),
        max((len(word_runs(string)) for string in spelled), default=0),
    )


@cache
def shape(node: Node) -> Shape:
    """The facts about ``node`` (exact when its spellings are known)."""
    rough = _rough_shape(node)
    return rough if rough.strings is None else _of_strings(rough.strings)


def _rough_shape(node: Node) -> Shape:
    """Facts built from the parts; spellings are joined only while they stay few."""
    if isinstance(node, Chars):
        runs = 1 if node.word else 0
        return Shape(node.options, False, node.word, node.other, node.word, not node.other, runs)
    if isinstance(node, Look | Anchor):
        return Shape(frozenset({""}), True, False, False, False, True, 0)
    if isinstance(node, Alt):
        return _alt_shape([shape(branch) for branch in node.branches])
    if isinstance(node, Repeat):
        return _repeat_shape(node)
    return seq_shape([shape(item) for item in node.items])


def _alt_shape(shapes: list[Shape]) -> Shape:
    spelled = [s.strings for s in shapes if s.strings is not None]
    runs = [s.runs for s in shapes]
    return Shape(
        _bounded(set().union(*spelled)) if len(spelled) == len(shapes) else None,
        any(s.empty for s in shapes),
        any(s.starts_word for s in shapes),
        any(s.starts_other for s in shapes),
        any(s.ends_word for s in shapes),
        all(s.pure_word for s in shapes),
        None if any(r is None for r in runs) else max(r for r in runs if r is not None),
    )


def _repeat_shape(node: Repeat) -> Shape:
    inner = shape(node.item)
    strings = None
    if inner.strings is not None and node.high is not None:
        strings = _repeat_strings(inner.strings, node.low, node.high)
    used = node.high != 0
    runs: int | None = 0
    if used and inner.pure_word:
        runs = 1  # word characters after word characters stay one run
    elif used and inner.runs != 0:
        runs = None if node.high is None or inner.runs is None else node.high * inner.runs
    return Shape(
        strings,
        node.low == 0 or inner.empty,
        used and inner.starts_word,
        used and inner.starts_other,
        used and inner.ends_word,
        inner.pure_word,
        runs,
    )


def seq_shape(shapes: list[Shape]) -> Shape:
    """The facts about parts matched one after the other."""
    parts = [s.strings for s in shapes]
    strings = None
    if all(p is not None for p in parts):
        strings = concat([p for p in parts if p is not None])
    runs = [s.runs for s in shapes]
    return Shape(
        strings,
        all(s.empty for s in shapes),
        _may_start(shapes, lambda s: s.starts_word),
        _may_start(shapes, lambda s: s.starts_other),
        _may_start(shapes[::-1], lambda s: s.ends_word),
        all(s.pure_word for s in shapes),
        None if any(r is None for r in runs) else sum(r for r in runs if r is not None),
    )


def _may_start(shapes: list[Shape], flag: Callable[[Shape], bool]) -> bool:
    """Whether the first character consumed by the parts in this order may have ``flag``."""
    for part in shapes:
        if flag(part):
            return True
        if not part.empty:
            return False
    return False


def contexts(items: tuple[Node, ...], left: bool, right: bool) -> tuple[list[bool], list[bool]]:
    """For each item of a sequence, whether the character before it and the one after it are
    known not to be word characters (True also at the edges of the text); ``left`` and
    ``right`` say the same of the sequence as a whole."""
    lefts: list[bool] = []
    known = left
    for item in items:
        lefts.append(known)
        facts = shape(item)
        known = is_left_guard(item) or (not facts.ends_word and (known or not facts.empty))
    rights: list[bool] = [False] * len(items)
    known = right
    for index in range(len(items) - 1, -1, -1):
        rights[index] = known
        facts = shape(items[index])
        guard = is_right_guard(items[index])
        known = guard or (not facts.starts_word and (known or not facts.empty))
    return lefts, rights


def stretches(items: tuple[Node, ...]) -> list[tuple[int, int, frozenset[str]]]:
    """``(first, last, spellings)`` for each stretch of consecutive items with few spellings,
    spelled out together. Guards are left out: they consume nothing, and their effect is
    in :func:`contexts`."""
    found: list[tuple[int, int, frozenset[str]]] = []
    start, current = 0, None
    for index, item in enumerate(items):
        strings = shape(item).strings
        if strings is None or is_left_guard(item) or is_right_guard(item):
            if current is not None:
                found.append((start, index - 1, current))
            current = None
        elif current is None:
            start, current = index, strings
        elif (joined := concat([current, strings])) is not None:
            current = joined
        else:  # too many spellings together: close the stretch, start another here
            found.append((start, index - 1, current))
            start, current = index, strings
    if current is not None:
        found.append((start, len(items) - 1, current))
    return found
