"""The four questions of an incident summary, and how to find their answers in a text.

Why here: the summary's headings are written by ``drafting`` (rendering a draft)
and read back by ``policies.wording`` (checking a draft, or a person's edit of
it, for a missing answer). Both must agree on the words, and ``policies`` is the
package both may import.
"""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = ["HEADINGS", "Question", "heading", "split_sections"]


class Question(StrEnum):
    """The four questions every incident summary answers, in the order it answers them."""

    WHAT_HAPPENED = "what_happened"
    WHY = "why"
    RESOLUTION = "resolution"
    PREVENTION = "prevention"


HEADINGS: dict[str, dict[Question, str]] = {
    "en": {
        Question.WHAT_HAPPENED: "What happened",
        Question.WHY: "Why it happened",
        Question.RESOLUTION: "What we are doing to resolve it",
        Question.PREVENTION: "How we will prevent it from happening again",
    },
    "de": {
        Question.WHAT_HAPPENED: "Was passiert ist",
        Question.WHY: "Warum es passiert ist",
        Question.RESOLUTION: "Was wir zur Lösung tun",
        Question.PREVENTION: "Wie wir eine Wiederholung verhindern",
    },
    "fr": {
        Question.WHAT_HAPPENED: "Ce qui s'est passé",
        Question.WHY: "Pourquoi c'est arrivé",
        Question.RESOLUTION: "Ce que nous faisons pour le résoudre",
        Question.PREVENTION: "Comment nous évitons que cela se reproduise",
    },
    "es": {
        Question.WHAT_HAPPENED: "Qué ocurrió",
        Question.WHY: "Por qué ocurrió",
        Question.RESOLUTION: "Qué estamos haciendo para resolverlo",
        Question.PREVENTION: "Cómo evitaremos que vuelva a ocurrir",
    },
}


def heading(question: Question, language: str) -> str:
    """The heading for ``question`` in ``language`` (English when we have no translation)."""
    return HEADINGS.get(language, HEADINGS["en"])[question]


def _heading_pattern() -> re.Pattern[str]:
    names = sorted(
        {h for table in HEADINGS.values() for h in table.values()}, key=len, reverse=True
    )
    alternatives = "|".join(re.escape(name) for name in names)
    # A heading is a line of its own, optionally decorated ("## What happened", "What happened:").
    return re.compile(rf"^[ \t#*_]*({alternatives})[ \t*_]*:?[ \t]*$", re.IGNORECASE | re.MULTILINE)


_HEADING_LINE = _heading_pattern()
_QUESTION_OF = {h.lower(): question for table in HEADINGS.values() for question, h in table.items()}


def split_sections(text: str) -> dict[Question, str]:
    """The text under each heading found in ``text``, stripped; absent headings are absent.

    A section runs from its heading line to the next heading line (or, for the
    last one, to the end of the text). A person who edits a summary may reorder
    or rename sections; a question whose heading is gone counts as unanswered.

    >>> split_sections("Hello,\\n\\nWhat happened\\nThe API was down.\\n\\nWhy it happened\\n")
    {<Question.WHAT_HAPPENED: 'what_happened'>: 'The API was down.', <Question.WHY: 'why'>: ''}
    """
    matches = list(_HEADING_LINE.finditer(text))
    sections: dict[Question, str] = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        question = _QUESTION_OF[match.group(1).lower()]
        sections.setdefault(question, text[match.end() : end].strip())
    return sections
