"""Offline complaint detection: a transparent, weighted phrase scorer.

Why not a model? Because the acknowledgement must go out within seconds even
when no model is configured or reachable, and because a manager must be able
to see *why* a message counted as a complaint. Every point of the score is
listed in :attr:`Classification.signals`, e.g.
``'phrase "charged me twice" (+4.0, billing)'``.

How a score is built (the phrase tables live in :mod:`policies.lexicon`):

1. Subject and text are folded (accents removed, case folded) and matched
   against the lexicon; where two phrases overlap, the longer one wins, so
   "charged me twice" is not also counted as "charged".
2. A phrase preceded, within three words of the same clause, by a negator
   ("not down", "no longer broken", "never had an issue", "kein Ausfall")
   counts nothing.
3. A phrase inside a calm question ("How do I fix error 404?", "Is the API
   down for maintenance on Sunday?") counts only 30 %, unless the message
   shows intensity somewhere.
4. Intensity (shouting in capitals, "!!", "unacceptable", "third time",
   "still not") adds to the score; praise, thanks, how-to wording, marketing
   and bounce or out-of-office text subtract from it.

A message is a complaint when the total reaches :data:`THRESHOLD` and there is
either a complaint phrase or strongly worded anger (capitals and "!!" alone do
not count). The category is the best scoring
one (None for a complaint with no topic, e.g. "This is unacceptable!!").
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from policies.lexicon import PHRASES, Kind, Phrase
from policies.model import Category, Classification, Severity
from policies.scanner import Scanner

__all__ = ["THRESHOLD", "classify_offline", "fold"]

THRESHOLD = 3.0
"""Total score from which a message counts as a complaint."""

MAX_CHARS = 20_000
"""Only this much of the text is read; a complaint says what it is about early."""

_QUESTION_FACTOR = 0.3
_NEGATION_WINDOW = 3
_STRONG_INTENSITY = 3.0
_CAPS = {
    Kind.INTENSITY: 4.5,
    Kind.PRAISE: -3.0,
    Kind.NEUTRAL: -3.0,
    Kind.MARKETING: -6.0,
    Kind.MACHINE: -8.0,
}
NEGATORS = frozenset(
    {
        "not", "no", "never", "without", "nothing", "none", "nor", "neither", "hardly",
        "if", "unless", "until", "whether",
        "nicht", "kein", "keine", "keinen", "keinem", "keiner", "nie", "niemals", "ohne",
        "pas", "ne", "jamais", "aucun", "aucune", "sans",
        "nunca", "jamas", "sin", "ningun", "ninguna", "ninguno", "tampoco",
    }
)  # fmt: skip
"""Tokens that deny what follows them ("not down", "never had an issue", "kein Ausfall"),
or make it hypothetical ("if the site is down", "until this is resolved")."""

CALM_OPENERS = frozenset(
    {
        "how", "what", "what's", "whats", "which", "where", "is", "are", "does", "do",
        "can", "could", "will", "would", "should", "may", "might", "has", "have",
        "wie", "was", "welche", "welcher", "wo", "ist", "sind", "gibt", "kann", "konnen",
        "kannst", "darf", "wird", "hat", "haben",
        "comment", "quel", "quelle", "quels", "quelles", "ou", "est", "qu'est", "peut",
        "puis", "y",
        "como", "que", "cual", "cuales", "donde", "hay", "puedo", "puede", "pueden", "es",
        "esta", "existe",
    }
)  # fmt: skip
"""Words that open a neutral question ("How do I...?", "Is the API down for maintenance?").

"why", "when will" and "how long" are left out on purpose: "Why was I charged
twice?" is a complaint in question form."""

CALM_BREAKERS = (
    "why", "how long", "how many", "how much longer", "anyone", "anybody", "someone", "somebody",
    "warum", "wieso", "pourquoi", "por que", "porque",
)  # fmt: skip

