"""Every message of the Sisimai corpus (real bounces and auto-replies) parses without error.

Machine mail is exactly what the guards must recognise, so a ParseError here
would send real traffic to the dead-letter queue instead of past the guards.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from inbox.message import ParseError
from inbox.parse import parse_email

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "sisimai" / "eml"


def test_every_corpus_message_parses(capsys: pytest.CaptureFixture[str]) -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"Sisimai corpus not found at {CORPUS} (it lives in ../shared)")
    files = sorted(CORPUS.glob("*.eml"))
    if not files:
        pytest.skip(f"no .eml files in {CORPUS}")
    failures: list[str] = []
    types: Counter[str] = Counter()
    slowest = (0.0, "")
    for path in files:
        started = time.monotonic()
        try:
            email = parse_email(path.read_bytes())
        except ParseError as error:
            failures.append(f"{path.name}: {error.reason}")
            continue
        elapsed = time.monotonic() - started
        slowest = max(slowest, (elapsed, path.name))
        types[email.content_type] += 1
        assert email.size > 0
    assert failures == [], "\n".join(failures)
    with capsys.disabled():
        print(
            f"\nparsed {len(files)} Sisimai messages; slowest {slowest[1]} "
            f"({slowest[0] * 1000:.0f} ms); {dict(types.most_common(3))}"
        )
