"""``codered init``: the first-run wizard, run as a real subprocess with answers on stdin.

The connection tests talk to a real pymap server and a real SMTP sink; the file the
wizard writes is loaded with :func:`codered.settings.load_settings` and checked with the
real ``codered check``.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from codered.embedded import EmbeddedImapServer, SmtpSink
from codered.init_wizard import render_config
from codered.settings import Settings, load_settings
from tests.support.cli import cli_env, codered_command, run_cli

ENV_NAMES = {"SUPPORT_IMAP_PASSWORD": "x", "SMTP_PASSWORD": "x"}


def codered_init(
    config: Path, answers: list[str], *options: str
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [*codered_command(), "init", "--config", str(config), *options],
        input="".join(f"{line}\n" for line in answers),
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=config.parent,
        timeout=60,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert "Traceback" not in output, output
    return completed


def company(*, timezone: str = "Europe/Berlin", holidays: str = "DE") -> list[str]:
    return ["Acme Cloud", timezone, "08:30-16:30", "mon-fri", holidays]


def mailbox(imap: EmbeddedImapServer | None, port: int = 993) -> list[str]:
    """Name, address, host, security, port, username, password variable."""
    if imap is None:
        return ["support", "support@acme.example", "imap.acme.example", "tls", str(port), "", ""]
    return ["support", "support@acme.example", imap.host, "none", str(imap.port), imap.username, ""]


def smtp(sink: SmtpSink | None) -> list[str]:
    """Host, security, port, username ("none": no login, so no password questions)."""
    if sink is None:
        return ["smtp.acme.example", "starttls", "", "support@acme.example", ""]
    return [sink.host, "none", str(sink.port), "none"]


def load(path: Path) -> Settings:
    return load_settings(path, environ=ENV_NAMES)


# --- the wizard against real servers ------------------------------------------------------


def test_a_first_run_tests_both_connections_and_writes_a_file_that_checks(
    pymap_server: EmbeddedImapServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    config = tmp_path / "codered.toml"
    answers = [
        *company(),
        "",  # the database: SQLite beside the file
        *mailbox(pymap_server),
        pymap_server.password,  # only for the test, never written
        *smtp(smtp_sink),
        "Acme Customer Success",
    ]
    result = codered_init(config, answers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK imap support: INBOX: 0 messages" in result.stdout
    assert f"OK smtp: 127.0.0.1:{smtp_sink.port} none" in result.stdout
    assert "export SUPPORT_IMAP_PASSWORD=" in result.stdout
    assert f"codered check --config {config}" in result.stdout
    assert "codered users add" in result.stdout and "codered run" in result.stdout
    assert not (tmp_path / "codered.toml.bak").exists()

    text = config.read_text(encoding="utf-8")
    assert pymap_server.password not in text
    assert "# one block per watched mailbox" in text  # commented like the README
    assert "# [[team]]" in text  # an example of what can be added

    settings = load(config)
    assert settings.company.name == "Acme Cloud"
    assert settings.company.timezone == "Europe/Berlin"
    assert settings.company.business_hours == "08:30-16:30"
    assert settings.company.holidays == "DE"
    assert settings.database.url == f"sqlite+aiosqlite:///{tmp_path / 'codered.db'}"
    [box] = settings.mailboxes
    assert (box.name, box.address) == ("support", "support@acme.example")
    assert (box.imap_host, box.imap_port, box.imap_security) == (
        "127.0.0.1",
        pymap_server.port,
        "none",
    )
    assert box.imap_username == pymap_server.username
    assert box.imap_password_env == "SUPPORT_IMAP_PASSWORD" and box.imap_password is None
    assert (settings.smtp.host, settings.smtp.port) == ("127.0.0.1", smtp_sink.port)
    assert settings.smtp.security == "none"
    assert settings.smtp.username is None and settings.smtp.password_env is None
    assert settings.smtp.from_name == "Acme Customer Success"
    assert settings.llm.model == "offline"

    check = run_cli(
        "check", config=config, env=cli_env(SUPPORT_IMAP_PASSWORD=pymap_server.password)
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "imap support: INBOX" in check.stdout


def test_a_wrong_imap_password_is_reported_and_asked_again(
    pymap_server: EmbeddedImapServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    config = tmp_path / "codered.toml"
    answers = [
        *company(),
        "",
        *mailbox(pymap_server),
        "not-the-password",
        "",  # "Re-enter the IMAP settings?" yes (the default)
        *[""] * 5,  # host, security, port, username, variable: as just answered
        pymap_server.password,
        *smtp(smtp_sink),
        "",
    ]
    result = codered_init(config, answers)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "FAIL imap support: login failed" in out
    assert "Re-enter the IMAP settings?" in out
    assert out.index("FAIL imap support") < out.index("OK imap support")
    assert out.count("IMAP host [127.0.0.1]") == 1  # the second time, with the first answer
    assert "not-the-password" not in config.read_text(encoding="utf-8")
    [box] = load(config).mailboxes
    assert box.imap_port == pymap_server.port and box.imap_username == pymap_server.username


def test_a_refused_smtp_connection_can_be_kept_as_given(
    pymap_server: EmbeddedImapServer, tmp_path: Path
) -> None:
    closed = SmtpSink().start()
    port = closed.port
    closed.stop()  # nothing listens there now
    config = tmp_path / "codered.toml"
    answers = [
        *company(),
        "",
        *mailbox(pymap_server),
        pymap_server.password,
        "127.0.0.1",
        "none",
        str(port),
        "none",
        "n",  # do not re-enter: keep it as given
        "",
    ]
    result = codered_init(config, answers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL smtp:" in result.stdout
    assert "kept as given" in result.stdout
    assert load(config).smtp.port == port


# --- editing an existing file -------------------------------------------------------------

HAND_ADDED = """
[llm]
model = "openai/gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"
classify = false

