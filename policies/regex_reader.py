"""A small reader for the regular expressions the lexicon is written in.

Why: :mod:`policies.prefilter` decides, before running a regex, whether it can
match a text at all. For that it needs to know what the regex consumes, and
the standard library only exposes its parse tree through private modules that
may change between Python versions. This reader understands the plain subset
the lexicon uses (literals, classes, groups, alternation, quantifiers and
lookarounds) and raises :class:`UnsupportedRegexError` for anything else (back
references, named groups, inline flags, atomic groups...). A caller that gets
:class:`UnsupportedRegexError` must simply run that regex on every text, so an unknown
construct can cost speed but never change a result.

The tree describes only *which characters* a match may consume, not how the
engine backtracks: that is all the prefilter needs. Nodes other than :class:`Chars`
compare by identity, so facts cached per node cost no deep hashing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

__all__ = [
    "WORD",
    "Alt",
    "Anchor",
    "Chars",
    "Look",
    "Node",
    "Repeat",
    "Seq",
    "UnsupportedRegexError",
    "is_word_char",
    "read",
]

_WORD_CHAR = re.compile(r"\w")
_QUANTIFIER = re.compile(r"\{(\d*)(,?)(\d*)\}")
_MAX_OPTIONS = 64
"""A class of more characters than this is kept as "some character" only."""


class UnsupportedRegexError(ValueError):
    """Syntax this reader does not model; the regex must then run on every text."""


@cache
def is_word_char(char: str) -> bool:
    """Whether the regex engine's ``\\w`` matches ``char`` (asked of the engine itself, so the
    answer cannot drift from what the lexicon's regexes see)."""
    return _WORD_CHAR.fullmatch(char) is not None


@dataclass(frozen=True)
class Chars:
    """One character: one of ``options`` when they are few and known, else any character
    of an opaque class such as ``\\w`` or ``.``. ``word`` and ``other`` tell whether it may
    be a word character and whether it may be anything else."""

    options: frozenset[str] | None
    word: bool
    other: bool
    name: str = ""
    """The escape it was written as (``\\w``, ``\\d``...), so ``(?<!\\w)`` is told apart
    from ``(?<!\\d)``, which has the same flags but says much less."""


@dataclass(frozen=True, eq=False)
class Seq:
    items: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class Alt:
    branches: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class Repeat:
    item: Node
    low: int
    high: int | None
    """None: no upper bound."""


@dataclass(frozen=True, eq=False)
class Look:
    """A lookahead or lookbehind: it tests the text but consumes nothing."""

    ahead: bool
    negative: bool
    body: Node


@dataclass(frozen=True, eq=False)
class Anchor:
    """``^``, ``$``, ``\\b``, ``\\B``, ``\\A`` or ``\\Z``: zero width, like a lookaround."""


Node = Chars | Seq | Alt | Repeat | Look | Anchor

WORD = Chars(None, word=True, other=False, name=r"\w")
_ANY = Chars(None, word=True, other=True)
_CLASSES = {
    "w": WORD,
    "W": Chars(None, word=False, other=True, name=r"\W"),
    "d": Chars(None, word=True, other=False, name=r"\d"),  # any Unicode digit: all are \w
    "D": Chars(None, word=True, other=True, name=r"\D"),
    "s": Chars(None, word=False, other=True, name=r"\s"),  # no space is \w
    "S": Chars(None, word=True, other=True, name=r"\S"),
}
_CONTROLS = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}


@cache
def _literal(options: frozenset[str]) -> Chars:
    words = [is_word_char(char) for char in options]
    kept = options if len(options) <= _MAX_OPTIONS else None
    return Chars(kept, word=any(words), other=not all(words))


