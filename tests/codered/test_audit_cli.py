"""``audit verify`` and ``audit export`` as real subprocesses, on a trail the real service wrote.

One module fixture runs the service against pymap and an SMTP sink until two complaints
are acknowledged, then the real ``codered`` command adds notes and an edited, approved,
sent summary. That database is backed up once ("pristine"); every test works on its own
copy (sqlite3 backup API), so tampering in one test never leaks into another.

Until ``audit_app`` is mounted as ``codered audit``, the audit commands run through
``python -c "from codered.cli_audit import audit_app; audit_app()"``.
"""

from __future__ import annotations

import asyncio
import csv
import getpass
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from codered import audit
from codered.audit_export import CSV_COLUMNS, sent_messages
from codered.db.engine import Database
from codered.embedded import EmbeddedImapServer, SmtpSink
from codered.settings import Settings
from tests.support import mail
from tests.support.cli import cli_env, codered_command, run_cli, write_config
from tests.support.service import RunningService, make_settings

# Once mounted: AUDIT = [*codered_command(), "audit"] (from tests.support.cli).
AUDIT = [*codered_command(), "audit"]
DANA = "dana@northwind.example"
LEE = "lee@contoso.example"
FORMULA = '=HYPERLINK("https://evil.example/x","open")'
COLUMNS = ("id", "at", "actor", "kind", "incident_id", "data", "prev_hash", "hash")


def _backup(source: Path, target: Path) -> None:
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _with_database(settings: Settings, path: Path) -> Settings:
    url = f"sqlite+aiosqlite:///{path}"
    return settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": url})}
    )


@dataclass(frozen=True)
class Copy:
    """A private copy of the pristine database and a config file that points at it."""

    db: Path
    config: Path
    settings: Settings

    def audit(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [*AUDIT, *(str(a) for a in args), "--config", str(self.config)],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=120,
            check=False,
        )
        assert "Traceback" not in completed.stdout + completed.stderr, completed.stderr
        return completed

    def export(self, *args: str | Path) -> list[dict[str, Any]]:
        done = self.audit("export", *args)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    def entries(self) -> list[dict[str, Any]]:
        with closing(sqlite3.connect(self.db)) as con:
            rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_log ORDER BY id").fetchall()
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows]

    def sql(self, statement: str, *params: Any) -> None:
        with closing(sqlite3.connect(self.db)) as con, con:
            con.execute(statement, params)

    def first(self, kind: str) -> int:
        return next(e["id"] for e in self.entries() if e["kind"] == kind)


@dataclass(frozen=True)
class Trail:
    settings: Settings
    pristine: Path
    reference: str
    """The outage incident: notes, an edited and approved summary, and its reply."""
    other: str
    """The billing incident: acknowledged, and one note by an actor named like a formula."""
    edited_text: str

    def copy(self, tmp_path: Path) -> Copy:
        db = tmp_path / "copy.db"
        _backup(self.pristine, db)
        settings = _with_database(self.settings, db)
        return Copy(db, write_config(tmp_path / "copy.toml", settings), settings)


