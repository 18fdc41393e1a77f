"""Per-mailbox templates, timeline, policies and owner team: merged at load, refused early."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from codered.owners import assign_owner
from codered.settings import ConfigError, load_settings
from mailer.acknowledgement import render_acknowledgement
from policies.model import Severity
from tests.codered.test_settings import ENV, VALID

BILLING = """
[[mailboxes]]
name = "billing"
address = "billing@acme.example"
imap_host = "imap.acme.example"
imap_username = "billing@acme.example"
imap_password_env = "SUPPORT_IMAP_PASSWORD"
templates = "billing-templates"

[mailboxes.company]
name = "Acme Billing"
timezone = "America/New_York"

[mailboxes.timeline]
critical = "1 hour"
buffer = 1.0

[mailboxes.policies]
csms = ["bea", "bo"]
update_critical = "30 minutes"
notify = ["finance@acme.example"]
"""

TEMPLATE = """{greeting}

Billing questions matter{about_subject}. We will reply by {reply_by}.

Reference: {reference}
{company_name}
"""


def _config(tmp_path: Path, extra: str = BILLING, template: str | None = TEMPLATE) -> Path:
    if template is not None:
        folder = tmp_path / "billing-templates"
        folder.mkdir(exist_ok=True)
        (folder / "ack.en.txt").write_text(template, encoding="utf-8")
    path = tmp_path / "codered.toml"
    # [[mailboxes]] entries must precede [smtp] only in our reading; TOML allows any order.
    path.write_text(VALID + '\n[policies]\ncsms = ["sam"]\n' + extra, encoding="utf-8")
    return path


def test_a_mailbox_sees_its_own_overrides_and_the_rest_stays_shared(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path), ENV)
    billing = settings.for_mailbox("billing")
    support = settings.for_mailbox("support")
    assert billing.company.name == "Acme Billing"
    assert billing.company.calendar().tz.key == "America/New_York"
    assert billing.company.business_hours == settings.company.business_hours  # not overridden
    assert billing.timeline.targets()[Severity.CRITICAL].amount == timedelta(hours=1)
    assert billing.timeline.buffer == 1.0
    assert billing.timeline.high == settings.timeline.high
    assert billing.policies.csms == ["bea", "bo"]
    assert billing.policies.notify == ["finance@acme.example"]
    assert billing.policies.clock_seconds == settings.policies.clock_seconds
    assert support.company.name == "Acme Cloud"
    assert support.policies.csms == ["sam"]
    # An incident without an account owner goes to the mailbox's own team.
    assert {assign_owner(billing, "x@contoso.example", n) for n in range(4)} == {"bea", "bo"}
    assert assign_owner(support, "x@contoso.example", 7) == "sam"


def test_the_mailbox_template_replaces_the_built_in_one(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path), ENV)
    template = settings.mailbox("billing").acknowledgement_template("en")
    assert template is not None
    assert settings.mailbox("billing").acknowledgement_template("de") is None
    assert settings.mailbox("support").acknowledgement_template("en") is None
    text = render_acknowledgement(
        language="en",
        display_name="Marcus Lee",
        email="marcus@contoso.example",
        subject="Invoice {0} wrong",
        category=None,
        reply_by=datetime(2026, 12, 1, 15, 0, tzinfo=UTC),
        display_tz=UTC,
        reference="CR-1001",
        company_name="Acme Billing",
        template=template,
    ).text
    assert "Billing questions matter" in text
    assert "Reference: CR-1001" in text
    assert "Tuesday, 1 December 2026 at 15:00 UTC" in text
    assert "Invoice {0} wrong" in text  # braces in the subject are data


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("Hello {greeting}, reference {reference}.", "must contain {reply_by}"),
        ("By {reply_by}, {reference}, {agent_name}", "unknown placeholder {agent_name}"),
        ("By {reply_by {reference}", "not a valid template"),
        ("By {reply_by} ({reference}). This is your fault.", "wording"),
    ],
)
def test_a_broken_template_stops_the_start_with_its_path(
    tmp_path: Path, template: str, complaint: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_config(tmp_path, template=template), ENV)
    message = str(caught.value)
    assert complaint in message
    assert "ack.en.txt" in message


def test_a_missing_template_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"billing-templates is not a directory"):
        load_settings(_config(tmp_path, template=None), ENV)


def test_service_wide_policies_cannot_be_set_per_mailbox(tmp_path: Path) -> None:
    extra = BILLING.replace('csms = ["bea", "bo"]', 'csms = ["bea"]\nclock_seconds = 5')
    with pytest.raises(ConfigError, match=r"mailbox billing: policies clock_seconds can only"):
        load_settings(_config(tmp_path, extra), ENV)


def test_a_wrong_override_value_names_the_mailbox_and_the_key(tmp_path: Path) -> None:
    extra = BILLING.replace('critical = "1 hour"', 'critical = "soonish"')
    with pytest.raises(ConfigError, match=r"mailbox billing: critical"):
        load_settings(_config(tmp_path, extra), ENV)
    extra = BILLING.replace('timezone = "America/New_York"', 'timezone = "Mars/Olympus"')
    with pytest.raises(ConfigError, match=r"mailbox billing"):
        load_settings(_config(tmp_path, extra), ENV)
