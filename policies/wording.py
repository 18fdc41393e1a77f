"""Wording checks for drafts: blame, apologies, promises, timelines, tone, gaps, invented facts.

Why: every draft, and every edit of one, goes to a customer who is already unhappy. Blame
(of them, a vendor or a colleague by name), impossible promises and "soon" where we owe a
time make it worse, and a model may invent an address, a link or an amount. The checks are
deterministic, so a text always gets the same findings; they are stored with the draft,
and approving one with a *blocking* finding needs an override reason.

English only: the phrase tables are English; summary headings (in every language of
:mod:`policies.sections`), placeholders, capitals and unknown addresses, links and figures
are checked in any language. Precision comes first, since false blocks teach people to
override: owning our part ("We made a mistake", "our deployment caused the outage") is
never blame, nor is a neutral "you" ("you can now log in").
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum

from policies.sections import Question, heading, split_sections
from policies.wording_phrases import (
    ABSOLUTE,
    ACRONYMS,
    APOLOGY,
    BLAME,
    CONCRETE_TIME,
    EMOTIONAL,
    NAMED_BLAME,
    PERSONAL,
    VAGUE,
)

__all__ = [
    "ACRONYMS", "KINDS", "SUMMARY_QUESTIONS", "TIME_REQUIRED_KINDS", "Finding", "FindingSeverity",
    "blocking", "check_wording", "summary_question_label",
]  # fmt: skip


class FindingSeverity(StrEnum):
    """A blocking finding needs an override reason to approve; a warning is only shown."""

    BLOCKING = "blocking"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem in a draft, for the CSM who approves it: ``message`` is one sentence saying
    what to change, ``excerpt`` the matched text as written (at most 120 characters), and
    ``section`` the :class:`~policies.sections.Question` value of the summary section it is in.
    """

    rule: str
    severity: FindingSeverity
    message: str
    excerpt: str = ""
    section: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready: the five fields, the severity as its string value."""
        return {**asdict(self), "severity": self.severity.value}


KINDS: frozenset[str] = frozenset({"summary", "update", "delay", "recap", "rewrite"})
TIME_REQUIRED_KINDS: frozenset[str] = frozenset({"update", "delay"})
"""Kinds whose point is a time: they must state one, and "soon" in them blocks."""
SUMMARY_QUESTIONS: dict[Question, str] = {
    Question.WHAT_HAPPENED: "What happened?",
    Question.WHY: "Why did it happen?",
    Question.RESOLUTION: "What are we doing to resolve it?",
    Question.PREVENTION: "How will we prevent it?",
}


# --- compiled once ---------------------------------------------------------------------

Span = tuple[int, int, str]
"""A match: start, end, and the label of the pattern that found it."""
_Patterns = tuple[tuple[re.Pattern[str], str], ...]


def _table(patterns: Iterable[str], label: str = "") -> _Patterns:
    """Each pattern compiled as a whole phrase, with a label for the finding's message."""
    return tuple((re.compile(rf"(?<!\w)(?:{p})(?!\w)", re.I), label) for p in patterns)


_BLAME = (
    *(pair for who, patterns in BLAME.items() for pair in _table(patterns, who)),
    (re.compile(NAMED_BLAME), "someone by name"),
)
_APOLOGY, _TIME = _table([APOLOGY])[0][0], _table([CONCRETE_TIME])[0][0]
_EMOTIONAL = (
    *_table(EMOTIONAL, "state the facts in neutral words."),
    (re.compile(r"!{2,}"), "end the sentence with a full stop."),
)
_SHOUTED = re.compile(r"(?<![\w-])[A-ZÀ-ÖØ-Þ]{4,}(?![\w-])")
_PLACEHOLDER = re.compile(r"\[\s*(?:to be completed|todo|missing)\b[^\]\n]*\]", re.I)
_URL = re.compile(r"(?:https?://|(?<![\w.@-])www\.)[^\s<>\"'()\[\]{}]+", re.I)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_LIST_MARKER = re.compile(r"^[ \t]*\d{1,2}[.)](?=[ \t])", re.MULTILINE)
_FIGURE = re.compile(r"(?<![\w.,:])(?:[$€£¥] ?)?\d+(?:[.,:]\d+)*(?: ?%)?")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SENTENCE_END = re.compile(r"[.!?\n]")
_QUOTED = re.compile(r'"([^"\n]+)"|“([^”\n]+)”')
BLOCKING, WARNING = FindingSeverity.BLOCKING, FindingSeverity.WARNING


