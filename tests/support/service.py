"""Run the real codered service in a background thread, the way ``codered run`` does."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from codered.db.engine import Database
from codered.service import Service, ServiceHooks
from codered.settings import Settings

T = TypeVar("T")


def make_settings(
    tmp_path: Path,
    imap_port: int,
    smtp_port: int,
    *,
    username: str = "demouser",
    password: str = "demopass",
    database_url: str | None = None,
    **overrides: Any,
) -> Settings:
    """A complete configuration pointing at loopback test servers."""
    data: dict[str, Any] = {
        "database": {"url": database_url or f"sqlite+aiosqlite:///{tmp_path / 'codered.db'}"},
        "company": {
            "name": "Acme Cloud",
            "timezone": "Europe/Berlin",
            "business_hours": "09:00-17:00",
            "business_days": "mon-fri",
            "holidays": "DE",
        },
        "mailboxes": [
            {
                "name": "support",
                "address": "support@acme.example",
                "imap_host": "127.0.0.1",
                "imap_port": imap_port,
                "imap_security": "none",
                "imap_username": username,
                "imap_password": password,
                "poll_interval_seconds": 1.0,
            }
        ],
        "smtp": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "from_name": "Acme Customer Success",
            "timeout_seconds": 5.0,
        },
        # Any free port: many services run in one test session, sometimes side by side.
        "web": {"port": 0},
        # Parsing in the service itself: a worker process per test service would cost the
        # suite a second of CPU each. tests/codered/test_parse_worker.py runs the worker,
        # and the benchmarks (and their smoke test) run the shipped default.
        "pipeline": {"parse_worker": False},
    }
    for section, values in overrides.items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    return Settings.model_validate(data)


class RunningService:
    """Context manager: the service runs until exit; ``query`` reads its database meanwhile."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="codered-test-service", daemon=True)
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self.service: Service | None = None

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def run() -> None:
            self._stop = asyncio.Event()
            self.service = Service(self.settings, hooks=ServiceHooks(on_ready=self._ready.set))
            await self.service.run(self._stop)

        try:
            self._loop.run_until_complete(run())
        except BaseException as exc:  # surfaced by __exit__
            self.error = exc
            self._ready.set()

    def __enter__(self) -> RunningService:
        self._thread.start()
        if not self._ready.wait(30):
            raise AssertionError("the service did not become ready within 30 s")
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        if self.error is not None:
            raise self.error

    def wait_for_baseline(self, mailbox: str = "support", timeout: float = 20.0) -> None:
        from codered.db.models import MailboxState

        async def baselined(db: Database) -> bool:
            async with db.read() as session:
                return await session.get(MailboxState, mailbox) is not None

        wait_until(lambda: query(self.settings, baselined), timeout, f"{mailbox} baselined")


def query(settings: Settings, work: Callable[[Database], Coroutine[Any, Any, T]]) -> T:
    """Run one read against the service's database from the test thread (own engine)."""

    async def run() -> T:
        db = Database(settings.database.url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1
) -> Any:
    """Poll ``condition`` until truthy; fail the test with ``what`` when ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
