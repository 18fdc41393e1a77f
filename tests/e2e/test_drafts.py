"""Drafts from the command line, end to end: facts → offline draft → checks → approval →
the customer's thread at a real SMTP peer, with every step in the audit trail."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from codered import audit
from codered.db.engine import Database
from codered.db.models import AuditEntry
from codered.embedded import EmbeddedImapServer, SmtpSink
from codered.settings import Settings
from mailer.headers import header_names
from tests.support import mail
from tests.support.cli import run_cli, write_config
from tests.support.service import RunningService, make_settings, query


@dataclass
class Acknowledged:
    settings: Settings
    config: Path
    sink: SmtpSink
    complaint_id: str
    reference: str

    def cli(self, *args: str | Path, stdin: str | None = None) -> Any:
        return run_cli(*args, config=self.config, stdin=stdin)


@pytest.fixture
def acknowledged(tmp_path: Path) -> Iterator[Acknowledged]:
    """One outage complaint, acknowledged by the real service; the service is then stopped
    so that the CLI alone drafts, approves and sends."""
    with EmbeddedImapServer() as imap, SmtpSink() as sink:
        settings = make_settings(
            tmp_path, imap.port, sink.port, username=imap.username, password=imap.password
        )
        config = write_config(tmp_path / "codered.toml", settings)
        with RunningService(settings) as service:
            service.wait_for_baseline()
            complaint_id, raw = mail.outage_complaint()
            imap.append(raw)
            sink.wait_for(1, timeout=20)
        [incident] = json.loads(run_cli("incidents", "list", "--json", config=config).stdout)
        yield Acknowledged(settings, config, sink, complaint_id, incident["reference"])


def _audit_kinds(settings: Settings) -> list[str]:
    async def work(db: Database) -> list[str]:
        async with db.read() as session:
            return list((await session.scalars(select(AuditEntry.kind))).all())

    return query(settings, work)


def _chain_ok(settings: Settings) -> bool:
    async def work(db: Database) -> bool:
        async with db.read() as session:
            return (await audit.verify(session)).ok

    return query(settings, work)


def test_summary_from_facts_is_checked_edited_approved_and_sent_in_the_thread(
    acknowledged: Acknowledged, tmp_path: Path
) -> None:
    ref, cli = acknowledged.reference, acknowledged.cli
    assert cli("incidents", "note", ref, "The API returned 503 errors from 09:10 to 09:55 UTC.",
               "--about", "what", "--as", "alice").returncode == 0  # fmt: skip
    cli("incidents", "note", ref, "A configuration change we deployed removed a route.",
        "--about", "why", "--as", "alice")  # fmt: skip

    created = cli("drafts", "create", ref, "--kind", "summary", "--as", "alice", "--json")
    assert created.returncode == 0, created.stderr
    draft = json.loads(created.stdout)
    assert draft["status"] == "pending" and draft["template"] is True
    assert draft["model"] == "offline-template"
    assert any("Template draft" in note for note in draft["notes_to_csm"])
    # Only recorded facts are used; the two unanswered questions are placeholders, and say so.
    assert "removed a route" in draft["text"] and "[To be completed" in draft["text"]
    missing = {f["section"] for f in draft["finding_list"] if f["rule"] == "missing_answer"}
    assert missing == {"resolution", "prevention"}

    listing = json.loads(cli("drafts", "list", "--json").stdout)
    assert {"id", "incident", "kind", "status", "model", "created_at"} <= set(listing[0])
    assert listing[0]["incident"] == ref and listing[0]["kind"] == "summary"

    # A blocking finding stops the approval, with the findings named.
    blocked = cli("drafts", "approve", str(draft["id"]), "--as", "bob")
    assert blocked.returncode == 1 and "missing_answer" in blocked.stderr
    assert len(acknowledged.sink.messages) == 1

    # The CSM fills the gaps; the edit is re-checked and goes out.
    edited = (
        draft["text"]
        .replace(
            "[To be completed: what we are doing to resolve it, with times.]",
            "We rolled the change back at 09:55 UTC and are replaying the failed requests.",
        )
        .replace(
            "[To be completed: how we will prevent it (a process change).]",
            "Every routing change now goes through a staged rollout with automatic checks.",
        )
    )
    edit_file = tmp_path / "edit.txt"
    edit_file.write_text(edited, encoding="utf-8")
    approved = cli("drafts", "approve", str(draft["id"]), "--edit-file", edit_file, "--as", "bob")
    assert approved.returncode == 0, approved.stderr
    assert "approved (edited)" in approved.stdout and "delivery: sent" in approved.stdout

    ack, reply = acknowledged.sink.wait_for(2, timeout=10)
    message = email.message_from_bytes(reply.raw, policy=policy.default)
    assert reply.recipients == ("dana@northwind.example",)
    assert message["In-Reply-To"] == acknowledged.complaint_id
    ack_id = email.message_from_bytes(ack.raw, policy=policy.default)["Message-ID"]
    assert str(message["References"]).split() == [acknowledged.complaint_id, ack_id]
    assert f"[{ref}]" in message["Subject"]
    assert message["Auto-Submitted"] is None, "a person approved it: not an automatic reply"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert "staged rollout" in message.get_content()
    assert "[To be completed" not in message.get_content()
    assert "Cc" not in header_names(reply.raw) and "Bcc" not in header_names(reply.raw)

    shown = json.loads(cli("drafts", "show", str(draft["id"]), "--json").stdout)
    assert shown["status"] == "approved" and shown["decided_by"] == "bob"
    assert shown["finding_list"] == [] and shown["delivery"]["status"] == "sent"
    kinds = _audit_kinds(acknowledged.settings)
    for kind in ("note.added", "draft.requested", "draft.created", "draft.edited",
                 "draft.approved", "mail.sent"):  # fmt: skip
        assert kind in kinds
    assert _chain_ok(acknowledged.settings)


def test_override_needs_a_reason_and_reject_needs_a_reason(acknowledged: Acknowledged) -> None:
    ref, cli = acknowledged.reference, acknowledged.cli
    draft = json.loads(cli("drafts", "create", ref, "--kind", "summary", "--json").stdout)
    blank = cli("drafts", "approve", str(draft["id"]), "--override", " ", "--as", "bob")
    assert blank.returncode == 1 and "blocking finding" in blank.stderr

    no_reason = cli("drafts", "reject", str(draft["id"]), "--reason", "", "--as", "bob")
    assert no_reason.returncode == 1 and "reason" in no_reason.stderr
    rejected = cli("drafts", "reject", str(draft["id"]), "--reason", "facts missing", "--as", "bob")
    assert rejected.returncode == 0
    again = cli("drafts", "approve", str(draft["id"]), "--as", "bob")
    assert again.returncode == 1 and "rejected by bob" in again.stderr

    update = json.loads(cli("drafts", "create", ref, "--kind", "update", "--json").stdout)
    overridden = cli(
        "drafts", "approve", str(update["id"]), "--override", "checked by hand", "--as", "carol"
    )
    assert overridden.returncode == 0, overridden.stderr
    shown = json.loads(cli("drafts", "show", str(update["id"]), "--json").stdout)
    # The update had no blocking finding, so no override is recorded for it.
    assert shown["override_reason"] is None
    assert len(acknowledged.sink.wait_for(2, timeout=10)) == 2


def test_every_kind_drafts_offline_and_a_rewrite_needs_text(acknowledged: Acknowledged) -> None:
    ref, cli = acknowledged.reference, acknowledged.cli
    recap = cli("drafts", "create", ref, "--kind", "recap", "--json",
                "--text", "Walked through the outage timeline.\naction: send the RCA by Friday\n"
                "Will credits apply?")  # fmt: skip
    body = json.loads(recap.stdout)
    assert "send the RCA by Friday" in body["text"] and "Will credits apply?" in body["text"]

    rewrite = cli("drafts", "create", ref, "--kind", "rewrite", "--json", "--text-file", "-",
                  stdin="You failed to configure the webhook!! FIX IT.")  # fmt: skip
    body = json.loads(rewrite.stdout)
    assert "!!" not in body["text"] and "FIX" not in body["text"]
    assert "blame" in {f["rule"] for f in body["finding_list"]}

    delay = json.loads(cli("drafts", "create", ref, "--kind", "delay", "--json").stdout)
    assert delay["status"] == "pending" and "You will hear from us by" in delay["text"]

    missing = cli("drafts", "create", ref, "--kind", "rewrite")
    assert missing.returncode == 1 and "needs the text" in missing.stderr
    unknown = cli("drafts", "create", "CR-9999", "--kind", "update")
    assert unknown.returncode == 1 and "no incident" in unknown.stderr