@dataclass(frozen=True)
class _PhraseRule:
    """A phrase table and its severity: BLOCKING in ``blocking_kinds`` and, in a summary, in
    ``blocking_section`` (``only_there``: nowhere else in a summary). ``message`` has
    ``{excerpt}`` and ``{label}``; ``warning``, when given, replaces it for a warning."""

    name: str
    patterns: _Patterns
    message: str
    severity: FindingSeverity = BLOCKING
    blocking_kinds: frozenset[str] = frozenset()
    blocking_section: Question | None = None
    only_there: bool = False
    warning: str = ""
    per_sentence: bool = False


# fmt: off
_PHRASE_RULES = (
    _PhraseRule("blame", _BLAME,
                'Blames {label} ("{excerpt}"): describe what happened instead; towards the '
                "customer we answer for our own systems, suppliers and people."),
    _PhraseRule("personal_commitment", _table(PERSONAL),
                'Promises something personally ("{excerpt}"): the prevention answer must be a '
                "change to our process (a check, a tool, a review step), not a personal promise.",
                WARNING, blocking_section=Question.PREVENTION, only_there=True,
                warning='Promises something personally ("{excerpt}"): say what the team will do.',
                per_sentence=True),
    _PhraseRule("absolute_promise", _table(ABSOLUTE),
                'Makes an absolute promise ("{excerpt}"): describe the change we made and what '
                "it protects against instead."),
    _PhraseRule("vague_timeline", _table(VAGUE),
                'Vague timeline ("{excerpt}"): give the date and time instead.',
                WARNING, TIME_REQUIRED_KINDS, Question.RESOLUTION),
)
_EMOTIONAL_RULE = _PhraseRule("emotional_language", _EMOTIONAL,
                              'Emotional wording ("{excerpt}"): {label}', WARNING)
# fmt: on


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mask(text: str, *patterns: re.Pattern[str]) -> str:
    """``text`` with every match of ``patterns`` blanked out (offsets unchanged)."""
    for pattern in patterns:
        text = pattern.sub(lambda m: " " * len(m.group()), text)
    return text


def _spans(patterns: _Patterns, text: str, *, per_sentence: bool = False) -> list[Span]:
    """Matches of all ``patterns`` in text order, overlapping ones merged (the first label wins).

    Each pattern is searched on its own, so overlapping phrases ("it will never", "never
    happen again") make one finding, not two or a cut-off one. With ``per_sentence``,
    matches in one sentence merge too ("I'll check my work").
    """
    found = sorted(
        (m.start(), -m.end(), i) for i, (p, _) in enumerate(patterns) for m in p.finditer(text)
    )
    merged: list[Span] = []
    for start, negative_end, index in found:
        if merged:
            first, last, label = merged[-1]
            if start < last or (per_sentence and not _SENTENCE_END.search(text, last, start)):
                merged[-1] = (first, max(last, -negative_end), label)
                continue
        merged.append((start, -negative_end, patterns[index][1]))
    return merged


def _appears(item: str, haystack: str) -> bool:
    """Whether ``item`` occurs in ``haystack`` whole, not inside a longer address or host."""
    return re.search(rf"(?<![\w.+-]){re.escape(item)}(?![\w-]|\.\w)", haystack) is not None


def _figure_key(token: str) -> str:
    """The value of a number as written: ``$1,200.50`` -> ``1200.5``, ``99.9 %`` -> ``99.9``."""
    digits = token.strip("$€£¥% ")
    if _THOUSANDS.fullmatch(digits):
        digits = digits.replace(",", "")
    if re.fullmatch(r"\d+\.\d+", digits):
        whole, fraction = digits.split(".")
        return f"{whole.lstrip('0') or '0'}.{fraction.rstrip('0')}".rstrip(".")
    # Integers, and dates and times ("04.03.2026", "09:00") part by part, without leading zeros.
    return re.sub(r"\d+", lambda m: m.group().lstrip("0") or "0", digits)


def _figures(text: str) -> Iterable[re.Match[str]]:
    return _FIGURE.finditer(_mask(text, _URL, _EMAIL, _LIST_MARKER))


