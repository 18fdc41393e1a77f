"""The incident report, from a database the real service and the real CLI built.

One complaint is acknowledged by the running service, a CSM records facts and approves
the summary through ``codered``; a call and two settled promises are added with the ORM
(their commands are not part of this test). The report must tell that story in Markdown,
PDF and JSON without customer text breaking its tables or its fonts.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from codered import audit
from codered.db.engine import Database
from codered.db.models import Call, Promise, utcnow
from codered.embedded import EmbeddedImapServer, SmtpSink
from codered.queries import find_incident
from codered.report import (
    CallLine,
    IncidentReport,
    MessageLine,
    TimelineEvent,
    duration_words,
    incident_report,
)
from codered.report_render import to_markdown, to_pdf
from codered.settings import Settings
from tests.support import mail
from tests.support.cli import cli_env, codered_command, run_cli, write_config
from tests.support.service import RunningService, make_settings, query

PIPE_NOTE = "Tiers | plans differ\nper region"
FOREIGN_NOTE = "Проблема с API — 東京"
CALL_NOTES = "Walked through the outage timeline.\nNext | steps: send the RCA"
STAGED = "Every routing change now goes through a staged rollout with automatic checks."


@dataclass
class Built:
    settings: Settings
    config: Path
    incident: dict[str, Any]
    approval_draft_id: int
    promises_before: dict[str, int]

    @property
    def reference(self) -> str:
        return str(self.incident["reference"])

    def report(self) -> IncidentReport:
        async def work(db: Database) -> IncidentReport:
            async with db.read() as session:
                return await incident_report(session, self.reference, now=utcnow())

        return query(self.settings, work)

    def cli(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        command = [*codered_command(), "incidents", "report", *map(str, args)]
        completed = subprocess.run(
            [*command, "--config", str(self.config)],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=120,
            check=False,
        )
        assert "Traceback" not in completed.stdout + completed.stderr, completed.stderr
        return completed


def _approve_summary(reference: str, config: Path, tmp: Path) -> int:
    def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
        done = run_cli(*args, config=config)
        assert done.returncode == 0, done.stderr
        return done

    cli("incidents", "note", reference, "The API returned 503 errors from 09:10 to 09:55 UTC.",
        "--about", "what", "--as", "alice")  # fmt: skip
    cli("incidents", "note", reference, "A configuration change we deployed removed a route.",
        "--about", "why", "--as", "alice")  # fmt: skip
    draft = json.loads(cli("drafts", "create", reference, "--kind", "summary", "--json").stdout)
    edited = (
        draft["text"]
        .replace(
            "[To be completed: what we are doing to resolve it, with times.]",
            "We rolled the change back at 09:55 UTC and are replaying the failed requests.",
        )
        .replace("[To be completed: how we will prevent it (a process change).]", STAGED)
    )
    (tmp / "edit.txt").write_text(edited, encoding="utf-8")
    approved = cli("drafts", "approve", str(draft["id"]), "--edit-file", tmp / "edit.txt",
                   "--as", "bob")  # fmt: skip
    assert "delivery: sent" in approved.stdout
    # Customer-ish text arrives after the summary, so it cannot block the approval.
    cli("incidents", "note", reference, PIPE_NOTE, "--as", "alice")
    cli("incidents", "note", reference, FOREIGN_NOTE, "--as", "alice")
    return int(draft["id"])


def _add_call_promises_and_events(settings: Settings, reference: str) -> dict[str, int]:
    """What the CLI of this test does not make: a call, a kept and a missed promise, a move,
    a policy event and an entry of a kind the report has never heard of."""

    async def work(db: Database) -> dict[str, int]:
        async with db.write() as session:
            incident = await find_incident(session, reference)
            statuses = await session.scalars(
                select(Promise.status).where(Promise.incident_id == incident.id)
            )
            before = {s: 0 for s in ("kept", "missed", "open")}
            for status in statuses:
                before[status] = before.get(status, 0) + 1
            opened = incident.opened_at
            session.add(Call(incident_id=incident.id, started_at=opened + timedelta(minutes=30),
                             duration_minutes=25, participants=["Dana Whit", "alice"],
                             notes=CALL_NOTES, logged_by="alice"))  # fmt: skip
            for status, hours in (("kept", 1), ("missed", 3)):
                promise = Promise(
                    incident_id=incident.id,
                    due_at=opened + timedelta(hours=2),
                    stated_at=opened + timedelta(minutes=40),
                    source="reply.update",
                    status=status,
                    settled_at=opened + timedelta(hours=hours),
                )
                session.add(promise)
            incident.owner = "alice"
            incident.status = "resolved"
            incident.resolved_at = opened + timedelta(hours=2, minutes=10)
            for kind, data in (
                ("incident.moved", {"from": "acknowledged", "to": "resolved"}),
                ("policy.update_due", {"policy": "update_cadence", "message": "due by 11:00"}),
                ("custom.thing", {"x": 1}),
            ):
                await audit.append(session, kind, data, actor="alice", incident_id=incident.id)
            return before

    return query(settings, work)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    tmp = tmp_path_factory.mktemp("report")
    with EmbeddedImapServer() as imap, SmtpSink() as sink:
        settings = make_settings(
            tmp, imap.port, sink.port, username=imap.username, password=imap.password
        )
        config = write_config(tmp / "codered.toml", settings)
        with RunningService(settings) as service:
            service.wait_for_baseline()
            imap.append(mail.outage_complaint()[1])
            sink.wait_for(1, timeout=20)
        [incident] = json.loads(run_cli("incidents", "list", "--json", config=config).stdout)
        draft_id = _approve_summary(incident["reference"], config, tmp)
        before = _add_call_promises_and_events(settings, incident["reference"])
        yield Built(settings, config, incident, draft_id, before)


def _row(markdown: str, *cells: str, text: str = "") -> str:
    """The first table row with each of ``cells`` as a whole cell and ``text`` anywhere."""
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    found = [r for r in rows if all(f"| {c} |" in r for c in cells) and text in r]
    assert found, f"no row with cells {cells} and text {text!r}"
    return found[0]


def test_markdown_tells_the_story(built: Built) -> None:
    md = to_markdown(built.report())
    ref, incident = built.reference, built.incident
    assert md.startswith(
        f"# Incident report {ref}: URGENT: production API down for all our users\n"
    )
    assert _row(md, "Reference", ref) and _row(md, "Severity", incident["severity"])
    assert "dana@northwind.example" in _row(md, "Customer")
    assert _row(md, "Owner", "alice") and _row(md, "Status", "resolved")
    opened = datetime.fromisoformat(incident["opened_at"])
    acked = datetime.fromisoformat(incident["acknowledged_at"])
    assert _row(md, "Time to acknowledge", duration_words(acked - opened))
    assert _row(md, "Time to resolve", "2 h 10 min")

    classified = f"classified as {incident['severity']} {incident['category']} (rule "
    assert _row(md, "codered", "decision", text=classified)
    assert _row(md, "codered", "acknowledgement.queued", text="queued to dana@northwind.example")
    approved = f"summary draft {built.approval_draft_id} approved with edits, to dana@northwind"
    assert _row(md, "bob", "draft.approved", text=approved)
    assert _row(md, "mail.sent", text="sent reply.summary to dana@northwind.example")
    assert _row(
        md, "alice", "note.added", "note (why): A configuration change we deployed removed a route."
    )
    assert _row(md, "incident.moved", "moved from acknowledged to resolved")
    assert _row(md, "policy.update_due", "update_cadence: update due: due by 11:00")
    assert _row(md, "custom.thing", "custom.thing")

    assert _row(md, "in", "email", "dana@northwind.example")
    assert _row(md, "out", "acknowledgement", "dana@northwind.example", "sent")
    assert _row(md, "out", "reply.summary", "dana@northwind.example", "sent")
    call = "Walked through the outage timeline.<br>Next \\| steps: send the RCA"
    assert _row(md, "25 min", "Dana Whit, alice", call)
    kept, missed = built.promises_before["kept"] + 1, built.promises_before["missed"] + 1
    assert f"**Promises: {kept} kept, {missed} missed, " in md
    assert _row(md, "reply.update", "kept") and _row(md, "reply.update", "missed")
    summary = md.split("## Summary sent\n", 1)[1]
    assert f"> {STAGED}" in summary.splitlines()
    assert all(line.startswith(">") for line in summary.strip().splitlines())
    assert "not sent yet" not in md


def _cells(row: str) -> int:
    """Cells in a GFM table row: pipes not escaped by an odd run of backslashes, minus one."""
    return len(re.findall(r"(?<!\\)(?:\\\\)*\|", row)) - 1


def test_customer_text_cannot_break_a_table(built: Built) -> None:
    md = to_markdown(built.report())
    tables: list[list[str]] = [[]]
    for line in md.splitlines():
        if line.startswith("|"):
            tables[-1].append(line)
        elif tables[-1]:
            tables.append([])
    tables = [t for t in tables if t]
    assert len(tables) == 5  # facts, timeline, messages, calls, promises
    for table in tables:
        assert len({_cells(row) for row in table}) == 1, table
    assert "note: Tiers \\| plans differ per region" in md
    assert FOREIGN_NOTE in md

    markdown_it = pytest.importorskip("markdown_it")
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(md)
    for table_html in re.findall(r"<table>.*?</table>", html, re.S):
        rows = re.findall(r"<tr>.*?</tr>", table_html, re.S)
        widths = {len(re.findall(r"<t[hd][ >]", tr)) for tr in rows}
        assert len(widths) == 1
    assert "<td>Walked through the outage timeline.<br>Next | steps: send the RCA</td>" in html


def _page_streams(pdf: bytes) -> bytes:
    """Every compressed stream of ``pdf``, inflated (core-font text is readable there)."""
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            out.append(zlib.decompress(stream))
        except zlib.error:
            out.append(stream)
    return b"\n".join(out)


def _pdf_text(pdf: bytes) -> str | None:
    """The text of every page with pypdf when it is installed, else None."""
    try:
        pypdf = importlib.import_module("pypdf")
    except ImportError:
        return None
    return "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_pdf_is_a4_and_survives_any_script(built: Built) -> None:
    report = built.report()
    unicode_pdf, core_pdf = to_pdf(report), to_pdf(report, fonts=())
    for pdf in (unicode_pdf, core_pdf):
        assert pdf.startswith(b"%PDF") and len(pdf) > 3000
        assert b"/MediaBox [0 0 595.28 841.89]" in pdf, "A4"
        # The document title carries the reference whatever the font encodes the page with.
        assert f"/Title (Incident report {built.reference})".encode() in pdf
        text = _pdf_text(pdf)
        assert text is None or (built.reference in text and STAGED in text)
    assert b"/FontFile2" in unicode_pdf, "the Unicode TTF font is embedded"
    # Core Helvetica: latin-1 text in the page streams; what latin-1 cannot say became "?".
    streams = _page_streams(core_pdf)
    assert f"Incident report {built.reference}".encode() in streams
    assert STAGED.encode() in streams and b"note: ???????? ? API - ??" in streams


def test_pdf_never_fails_on_hostile_text() -> None:
    """Scripts no font here has, emoji, control characters and one endless word."""
    now = utcnow()
    hostile = "مرحبا 東京 😀 Ünïcødé \x00\x0b\ttab\r\n" + "x" * 400
    report = IncidentReport(
        "CR-1", hostile, hostile, hostile, None, "high", None, "held", now, None, None, now,
        None, None, (TimelineEvent(now, hostile, "note.added", hostile),),
        (MessageLine(None, "in", "email", hostile, hostile, "pending"),),
        (CallLine(now, 5, (hostile,), hostile),), (), hostile, "pending",
    )  # fmt: skip
    for pdf in (to_pdf(report), to_pdf(report, fonts=())):
        assert pdf.startswith(b"%PDF")
    md = to_markdown(report)
    assert md.startswith("# Incident report CR-1: مرحبا") and "\x00" not in md.split("\n")[0]
    assert "_Approved, not sent yet (outbox: pending)._" in md


def test_json_is_complete(built: Built) -> None:
    data = json.loads(json.dumps(built.report().to_dict()))
    assert data["reference"] == built.reference and data["owner"] == "alice"
    assert data["time_to_resolve_seconds"] == 130 * 60
    assert data["promise_counts"]["missed"] == built.promises_before["missed"] + 1
    assert data["calls"][0]["participants"] == ["Dana Whit", "alice"]
    assert STAGED in data["summary"] and data["summary_status"] == "sent"
    assert {"at", "actor", "kind", "description"} == set(data["timeline"][0])


def test_duration_words() -> None:
    assert duration_words(timedelta(seconds=20)) == "under 1 min"
    assert duration_words(timedelta(minutes=4, seconds=59)) == "4 min"
    assert duration_words(timedelta(hours=2, minutes=10)) == "2 h 10 min"
    assert duration_words(timedelta(hours=2)) == "2 h"
    assert duration_words(timedelta(days=1, hours=3)) == "1 d 3 h"


def test_cli_prints_markdown_writes_pdf_and_refuses_mistakes(built: Built, tmp_path: Path) -> None:
    shown = built.cli(built.reference.lower())
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"# Incident report {built.reference}: ")
    assert FOREIGN_NOTE in shown.stdout

    target = tmp_path / "report.pdf"
    written = built.cli(built.reference, "--format", "pdf", "--output", target)
    assert written.returncode == 0, written.stderr
    assert target.read_bytes().startswith(b"%PDF") and str(target) in written.stdout

    as_json = built.cli(built.reference, "--format", "json")
    assert json.loads(as_json.stdout)["reference"] == built.reference

    no_output = built.cli(built.reference, "--format", "pdf")
    assert no_output.returncode == 2 and "--output" in no_output.stderr
    unknown = built.cli("CR-9999")
    assert unknown.returncode == 1 and "no incident" in unknown.stderr
