"""Which language a customer wrote in, so the acknowledgement answers in the same one.

``py3langid`` ships its model inside the package, so detection works offline
and never downloads anything. Its module-level API keeps one global,
mutable identifier; restricting that one to our languages would change the
answer for any other code in the process, so we keep private instances.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["MIN_CONFIDENCE", "MIN_LETTERS", "detect_language"]

MIN_LETTERS = 20
"""Below this many letters ("ok", "thanks!") any guess is noise."""

MIN_CONFIDENCE = 0.8
"""Normalised probability the best language needs; below it we use the default."""

MAX_SAMPLE_CHARS = 5_000
"""The opening of a message decides its language; scoring more only costs time."""

_lock = threading.Lock()
_base: Any = None
_restricted: dict[tuple[str, ...], Any] = {}


def _base_identifier() -> Any:
    """Load the bundled model once per process; it takes most of a second, so only on first use."""
    global _base
    with _lock:
        if _base is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _base = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return _base


def _identifier(languages: tuple[str, ...]) -> Any:
    """Return an identifier restricted to ``languages``, sharing the loaded model.

    Each language set gets a shallow copy of the base; ``set_languages`` swaps
    in new arrays on the copy, so the base and other copies are untouched.
    """
    base = _base_identifier()
    with _lock:
        found = _restricted.get(languages)
        if found is None:
            found = copy.copy(base)
            found.set_languages(list(languages))
            _restricted[languages] = found
        return found


def detect_language(
    text: str,
    supported: Sequence[str] = ("en", "de", "fr", "es"),
    default: str = "en",
) -> str:
    """Return the most likely of ``supported`` for ``text``, or ``default`` when unsure.

    >>> detect_language("Meine Bestellung ist nach drei Wochen immer noch nicht da.")
    'de'
    >>> detect_language("ok")
    'en'

    Short text and low-confidence guesses return ``default``: answering a
    customer in the wrong language is worse than answering in the house one.
    """
    sample = text[:MAX_SAMPLE_CHARS]
    if sum(char.isalpha() for char in sample) < MIN_LETTERS:
        return default
    labels = set(_base_identifier().labels)
    languages = tuple(sorted({code.strip().lower() for code in supported} & labels))
    if not languages:
        return default
    if len(languages) == 1:
        return languages[0]
    language, confidence = _identifier(languages).classify(sample)
    if not isinstance(language, str) or float(confidence) < MIN_CONFIDENCE:
        return default
    return language