def read(source: str) -> Node:
    """The tree of ``source``; raises :class:`UnsupportedRegexError` outside the subset."""
    reader = _Reader(source)
    node = reader.alternation()
    if reader.at < len(source):
        raise UnsupportedRegexError(f"unexpected {source[reader.at]!r} at {reader.at}")
    return node


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.at = 0

    def _peek(self, ahead: int = 0) -> str:
        index = self.at + ahead
        return self.source[index] if index < len(self.source) else ""

    def _take(self) -> str:
        char = self._peek()
        if not char:
            raise UnsupportedRegexError("pattern ends too early")
        self.at += 1
        return char

    def alternation(self) -> Node:
        branches = [self._sequence()]
        while self._peek() == "|":
            self.at += 1
            branches.append(self._sequence())
        return branches[0] if len(branches) == 1 else Alt(tuple(branches))

    def _sequence(self) -> Node:
        items: list[Node] = []
        while self._peek() not in ("", "|", ")"):
            items.append(self._quantified(self._atom()))
        return items[0] if len(items) == 1 else Seq(tuple(items))

    def _atom(self) -> Node:
        char = self._take()
        if char == "(":
            return self._group()
        if char == "[":
            return self._char_class()
        if char == "\\":
            return self._escape()
        if char == ".":
            return _ANY
        if char in "^$":
            return Anchor()
        if char in "*+?" or (char == "{" and self._quantifier_at(self.at - 1)):
            raise UnsupportedRegexError("nothing to repeat")
        return _literal(frozenset(char))

    def _quantifier_at(self, index: int) -> re.Match[str] | None:
        """A ``{m,n}`` quantifier at ``index``; Python reads ``{}`` and a lone ``{`` as text."""
        match = _QUANTIFIER.match(self.source, index)
        if match is None or (not match.group(1) and not match.group(2)):
            return None
        return match

    def _quantified(self, atom: Node) -> Node:
        char = self._peek()
        if char in ("*", "+", "?"):
            self.at += 1
            low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
        elif char == "{" and (match := self._quantifier_at(self.at)):
            self.at = match.end()
            low = int(match.group(1) or 0)
            high = self._upper_bound(match, low)
        else:
            return atom
        if self._peek() == "?":
            self.at += 1  # lazy: another order of trying, the same characters
        elif self._peek() in ("+", "*", "{"):
            raise UnsupportedRegexError("possessive or repeated quantifier")
        return Repeat(atom, low, high)

    @staticmethod
    def _upper_bound(match: re.Match[str], low: int) -> int | None:
        """``{m}`` repeats exactly m times, ``{m,n}`` up to n, ``{m,}`` without end."""
        if not match.group(2):
            return low
        return int(match.group(3)) if match.group(3) else None

    def _group(self) -> Node:
        look: tuple[bool, bool] | None = None
        for prefix, kind in (("?:", None), ("?=", (True, False)), ("?!", (True, True))):
            if self.source.startswith(prefix, self.at):
                self.at += len(prefix)
                look = kind
                break
        else:
            if self.source.startswith("?<=", self.at) or self.source.startswith("?<!", self.at):
                look = (False, self.source[self.at + 2] == "!")
                self.at += 3
            elif self._peek() == "?":
                raise UnsupportedRegexError("named group, flags or other (? syntax")
        body = self.alternation()
        if self._take() != ")":
            raise UnsupportedRegexError("unbalanced parenthesis")
        return body if look is None else Look(ahead=look[0], negative=look[1], body=body)

    def _escape(self) -> Node:
        char = self._take()
        if char in _CLASSES:
            return _CLASSES[char]
        if char in "bBAZ":
            return Anchor()
        return _literal(frozenset(self._escaped_char(char)))

    def _escaped_char(self, char: str) -> str:
        if char in _CONTROLS:
            return _CONTROLS[char]
        if char.isascii() and char.isalnum():
            raise UnsupportedRegexError(f"escape \\{char}")
        return char

    def _class_item(self) -> Chars | str:
        """One member of a ``[...]`` class: a character, or an opaque class like ``\\w``."""
        char = self._take()
        if char != "\\":
            return char
        escaped = self._take()
        if escaped in _CLASSES:
            return _CLASSES[escaped]
        return "\b" if escaped == "b" else self._escaped_char(escaped)

    def _char_class(self) -> Chars:
        negated = self._peek() == "^"
        self.at += negated
        options: set[str] = set()
        opaque: list[Chars] = []
        first = True
        while first or self._peek() != "]":
            first = False
            item = self._class_item()
            if isinstance(item, Chars):
                opaque.append(item)
            elif self._peek() == "-" and self._peek(1) not in ("]", ""):
                self.at += 1
                end = self._class_item()
                if isinstance(end, Chars) or ord(end) < ord(item):
                    raise UnsupportedRegexError("odd range in a class")
                if ord(end) - ord(item) > _MAX_OPTIONS:
                    opaque.append(_ANY)
                else:
                    options.update(chr(code) for code in range(ord(item), ord(end) + 1))
            else:
                options.add(item)
        self._take()  # the closing "]"
        if negated:
            return _ANY
        if opaque:
            literal = _literal(frozenset(options)) if options else None
            parts = [*opaque, *([literal] if literal else [])]
            return Chars(None, any(p.word for p in parts), any(p.other for p in parts))
        if not options:
            raise UnsupportedRegexError("empty class")
        return _literal(frozenset(options))
