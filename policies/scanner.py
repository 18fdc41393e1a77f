"""Running many regexes over one text: the same matches as ``finditer``, found faster.

Why: the offline detector must classify thousands of messages a second on one core,
and running each of its ~140 lexicon regexes over every character of every message
was most of its cost, although a message matches only a handful. A :class:`Scanner`
reads the words of the text once, then

1. skips every regex none of whose anchor words (see :mod:`policies.prefilter`) is
   a word of the text, which is most of them, and
2. tries the others only where a match can start: on the few words at or just before
   an anchor word, with ``regex.match``, instead of at every character.

The result is, by construction, what the plain loop gives: ``regex.match(text, pos)``
is the attempt ``finditer`` makes at ``pos`` (lookbehinds still see the text before
``pos``), and the places left out are places where no match can start. A regex the
prefilter cannot reason about runs with ``finditer`` as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate, compress, count
from operator import add

from policies.prefilter import UNKNOWN, Gate, gate_of
from policies.regex_reader import is_word_char

__all__ = ["Scanner"]

_SPLIT = re.compile(r"(\w+)")
_ASCII_GAPS = str.maketrans({chr(c): " " for c in range(128) if not is_word_char(chr(c))})
"""Turns every ASCII character that ``\\w`` does not match into a space."""
_PLAIN_FLAGS = re.UNICODE | re.MULTILINE | re.DOTALL
"""Flags that do not change which characters a literal or ``\\w`` matches."""

_Occurrences = list[tuple[list[int], int | None]]
"""For one regex: (word numbers of an anchor word in the text, that word's lead)."""


def _gate(regex: re.Pattern[str]) -> Gate:
    if regex.flags & ~_PLAIN_FLAGS:  # IGNORECASE, ASCII, VERBOSE...: not modelled
        return UNKNOWN
    return gate_of(regex.pattern)


class _Words:
    """The whole words of one text (maximal runs of ``\\w``): where the n-th one starts, and
    the numbers n at which each distinct word occurs."""

    __slots__ = ("at", "starts")

    def __init__(self, text: str) -> None:
        if text.isascii():  # the same runs, found by C loops rather than the regex engine
            pieces = text.translate(_ASCII_GAPS).split(" ")
            piece_starts = map(add, accumulate(map(len, pieces), initial=0), count())
            self.starts: list[int] = list(compress(piece_starts, pieces))
            words: Iterable[str] = filter(None, pieces)
        else:
            parts = _SPLIT.split(text)  # gap, word, gap, word, ..., gap
            self.starts = list(accumulate(map(len, parts)))[0:-1:2]
            words = parts[1::2]
        self.at: dict[str, list[int]] = {}
        at = self.at
        for number, word in enumerate(words):
            numbers = at.get(word)
            if numbers is None:
                at[word] = [number]
            else:
                numbers.append(number)

    def near(self, occurrences: _Occurrences) -> list[int]:
        """Starts of the words that are at most ``lead`` words before an occurrence, in
        increasing order (every lead known)."""
        numbers: list[int] = []
        for found, lead in occurrences:
            if lead:
                for number in found:
                    numbers.extend(range(max(0, number - lead), number + 1))
            else:
                numbers.extend(found)
        if len(occurrences) > 1 or occurrences[0][1]:
            numbers = sorted(set(numbers))
        starts = self.starts
        return [starts[number] for number in numbers]


def _matches_at(
    regex: re.Pattern[str], text: str, places: Iterable[int]
) -> Iterator[re.Match[str]]:
    """What ``regex.finditer(text)`` yields, when every match starts at one of ``places``
    (increasing) and no match is empty: the leftmost match at or after the end of the last."""
    end = 0
    for place in places:
        if place < end:
            continue
        match = regex.match(text, place)
        if match is not None:
            end = match.end()
            yield match


class Scanner:
    """All the matches of a fixed list of regexes in a text, in list order."""

    def __init__(self, regexes: Sequence[re.Pattern[str]]) -> None:
        self._regexes = tuple(regexes)
        self._gates = tuple(_gate(regex) for regex in self._regexes)
        self._placeable = tuple(g.starts_at_word and not g.may_be_empty for g in self._gates)
        """Per regex, whether its anchors also tell where a match can start."""
        by_word: dict[str, list[tuple[int, int | None]]] = {}
        for index, gate in enumerate(self._gates):
            for word, lead in (gate.anchors or {}).items():
                by_word.setdefault(word, []).append((index, lead))
        self._by_word = {word: tuple(pairs) for word, pairs in by_word.items()}
        self._always = tuple(i for i, gate in enumerate(self._gates) if not gate.anchors)

    @property
    def gates(self) -> tuple[Gate, ...]:
        """What the prefilter knows about each regex."""
        return self._gates

    def candidates(self, text: str) -> list[int]:
        """Indices of the regexes that may match ``text``, in increasing order."""
        return sorted(self._occurrences(_Words(text)))

    def _occurrences(self, words: _Words) -> dict[int, _Occurrences]:
        """For each regex that may match, where its anchor words occur in the text."""
        found: dict[int, _Occurrences] = {index: [] for index in self._always}
        at = words.at
        for word in self._by_word.keys() & at.keys():
            numbers = at[word]
            for index, lead in self._by_word[word]:
                if index in found:
                    found[index].append((numbers, lead))
                else:
                    found[index] = [(numbers, lead)]
        return found

    def _places(self, index: int, occurrences: _Occurrences, words: _Words) -> list[int] | None:
        """Where a match of regex ``index`` may start, or None to search everywhere."""
        if not occurrences or not self._placeable[index]:
            return None
        if len(occurrences) == 1 and occurrences[0][1] == 0:  # the common case: made quick
            starts = words.starts
            return [starts[number] for number in occurrences[0][0]]
        if any(lead is None for _, lead in occurrences):
            return None
        return words.near(occurrences)

    def scan(self, text: str) -> Iterator[tuple[int, re.Match[str]]]:
        """``(index, match)`` exactly as ``for index, regex in enumerate(regexes): for match in
        regex.finditer(text)`` would give them."""
        words = _Words(text)
        found = self._occurrences(words)
        for index in sorted(found):
            regex = self._regexes[index]
            places = self._places(index, found[index], words)
            matches = regex.finditer(text) if places is None else _matches_at(regex, text, places)
            for match in matches:
                yield index, match