ACRONYMS = frozenset(
    {
        "API", "URL", "SLA", "GDPR", "DSGVO", "RGPD", "FCRA", "FDCPA", "CFPB", "FTC", "USA",
        "ASAP", "HTTP", "HTTPS", "SSL", "TLS", "DNS", "VPN", "CEO", "CTO", "CFO", "IBAN",
        "BIC", "PDF", "CSV", "SMS", "FAQ", "USC", "LLC", "INC", "LTD", "GMBH", "SEPA", "VAT",
        "EUR", "USD", "GBP", "PIN", "ATM", "APR", "SSN", "DOB", "IRS", "HUD", "FHA", "ACH",
        "SMTP", "IMAP", "SAML", "SSO", "CRM", "ERP", "SAP", "AWS", "IOS", "RE", "FW", "FWD",
        "AW", "WG", "TR", "RV", "CC", "BCC", "EST", "PST", "CET", "CEST", "UTC", "GMT",
        "MST", "CST", "EDT", "PDT", "AM", "PM", "II", "III", "IV", "ID", "OK", "TV",
    }
)  # fmt: skip
"""Upper-case words that are names, not shouting."""

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_CLAUSE_BREAK = re.compile(r"[.,;:!?\n()]|\s(?:but|aber|mais|pero|however|sondern)\s")
_SENTENCE_END = re.compile(r"[.!?\n]")
_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|sv|tr|rv|antw)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE
)
_UPPER_WORD = re.compile(r"\b[A-ZÄÖÜÉÈÀÑ]{3,}\b")
_BANGS = re.compile(r"!{2,}")
_CALM_BREAKER = re.compile(r"\b(?:" + "|".join(re.escape(b) for b in CALM_BREAKERS) + r")\b")


def fold(text: str) -> str:
    """Lower-case ``text`` and strip accents, so "Réponse" and "reponse" compare equal."""
    stripped = text
    if not text.isascii():  # most mail is ASCII, which NFKD leaves as it is, none combining
        decomposed = unicodedata.normalize("NFKD", text)
        stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.casefold().replace("\u2019", "'").replace("`", "'")


@cache
def _compiled() -> tuple[tuple[Phrase, re.Pattern[str]], ...]:
    """The lexicon as compiled regexes (built once, on first use)."""
    return tuple(
        (phrase, re.compile(rf"(?<!\w)(?:{fold(phrase.pattern)})(?!\w)")) for phrase in PHRASES
    )


@cache
def _scanner() -> Scanner:
    """Finds the lexicon's matches without running every regex everywhere (built once)."""
    return Scanner([regex for _, regex in _compiled()])


@dataclass(frozen=True)
class _Hit:
    index: int
    phrase: Phrase
    start: int
    end: int
    text: str


@dataclass
class _Tally:
    """Running totals while a message is scored."""

    signals: list[str]
    by_kind: dict[Kind, float]
    by_category: dict[Category, float]
    complaint: float = 0.0
    worded_intensity: float = 0.0
    levels: set[Severity] = field(default_factory=set)
    legal: bool = False
    scope: bool = False

    def add(self, kind: Kind, weight: float, signal: str) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0.0) + weight
        self.signals.append(signal)


def _find(folded: str) -> tuple[list[_Hit], list[_Hit], bytearray]:
    """All phrase matches: content hits without overlaps, modifier hits, and the mask of
    characters the content hits cover."""
    content: list[_Hit] = []
    modifiers: list[_Hit] = []
    for index, match in _scanner().scan(folded):  # as finditer of each regex, in lexicon order
        if match.end() == match.start():
            continue
        phrase = PHRASES[index]
        hit = _Hit(index, phrase, match.start(), match.end(), match.group(0))
        is_modifier = phrase.kind is Kind.INTENSITY or phrase.tag == "scope"
        (modifiers if is_modifier else content).append(hit)
    content.sort(key=lambda h: (h.start - h.end, h.start, h.index))
    taken = bytearray(len(folded))
    kept: list[_Hit] = []
    for hit in content:
        if any(taken[hit.start : hit.end]):
            continue
        taken[hit.start : hit.end] = b"\x01" * (hit.end - hit.start)
        kept.append(hit)
    return kept, modifiers, taken


def _is_negator(token: str) -> bool:
    return token in NEGATORS or token.endswith("n't") or token.startswith("n'")


