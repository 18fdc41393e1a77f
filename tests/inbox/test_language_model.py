"""The lean loader of the language model gives the answers py3langid's own loader gives.

``inbox.language_model`` reads py3langid's bundled model itself, so that detection needs a
fraction of the memory; these tests hold it to py3langid's own loader restricted with
``set_languages``: the same tables, and the same language and confidence for every text.
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from inbox import language, language_model
from inbox.language import detect_language

OURS = ("de", "en", "es", "fr")

SAMPLES = [
    "Our whole team has been locked out since the update this morning. Fix it today.",
    "Seit dem Update heute Morgen kann sich niemand aus unserem Team mehr anmelden.",
    "Depuis la mise à jour de ce matin, personne dans notre équipe ne peut se connecter.",
    "Desde la actualización de esta mañana nadie de nuestro equipo puede iniciar sesión.",
    "Dal aggiornamento di stamattina nessuno del nostro team riesce ad accedere.",
    "Desde a atualização desta manhã ninguém da nossa equipa consegue entrar.",
    "Sinds de update van vanochtend kan niemand in ons team meer inloggen.",
    "INVOICE 4471 WAS CHARGED TWICE AND NOBODY ANSWERS THE PHONE",
    "ok",
    "Danke!",
    "🚨🚨 down down down 🚨🚨",
    "Rechnung doppelt abgebucht, bitte sofort erstatten. Thanks, Ann",
]


@pytest.fixture(scope="module")
def usual() -> LanguageIdentifier:
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(OURS))
    return identifier


@pytest.fixture(scope="module")
def lean() -> LanguageIdentifier:
    identifier, known = language_model.load_identifier(OURS)
    assert known == list(OURS)
    assert identifier is not None
    return identifier


def test_the_same_tables(usual: LanguageIdentifier, lean: LanguageIdentifier) -> None:
    assert lean.nb_classes == usual.nb_classes
    assert lean.nb_ptc.dtype == usual.nb_ptc.dtype
    assert np.array_equal(lean.nb_ptc, usual.nb_ptc)
    assert np.array_equal(lean.nb_pc, usual.nb_pc)
    assert lean.tk_nextmove == usual.tk_nextmove
    assert lean.tk_row == usual.tk_row
    assert lean.tk_output == usual.tk_output


def test_the_same_answers_for_our_samples(
    usual: LanguageIdentifier, lean: LanguageIdentifier
) -> None:
    for text in SAMPLES:
        expected_language, expected_confidence = usual.classify(text)
        found_language, found_confidence = lean.classify(text)
        assert found_language == expected_language, text
        assert found_confidence == pytest.approx(expected_confidence, abs=1e-6), text


def test_the_same_answers_for_the_complaint_corpus(
    shared_corpora: Path, usual: LanguageIdentifier, lean: LanguageIdentifier
) -> None:
    with (shared_corpora / "cfpb-narratives.csv").open(encoding="utf-8") as handle:
        narratives = [row["narrative"] for row in itertools.islice(csv.DictReader(handle), 300)]
    assert len(narratives) == 300
    for text in narratives:
        assert lean.classify(text)[0] == usual.classify(text)[0]


def test_unknown_and_single_languages_need_no_model() -> None:
    assert language_model.load_identifier(("de", "xx")) == (None, ["de"])
    assert language_model.load_identifier(("xx",)) == (None, [])


def test_an_unexpected_layout_falls_back_to_the_usual_loader(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unexpected(languages: object) -> object:
        raise language_model.UnexpectedModel("ptc: float64 (3,)")

    monkeypatch.setattr(language_model, "load_identifier", unexpected)
    monkeypatch.setattr(language, "_identifiers", {})
    text = "Seit dem Update heute Morgen kann sich niemand aus unserem Team mehr anmelden."
    assert detect_language(text) == "de"
    assert "loading it the usual way" in caplog.text
