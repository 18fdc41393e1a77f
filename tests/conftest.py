"""Shared fixtures: real servers on 127.0.0.1, started per test, stopped afterwards.

Following aiosmtpd's example, tests talk to real servers over TCP rather than
to mocks: pymap (in-process, fast), aiosmtpd (in-process) and Dovecot (the
Debian package, as a private subprocess; skipped when it is not installed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codered.embedded import EmbeddedImapServer, SmtpSink
from tests.support.dovecot import DovecotServer

SHARED_CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag every test that uses Dovecot, so ``-m "not dovecot"`` deselects them."""
    for item in items:
        if "dovecot" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.dovecot)


@pytest.fixture
def pymap_server() -> Iterator[EmbeddedImapServer]:
    """An empty in-memory IMAP server (user ``demouser``/``demopass``) with IDLE."""
    with EmbeddedImapServer() as server:
        yield server


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """An SMTP server that accepts everything; read ``.messages`` or ``.wait_for(n)``."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    """A private Dovecot with an empty maildir; ``.kill()``/``.start()`` simulate a crash."""
    server = DovecotServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def shared_corpora() -> Path:
    """The labelled sample mail shared by the whole project (``../shared/corpora``)."""
    if not SHARED_CORPORA.is_dir():
        pytest.skip(f"shared corpora not found at {SHARED_CORPORA}")
    return SHARED_CORPORA
