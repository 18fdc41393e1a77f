"""The configuration file: names the key and the file on every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from codered.settings import ConfigError, load_settings, resolve_config_path

VALID = """
[database]
url = "sqlite+aiosqlite:///codered.db"

[company]
name = "Acme Cloud"
timezone = "Europe/Berlin"
business_hours = "09:00-17:00"
business_days = "mon-fri"
holidays = "DE"

[[mailboxes]]
name = "support"
address = "support@acme.example"
imap_host = "imap.acme.example"
imap_port = 993
imap_security = "tls"
imap_username = "support@acme.example"
imap_password_env = "SUPPORT_IMAP_PASSWORD"
folder = "INBOX"

[smtp]
host = "smtp.acme.example"
port = 587
security = "starttls"
username = "support@acme.example"
password_env = "SMTP_PASSWORD"
from_name = "Acme Customer Success"

[llm]
model = "offline"
"""

ENV = {"SUPPORT_IMAP_PASSWORD": "imap-secret", "SMTP_PASSWORD": "smtp-secret"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "codered.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_example_loads_and_resolves_secrets(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, VALID), ENV)
    assert settings.mailboxes[0].password() == "imap-secret"
    assert settings.smtp.resolved_password() == "smtp-secret"
    assert settings.company.calendar().tz.key == "Europe/Berlin"
    assert settings.own_addresses == frozenset({"support@acme.example"})


def test_missing_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace('host = "smtp.acme.example"\n', ""))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, ENV)
    message = str(caught.value)
    assert str(path) in message
    assert "[smtp] host" in message and "required" in message


def test_misspelled_key_is_reported_as_unknown(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace("imap_port = 993", "imap_prot = 993"))
    with pytest.raises(ConfigError, match=r"\[\[mailboxes\]\] #1 imap_prot: unknown key"):
        load_settings(path, ENV)


def test_wrong_value_names_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace('imap_security = "tls"', 'imap_security = "ssl"'))
    with pytest.raises(ConfigError, match=r"imap_security"):
        load_settings(path, ENV)


def test_bad_timezone_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace("Europe/Berlin", "Mars/Olympus"))
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        load_settings(path, ENV)


def test_secret_env_variable_that_is_not_set_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SUPPORT_IMAP_PASSWORD"):
        load_settings(_write(tmp_path, VALID), {"SMTP_PASSWORD": "x"})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    env = {**ENV, "CODERED_SMTP__HOST": "relay.internal", "CODERED_MAILBOXES__0__FOLDER": "Support"}
    settings = load_settings(_write(tmp_path, VALID), env)
    assert settings.smtp.host == "relay.internal"
    assert settings.mailboxes[0].folder == "Support"


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(_write(tmp_path, "[company\nname="), ENV)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml", ENV)


def test_config_path_resolution_order(tmp_path: Path) -> None:
    given = tmp_path / "a.toml"
    assert resolve_config_path(given, {"CODERED_CONFIG": "b.toml"}) == given
    assert resolve_config_path(None, {"CODERED_CONFIG": "b.toml"}) == Path("b.toml")
    assert resolve_config_path(None, {}) == Path("codered.toml")


def test_an_empty_optional_value_means_not_set(tmp_path: Path) -> None:
    text = VALID.replace('model = "offline"', 'model = "openai/gpt-4o-mini"\napi_base = ""')
    text = text.replace(
        'username = "support@acme.example"\npassword_env', 'username = ""\npassword_env'
    )
    settings = load_settings(_write(tmp_path, text), ENV)
    assert settings.llm.api_base is None
    assert settings.smtp.username is None
