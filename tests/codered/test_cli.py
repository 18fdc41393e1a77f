"""The ``codered`` command line, run as a real subprocess against real servers.

Each test writes a real TOML file, runs the installed console script and reads
exit code, stdout and stderr, the way an operator would. The service itself runs
in-process (``RunningService``) against pymap and aiosmtpd to put rows in the
database that the listings and retries then work on.
"""

from __future__ import annotations

import email
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from codered.db.migrate import head_revision
from codered.embedded import EmbeddedImapServer, SmtpSink, free_port
from codered.settings import Settings
from tests.e2e.helpers import dead_letters, inbound, incidents, outbox, processed
from tests.support import mail
from tests.support.cli import cli_env, codered_command, write_config
from tests.support.service import RunningService, make_settings, wait_until

INCIDENT_KEYS = {
    "reference",
    "customer",
    "subject",
    "category",
    "severity",
    "status",
    "acknowledged_at",
    "reply_by",
}
OUTBOX_KEYS = {"message_id", "to", "subject", "kind", "status", "attempts", "sent_at", "last_error"}
DEAD_LETTER_KEYS = {"reason", "when", "mailbox"}


# --- running the command -------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return json.loads(self.out)


def _start(args: tuple[str | Path, ...], env: dict[str, str] | None, cwd: Path | None) -> Any:
    return subprocess.Popen(
        [*codered_command(), *(str(a) for a in args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or cli_env(),
        cwd=cwd,
    )


def _finish(process: Any) -> Result:
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"{process.args} did not finish within 60 s:\n{out}{err}") from None
    result = Result(process.returncode, out, err)
    assert "Traceback" not in result.both, result.both
    return result


def codered(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Result:
    """Run one command to its end."""
    return _finish(_start(args, env, cwd))


def codered_all(*commands: tuple[str | Path, ...]) -> list[Result]:
    """Run independent commands side by side (each one is mostly interpreter start-up)."""
    processes = [_start(args, None, None) for args in commands]
    return [_finish(process) for process in processes]


# --- writing configuration files -----------------------------------------------------------


def sqlite_path(settings: Settings) -> Path:
    return Path(settings.database.url.removeprefix("sqlite+aiosqlite:///"))


def copy_database(settings: Settings, folder: Path) -> Settings:
    """A private copy of the scenario's database, so a test may change it freely."""
    target = folder / "copy.db"
    source, copy = sqlite3.connect(sqlite_path(settings)), sqlite3.connect(target)
    with closing(source), closing(copy):
        source.backup(copy)
    return settings.model_copy(
        update={
            "database": settings.database.model_copy(
                update={"url": f"sqlite+aiosqlite:///{target}"}
            )
        }
    )


def mime_bomb(parts: int) -> bytes:
    """A message with ``parts`` text parts: over the parser's limit, so it is dead-lettered."""
    head = (
        "From: Mallory <mallory@evil.example>\r\nTo: support@acme.example\r\n"
        "Subject: everything is down and broken\r\nMessage-ID: <bomb.cli@evil.example>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="sep"\r\n\r\n'
    )
    body = "".join("--sep\r\nContent-Type: text/plain\r\n\r\nhello\r\n" for _ in range(parts))
    return (head + body + "--sep--\r\n").encode()


# --- commands that need no server ----------------------------------------------------------

BROKEN_SMTP = """\
[company]
name = "Acme Cloud"

[[mailboxes]]
name = "support"
address = "support@acme.example"
imap_host = "127.0.0.1"
imap_username = "demouser"
imap_password = "demopass"

[smtp]
port = 2525
"""


def test_help_lists_every_command() -> None:
    result = codered("--help")
    assert result.code == 0
    commands = set()
    for line in result.out.splitlines():
        words = line.strip("│ ").split()
        if words:
            commands.add(words[0])
    assert {"demo", "run", "check", "db", "incidents", "outbox", "deadletters"} <= commands


def test_a_missing_key_names_the_key_and_the_file_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN_SMTP, encoding="utf-8")
    result = codered("incidents", "list", "--config", path)
    assert result.code == 2
    assert "[smtp] host" in result.err
    assert "required" in result.err
    assert str(path) in result.err
    assert result.out == ""


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    result = codered("db", "upgrade", "--config", path)
    assert result.code == 2
    assert str(path) in result.err
    assert "not found" in result.err
    assert not path.exists()


def _valid_settings(tmp_path: Path, db_name: str) -> Settings:
    return make_settings(
        tmp_path, 1143, 2525, database_url=f"sqlite+aiosqlite:///{tmp_path / db_name}"
    )


def test_config_comes_from_the_option_then_codered_config_then_the_working_directory(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "codered.toml").write_text(BROKEN_SMTP, encoding="utf-8")
    from_env = write_config(tmp_path / "env.toml", _valid_settings(tmp_path, "env.db"))
    from_option = write_config(tmp_path / "option.toml", _valid_settings(tmp_path, "option.db"))

    # No --config and no variable: ./codered.toml is read (and it is broken).
    result = codered("db", "upgrade", cwd=work)
    assert result.code == 2
    assert "codered.toml" in result.err and "[smtp] host" in result.err

    # $CODERED_CONFIG wins over ./codered.toml.
    result = codered("db", "upgrade", cwd=work, env=cli_env(CODERED_CONFIG=str(from_env)))
    assert result.code == 0, result.both
    assert (tmp_path / "env.db").is_file()
    assert not (tmp_path / "option.db").exists()

    # --config wins over $CODERED_CONFIG, even when the variable names a missing file.
    missing = cli_env(CODERED_CONFIG=str(tmp_path / "missing.toml"))
    result = codered("db", "upgrade", "--config", from_option, cwd=work, env=missing)
    assert result.code == 0, result.both
    assert (tmp_path / "option.db").is_file()


def test_db_upgrade_creates_the_schema_and_prints_the_revision(tmp_path: Path) -> None:
    settings = _valid_settings(tmp_path, "fresh.db")
    config = write_config(tmp_path / "codered.toml", settings)
    assert not sqlite_path(settings).exists()

    result = codered("db", "upgrade", "--config", config)
    assert result.code == 0, result.both
    head = head_revision()
    assert f"schema is at revision {head}" in result.out

    with closing(sqlite3.connect(sqlite_path(settings))) as db:
        [(version,)] = db.execute("select version_num from alembic_version").fetchall()
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
    assert version == head
    assert {"incidents", "outbox", "dead_letters", "inbound_messages"} <= tables


# --- listings, retries and checks against a service that has done some work ---------------


@dataclass
class Scenario:
    settings: Settings
    config: Path
    imap: EmbeddedImapServer
    sink: SmtpSink
    complaint_id: str


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """One complaint acknowledged, one question ignored, one MIME bomb dead-lettered.

    The servers stay up for the whole module (``codered check`` talks to them); the
    service has stopped by the time the tests run their commands.
    """
    folder = tmp_path_factory.mktemp("cli-scenario")
    with EmbeddedImapServer() as imap, SmtpSink() as sink:
        settings = make_settings(
            folder, imap.port, sink.port, username=imap.username, password=imap.password
        )
        with RunningService(settings) as service:
            service.wait_for_baseline()
            complaint_id, complaint = mail.outage_complaint()
            imap.append(complaint)
            imap.append(mail.question(sender="Sam Rivera <sam@wingtip.example>")[1])
            imap.append(mime_bomb(1500))
            sink.wait_for(1, timeout=20)
            wait_until(lambda: processed(settings, 3), 20, "three messages processed")
            wait_until(
                lambda: [o.status for o in outbox(settings)] == ["sent"], 10, "the ack recorded"
            )
        config = write_config(folder / "codered.toml", settings)
        yield Scenario(settings, config, imap, sink, complaint_id)


def test_listings_as_json_show_the_documented_fields(scenario: Scenario) -> None:
    config = scenario.config
    incidents_json, outbox_json, dead_json = codered_all(
        ("incidents", "list", "--json", "--config", config),
        ("outbox", "list", "--json", "--config", config),
        ("deadletters", "list", "--json", "--config", config),
    )
    [incident] = incidents_json.json()
    assert incident.keys() >= INCIDENT_KEYS
    assert incident["reference"].startswith("CR-")
    assert incident["customer"] == "dana@northwind.example"
    assert incident["subject"] == "URGENT: production API down for all our users"
    assert incident["category"] == "service_outage"
    assert incident["severity"] == "critical"
    assert incident["acknowledged_at"] is not None
    assert incident["reply_by"] > incident["acknowledged_at"]

    [row] = outbox_json.json()
    assert row.keys() >= OUTBOX_KEYS
    assert row["status"] == "sent"
    assert row["to"] == ["dana@northwind.example"]
    assert row["kind"] == "acknowledgement"
    assert row["attempts"] == 1
    assert row["sent_at"] is not None and row["last_error"] is None
    assert incident["reference"] in row["subject"]
    [sent] = scenario.sink.messages
    acknowledgement = email.message_from_bytes(sent.raw, policy=policy.default)
    assert acknowledgement["Message-ID"] == row["message_id"]
    assert acknowledgement["In-Reply-To"] == scenario.complaint_id

    [dead] = dead_json.json()
    assert dead.keys() >= DEAD_LETTER_KEYS
    assert dead["mailbox"] == "support"
    assert dead["reason"].startswith("cannot parse")
    assert "MIME parts" in dead["reason"]
    assert dead["when"]

    # The question was read and left alone: no incident, no mail.
    actions = {m.subject: m.action for m in inbound(scenario.settings)}
    assert actions["How do I rotate an API key?"] == "ignore"
    assert "sam@wingtip.example" not in json.dumps([incident, row])


def table_rows(text: str) -> list[dict[str, str]]:
    """The rows of a rich table as {column: cell}, with folded cells joined up again."""
    header: list[str] = []
    rows: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("┃"):
            header = [c.strip() for c in line.strip("┃").split("┃")]
        elif line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            if cells[0] or not rows:
                rows.append(cells)
            else:  # a continuation line of the row above
                rows[-1] = [a + b for a, b in zip(rows[-1], cells, strict=True)]
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_listings_as_tables_show_reference_and_message_id(scenario: Scenario) -> None:
    [incident] = incidents(scenario.settings)
    [sent] = outbox(scenario.settings)
    [dead] = dead_letters(scenario.settings)

    tables = codered_all(
        ("incidents", "list", "--config", scenario.config),
        ("outbox", "list", "--config", scenario.config),
        ("deadletters", "list", "--config", scenario.config),
    )
    assert [t.code for t in tables] == [0, 0, 0]
    assert all(not t.out.lstrip().startswith("[") for t in tables)  # tables, not JSON
    [row] = table_rows(tables[0].out)
    assert row["reference"] == incident.reference
    assert row["customer"] == "dana@northwind.example"
    assert row["severity"] == "critical"

    [row] = table_rows(tables[1].out)
    assert row["message id"] == sent.message_id
    assert row["status"] == "sent"
    assert row["to"] == "dana@northwind.example"

    [row] = table_rows(tables[2].out)
    assert row["id"] == str(dead.id)
    assert row["reason"].startswith("cannot parse")
    assert row["mailbox"] == "support"


def test_retrying_a_dead_letter_runs_it_again_and_keeps_the_history(
    scenario: Scenario, tmp_path: Path
) -> None:
    settings = copy_database(scenario.settings, tmp_path)
    config = write_config(tmp_path / "codered.toml", settings)
    [dead] = dead_letters(settings)

    result = codered("deadletters", "retry", str(dead.id), "--config", config)
    assert result.code == 1
    assert f"dead letter {dead.id}: dead_letter" in result.out
    assert "cannot parse" in result.out and "MIME parts" in result.out

    history, still_open, again, unknown = codered_all(
        ("deadletters", "list", "--all", "--json", "--config", config),
        ("deadletters", "list", "--json", "--config", config),
        ("deadletters", "retry", str(dead.id), "--config", config),
        ("deadletters", "retry", "999", "--config", config),
    )
    by_status = {d["status"]: d for d in history.json()}
    assert len(history.json()) == 2
    assert set(by_status) == {"retried", "open"}
    assert by_status["retried"]["id"] == dead.id
    assert by_status["open"]["id"] != dead.id
    assert by_status["open"]["reason"] == dead.reason
    assert by_status["open"]["inbound_id"] == dead.inbound_id
    assert [d["id"] for d in still_open.json()] == [by_status["open"]["id"]]
    # Re-running it did not acknowledge anything.
    assert len(incidents(settings)) == 1 and len(outbox(settings)) == 1

    # The retried one cannot be retried a second time; an unknown one does not exist.
    assert again.code == 1 and "already retried" in again.err
    assert unknown.code == 1 and "no dead letter" in unknown.err


def _check_lines(result: Result) -> dict[str, str]:
    """``OK database: ...`` → {"database": "OK database: ..."}."""
    lines = {}
    for line in result.out.splitlines():
        mark, _, rest = line.strip().partition(" ")
        name = rest.strip().partition(":")[0]
        if mark in {"OK", "WARN", "FAIL"} and name:
            lines[name] = line
    return lines


def test_check_reports_one_line_per_connection(scenario: Scenario) -> None:
    result = codered("check", "--config", scenario.config)
    assert result.code == 0, result.both
    lines = _check_lines(result)
    assert {"database", "imap support", "smtp", "model"} <= lines.keys()
    assert all(line.strip().startswith("OK") for line in lines.values()), result.out
    assert "IDLE supported" in lines["imap support"]
    assert f"127.0.0.1:{scenario.sink.port}" in lines["smtp"]
    assert "sync support" in lines  # the mailbox state the service left behind
    assert "cursor" in lines["sync support"]


def test_check_with_a_wrong_imap_password_fails_on_the_imap_line(
    scenario: Scenario, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "codered.toml", scenario.settings, imap_password="wrong")
    result = codered("check", "--config", config)
    assert result.code == 1
    lines = _check_lines(result)
    assert lines["imap support"].strip().startswith("FAIL")
    assert "login failed" in lines["imap support"]
    assert lines["smtp"].strip().startswith("OK")
    assert lines["database"].strip().startswith("OK")


# --- outbox retry after a permanent SMTP failure -------------------------------------------


class RejectEveryRecipient:
    """aiosmtpd handler: the mailbox does not exist, for everybody."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        return "550 5.1.1 no such user"


@pytest.fixture
def rejecting_smtp() -> Iterator[int]:
    controller = Controller(RejectEveryRecipient(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def test_outbox_retry_resends_a_failed_message_with_the_same_message_id(
    pymap_server: EmbeddedImapServer,
    smtp_sink: SmtpSink,
    rejecting_smtp: int,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path,
        pymap_server.port,
        rejecting_smtp,
        username=pymap_server.username,
        password=pymap_server.password,
    )
    with RunningService(settings) as service:
        service.wait_for_baseline()
        pymap_server.append(mail.billing_complaint()[1])
        wait_until(
            lambda: [o.status for o in outbox(settings)] == ["failed"], 20, "a failed outbox row"
        )

    rejected = write_config(tmp_path / "rejected.toml", settings)
    [failed] = codered(
        "outbox", "list", "--json", "--status", "failed", "--config", rejected
    ).json()
    assert failed["status"] == "failed"
    assert "550" in failed["last_error"]
    assert failed["sent_at"] is None

    fixed = write_config(tmp_path / "codered.toml", settings, smtp_port=smtp_sink.port)
    result = codered("outbox", "retry", str(failed["id"]), "--config", fixed)
    assert result.code == 0, result.both
    assert f"outbox {failed['id']}: sent" in result.out

    [received] = smtp_sink.wait_for(1, timeout=10)
    message = email.message_from_bytes(received.raw, policy=policy.default)
    assert message["Message-ID"] == failed["message_id"]
    assert list(received.recipients) == failed["to"]

    listing, again, unknown = codered_all(
        ("outbox", "list", "--json", "--config", fixed),
        ("outbox", "retry", str(failed["id"]), "--config", fixed),
        ("outbox", "retry", "999", "--config", fixed),
    )
    [row] = listing.json()
    assert row["id"] == failed["id"]
    assert row["status"] == "sent"
    assert row["sent_at"] is not None
    assert row["attempts"] == failed["attempts"] + 1
    assert again.code == 1
    assert "already sent" in again.err
    assert len(smtp_sink.messages) == 1
    assert unknown.code == 1 and "no outbox message" in unknown.err


def test_a_bad_crash_point_stops_run_at_start_with_the_valid_names(tmp_path: Path) -> None:
    config = write_config(tmp_path / "codered.toml", _valid_settings(tmp_path, "crash.db"))
    result = codered("run", "--config", config, env=cli_env(CODERED_CRASH_AT="after_lunch:1"))
    assert result.code == 2
    assert "after_lunch" in result.err and "after_smtp_250" in result.err
