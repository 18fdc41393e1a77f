"""Which language a customer wrote in, so the acknowledgement answers in the same one.

``py3langid`` ships its model inside the package, so detection works offline
and never downloads anything. Its module-level API keeps one global,
mutable identifier; restricting that one to our languages would change the
answer for any other code in the process, so we keep private instances.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["MIN_CONFIDENCE", "MIN_LETTERS", "detect_language"]

log = logging.getLogger(__name__)

MIN_LETTERS = 20
"""Below this many letters ("ok", "thanks!") any guess is noise."""

MIN_CONFIDENCE = 0.8
"""Normalised probability the best language needs; below it we use the default."""

MAX_SAMPLE_CHARS = 5_000
"""The opening of a message decides its language; scoring more only costs time."""

_lock = threading.Lock()
_identifiers: dict[tuple[str, ...], tuple[Any, tuple[str, ...]]] = {}
"""Requested languages → an identifier for those the model knows (None: fewer than two)
and those languages."""


def _identifier(requested: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
    """Load, once per set of languages and process, an identifier restricted to them.

    It takes most of a second, so only on first use. The lean loader
    (:mod:`inbox.language_model`) peaks about 40 MB lower than py3langid's own; if the
    bundled model is not laid out as it expects, py3langid's own loader is used instead.
    Each set of languages loads the model on its own (codered asks for one set)."""
    with _lock:
        found = _identifiers.get(requested)
        if found is None:
            from inbox.language_model import UnexpectedModel, load_identifier

            try:
                identifier, known = load_identifier(requested)
            except UnexpectedModel as exc:
                log.warning("language model: %s; loading it the usual way", exc)
                identifier, known = _usual_identifier(requested)
            found = (identifier, tuple(known))
            _identifiers[requested] = found
        return found


def _usual_identifier(requested: tuple[str, ...]) -> tuple[Any, list[str]]:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    known = sorted(set(requested) & set(identifier.labels))
    if len(known) < 2:
        return None, known
    identifier.set_languages(known)
    return identifier, known


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
    requested = tuple(sorted({code.strip().lower() for code in supported}))
    identifier, languages = _identifier(requested)
    if identifier is None:
        return languages[0] if languages else default
    language, confidence = identifier.classify(sample)
    if not isinstance(language, str) or float(confidence) < MIN_CONFIDENCE:
        return default
    return language