def _fill_in(text: str) -> str:
    return text.replace(
        "[To be completed: what we are doing to resolve it, with times.]",
        "We rolled the change back at 09:55 UTC and are replaying the failed requests.",
    ).replace(
        "[To be completed: how we will prevent it (a process change).]",
        "Every routing change now goes through a staged rollout with automatic checks.",
    )


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    base = tmp_path_factory.mktemp("trail")
    with EmbeddedImapServer() as imap, SmtpSink() as sink:
        settings = make_settings(
            base, imap.port, sink.port, username=imap.username, password=imap.password
        )
        config = write_config(base / "codered.toml", settings)
        with RunningService(settings) as service:
            service.wait_for_baseline()
            imap.append(mail.outage_complaint()[1])
            sink.wait_for(1, timeout=20)
            imap.append(mail.billing_complaint(sender=f"Lee Park <{LEE}>")[1])
            sink.wait_for(2, timeout=20)

        def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
            done = run_cli(*args, config=config)
            assert done.returncode == 0, done.stderr
            return done

        incidents = json.loads(cli("incidents", "list", "--json").stdout)
        ref = next(i["reference"] for i in incidents if i["customer"] == DANA)
        other = next(i["reference"] for i in incidents if i["customer"] == LEE)
        cli("incidents", "note", ref, "The API returned 503 errors from 09:10 to 09:55 UTC.",
            "--about", "what", "--as", "alice")  # fmt: skip
        cli("incidents", "note", ref, "A configuration change we deployed removed a route.",
            "--about", "why", "--as", "alice")  # fmt: skip
        draft = json.loads(
            cli("drafts", "create", ref, "--kind", "summary", "--as", "alice", "--json").stdout
        )
        edited = _fill_in(draft["text"])
        assert edited != draft["text"]
        (base / "edit.txt").write_text(edited, encoding="utf-8")
        cli("drafts", "approve", str(draft["id"]), "--edit-file", base / "edit.txt", "--as", "bob")
        sink.wait_for(3, timeout=10)
        # Hostile-looking text for the CSV export: in a note, and as an actor's name.
        cli("incidents", "note", ref, FORMULA + " found in the logs", "--as", "alice")
        cli("incidents", "note", other, "Refund requested from billing.", "--as", FORMULA)
    pristine = base / "pristine.db"
    _backup(base / "codered.db", pristine)
    yield Trail(settings, pristine, ref, other, edited)


# --- verify ------------------------------------------------------------------------------


def test_verify_passes_on_the_untouched_trail_and_names_its_head(
    trail: Trail, tmp_path: Path
) -> None:
    copy = trail.copy(tmp_path)
    entries = copy.entries()
    kinds = {e["kind"] for e in entries}
    assert {"note.added", "draft.created", "draft.edited", "draft.approved", "mail.sent"} <= kinds
    done = copy.audit("verify")
    assert done.returncode == 0, done.stdout + done.stderr
    last = entries[-1]
    assert done.stdout.strip() == (
        f"audit trail intact: {len(entries)} entries; last entry {last['id']}, hash {last['hash']}"
    )
    as_json = json.loads(copy.audit("verify", "--json").stdout)
    assert as_json["ok"] is True and as_json["entries"] == len(entries)


def _broken_at(copy: Copy) -> tuple[int, str]:
    done = copy.audit("verify")
    assert done.returncode == 1, done.stdout + done.stderr
    line = done.stdout.strip()
    assert line.startswith("audit trail BROKEN at entry "), line
    number, problem = line.removeprefix("audit trail BROKEN at entry ").split(": ", 1)
    return int(number), problem


CHANGES: dict[str, tuple[str, str, Any]] = {
    # field: (kind of the entry to change, SQL expression, parameter)
    "data": ("draft.approved", "json_set(data, '$.final_text', ?)", "Something else entirely."),
    "actor": ("draft.approved", "?", "mallory"),
    "at": ("note.added", "?", "2020-01-01 00:00:00.000000"),
    "kind": ("mail.sent", "?", "mail.failed"),
    "incident_id": ("draft.edited", "?", None),
    "hash": ("draft.created", "?", "f" * 64),
    "prev_hash": ("draft.requested", "?", "e" * 64),
}


@pytest.mark.parametrize("field", list(CHANGES))
def test_changing_any_field_of_an_entry_names_that_entry(
    trail: Trail, tmp_path: Path, field: str
) -> None:
    copy = trail.copy(tmp_path)
    kind, expression, value = CHANGES[field]
    target = copy.first(kind)
    before = next(e for e in copy.entries() if e["id"] == target)
    copy.sql(f"UPDATE audit_log SET {field} = {expression} WHERE id = ?", value, target)
    after = next(e for e in copy.entries() if e["id"] == target)
    assert after[field] != before[field]
    assert {k: v for k, v in after.items() if k != field} == {
        k: v for k, v in before.items() if k != field
    }
    broken, problem = _broken_at(copy)
    assert broken == target
    expected = "previous-hash link" if field == "prev_hash" else "content does not match"
    assert problem.startswith(expected), problem