@dataclass(frozen=True)
class _Text:
    """The folded text with its clause and sentence boundaries, found once per message."""

    folded: str
    taken: bytearray
    clause_ends: list[int]
    sentence_marks: list[int]

    @classmethod
    def of(cls, folded: str, taken: bytearray) -> _Text:
        return cls(
            folded,
            taken,
            [m.end() for m in _CLAUSE_BREAK.finditer(folded)],
            [m.start() for m in _SENTENCE_END.finditer(folded)],
        )

    def clause_start(self, position: int) -> int:
        index = bisect_right(self.clause_ends, position) - 1
        return self.clause_ends[index] if index >= 0 else 0

    def sentence(self, position: int) -> tuple[int, int | None]:
        """Start of the sentence around ``position`` and the index of its end mark."""
        index = bisect_left(self.sentence_marks, position)
        start = self.sentence_marks[index - 1] + 1 if index > 0 else 0
        end = self.sentence_marks[index] if index < len(self.sentence_marks) else None
        return start, end


def _negator(text: _Text, hit: _Hit) -> str | None:
    """The word that denies ``hit`` ("not", "never", "kein"...), if any.

    A negator that belongs to another matched phrase ("not resolved") is used up
    there and does not also deny what follows ("... our lawyer")."""
    if not hit.phrase.negatable:
        return None
    before = [
        token
        for token in _TOKEN.finditer(text.folded, text.clause_start(hit.start), hit.start)
        if not text.taken[token.start()]
    ][-_NEGATION_WINDOW:]
    inside: list[str] = _TOKEN.findall(hit.text)
    for word in (*(token.group(0) for token in before), *inside):
        if _is_negator(word):
            return word
    return None


def _in_calm_question(text: _Text, position: int) -> bool:
    """Whether ``position`` lies in a sentence like "How do I ...?" or "Is the API down ...?"."""
    start, end = text.sentence(position)
    if end is None or text.folded[end] != "?":
        return False
    sentence = text.folded[start:end]
    tokens: list[str] = _TOKEN.findall(sentence)
    return bool(tokens) and tokens[0] in CALM_OPENERS and not _CALM_BREAKER.search(sentence)


def _intensity_of_form(original: str) -> Iterable[tuple[float, str]]:
    shouted = [
        word
        for word in _UPPER_WORD.findall(original)
        if word not in ACRONYMS and set(word) != {"X"}
    ]
    if shouted:
        weight = min(0.5 * len(shouted), 2.0)
        sample = ", ".join(dict.fromkeys(shouted[:3]))
        yield weight, f"intensity: {len(shouted)} words in capitals ({sample}) (+{weight:.1f})"
    bangs = len(_BANGS.findall(original))
    if bangs:
        weight = min(1.0 * bangs, 2.0)
        yield weight, f'intensity: "!!" x{bangs} (+{weight:.1f})'


def _describe(phrase: Phrase, text: str, weight: float | None = None) -> str:
    weight = phrase.weight if weight is None else weight
    if phrase.kind is Kind.COMPLAINT:
        where = f", {phrase.category.value}" if phrase.category else ""
        return f'phrase "{text}" ({weight:+.1f}{where})'
    return f'{phrase.kind.value} "{text}" ({weight:+.1f})'


def _score_modifiers(tally: _Tally, original: str, modifiers: list[_Hit]) -> None:
    """Intensity and scope; capitals and "!!" are read from ``original`` (empty for machine
    text, whose upper-case protocol words are not shouting)."""
    seen: set[int] = set()
    for hit in modifiers:
        if hit.index in seen:
            continue
        seen.add(hit.index)
        if hit.phrase.tag == "scope":
            tally.scope = True  # adds to the score, but is no complaint on its own
            tally.add(Kind.COMPLAINT, hit.phrase.weight, f'scope "{hit.text}" (+1.0)')
        else:
            tally.worded_intensity += hit.phrase.weight
            tally.add(Kind.INTENSITY, hit.phrase.weight, _describe(hit.phrase, hit.text))
    for weight, signal in _intensity_of_form(original):
        tally.add(Kind.INTENSITY, weight, signal)


