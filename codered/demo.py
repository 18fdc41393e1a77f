"""``codered demo``: the whole product on one laptop, with no setup.

It starts an embedded IMAP server (pymap) and an SMTP sink (aiosmtpd) on free
loopback ports, writes a real configuration file and SQLite database into a
folder, runs the real :class:`~codered.service.Service` against them, delivers
the sample emails, and shows live what happened to each one.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from sqlalchemy import select

from codered.db.migrate import upgrade
from codered.db.models import InboundMessage, Incident, MailboxState, OutboxMessage
from codered.demo_drafts import show_a_draft
from codered.demo_samples import Sample, build_samples
from codered.embedded import EmbeddedImapServer, SmtpSink
from codered.service import Service, ServiceHooks
from codered.settings import Settings, load_settings

__all__ = ["run_demo", "write_demo_config"]

SUPPORT_ADDRESS = "support@acme.example"


def write_demo_config(folder: Path, imap: EmbeddedImapServer, sink: SmtpSink) -> Path:
    """A complete, commented config file, so the other commands work against the demo too."""
    path = folder / "codered.toml"
    path.write_text(
        f"""# Written by `codered demo`: embedded IMAP (pymap) and SMTP sink (aiosmtpd) on loopback.
[database]
url = "sqlite+aiosqlite:///{folder / "codered.db"}"

[company]
name = "Acme Cloud"
timezone = "Europe/Berlin"
business_hours = "09:00-17:00"
business_days = "mon-fri"
holidays = "DE"

[[mailboxes]]
name = "support"
address = "{SUPPORT_ADDRESS}"
imap_host = "127.0.0.1"
imap_port = {imap.port}
imap_security = "none"
imap_username = "{imap.username}"
imap_password = "{imap.password}"
folder = "INBOX"

[smtp]
host = "127.0.0.1"
port = {sink.port}
security = "none"
from_name = "Acme Customer Success"

