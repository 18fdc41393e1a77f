"""The prefilter behind the offline detector: it may skip work, never a match.

The detector skips a lexicon regex when a text has none of the regex's anchor words,
and tries the others only near those words (see ``policies.prefilter`` and
``policies.scanner``). Every test here compares against the plain loop, ``finditer``
of every regex over the whole text, on texts built to be awkward: each regex's own
matches, glued with odd separators, in other cases, with accents, other scripts'
digits, apostrophes and underscores; plus hand-written regexes for the reader's
corners, and syntax it does not know.
"""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.detect import _compiled, fold
from policies.prefilter import UNKNOWN, gate_of
from policies.regex_reader import UnsupportedRegexError, read
from policies.scanner import Scanner, _Words

LEXICON = [regex for _, regex in _compiled()]
SCANNER = Scanner(LEXICON)

Found = list[tuple[int, tuple[int, int], str]]

SEPARATORS = [" ", "  ", "", "_", "-", "'", "’", ".", ",", "\n", "é", "٣", "²", "x", "1", "?", "!"]
SEPARATORS += ["(", "ß", "İ", " n't ", "n't", "'t", "s", "ed", " not ", " the ", "\u0301", "\t"]


def plain(regexes: list[re.Pattern[str]], text: str) -> Found:
    return [
        (index, match.span(), match.group())
        for index, regex in enumerate(regexes)
        for match in regex.finditer(text)
    ]


def scanned(scanner: Scanner, text: str) -> Found:
    return [(index, match.span(), match.group()) for index, match in scanner.scan(text)]


def inner(regex: re.Pattern[str]) -> str:
    """The lexicon pattern without the ``(?<!\\w)(?:...)(?!\\w)`` the detector puts around it."""
    source = regex.pattern
    assert source.startswith(r"(?<!\w)(?:") and source.endswith(r")(?!\w)")
    return source[len(r"(?<!\w)") : -len(r"(?!\w)")]


def variants(text: str) -> list[str]:
    return [text, fold(text), text.upper(), text.title(), fold(text.upper())]


def test_the_reader_understands_every_lexicon_regex() -> None:
    """Otherwise that regex silently runs on every text again, the slow way."""
    for regex in LEXICON:
        gate = gate_of(regex.pattern)
        assert gate.anchors, regex.pattern
        assert gate.starts_at_word and not gate.may_be_empty, regex.pattern
        assert all(lead is not None for lead in gate.anchors.values()), regex.pattern


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_texts_built_from_lexicon_matches_find_what_finditer_finds(data: st.DataObject) -> None:
    indices = st.integers(min_value=0, max_value=len(LEXICON) - 1)
    parts: list[str] = []
    for index in data.draw(st.lists(indices, min_size=1, max_size=6)):
        parts.append(data.draw(st.from_regex(re.compile(inner(LEXICON[index])), fullmatch=True)))
        parts.append(data.draw(st.sampled_from(SEPARATORS)))
    text = data.draw(st.sampled_from(SEPARATORS)) + "".join(parts)
    for candidate in variants(text):
        expected = plain(LEXICON, candidate)
        assert scanned(SCANNER, candidate) == expected, candidate
        assert {index for index, _, _ in expected} <= set(SCANNER.candidates(candidate))


@pytest.mark.parametrize("index", range(len(LEXICON)))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_every_lexicon_regex_is_let_through_for_its_own_matches(
    index: int, data: st.DataObject
) -> None:
    regex = LEXICON[index]
    match = data.draw(st.from_regex(re.compile(inner(regex)), fullmatch=True))
    for text in (match, f"I said: {match}.", f"{match}\n{match}", match.upper()):
        if regex.search(text):
            assert index in SCANNER.candidates(text), (regex.pattern, text)
            assert scanned(SCANNER, text) == plain(LEXICON, text), text


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "You CHARGED me twice!! I can't log in, the site isn't working; it's DOWN again.",
        "Mr. O'Neil wasn't notified — nobody has responded, we've called 3 times (4th time).",
        "status: 5.1.1 550 5.7.1 rcpt to:<x@y> diagnostic-code: smtp; 550 user unknown",
        "Sie haben doppelt abgebucht, ich will mein Geld zurück. Funktioniert nicht!",
        "Vous m’avez facturé deux fois. Le site est en panne, c'est inacceptable.",
        "Me cobraron dos veces, el servicio está caído. No funciona.",
        "٣rd time ²nd time 3rd time 10th time ١٢٣ 5٣٣-4.٣.1",
        "under_score_charged_twice charged_ twice _charged twice",
        "I haven't received my refund; didn't work; couldn't log in; doesn’t load",
    ],
)
def test_hand_picked_texts(text: str) -> None:
    for candidate in variants(text):
        assert scanned(SCANNER, candidate) == plain(LEXICON, candidate)


