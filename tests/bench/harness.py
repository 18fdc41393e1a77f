"""The service under test: its configuration file, its process, its database, its memory.

Why a real ``codered run`` subprocess and not the service in a thread: the numbers must
be the ones an operator gets, with the service's own interpreter, GIL and event loop,
and no benchmark code competing with it for either. Its peak memory is read from
``/proc/PID/status`` (``VmHWM``, the resident high-water mark), so no extra package is
needed and nothing in the service changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine.url import make_url

from tests.bench.servers import BenchError, ImapServer
from tests.support.cli import cli_env, codered_command

__all__ = [
    "DbProbe",
    "Mailbox",
    "ServiceProcess",
    "peak_rss_mb",
    "wait_until",
    "write_config",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Mailbox:
    """One watched folder with its own address (several share one IMAP account)."""

    name: str
    address: str
    folder: str = "INBOX"


DEFAULT_MAILBOXES = (Mailbox("support", "support@acme.example"),)


def _toml(value: object) -> str:
    """A TOML value; JSON's string escapes are a subset of TOML's basic strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


def _table(header: str, values: dict[str, object]) -> str:
    return header + "\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items()) + "\n"


def write_config(
    path: Path,
    *,
    database_url: str,
    imap: ImapServer,
    smtp_port: int,
    mailboxes: tuple[Mailbox, ...] = DEFAULT_MAILBOXES,
    file_sent: bool = True,
) -> Path:
    """A complete ``codered.toml`` for loopback servers, written the way an operator would.

    The rate limits are raised far above any benchmark's volume so that a flood measures
    the pipeline, not the circuit breaker; everything else keeps its shipped default
    (filing a copy in Sent included, unless ``file_sent`` is False)."""
    parts = [
        _table("[database]", {"url": database_url}),
        _table(
            "[company]",
            {
                "name": "Acme Cloud",
                "timezone": "Europe/Berlin",
                "business_hours": "09:00-17:00",
                "business_days": "mon-fri",
                "holidays": "DE",
            },
        ),
    ]
    for box in mailboxes:
        parts.append(
            _table(
                "[[mailboxes]]",
                {
                    "name": box.name,
                    "address": box.address,
                    "imap_host": imap.host,
                    "imap_port": imap.port,
                    "imap_security": "none",
                    "imap_username": imap.username,
                    "imap_password": imap.password,
                    "folder": box.folder,
                    "poll_interval_seconds": 1.0,
                    "file_sent": file_sent,
                },
            )
        )
    parts += [
        _table(
            "[smtp]",
            {
                "host": "127.0.0.1",
                "port": smtp_port,
                "security": "none",
                "from_name": "Acme Customer Success",
                "timeout_seconds": 10.0,
            },
        ),
        _table("[llm]", {"model": "offline"}),
        _table(
            "[limits]",
            {"acknowledgements_per_sender_24h": 1000, "acknowledgements_per_minute": 10_000_000},
        ),
        _table("[web]", {"enabled": False}),
    ]
    path.write_text("".join(parts), encoding="utf-8")
    return path