[llm]
model = "offline"
""",
        encoding="utf-8",
    )
    return path


@dataclass
class _Row:
    sample: Sample
    appended: bool = False
    action: str | None = None
    reason: str = ""
    verdict: str = ""
    reference: str | None = None
    reply_by: str = ""
    sent: bool = False
    ack_text: str | None = None
    ack_subject: str = ""
    shown: bool = False


@dataclass
class _State:
    rows: list[_Row]
    started: float = field(default_factory=time.monotonic)


_ACTION_STYLE = {
    "acknowledge": ("bold green", "acknowledged"),
    "hold": ("bold yellow", "held for a person"),
    "attach": ("cyan", "attached"),
    "ignore": ("dim", "ignored"),
    "dead_letter": ("bold red", "dead letter"),
}


def _table(state: _State) -> Table:
    table = Table(
        title="codered demo: what happened to each email",
        title_justify="left",
        header_style="bold",
        expand=True,
        show_lines=False,
    )
    # At 80 columns the two columns that say what happened keep room of their own; the
    # sender and subject give way (cut with "…") instead.
    table.add_column("#", justify="right", min_width=2, no_wrap=True)
    table.add_column("from", ratio=2, max_width=26, overflow="ellipsis", no_wrap=True)
    table.add_column("subject", ratio=3, max_width=38, overflow="ellipsis", no_wrap=True)
    table.add_column("classified as", ratio=3, max_width=34)
    table.add_column("outcome", ratio=4)
    table.add_column("sent", justify="center", width=4)
    for number, row in enumerate(state.rows, 1):
        sender = row.sample.sender.split("<")[0].strip() or row.sample.sender
        if row.action is None:
            outcome = Text("waiting…" if row.appended else "", style="dim")
        else:
            style, label = _ACTION_STYLE.get(row.action, ("", row.action))
            outcome = Text(label, style=style)
            if row.reference:
                outcome.append(f" {row.reference}", style=style)
            if row.reply_by:
                outcome.append(f", reply by {row.reply_by}")
            if row.action != "acknowledge":
                outcome.append(f": {row.reason}", style="dim")
        sent = Text("✓", style="bold green") if row.sent else Text("")
        table.add_row(str(number), sender, row.sample.subject, row.verdict, outcome, sent)
    return table


_NOT_GUARDS = frozenset(
    {"existing_thread", "not_a_complaint", "sender_rate_limit", "complaint", "default"}
)


def _verdict(decision: dict[str, Any] | None) -> str:
    decision = decision or {}
    if decision.get("rule") not in _NOT_GUARDS:
        return (
            "machine or own mail" if decision.get("rule") != "duplicate_message_id" else "duplicate"
        )
    classification = decision.get("classification")
    if not classification or not classification["is_complaint"]:
        return "not a complaint"
    return (
        f"complaint · {classification['category'] or 'general'} · "
        f"{classification['severity']} ({classification['confidence']:.2f})"
    )


async def _refresh(service: Service, state: _State, company_tz: Any) -> None:
    by_message_id = {row.sample.message_id: row for row in state.rows}
    async with service.db.read() as session:
        messages = (await session.scalars(select(InboundMessage))).all()
        incidents = {i.id: i for i in (await session.scalars(select(Incident))).all()}
        outbox = {o.incident_id: o for o in (await session.scalars(select(OutboxMessage))).all()}
    for message in messages:
        row = by_message_id.get(message.message_id or "")
        if row is None or message.status == "pending":
            continue
        row.action = message.action or ("dead_letter" if message.status == "dead" else None)
        row.reason = message.reason or ""
        row.verdict = _verdict(message.decision)
        incident = incidents.get(message.incident_id) if message.incident_id else None
        if incident is not None:
            row.reference = incident.reference
            if row.action == "acknowledge":
                row.reply_by = incident.reply_by.astimezone(company_tz).strftime("%a %H:%M %Z")
                sent = outbox.get(incident.id)
                if sent is not None:
                    row.sent = sent.status == "sent"
                    row.ack_text = sent.body_text
                    row.ack_subject = sent.subject


async def _wait_for_baseline(
    service: Service, ready: asyncio.Event, stop: asyncio.Event, seconds: float = 30.0
) -> bool:
    deadline = time.monotonic() + seconds
    try:
        await asyncio.wait_for(ready.wait(), seconds)
    except TimeoutError:
        return False
    while time.monotonic() < deadline and not stop.is_set():
        async with service.db.read() as session:
            if await session.get(MailboxState, "support") is not None:
                return True
        await asyncio.sleep(0.1)
    return False


async def _demo(
    console: Console,
    settings: Settings,
    imap: EmbeddedImapServer,
    sink: SmtpSink,
    duration: float | None,
    config_path: Path,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    ready = asyncio.Event()
    service = Service(settings, hooks=ServiceHooks(on_ready=ready.set))
    runner = asyncio.create_task(service.run(stop))
    samples = build_samples(SUPPORT_ADDRESS)
    state = _State([_Row(s) for s in samples])
    company_tz = settings.company.calendar().tz
    try:
        with Live(_table(state), console=console, refresh_per_second=8, transient=False) as live:
            await _demo_people(service)
            if not await _wait_for_baseline(service, ready, stop):
                console.print("[red]the embedded mailbox did not come up; stopping[/]")
                stop.set()
            for row in state.rows:
                if stop.is_set():
                    break
                await asyncio.to_thread(imap.append, row.sample.raw)
                row.appended = True
                await _refresh(service, state, company_tz)
                live.update(_table(state))
                await asyncio.sleep(0.35)
            finished_at: float | None = None
            while not stop.is_set():
                await _refresh(service, state, company_tz)
                live.update(_table(state))
                for row in state.rows:
                    if row.sent and row.ack_text and not row.shown:
                        row.shown = True
                        live.console.print(_ack_panel(row))
                done = all(r.action for r in state.rows) and all(
                    r.sent for r in state.rows if r.action == "acknowledge"
                )
                if done and finished_at is None:
                    finished_at = time.monotonic()
                    try:
                        drafted = await show_a_draft(service.db, config_path, stop)
                    except Exception as exc:  # the demo goes on without its second act
                        drafted = Group(Text(f"(no draft shown: {exc})", style="dim"))
                    if drafted is not None:
                        live.console.print(drafted)
                    live.console.print(_summary(state, imap, sink, config_path, duration, settings))
                await _sleep_until(stop, 0.25)
    finally:
        stop.set()
        await runner
    return 0


DEMO_PASSWORD = "codered-demo"  # noqa: S105 (documented, loopback only)
"""The demo's people share one password: the desk listens on loopback only."""