SYNTHETIC = [
    r"(?<!\w)(?:\w+n't (?:\w+ )?work(?:ing|s)?)(?!\w)",
    r"(?<!\w)(?:\d+(?:st|nd|rd|th) time)(?!\w)",
    r"(?<!\w)(?:[45]\d\d[ -][45]\.\d\.\d+)(?!\w)",
    r"(?<!\w)(?:a?)(?!\w)",
    r"(?<!\w)(?:x*|y)(?!\w)",
    r"(?<!\w)(?:ab|a b|a-b|ab_c)(?!\w)",
    r"(?<!\w)(?:(?:very |so ){1,3}slow)(?!\w)",
    r"(?<!\w)(?:(?:a|b){2,3}c)(?!\w)",
    r"(?<!\w)(?:down(?! payment)|still(?= not))(?!\w)",
    r"(?<!\w)(?:'quoted'|-dash|\.dot)(?!\w)",
    r"(?<!\w)(?:.{1,3}end)(?!\w)",
    r"(?<!\w)(?:[^ ]+ing)(?!\w)",
    r"(?<!\w)(?:\s+x)(?!\w)",
    r"(?<!\w)(?:\d\d|x\dy)(?!\w)",
    r"(?<!\w)(?:(?:ab)+)(?!\w)",
    r"(?<!\d)(?:ab)(?!\d)",
    r"(?<!\s)(?:cd)(?!\s)",
    r"(?<![\w])(?:ef)(?![\w])",
    r"(?<!\w)(?:(?:cd ?)+e)(?!\w)",
    r"\bword\b",
    r"word",
    r"(?:wo)?rd",
    r"^start|end$",
    r"(?<=no )way",
    r"(?P<w>ab)(?P=w)",
    r"(a)\1",
    r"(?i)caps",
    r"(?>atomic)",
    r"a{2}|b{,2}c|d{1,}e|f{}",
    r"[\w-]+@[a-z]+",
    r"[a-c\d]x|[à-ÿ]y|[\]]z",
    r"\x41B|\u00e9t",
]


FRAGMENTS = [
    *("work", "n't", "3rd time", "550 5.1.1", "very so slow", "abc", "ab c", "down payment"),
    *("still not", "'quoted'", "no way", "caps", "CAPS", "abab", "aa", "atomic", "word", "end"),
    *("start", "x@y", "Ab", "ét", "12", "1٣", "٣٣", "x٣y", "x5y", "cdcde", "cd cde", "cde"),
    *("xab", "1ab2", "xcdx", "xefx", "ef"),
]
"""Pieces that the regexes above match, or almost match."""


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.one_of(
            st.text(alphabet=string.ascii_letters + string.digits + " _'-.\n", max_size=12),
            st.sampled_from(SEPARATORS),
            st.sampled_from(FRAGMENTS),
        ),
        max_size=12,
    )
)
def test_regexes_outside_the_lexicon_find_what_finditer_finds(parts: list[str]) -> None:
    regexes = [re.compile(source) for source in SYNTHETIC]
    regexes.append(re.compile("caps", re.IGNORECASE))
    regexes.append(re.compile(r"(?<!\w)(?:\w+)(?!\w)", re.ASCII))
    scanner = Scanner(regexes)
    text = "".join(parts)
    assert scanned(scanner, text) == plain(regexes, text), text


@pytest.mark.parametrize(
    "source",
    [r"(?P<w>ab)(?P=w)", r"(a)\1", r"(?i)caps", r"(?>atomic)", r"\x41", r"a**", "(ab", "[ab"],
)
def test_syntax_the_reader_does_not_know_means_no_gate(source: str) -> None:
    with pytest.raises(UnsupportedRegexError):
        read(source)
    assert gate_of(source) == UNKNOWN


def test_flags_that_change_matching_mean_no_gate() -> None:
    scanner = Scanner([re.compile(r"(?<!\w)(?:caps)(?!\w)", re.IGNORECASE)])
    assert scanner.gates[0] == UNKNOWN
    assert scanned(scanner, "CAPS caps") == [(0, (0, 4), "CAPS"), (0, (5, 9), "caps")]


def test_anchors_are_whole_words_with_how_far_a_match_can_start_before_them() -> None:
    gate = gate_of(r"(?<!\w)(?:crash(?:es|ed)?|froze)(?!\w)")
    assert gate.anchors == {"crash": 0, "crashes": 0, "crashed": 0, "froze": 0}
    negated = gate_of(r"(?<!\w)(?:\w+n't (?:\w+ )?work)(?!\w)")
    assert negated.anchors is not None
    lead = negated.anchors.get("work")
    assert lead is not None and lead >= 3  # e.g. "can" "t" "really" "work"
    # After "\w+" a word is not whole, so "n" is no anchor; without guards nothing is whole.
    assert "n" not in negated.anchors
    assert gate_of(r"crash").anchors is None


@pytest.mark.parametrize("guard", [r"\d", r"\s", r"\W", "x", r"[\w]"])
def test_only_a_word_lookbehind_proves_a_word_starts(guard: str) -> None:
    """``(?<!\\d)ab`` matches in "xab": no whole word "ab" is needed there."""
    regex = re.compile(rf"(?<!{guard})(?:ab)(?!{guard})")
    assert not gate_of(regex.pattern).starts_at_word
    for text in ("xab", "1ab2", "ab", " ab "):
        assert scanned(Scanner([regex]), text) == plain([regex], text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80) | st.text(alphabet=string.printable, max_size=200))
def test_words_are_the_regex_engines_words(text: str) -> None:
    words = _Words(text)
    matches = list(re.finditer(r"\w+", text))
    assert words.starts == [match.start() for match in matches]
    expected: dict[str, list[int]] = {}
    for number, match in enumerate(matches):
        expected.setdefault(match.group(), []).append(number)
    assert words.at == expected