# --- the checks ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Check:
    """One draft being checked: its text, where its summary sections start, what we know."""

    text: str
    plain: str
    """``text`` with typographic apostrophes as ' and quotations from ``known_text`` blanked
    out (same length, so offsets agree): what the phrase rules read."""
    kind: str
    known_text: str
    heading_starts: tuple[int, ...]
    heading_questions: tuple[Question, ...]

    @classmethod
    def of(cls, text: str, kind: str, known_text: str) -> _Check:
        starts: list[int] = []
        questions: list[Question] = []
        offset = 0
        for line in text.split("\n") if kind == "summary" else ():
            # A line is a heading exactly when split_sections finds one in that line alone.
            questions.extend(split_sections(line))
            starts.extend([offset] * (len(questions) - len(starts)))
            offset += len(line) + 1
        plain, known = (t.replace("\u2019", "'").replace("\u2018", "'") for t in (text, known_text))
        # Words quoted back from the thread ('You wrote: "API DOWN!!"') are the customer's.
        plain = _QUOTED.sub(lambda m: " " * len(m[0]) if (m[1] or m[2]) in known else m[0], plain)
        return cls(text, plain, kind, known_text, tuple(starts), tuple(questions))

    def section_at(self, position: int) -> Question | None:
        index = bisect_right(self.heading_starts, position) - 1
        return self.heading_questions[index] if index >= 0 else None

    def finding(self, rule: str, severity: FindingSeverity, message: str, span: Span) -> Finding:
        section = self.section_at(span[0])
        excerpt = _clip(self.text[span[0] : span[1]])
        return Finding(rule, severity, message, excerpt, section.value if section else None)

    def phrases(self, rule: _PhraseRule, spans: Iterable[Span] | None = None) -> list[Finding]:
        """One finding per distinct phrase and section: repeating "soon" is one thing to fix."""
        if spans is None:
            spans = _spans(rule.patterns, self.plain, per_sentence=rule.per_sentence)
        found: dict[tuple[str, str | None], Finding] = {}
        for start, end, label in spans:
            severity: FindingSeverity | None = rule.severity
            if self.kind in rule.blocking_kinds:
                severity = BLOCKING
            elif self.kind == "summary" and rule.blocking_section is not None:
                there = self.section_at(start) is rule.blocking_section
                severity = BLOCKING if there else None if rule.only_there else rule.severity
            if severity is None:
                continue
            template = rule.warning if severity is WARNING and rule.warning else rule.message
            message = template.format(excerpt=_clip(self.text[start:end]), label=label)
            finding = self.finding(rule.name, severity, message, (start, end, label))
            phrase = re.sub(r"!{2,}", "!!", finding.excerpt.casefold())  # "!!!" is "!!" again
            found.setdefault((phrase, finding.section), finding)
        return list(found.values())

    def emotional(self) -> list[Finding]:
        masked = _mask(self.plain, _URL, _EMAIL)
        spans = _spans(_EMOTIONAL, masked)
        # A word in capitals that the facts or the thread also write so is a name ("ACME").
        names = ACRONYMS | set(_SHOUTED.findall(self.known_text))
        for match in _SHOUTED.finditer(masked):
            if match.group() not in names:
                label = "write it in normal case; capitals read as shouting."
                spans.append((match.start(), match.end(), label))
        return self.phrases(_EMOTIONAL_RULE, sorted(spans))

    def apologies(self) -> list[Finding]:
        found = [self.text[m.start() : m.end()] for m in _APOLOGY.finditer(self.plain)]
        if len(found) < 2:
            return []
        words = ", ".join(f'"{word}"' for word in dict.fromkeys(found))
        message = f"Apologises {len(found)} times ({words}): keep one apology, give facts instead."
        return [Finding("apologies", WARNING, message, found[1])]

    def no_concrete_time(self) -> list[Finding]:
        if self.kind not in TIME_REQUIRED_KINDS or _TIME.search(self.plain):
            return []
        message = 'Gives no date or time: say when we write again (e.g. "4 March 2026, 14:00 CET").'
        return [Finding("no_concrete_time", BLOCKING, message)]

    def missing_answers(self) -> list[Finding]:
        sections = split_sections(self.text) if self.kind == "summary" else {}
        findings = []
        for question in Question if self.kind == "summary" else ():
            label, body = SUMMARY_QUESTIONS[question], sections.get(question)
            placeholder = _PLACEHOLDER.search(body or "")
            if body is None:
                message = f'Does not answer "{label}": add a section "{heading(question, "en")}".'
            elif placeholder:
                message = f'Still has a placeholder for "{label}": replace it with the answer.'
            elif not body:
                message = f'Leaves "{label}" empty: write the answer under its heading.'
            else:
                continue
            excerpt = _clip(placeholder.group()) if placeholder else ""
            findings.append(Finding("missing_answer", BLOCKING, message, excerpt, question.value))
        return findings

    def placeholders(self, reported: set[str | None]) -> list[Finding]:
        """Placeholders anywhere, except in a summary section already reported as unanswered."""
        findings = []
        for match in _PLACEHOLDER.finditer(self.text):
            message = f'Still contains a placeholder ("{_clip(match.group())}"): fill it in.'
            finding = self.finding("placeholder", BLOCKING, message, (*match.span(), ""))
            if finding.section not in reported:
                findings.append(finding)
        return findings

    def unknown_items(self) -> list[Finding]:
        """Addresses, links and figures that the facts and the thread do not have: a model
        may have made them up, so a person checks what we cannot trace back."""
        known = self.known_text.lower()
        known_hosts = re.sub(r"https?://|(?<![\w.-])www\.", "", known)
        known_figures = {_figure_key(m.group()) for m in _figures(self.known_text)}
        items: list[tuple[str, str, Span]] = []  # (rule, the value compared, where and what)
        for m in _EMAIL.finditer(_mask(self.plain, _URL)):
            if not _appears(address := m.group().lower(), known):
                items.append(("unknown_address", address, (*m.span(), "Mentions an email address")))
        for m in _URL.finditer(self.plain):
            url = m.group().rstrip(".,;:!?)]}'\"/")
            # Host and path, lower-cased: "https://www.Example.com/a/?x=1" -> "example.com/a".
            key = re.split(r"[?#]", re.sub(r"^(?:https?://)?(?:www\.)?", "", url.lower()))[0]
            if not _appears(key := key.rstrip("/"), known_hosts):
                span = (m.start(), m.start() + len(url), "Links to a page")
                items.append(("unknown_url", key, span))
        for m in _figures(self.plain):
            if (value := _figure_key(m.group())) not in known_figures:
                items.append(("unknown_figure", value, (*m.span(), "States a figure")))
        found: dict[tuple[str, str], Finding] = {}  # each unknown item once
        for rule, value, (start, end, what) in items:
            excerpt = _clip(self.text[start:end])
            message = f'{what} we were not given ("{excerpt}"): check it or take it out.'
            found.setdefault((rule, value), self.finding(rule, BLOCKING, message, (start, end, "")))
        return list(found.values())


