"""A running codered with its review desk, three people and one acknowledged complaint."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from codered.accounts import add_user, create_token
from codered.db.engine import Database
from codered.embedded import EmbeddedImapServer, SmtpSink, free_port
from codered.settings import Settings
from tests.support import mail
from tests.support.cli import run_cli, write_config
from tests.support.service import RunningService, make_settings, query, wait_until

PASSWORD = "correct horse battery"
ROLES = ("csm", "manager", "admin")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Desk:
    settings: Settings
    config: Path
    url: str
    imap: EmbeddedImapServer
    sink: SmtpSink
    reference: str
    tokens: dict[str, str] = field(default_factory=dict)

    def api(self, role: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=20)

    def browser(self, role: str) -> tuple[httpx.Client, str]:
        """A signed-in client with its session cookie, and the session's CSRF token."""
        client = httpx.Client(base_url=self.url, timeout=20, follow_redirects=False)
        signed = client.post("/login", data={"name": role, "password": PASSWORD})
        assert signed.status_code == 303, signed.text
        landing = "/" if role != "admin" else "/users"
        match = CSRF.search(client.get(landing).text)
        assert match, "no CSRF token on the landing page"
        return client, match.group(1)

    def cli(self, *args: str) -> Any:
        return run_cli(*args, config=self.config)


def _add_people(settings: Settings) -> dict[str, str]:
    async def work(db: Database) -> dict[str, str]:
        tokens = {}
        for role in ROLES:
            await add_user(db, role, role, PASSWORD, actor="test")
            tokens[role] = await create_token(db, role, actor="test")
        return tokens

    return query(settings, work)


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    with EmbeddedImapServer() as imap, SmtpSink() as sink:
        port = free_port()
        settings = make_settings(
            tmp_path,
            imap.port,
            sink.port,
            username=imap.username,
            password=imap.password,
            web={"port": port},
        )
        config = write_config(tmp_path / "codered.toml", settings)
        with RunningService(settings) as service:
            service.wait_for_baseline()
            tokens = _add_people(settings)
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: _up(url), 20, "the review desk")
            imap.append(mail.outage_complaint()[1])
            sink.wait_for(1, timeout=20)
            [incident] = json.loads(run_cli("incidents", "list", "--json", config=config).stdout)
            yield Desk(settings, config, url, imap, sink, incident["reference"], tokens)


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/login", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def run(coro: Any) -> Any:
    return asyncio.run(coro)