def _score_content(tally: _Tally, text: _Text, hits: list[_Hit]) -> None:
    intense = tally.by_kind.get(Kind.INTENSITY, 0.0) > 0
    by_phrase: dict[int, list[_Hit]] = {}
    for hit in hits:
        by_phrase.setdefault(hit.index, []).append(hit)
    for group in sorted(by_phrase.values(), key=lambda g: g[0].start):
        phrase = group[0].phrase
        counted = [h for h in group if _negator(text, h) is None]
        if not counted:
            negator = _negator(text, group[0])
            tally.signals.append(f'negated "{group[0].text}" after "{negator}" (0)')
            continue
        weight = phrase.weight
        first = counted[0]
        calm = phrase.kind is Kind.COMPLAINT and not intense
        if calm and all(_in_calm_question(text, h.start) for h in counted):
            weight *= _QUESTION_FACTOR
            tally.signals.append(
                f'phrase "{first.text}" in a neutral question '
                f"(+{weight:.1f} instead of +{phrase.weight:.1f})"
            )
            tally.by_kind[Kind.COMPLAINT] = tally.by_kind.get(Kind.COMPLAINT, 0.0) + weight
        else:
            tally.add(phrase.kind, weight, _describe(phrase, first.text, weight))
            if phrase.kind is Kind.COMPLAINT:
                if phrase.level is not None:
                    tally.levels.add(phrase.level)
                tally.legal = tally.legal or phrase.tag == "legal"
        if phrase.kind is Kind.COMPLAINT:
            tally.complaint += weight
            if phrase.category is not None:
                current = tally.by_category.get(phrase.category, 0.0)
                tally.by_category[phrase.category] = current + weight


def _total(tally: _Tally) -> float:
    total = 0.0
    for kind, value in tally.by_kind.items():
        cap = _CAPS.get(kind)
        if cap is not None and abs(value) > abs(cap):
            tally.signals.append(f"{kind.value} capped at {cap:+.1f} (was {value:+.1f})")
            value = cap
        total += value
    return total


def _severity(tally: _Tally, intensity: float) -> Severity:
    levels = tally.levels
    outage = tally.by_category.get(Category.SERVICE_OUTAGE, 0.0) > 0
    if Severity.CRITICAL in levels:
        return Severity.CRITICAL
    if tally.scope and outage and Severity.HIGH in levels:
        tally.signals.append("severity: an outage that affects everyone")
        return Severity.CRITICAL
    if tally.legal and intensity >= _STRONG_INTENSITY:
        tally.signals.append("severity: a legal threat made with strong intensity")
        return Severity.CRITICAL
    if Severity.HIGH in levels or tally.legal or intensity >= _STRONG_INTENSITY:
        return Severity.HIGH
    return Severity.NORMAL


def _confidence(total: float, is_complaint: bool) -> float:
    probability = 1.0 / (1.0 + math.exp(-(total - THRESHOLD) / 1.5))
    return round(probability if is_complaint else 1.0 - probability, 3)


def classify_offline(subject: str, text: str) -> Classification:
    """Score ``subject`` and ``text`` (the new text only, no quoted history).

    ``confidence`` is the confidence in the verdict as given: near 1.0 for a
    clear complaint *and* for a clearly neutral message, near 0.5 at the
    threshold.

    >>> classify_offline("Charged twice", "You charged me twice this month.").category
    <Category.BILLING: 'billing'>
    """
    subject = _SUBJECT_PREFIX.sub("", (subject or "")[:1000])
    original = f"{subject}\n{(text or '')[:MAX_CHARS]}"
    folded = fold(original)
    tally = _Tally(signals=[], by_kind={}, by_category={})
    content, modifiers, taken = _find(folded)
    machine = any(hit.phrase.kind is Kind.MACHINE for hit in content)
    _score_modifiers(tally, "" if machine else original, modifiers)
    _score_content(tally, _Text.of(folded, taken), content)
    intensity = min(tally.by_kind.get(Kind.INTENSITY, 0.0), _CAPS[Kind.INTENSITY])
    total = _total(tally)
    # Capitals and "!!" alone are noise; words of anger ("unacceptable, I am furious") are not.
    worded = tally.complaint > 0 or tally.worded_intensity >= _STRONG_INTENSITY
    is_complaint = total >= THRESHOLD and worded
    category: Category | None = None
    if is_complaint and tally.by_category:
        category = max(tally.by_category.items(), key=lambda item: item[1])[0]
    severity = _severity(tally, intensity) if is_complaint else Severity.NORMAL
    tally.signals.append(f"score {total:.1f} (threshold {THRESHOLD:.1f})")
    return Classification(
        is_complaint=is_complaint,
        category=category,
        severity=severity,
        confidence=_confidence(total, is_complaint),
        signals=tuple(tally.signals),
        source="offline",
    )
