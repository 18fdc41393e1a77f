"""One fixture for "an IMAP server": the embedded pymap, and a private Dovecot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(params=["pymap", "dovecot"])
def imap(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Each end-to-end test runs against both servers; Dovecot skips when not installed."""
    yield request.getfixturevalue("pymap_server" if request.param == "pymap" else "dovecot")