[[team]]
name = "alice"
email = "alice@acme.example"
manager = "maria"
"""


def test_running_again_offers_every_value_and_keeps_the_other_sections(tmp_path: Path) -> None:
    config = tmp_path / "codered.toml"
    first = [*company(), "", *mailbox(None), *smtp(None), "Acme Customer Success"]
    assert codered_init(config, first, "--no-test").returncode == 0
    before = load(config)
    # The operator writes their own [llm] over the default one, and a team member.
    text = config.read_text(encoding="utf-8")
    start = text.index("[llm]")
    end = text.index("\n[", start + 1)
    edited = text[:start] + text[end + 1 :] + HAND_ADDED
    config.write_text(edited, encoding="utf-8")

    # Enter for every question (and for the passwords: no connection test).
    result = codered_init(config, [""] * 40)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Company name (signs the acknowledgements) [Acme Cloud]" in out
    assert "Time zone (IANA name) [Europe/Berlin]" in out
    assert "IMAP host [imap.acme.example]" in out
    assert 'SMTP username ("none" for no login) [support@acme.example]' in out
    assert "IMAP connection not tested" in out

    assert (tmp_path / "codered.toml.bak").read_text(encoding="utf-8") == edited
    after = load(config)
    for section in ("database", "company", "smtp", "timeline", "limits", "web", "policies"):
        assert getattr(after, section) == getattr(before, section), section
    assert after.mailboxes[0].model_dump() == before.mailboxes[0].model_dump()
    assert after.mailboxes[0].imap_password_env == "SUPPORT_IMAP_PASSWORD"
    assert after.smtp.password_env == "SMTP_PASSWORD"
    assert after.llm.model == "openai/gpt-4o-mini"
    assert after.llm.api_key_env == "OPENAI_API_KEY" and after.llm.classify is False
    [alice] = after.team
    assert (alice.name, alice.email, alice.manager) == ("alice", "alice@acme.example", "maria")
    assert "# [[team]]" not in config.read_text(encoding="utf-8")  # no example beside the real one


def test_an_existing_file_that_is_not_toml_is_left_alone(tmp_path: Path) -> None:
    config = tmp_path / "codered.toml"
    config.write_text("[company\nname = 'Acme'\n", encoding="utf-8")
    result = codered_init(config, [""] * 40, "--no-test")
    assert result.returncode == 2
    assert "not valid TOML" in result.stderr and str(config) in result.stderr
    assert config.read_text(encoding="utf-8") == "[company\nname = 'Acme'\n"
    assert not (tmp_path / "codered.toml.bak").exists()


def test_input_that_ends_early_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "codered.toml"
    result = codered_init(config, ["Acme Cloud", "UTC"], "--no-test")
    assert result.returncode != 0
    assert not config.exists()


# --- refusing invalid answers -------------------------------------------------------------


def test_invalid_answers_are_refused_with_a_reason_and_asked_again(tmp_path: Path) -> None:
    config = tmp_path / "codered.toml"
    answers = [
        "Acme Cloud",
        "Mars/Base",
        "America/New_York",
        "9-5",
        "09:00-17:00",
        "weekdays",
        "mon-fri",
        "XX",
        "US",
        "",
        "support box",  # a mailbox name with a space
        "support",
        "not-an-address",
        "support@acme.example",
        "imap.acme.example",
        "ssl",
        "tls",
        "99999",
        "",  # the default port for tls
        "",
        "MY-PASSWORD",  # not a variable name
        "ACME_IMAP",
        *smtp(None),
        "",
    ]
    result = codered_init(config, answers, "--no-test")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "error: unknown time zone 'Mars/Base'" in out
    assert "IANA name" in out
    assert "error: unknown holidays country 'XX'" in out
    assert "ISO 3166" in out
    assert "must look like '09:00-17:00'" in out
    assert "unknown weekday 'weekdays'" in out
    assert "a mailbox name has 1 to 64 letters" in out
    assert "'not-an-address' is not an email address" in out
    assert "'ssl': answer tls, starttls or none" in out
    assert "'99999' is not a port" in out
    assert "'MY-PASSWORD' is not an environment variable name" in out
    assert out.count("Time zone (IANA name)") == 2

    settings = load_settings(config, environ={"ACME_IMAP": "x", "SMTP_PASSWORD": "x"})
    assert settings.company.timezone == "America/New_York"
    assert settings.company.holidays == "US"
    [box] = settings.mailboxes
    assert (box.imap_security, box.imap_port) == ("tls", 993)
    assert box.imap_password_env == "ACME_IMAP"


# --- the TOML writer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {
            "company": {"name": 'Acme "Cloud" \\ Ltd\n\t\x7f', "holidays": ""},
            "policies": {
                "csms": ["alice", "bob"],
                "notify": [],
                "escalation": [
                    {"name": "critical", "severities": ["critical"]},
                    {"name": "repeated", "repeated_complaints": 3, "mark_at_risk": True},
                ],
            },
            "web": {"port": 0, "session_hours": 1.5, "secure_cookies": False},
            "team": [{"name": "alice", "email": "a@x.example"}, {"name": "bob", "email": "b@x"}],
        },
        {
            "custom": {"nested": {"deeper": {"x": 1}}, "odd key": -2.5e-9},
            "mailboxes": [{"name": "a", "sub": {"y": [1, 2]}}],
            "timeline": {"buffer": float("inf")},
        },
    ],
)
def test_what_the_writer_writes_reads_back_the_same(data: dict[str, Any]) -> None:
    text = render_config(data)
    assert tomllib.loads(text) == data
    assert render_config(tomllib.loads(text)) == text  # stable: a second run changes nothing