def peak_rss_mb(pid: int) -> float | None:
    """``VmHWM`` of ``pid`` in MiB: the most resident memory it ever had (None if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started that are running now (the parse worker)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time ``pid`` has used so far, all its threads (None if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    # After the command name: utime and stime are the 12th and 13th fields, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServiceProcess:
    """``codered run --config CONFIG --log-format json`` in a subprocess, logging to a file."""

    def __init__(self, config: Path, log: Path, *, extra_env: dict[str, str] | None = None):
        self.config = config
        self.log = log
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0
        self.peak_rss_mb: float | None = None
        """The service's peak plus its workers' peaks (an upper bound of their sum)."""
        self.peak_rss_parts: dict[str, float] = {}
        """Each process's own peak: ``main``, and ``worker <pid>`` for the parse worker."""

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchError("the service was not started")
        return self.process.pid

    def start(self) -> ServiceProcess:
        command = [*codered_command(), "run", "--config", str(self.config), "--log-format", "json"]
        with self.log.open("ab") as out:
            self.spawned_at = time.monotonic()
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=cli_env(**self.extra_env),
            )
        return self

    def check_alive(self) -> None:
        """BenchError with the log's tail when the service has exited on its own."""
        if self.process is not None and self.process.poll() is not None:
            raise BenchError(
                f"codered run exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def cpu_seconds(self) -> dict[str, float] | None:
        """CPU used so far by the service (``main``) and by each worker it runs now."""
        if self.process is None or self.process.poll() is not None:
            return None
        used = {"main": cpu_seconds(self.process.pid)}
        used |= {f"worker {child}": cpu_seconds(child) for child in child_pids(self.process.pid)}
        return {name: value for name, value in used.items() if value is not None}

    def sample_rss(self) -> float | None:
        """Each process's peak so far; the total counts the service with its workers."""
        if self.process is not None and self.process.poll() is None:
            pids = {"main": self.process.pid}
            pids |= {f"worker {child}": child for child in child_pids(self.process.pid)}
            for name, pid in pids.items():
                value = peak_rss_mb(pid)
                if value is not None:
                    self.peak_rss_parts[name] = max(self.peak_rss_parts.get(name, 0.0), value)
            if self.peak_rss_parts:
                self.peak_rss_mb = sum(self.peak_rss_parts.values())
        return self.peak_rss_mb

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (a clean shutdown), wait; the peak RSS is sampled just before."""
        if self.process is None:
            return 0
        self.sample_rss()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise BenchError(
                    f"codered run did not stop within {timeout:g} s of SIGTERM"
                ) from None
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def log_lines(self) -> list[dict[str, Any]]:
        """The service's JSON log lines (anything else, such as a traceback, is skipped)."""
        lines = []
        with contextlib.suppress(OSError):
            for text in self.log.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    entry = json.loads(text)
                    if isinstance(entry, dict):
                        lines.append(entry)
        return lines

    def wait_for_log(self, message: str, timeout: float) -> None:
        """Wait until a log line's message starts with ``message`` (BenchError on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if any(str(e.get("message", "")).startswith(message) for e in self.log_lines()):
                return
            time.sleep(0.1)
        raise BenchError(f"the service never logged {message!r}:\n{self.log_tail()}")

    def log_levels(self) -> Counter[str]:
        return Counter(str(entry.get("level")) for entry in self.log_lines())

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


class DbProbe:
    """Read-only SQL against the service's database while it runs, from the benchmark.

    SQLite is read with the standard library (a WAL reader never blocks the writer);
    PostgreSQL with one kept-open asyncpg connection on a private event loop. Queries
    are constant SQL, with no parameters, so one text works on both."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._sqlite: sqlite3.Connection | None = None
        self._path = Path(parsed.database or "") if self.is_sqlite else None
        self._dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pg: Any = None

    def _connect(self) -> None:
        if self.is_sqlite:
            if self._sqlite is None:
                assert self._path is not None
                if not self._path.exists():  # not created yet: do not create it ourselves
                    raise sqlite3.OperationalError("database file does not exist yet")
                self._sqlite = sqlite3.connect(self._path, timeout=30)
        elif self._pg is None:
            import asyncpg

            self._loop = asyncio.new_event_loop()
            self._pg = self._loop.run_until_complete(asyncpg.connect(self._dsn))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        self._connect()
        if self._sqlite is not None:
            return list(self._sqlite.execute(sql).fetchall())
        assert self._loop is not None
        records = self._loop.run_until_complete(self._pg.fetch(sql))
        return [tuple(record) for record in records]

    def scalar(self, sql: str) -> Any:
        found = self.rows(sql)
        return found[0][0] if found else None

    def try_rows(self, sql: str) -> list[tuple[Any, ...]] | None:
        """``rows``, or None while the schema does not exist yet (the service is starting)."""
        try:
            return self.rows(sql)
        except Exception as exc:
            if _schema_missing(exc):
                return None
            raise

    def mailbox_states(self) -> dict[str, str]:
        found = self.try_rows("SELECT mailbox, state FROM mailbox_state") or []
        return {str(name): str(state) for name, state in found}

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        if self._pg is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._pg.close())
            self._loop.close()
            self._pg = None


def _schema_missing(exc: Exception) -> bool:
    text = str(exc).lower()
    return (
        "no such table" in text
        or "does not exist" in text
        or type(exc).__name__ == "UndefinedTableError"
    )


def wait_until(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
    alive: Callable[[], None] | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy; BenchError naming ``what``
    when ``timeout`` passes. ``alive`` is called each round (to notice a dead service)."""
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None:
            alive()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def wait_for_watchers(
    service: ServiceProcess | list[ServiceProcess],
    probe: DbProbe,
    mailboxes: tuple[Mailbox, ...],
    *,
    timeout: float = 60.0,
    interval: float = 0.02,
) -> float:
    """Wait until every mailbox is baselined and its watcher idles; returns the moment.

    The row in ``mailbox_state`` appears at the baseline; ``state = 'idle'`` is written
    when the watcher's first IDLE is under way, i.e. the service would now see new mail."""
    services = service if isinstance(service, list) else [service]
    names = {box.name for box in mailboxes}

    def alive() -> None:
        for each in services:
            each.check_alive()

    def ready() -> float | None:
        states = probe.mailbox_states()
        if names <= set(states) and all(states[n] == "idle" for n in names):
            return time.monotonic()
        return None

    return wait_until(
        ready, timeout, f"{sorted(names)} to be baselined and idle", alive=alive, interval=interval
    )