def test_deleting_a_middle_entry_names_the_entry_after_it(trail: Trail, tmp_path: Path) -> None:
    copy = trail.copy(tmp_path)
    ids = [e["id"] for e in copy.entries()]
    middle = ids[len(ids) // 2]
    copy.sql("DELETE FROM audit_log WHERE id = ?", middle)
    broken, problem = _broken_at(copy)
    assert broken == ids[len(ids) // 2 + 1]
    assert problem.startswith("previous-hash link does not match")


def test_swapping_two_adjacent_entries_names_the_first_of_them(
    trail: Trail, tmp_path: Path
) -> None:
    copy = trail.copy(tmp_path)
    entries = copy.entries()
    first, second = entries[len(entries) // 2], entries[len(entries) // 2 + 1]
    # Every column but the id trades places, as if the rows had been re-numbered.
    fields = COLUMNS[1:]
    insert = f"INSERT INTO audit_log (id, {', '.join(fields)}) VALUES (?{', ?' * len(fields)})"
    with closing(sqlite3.connect(copy.db)) as con, con:
        con.execute("DELETE FROM audit_log WHERE id IN (?, ?)", (first["id"], second["id"]))
        con.execute(insert, (first["id"], *(second[f] for f in fields)))
        con.execute(insert, (second["id"], *(first[f] for f in fields)))
    assert [e["hash"] for e in copy.entries()][len(entries) // 2] == second["hash"]
    broken, problem = _broken_at(copy)
    assert broken == first["id"]
    assert problem.startswith("previous-hash link does not match")


def test_cutting_off_the_end_is_invisible_to_the_chain_but_moves_the_head(
    trail: Trail, tmp_path: Path
) -> None:
    """The documented limit: the head printed by an earlier verify is the evidence."""
    copy = trail.copy(tmp_path)
    before = copy.audit("verify").stdout
    last = copy.entries()[-1]["id"]
    copy.sql("DELETE FROM audit_log WHERE id = ?", last)
    after = copy.audit("verify")
    assert after.returncode == 0
    assert f"last entry {last}," in before and f"last entry {last - 1}," in after.stdout


# --- export ------------------------------------------------------------------------------


def _at(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["at"])


def test_jsonl_export_is_the_whole_chain_in_order_and_can_be_re_verified(
    trail: Trail, tmp_path: Path
) -> None:
    copy = trail.copy(tmp_path)
    stored = copy.entries()
    rows = copy.export()
    assert [r["id"] for r in rows] == [e["id"] for e in stored]
    assert all(a["id"] < b["id"] for a, b in pairwise(rows))
    assert set(rows[0]) == {"id", "at", "actor", "kind", "incident", "incident_id", "data",
                            "prev_hash", "hash"}  # fmt: skip
    assert all(r["at"].endswith("+00:00") for r in rows)
    assert {r["incident"] for r in rows} == {None, trail.reference, trail.other}
    # An auditor can check the export without our database: every hash and every link.
    previous = audit.GENESIS
    for row in rows:
        assert row["prev_hash"] == previous
        recomputed = audit.entry_hash(
            previous, _at(row), row["actor"], row["kind"], row["incident_id"], row["data"]
        )
        assert recomputed == row["hash"]
        previous = row["hash"]


def test_export_filters_by_kind_incident_customer_actor_and_limit(
    trail: Trail, tmp_path: Path
) -> None:
    copy = trail.copy(tmp_path)
    everything = copy.export()
    [approved] = copy.export("--kind", "draft.approved")
    assert approved["kind"] == "draft.approved" and approved["actor"] == "bob"
    assert approved["incident"] == trail.reference

    mine = copy.export("--incident", trail.reference.lower())
    assert mine and {r["incident"] for r in mine} == {trail.reference}
    assert [r["id"] for r in mine] == [
        r["id"] for r in everything if r["incident"] == trail.reference
    ]
    assert copy.export("--customer", DANA.upper()) == mine
    assert {r["incident"] for r in copy.export("--customer", LEE)} == {trail.other}

    by_bob = copy.export("--actor", "bob")
    assert by_bob and {r["actor"] for r in by_bob} == {"bob"}
    assert "draft.approved" in {r["kind"] for r in by_bob}
    assert [r["id"] for r in copy.export("--limit", "3")] == [r["id"] for r in everything[:3]]

    unknown = copy.audit("export", "--incident", "CR-9999")
    assert unknown.returncode == 1 and "no incident" in unknown.stderr


def test_export_filters_by_time(trail: Trail, tmp_path: Path) -> None:
    copy = trail.copy(tmp_path)
    everything = copy.export()
    since, until = everything[3]["at"], everything[-3]["at"]
    window = copy.export("--since", since, "--until", until)
    expected = [r["id"] for r in everything if _at(r) >= datetime.fromisoformat(since)
                and _at(r) < datetime.fromisoformat(until)]  # fmt: skip
    assert [r["id"] for r in window] == expected
    assert 0 < len(window) < len(everything)
    # Naive means UTC; an offset is converted.
    naive = since.removesuffix("+00:00")
    assert copy.export("--since", naive, "--until", until) == window
    berlin = _at(everything[3]).astimezone(timezone(timedelta(hours=1))).isoformat()
    assert copy.export("--since", berlin, "--until", until) == window
    # A bare date: --until includes that whole day, --since starts at its midnight.
    today = _at(everything[-1]).date()
    # (each export above added its own audit.exported entry: all are from today)
    stored = copy.entries()
    assert [r["id"] for r in copy.export("--until", today.isoformat())] == [e["id"] for e in stored]
    assert copy.export("--since", (today + timedelta(days=1)).isoformat()) == []
    assert copy.export("--until", (today - timedelta(days=1)).isoformat()) == []

    bad = copy.audit("export", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr and "not a date" in bad.stderr
    bad = copy.audit("export", "--until", "2026-13-01")
    assert bad.returncode == 2 and "--until" in bad.stderr
    backwards = copy.audit("export", "--since", "2026-12-02", "--until", "2026-12-01")
    assert backwards.returncode == 2 and "before --until" in backwards.stderr


def test_csv_export_parses_and_no_cell_can_start_a_formula(trail: Trail, tmp_path: Path) -> None:
    copy = trail.copy(tmp_path)
    target = tmp_path / "audit.csv"
    done = copy.audit("export", "--format", "csv", "--output", target)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    with target.open(newline="", encoding="utf-8") as handle:
        header, *records = list(csv.reader(handle))
    assert tuple(header) == CSV_COLUMNS
    assert done.stderr.strip() == f"exported {len(records)} entries to {target}"
    assert not (tmp_path / "audit.csv.partial").exists()
    assert [int(r[0]) for r in records] == [e["id"] for e in copy.entries()[: len(records)]]
    cells = [cell for record in records for cell in record]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]

    # The note text sits inside the JSON data cell, which starts with "{" and is kept exact.
    notes = [json.loads(r[5]) for r in records if r[3] == "note.added"]
    assert [n["text"] for n in notes if n["text"].startswith(FORMULA)] == [
        FORMULA + " found in the logs"
    ]
    assert all(r[5].startswith("{") for r in records)
    # An actor called "=HYPERLINK(...)" is neutralised with a leading apostrophe.
    [hostile] = [r for r in records if r[2].startswith("'")]
    assert hostile[2] == "'" + FORMULA and hostile[4] == trail.other


def test_an_export_is_itself_audited_and_the_chain_still_verifies(
    trail: Trail, tmp_path: Path
) -> None:
    copy = trail.copy(tmp_path)
    count = len(copy.entries())
    target = tmp_path / "approved.jsonl"
    done = copy.audit("export", "--kind", "draft.approved", "-o", target, "--as", "carol")
    assert done.returncode == 0, done.stderr
    assert len(target.read_text(encoding="utf-8").splitlines()) == 1
    *_, record = copy.entries()
    assert len(copy.entries()) == count + 1
    assert record["kind"] == "audit.exported" and record["actor"] == "carol"
    data = json.loads(record["data"])
    assert data["rows"] == 1 and data["format"] == "jsonl" and data["complete"] is True
    assert data["output"] == str(target) and data["filters"]["kind"] == "draft.approved"

    assert copy.audit("export", "--format", "csv", "--since", "2000-01-01").returncode == 0
    *_, record = copy.entries()
    data = json.loads(record["data"])
    assert record["actor"] == getpass.getuser() and data["output"] == "stdout"
    assert data["filters"]["since"] == "2000-01-01T00:00:00+00:00"
    assert data["rows"] == count + 1  # everything, including the first export's entry
    verified = copy.audit("verify")
    assert verified.returncode == 0 and f"intact: {count + 2} entries" in verified.stdout


def test_a_failed_export_leaves_no_file_and_no_record(trail: Trail, tmp_path: Path) -> None:
    copy = trail.copy(tmp_path)
    count = len(copy.entries())
    target = tmp_path / "nothing.jsonl"
    done = copy.audit("export", "--incident", "CR-9999", "-o", target)
    assert done.returncode == 1
    assert not target.exists() and not (tmp_path / "nothing.jsonl.partial").exists()
    assert len(copy.entries()) == count


# --- sent messages -----------------------------------------------------------------------


def _sent(copy: Copy, **filters: Any) -> list[dict[str, Any]]:
    async def work() -> list[dict[str, Any]]:
        db = Database(copy.settings.database.url)
        try:
            async with db.read() as session:
                return await sent_messages(
                    session, since=filters.pop("since", None), until=None, **filters
                )
        finally:
            await db.dispose()

    return asyncio.run(work())


def test_sent_messages_show_what_was_drafted_approved_changed_and_sent(
    trail: Trail, tmp_path: Path
) -> None:
    copy = trail.copy(tmp_path)
    sent = _sent(copy)
    assert [m["kind"] for m in sent] == ["acknowledgement", "acknowledgement", "reply.summary"]
    for ack in sent[:2]:
        assert ack["final_text"] and ack["sent_at"] and ack["message_id"]
        assert ack["draft_id"] is None and ack["drafted_text"] is None and ack["diff"] is None
        assert ack["approved_by"] is None and ack["drafter"] is None
    reply = sent[2]
    assert reply["incident"] == trail.reference and reply["customer"] == DANA
    assert reply["to"] == [DANA] and reply["approved_by"] == "bob"
    assert reply["drafter"] == "offline-template" and reply["override_reason"] is None
    assert "[To be completed" in reply["drafted_text"]
    assert reply["final_text"].strip() == trail.edited_text.strip()
    diff = reply["diff"].splitlines()
    assert diff[:2] == ["--- drafted", "+++ approved"]
    assert any(line.startswith("-") and "[To be completed" in line for line in diff)
    assert any(line.startswith("+") and "staged rollout" in line for line in diff)

    assert [m["kind"] for m in _sent(copy, actor="bob")] == ["reply.summary"]
    assert [m["kind"] for m in _sent(copy, actor="codered")] == ["acknowledgement"] * 2
    assert [m["outbox_id"] for m in _sent(copy, customer=DANA.upper())] == [
        sent[0]["outbox_id"],
        reply["outbox_id"],
    ]
    assert [m["customer"] for m in _sent(copy, incident=trail.other)] == [LEE]
    assert _sent(copy, since=datetime.now(UTC) + timedelta(minutes=1)) == []


def test_an_unedited_approval_has_an_empty_diff(trail: Trail, tmp_path: Path) -> None:
    copy = trail.copy(tmp_path)
    with SmtpSink() as sink:
        config = write_config(tmp_path / "sink.toml", copy.settings, smtp_port=sink.port)
        created = run_cli("drafts", "create", trail.other, "--kind", "update", "--json",
                          config=config)  # fmt: skip
        draft = json.loads(created.stdout)
        approved = run_cli("drafts", "approve", str(draft["id"]), "--as", "dave", config=config)
        assert approved.returncode == 0, approved.stderr
        sink.wait_for(1, timeout=10)
    [update] = _sent(copy, actor="dave")
    assert update["diff"] == "" and update["drafted_text"] == draft["text"]
    assert update["final_text"].strip() == draft["text"].strip()
