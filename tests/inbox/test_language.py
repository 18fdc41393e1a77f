"""detect_language: the four supported languages, and the default whenever it is unsure."""

from __future__ import annotations

import py3langid
import pytest

from inbox.language import detect_language


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My order arrived broken and nobody has answered my emails for two weeks.", "en"),
        ("Meine Bestellung kam kaputt an und seit zwei Wochen antwortet niemand.", "de"),
        ("Ma commande est arrivée cassée et personne ne répond depuis deux semaines.", "fr"),
        ("Mi pedido llegó roto y nadie responde a mis correos desde hace dos semanas.", "es"),
    ],
)
def test_supported_languages(text: str, expected: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize("text", ["", "ok", "Danke!", "12345 67890 !!!", "👍👍👍"])
def test_short_text_returns_the_default(text: str) -> None:
    assert detect_language(text, default="de") == "de"


def test_result_is_always_one_of_the_supported_or_default() -> None:
    italian = "Il mio ordine è arrivato rotto e nessuno risponde da due settimane."
    assert detect_language(italian, supported=("de", "fr"), default="en") in {"de", "fr", "en"}
    assert detect_language(italian, supported=("it", "en")) == "it"


def test_unknown_codes_are_ignored() -> None:
    text = "Meine Bestellung kam kaputt an und seit zwei Wochen antwortet niemand."
    assert detect_language(text, supported=("de", "xx-unknown")) == "de"
    assert detect_language(text, supported=("xx",), default="en") == "en"


def test_global_identifier_is_left_alone() -> None:
    detect_language("Ma commande est arrivée cassée et personne ne répond.", supported=("fr",))
    # The module-level identifier still knows every language.
    assert py3langid.classify("Il mio ordine è arrivato rotto e nessuno risponde.")[0] == "it"
