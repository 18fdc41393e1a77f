"""The policies on a clock, with an injectable clock, a real database and a real SMTP sink:
email after every call, update cadence, promises, escalation with a webhook, debrief."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from codered.call_metrics import call_followups
from codered.calls import log_call
from codered.db.engine import Database
from codered.db.models import Draft, Incident, OutboxMessage, Promise
from codered.desk import work_queue
from codered.embedded import EmbeddedImapServer, SmtpSink
from codered.lifecycle import move_incident
from codered.outbox import OutboxWorker
from codered.policy_clock import PolicyClock, due_after
from codered.service import smtp_server
from codered.settings import Settings
from policies.timeline import Target
from tests.support import mail
from tests.support.cli import run_cli, write_config
from tests.support.service import RunningService, make_settings, query

BERLIN = ZoneInfo("Europe/Berlin")
TEAM = [
    {
        "name": "alice",
        "email": "alice@acme.example",
        "manager": "maria",
        "display_name": "Alice Moreau",
    },
    {"name": "maria", "email": "maria@acme.example"},
]


@dataclass
class World:
    settings: Settings
    config: Path
    sink: SmtpSink
    reference: str
    acknowledged_at: datetime

    def run(self, work: Any) -> Any:
        return query(self.settings, work)

    def tick(self, moment: datetime) -> list[str]:
        async def work(db: Database) -> list[str]:
            # One identity: a new clock object per pass is the same process's clock.
            clock = PolicyClock(db, self.settings, clock=lambda: moment, identity="world")
            return await clock.tick()

        return query(self.settings, work)

    def deliver(self) -> None:
        async def work(db: Database) -> None:
            await OutboxWorker(db, smtp_server(self.settings)).send_due()

        query(self.settings, work)

    def rows(self, model: Any) -> list[Any]:
        async def work(db: Database) -> list[Any]:
            async with db.read() as session:
                return list((await session.scalars(select(model).order_by(model.id))).all())

        return query(self.settings, work)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with EmbeddedImapServer() as imap, SmtpSink() as sink:
        settings = make_settings(
            tmp_path,
            imap.port,
            sink.port,
            username=imap.username,
            password=imap.password,
            team=TEAM,
            policies={"csms": ["alice"], "clock_seconds": 3600},
        )
        config = write_config(tmp_path / "codered.toml", settings)
        with RunningService(settings) as service:
            service.wait_for_baseline()
            imap.append(mail.outage_complaint()[1])
            sink.wait_for(1, timeout=20)
        [incident] = json.loads(run_cli("incidents", "list", "--json", config=config).stdout)
        acknowledged = datetime.fromisoformat(incident["acknowledged_at"])
        yield World(settings, config, sink, incident["reference"], acknowledged)


def test_the_acknowledgement_is_a_promise_and_the_owner_is_assigned(world: World) -> None:
    [incident] = world.rows(Incident)
    assert incident.owner == "alice"
    created = run_cli(
        "drafts", "create", world.reference, "--kind", "update", "--json", config=world.config
    )
    assert "Kind regards,\nAlice Moreau\nAcme Cloud" in json.loads(created.stdout)["text"]
    [promise] = world.rows(Promise)
    assert promise.source == "acknowledgement" and promise.status == "open"
    assert promise.due_at == incident.reply_by


def test_a_call_without_an_email_in_time_is_overdue_notified_and_cleared_by_the_recap(
    world: World,
) -> None:
    ended = world.acknowledged_at - timedelta(minutes=1)

    async def call(db: Database) -> tuple[int, int]:
        return await log_call(
            db,
            world.reference,
            started_at=ended - timedelta(minutes=20),
            duration_minutes=20,
            participants=["Dana", "alice"],
            notes="Walked through the outage.\\naction: send the RCA",
            actor="alice",
        )

    call_id, recap_id = world.run(call)
    [recap] = [d for d in world.rows(Draft) if d.id == recap_id]
    assert recap.kind == "recap" and recap.status == "requested"
    due = due_after(ended, Target.parse("2 business hours"), world.settings)
    early = world.tick(due - timedelta(minutes=1))
    assert not [k for k in early if k.startswith("call_overdue")]
    done = world.tick(due + timedelta(minutes=1))
    assert f"call_overdue:{call_id}" in done
    again = world.tick(due + timedelta(minutes=2))
    assert not [k for k in again if k.startswith("call_overdue")], "not repeated"
    world.deliver()
    notices = [m for m in world.sink.messages if b"No email yet after the call" in m.raw]
    [notice] = notices
    assert set(notice.recipients) == {"alice@acme.example", "maria@acme.example"}
    assert b"Auto-Submitted: auto-generated" in notice.raw

    async def queue(db: Database) -> list[dict[str, Any]]:
        async with db.read() as session:
            return await work_queue(session, due + timedelta(minutes=3), settings=world.settings)

    def call_overdue(rows: list[dict[str, Any]]) -> bool:
        return any(r["kind"] == "overdue" and "after the call" in r["detail"] for r in rows)

    assert call_overdue(world.run(queue))
    # The recap goes out (drafted offline, approved); the next pass clears the violation.
    run_cli("drafts", "create", world.reference, "--kind", "update", config=world.config)
    pending = [d for d in world.rows(Draft) if d.status == "pending"]
    approved = run_cli(
        "drafts",
        "approve",
        str(pending[-1].id),
        "--as",
        "alice",
        "--override",
        "test",
        config=world.config,
    )
    assert approved.returncode == 0, approved.stderr
    assert f"clear:call_overdue:{call_id}" in world.tick(due + timedelta(minutes=4))
    # (Two hours have passed on the test's clock since that reply, so an *update* may be
    # overdue by now; the call's follow-up is not.)
    assert not call_overdue(world.run(queue))

    async def share(db: Database) -> dict[str, Any]:
        async with db.read() as session:
            return await call_followups(
                session,
                world.settings,
                since=ended - timedelta(days=1),
                until=due + timedelta(days=1),
            )

    # The reply went out (at the real time of the test), well within two business hours.
    assert world.run(share) == {"calls": 1, "followed_in_time": 1, "share": 1.0}


def test_cadence_prepares_one_update_per_interval_across_restarts(world: World) -> None:
    [ack] = [o for o in world.rows(OutboxMessage) if o.kind == "acknowledgement"]
    assert ack.sent_at is not None
    due = ack.sent_at + timedelta(hours=2)  # critical: every 2 hours, around the clock
    assert not [k for k in world.tick(due - timedelta(minutes=61)) if k.startswith("update")]
    first = world.tick(due - timedelta(minutes=59))
    assert [k for k in first if k.startswith("update_due")] == [
        f"update_due:{world.reference}:{due:%Y-%m-%dT%H:%M}"
    ]
    # A second pass and a fresh clock (a restart) do nothing more.
    assert not [k for k in world.tick(due - timedelta(minutes=58)) if k.startswith("update")]
    updates = [d for d in world.rows(Draft) if d.kind == "update"]
    assert len(updates) == 1 and updates[0].requested_by == "policy:cadence"
    missed = world.tick(due + timedelta(minutes=1))
    assert f"update_missed:{world.reference}:{due:%Y-%m-%dT%H:%M}" in missed
    assert world.tick(due + timedelta(minutes=2)) == []


def test_a_promise_about_to_lapse_drafts_one_urgent_delay_notice(world: World) -> None:
    [promise] = world.rows(Promise)
    lapsing = world.tick(promise.due_at - timedelta(minutes=29))
    assert f"promise_lapsing:{promise.id}" in lapsing
    world.tick(promise.due_at - timedelta(minutes=28))
    delays = [d for d in world.rows(Draft) if d.kind == "delay"]
    assert len(delays) == 1 and delays[0].requested_by == "policy:promises"
    assert f"promise_missed:{promise.id}" in world.tick(promise.due_at + timedelta(seconds=1))
    [settled] = world.rows(Promise)
    assert settled.status == "missed"


def test_a_reply_in_time_keeps_the_promise(world: World) -> None:
    run_cli("drafts", "create", world.reference, "--kind", "update", config=world.config)
    [draft] = [d for d in world.rows(Draft) if d.status == "pending"]
    assert (
        run_cli("drafts", "approve", str(draft.id), "--as", "alice", config=world.config).returncode
        == 0
    )
    first, second = world.rows(Promise)
    assert first.status == "kept" and second.status == "open"
    assert second.source == "reply.update"


class Hook:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def test_escalation_notifies_the_team_and_posts_the_documented_webhook(tmp_path: Path) -> None:
    hook = Hook()
    try:
        with EmbeddedImapServer() as imap, SmtpSink() as sink:
            settings = make_settings(
                tmp_path,
                imap.port,
                sink.port,
                username=imap.username,
                password=imap.password,
                team=TEAM,
                accounts=[{"domain": "northwind.example", "tier": "enterprise"}],
                policies={
                    "csms": ["alice"],
                    "notify": ["sales@acme.example"],
                    "webhook_url": hook.url,
                    "clock_seconds": 0.5,
                },
            )
            with RunningService(settings) as service:
                service.wait_for_baseline()
                imap.append(
                    mail.message(
                        "Contract",
                        "We will cancel our contract and call our "
                        "lawyer if this billing error is not fixed.",
                    )[1]
                )
                imap.append(mail.question(sender="Sam Rivera <sam@wingtip.example>")[1])
                messages = sink.wait_for(2, timeout=20)
                for _ in range(100):
                    if hook.bodies:
                        break
                    threading.Event().wait(0.1)
    finally:
        hook.server.shutdown()
    [body] = hook.bodies
    assert body["event"] == "incident.escalated" and body["customer"] == "dana@northwind.example"
    assert any("cancel" in reason for reason in body["reasons"])
    assert body["url"].endswith(f"/incidents/{body['reference']}")
    assert set(body) >= {"reference", "subject", "severity", "category", "owner", "text"}
    internal = [m for m in messages if "sales@acme.example" in m.recipients]
    assert internal and "alice@acme.example" in internal[0].recipients
    assert "maria@acme.example" in internal[0].recipients
    assert not any("sam@wingtip" in r for m in messages for r in m.recipients if "internal" in r)


def test_resolving_drafts_the_summary_and_sending_it_summarizes(world: World) -> None:
    async def resolve(db: Database) -> tuple[str, int | None]:
        return await move_incident(db, world.reference, "resolved", actor="alice")

    before, draft_id = world.run(resolve)
    assert before == "acknowledged" and draft_id is not None
    [summary] = [d for d in world.rows(Draft) if d.id == draft_id]
    assert summary.kind == "summary" and summary.requested_by == "debrief"


@pytest.mark.parametrize(
    ("start", "target", "zone", "expected"),
    [
        # Friday afternoon: two business hours end on Monday morning.
        (
            datetime(2026, 12, 4, 16, 30, tzinfo=BERLIN),
            "2 business hours",
            "Europe/Berlin",
            datetime(2026, 12, 7, 10, 30, tzinfo=BERLIN),
        ),
        # Christmas (25 and 26 December are German holidays), then a weekend.
        (
            datetime(2026, 12, 24, 16, 0, tzinfo=BERLIN),
            "2 business hours",
            "Europe/Berlin",
            datetime(2026, 12, 28, 10, 0, tzinfo=BERLIN),
        ),
        # Night: the clock starts at the next opening.
        (
            datetime(2026, 12, 1, 22, 0, tzinfo=BERLIN),
            "1 business day",
            "Europe/Berlin",
            datetime(2026, 12, 2, 17, 0, tzinfo=BERLIN),
        ),
        # Clock time ignores business hours.
        (
            datetime(2026, 12, 5, 23, 0, tzinfo=BERLIN),
            "2 hours",
            "Europe/Berlin",
            datetime(2026, 12, 6, 1, 0, tzinfo=BERLIN),
        ),
        # Another zone: 16:30 UTC is 11:30 in New York, two business hours later is 13:30.
        (
            datetime(2026, 12, 1, 16, 30, tzinfo=UTC),
            "2 business hours",
            "America/New_York",
            datetime(2026, 12, 1, 13, 30, tzinfo=ZoneInfo("America/New_York")),
        ),
    ],
)
def test_timers_follow_business_hours_holidays_and_zones(
    tmp_path: Path, start: datetime, target: str, zone: str, expected: datetime
) -> None:
    settings = make_settings(tmp_path, 1, 1, company={"timezone": zone})
    assert due_after(start, Target.parse(target), settings) == expected


def test_an_account_at_risk_is_flagged_wherever_it_is_named(world: World) -> None:
    from codered.desk import incident_page
    from codered.settings import AccountSettings

    flagged = world.settings.model_copy(
        update={"accounts": [AccountSettings(domain="northwind.example", at_risk=True)]}
    )

    async def pages(db: Database, settings: Settings) -> tuple[bool, list[bool]]:
        async with db.read() as session:
            page = await incident_page(session, world.reference, settings)
            queue = await work_queue(
                session, world.acknowledged_at + timedelta(hours=3), settings=settings
            )
        return page["at_risk"], [row["at_risk"] for row in queue if row["reference"]]

    plain = world.run(lambda db: pages(db, world.settings))
    marked = world.run(lambda db: pages(db, flagged))
    assert plain[0] is False and not any(plain[1])
    assert marked[0] is True and marked[1] and all(marked[1])


def test_an_incident_can_be_moved_and_given_to_another_csm_by_hand(world: World) -> None:
    moved = run_cli(
        "incidents", "move", world.reference, "investigating", "--as", "maria", config=world.config
    )
    assert moved.returncode == 0 and "acknowledged → investigating" in moved.stdout
    again = run_cli(
        "incidents", "move", world.reference, "investigating", "--as", "maria", config=world.config
    )
    assert again.returncode == 1 and "already investigating" in again.stderr
    bad = run_cli(
        "incidents", "move", world.reference, "done", "--as", "maria", config=world.config
    )
    assert bad.returncode == 1 and "unknown state" in bad.stderr
    assigned = run_cli(
        "incidents", "assign", world.reference, "bob", "--as", "maria", config=world.config
    )
    assert assigned.returncode == 0 and "alice → bob" in assigned.stdout
    [incident] = world.rows(Incident)
    assert (incident.status, incident.owner) == ("investigating", "bob")
