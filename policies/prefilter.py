"""Which words a regex match must contain, worked out once, so most regexes need not run.

Why: the offline detector runs every lexicon regex over every message, and almost
all of them find nothing. Each lexicon regex is a phrase between ``(?<!\\w)`` and
``(?!\\w)``, so what it matches is made of whole words of the text. From the regex
alone we can often name its **anchors**: words one of which is a whole word of any
text the regex matches ("refund", "money" or "reimbursement" for "want a refund|
want my money back|..."), each with a **lead**, the most words that can come before
it inside a match. Then

* a text that has none of the anchors cannot match, and the regex is skipped;
* when every match starts where a word starts, a match can only start on one of
  the ``lead + 1`` words ending at an anchor, so only those places need trying.

Everything is proven from the regex's syntax (read by :mod:`policies.regex_reader`,
with the facts of :mod:`policies.regex_shape`), never guessed: "a whole word" is a
maximal run of ``\\w`` characters, as the engine that runs the regex decides. Where
the reasoning does not reach (a ``\\w+`` at the edge of a match, syntax the reader
does not know) there are no anchors and the regex runs as before. The choice
*between* provable anchor sets is a heuristic (long words are rarer than short
ones); it affects speed only. :mod:`policies.scanner` uses the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.regex_reader import Alt, Node, Repeat, Seq, UnsupportedRegexError, read
from policies.regex_shape import (
    contexts,
    is_left_guard,
    seq_shape,
    shape,
    stretches,
    word_runs,
)

__all__ = ["UNKNOWN", "Anchors", "Gate", "gate_of"]

Anchors = dict[str, int | None]
"""Word -> at most this many words before it in a match (None: no bound known)."""

_COMMON = frozenset(
    {
        "a", "an", "the", "my", "our", "your", "i", "we", "you", "it", "is", "are", "was",
        "were", "be", "been", "to", "of", "in", "on", "at", "for", "and", "or", "this",
        "that", "with", "have", "has", "not", "no", "me", "us", "can", "do", "did", "will",
    }
)  # fmt: skip
"""Words in nearly every message: poor anchors, used only when nothing better is provable."""
_FAR = 16
"""What an unknown lead counts as when anchors are compared."""


@dataclass(frozen=True)
class Gate:
    """What is known about every match of one regex."""

    anchors: Anchors | None
    """One of these words is a whole word inside every match (None: nothing known)."""
    starts_at_word: bool
    """Whether every match starts where a word of the text starts."""
    may_be_empty: bool
    """Whether the regex can match the empty string (then only ``finditer`` is exact)."""


UNKNOWN = Gate(None, False, True)


def gate_of(source: str) -> Gate:
    """What every match of the regex ``source`` must contain; :data:`UNKNOWN` when the regex
    uses syntax the reader does not model."""
    try:
        root = read(source)
    except UnsupportedRegexError:
        return UNKNOWN
    anchors = _anchors(root, False, False) or None  # no words at all would skip every text
    return Gate(anchors, _starts_at_word(root), shape(root).empty)


def _starts_at_word(root: Node) -> bool:
    """Behind ``(?<!\\w)`` and with a word character first, a match starts a word."""
    items = root.items if isinstance(root, Seq) else (root,)
    if not items or not is_left_guard(items[0]):
        return False
    rest = seq_shape([shape(item) for item in items[1:]])
    return not rest.empty and not rest.starts_other


def _cost(anchors: Anchors) -> float:
    """Roughly how many places a text offers to try: long words are rarer, and each word
    before an anchor is one more place."""
    return sum(
        (1.0 if word in _COMMON else 2.0 ** -len(word)) * (1 + (_FAR if lead is None else lead))
        for word, lead in anchors.items()
    )


def _best(options: list[Anchors | None]) -> Anchors | None:
    known = [option for option in options if option]
    return min(known, key=_cost) if known else None


def _merge(parts: list[Anchors | None]) -> Anchors | None:
    """Anchors of an alternation: every branch needs its own, and a word keeps its longest lead."""
    merged: Anchors = {}
    for part in parts:
        if part is None:
            return None
        for word, lead in part.items():
            if word in merged:
                old = merged[word]
                merged[word] = None if old is None or lead is None else max(old, lead)
            else:
                merged[word] = lead
    return merged


def _shift(anchors: Anchors | None, words_before: int | None) -> Anchors | None:
    """Anchors of a part, seen from the start of a sequence with ``words_before`` before it."""
    if anchors is None:
        return None
    return {
        word: None if lead is None or words_before is None else lead + words_before
        for word, lead in anchors.items()
    }


def _of_strings(strings: frozenset[str], left: bool, right: bool) -> Anchors | None:
    """Anchors of a part spelled out: for each spelling, its best whole word."""
    chosen: Anchors = {}
    for string in strings:
        whole = [
            (string[start:end], number)
            for number, (start, end) in enumerate(word_runs(string))
            if (start > 0 or left) and (end < len(string) or right)
        ]
        if not whole:
            return None
        word, lead = min(whole, key=lambda pair: _cost({pair[0]: pair[1]}))
        chosen = _merge([chosen, {word: lead}]) or {}
    return chosen


def _anchors(node: Node, left: bool, right: bool) -> Anchors | None:
    """Anchors of ``node`` when the characters around it are known (``left``, ``right``) not
    to be word characters, or may be."""
    if isinstance(node, Alt):
        return _merge([_anchors(branch, left, right) for branch in node.branches])
    if isinstance(node, Seq):  # spelled out by stretches, so guards inside are honoured
        return _seq_anchors(node.items, left, right)
    facts = shape(node)
    if facts.strings is not None:
        return _of_strings(facts.strings, left, right)
    if isinstance(node, Repeat) and node.low >= 1:  # the first round is always there
        inner = shape(node.item)
        return _anchors(node.item, left and not inner.ends_word, right and not inner.starts_word)
    return None


def _seq_anchors(items: tuple[Node, ...], left: bool, right: bool) -> Anchors | None:
    """The best anchors found in any one part of a sequence."""
    lefts, rights = contexts(items, left, right)
    words_before: list[int | None] = []
    total: int | None = 0
    for item in items:
        words_before.append(total)
        runs = shape(item).runs
        total = None if total is None or runs is None else total + runs
    options = [
        _shift(_of_strings(strings, lefts[first], rights[last]), words_before[first])
        for first, last, strings in stretches(items)
    ]
    options += [
        _shift(_anchors(item, lefts[index], rights[index]), words_before[index])
        for index, item in enumerate(items)
        if shape(item).strings is None
    ]
    return _best(options)