async def _demo_people(service: Service) -> None:
    """A csm, a manager and an admin, so the review desk can be tried at once."""
    from codered.accounts import add_user

    await upgrade(service.db)
    for role in ("csm", "manager", "admin"):
        with contextlib.suppress(ValueError):  # a kept --data-dir already has them
            await add_user(service.db, role, role, DEMO_PASSWORD, actor="demo")


def _ack_panel(row: _Row) -> Panel:
    to = row.sample.sender
    return Panel(
        Text(row.ack_text or ""),
        title=f"[bold green]acknowledgement {row.reference}[/] → {to}",
        subtitle=row.ack_subject,
        title_align="left",
        border_style="green",
        padding=(0, 2),
    )


def _summary(
    state: _State,
    imap: EmbeddedImapServer,
    sink: SmtpSink,
    config: Path,
    duration: float | None,
    settings: Settings,
) -> Group:
    acknowledged = sum(1 for r in state.rows if r.action == "acknowledge")
    ignored = sum(1 for r in state.rows if r.action == "ignore")
    attached = sum(1 for r in state.rows if r.action == "attach")
    seconds = time.monotonic() - state.started
    lines = [
        Text.from_markup(
            f"[bold]{len(state.rows)} emails in {seconds:.1f} s:[/] {acknowledged} complaints "
            f"acknowledged, {attached} follow-up attached to its incident, {ignored} left alone "
            f"(questions, thanks, auto-replies, bounces, newsletters). "
            f"{len(sink.messages)} messages reached the SMTP sink."
        ),
        Text.from_markup(
            f"Mailbox: [cyan]imap://{imap.username}:{imap.password}@127.0.0.1:{imap.port}/INBOX[/]"
            " — append your own mail with any client and watch it here."
        ),
        Text.from_markup(
            f"Review desk: [cyan]http://{settings.web.host}:{settings.web.port}/[/] — sign in as "
            f"[bold]csm[/], [bold]manager[/] or [bold]admin[/] with the password "
            f"[bold]{DEMO_PASSWORD}[/]"
        ),
        Text.from_markup(
            f"Explore: [cyan]codered incidents list --config {config}[/]  "
            f"(also drafts list, outbox list, deadletters list)"
        ),
        Text.from_markup(
            "Stopping after --duration." if duration else "Press [bold]Ctrl-C[/] to stop."
        ),
    ]
    return Group(*lines)


async def _sleep_until(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return


def run_demo(
    console: Console, *, duration: float | None = None, data_dir: Path | None = None
) -> int:
    """Run the demo; returns the process exit code."""
    with tempfile.TemporaryDirectory(prefix="codered-demo-") as temporary:
        folder = (data_dir or Path(temporary)).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        with EmbeddedImapServer() as imap, SmtpSink() as sink:
            config_path = write_demo_config(folder, imap, sink)
            settings = load_settings(config_path)
            console.print(
                Panel.fit(
                    "[bold]codered demo[/]: an embedded IMAP mailbox and SMTP sink on loopback, "
                    "a SQLite database in\n"
                    f"[cyan]{folder}[/]"
                    + (" (temporary; keep it with --data-dir)" if data_dir is None else "")
                    + ", and the real service.\n"
                    "Thirteen sample emails arrive; complaints get an acknowledgement with a "
                    "reply-by time, machines and\nfriendly mail get nothing.",
                    border_style="red",
                )
            )
            try:
                return asyncio.run(_demo(console, settings, imap, sink, duration, config_path))
            except KeyboardInterrupt:
                return 0