# --- the public entry points -----------------------------------------------------------


def summary_question_label(question: Question) -> str:
    """The question as a CSM would ask it, e.g. ``'Why did it happen?'``."""
    return SUMMARY_QUESTIONS[question]


def check_wording(text: str, *, kind: str, known_text: str = "") -> list[Finding]:
    """All findings for ``text``, a draft (or a person's edit of one) of ``kind``.

    ``kind`` is one of :data:`KINDS`; an unknown one raises ValueError rather than silently
    skip the rules that depend on it. ``known_text`` is all the draft may legitimately quote
    (facts, the thread, our formatted times, the reference); an address, link or figure not
    found there is reported. Findings come rule by rule, each rule's in text order.

    >>> [(f.rule, f.severity.value) for f in check_wording("We will write soon.", kind="update")]
    [('vague_timeline', 'blocking'), ('no_concrete_time', 'blocking')]
    """
    if kind not in KINDS:
        raise ValueError(f"unknown draft kind {kind!r}; expected one of {sorted(KINDS)}")
    check = _Check.of(text, kind, known_text)
    missing = check.missing_answers()
    return [
        *missing,
        *check.placeholders({f.section for f in missing}),
        *(finding for rule in _PHRASE_RULES for finding in check.phrases(rule)),
        *check.no_concrete_time(),
        *check.unknown_items(),
        *check.apologies(),
        *check.emotional(),
    ]


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that need an override reason before the draft may be approved."""
    return [f for f in findings if f.severity is FindingSeverity.BLOCKING]
