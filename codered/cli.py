"""The ``codered`` command. Heavy imports live inside commands so ``--help`` stays instant.

"Heavy" includes asyncio, logging and rich: ``--help`` (and every group's or command's
``--help``) imports only typer and the ``codered.cli*`` modules that define the command
tree, and prints click's plain help (see :class:`~codered.cli_support.PlainHelpGroup`).
``tests/codered/test_cli_startup.py`` holds it to that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from codered.cli_audit import audit_app
from codered.cli_auth import auth_app
from codered.cli_drafts import drafts_app, register_incident_commands
from codered.cli_init import register_init_command
from codered.cli_policies import calls_app, register_lifecycle_commands
from codered.cli_report import register_report_command
from codered.cli_support import (
    ConfigOption,
    JsonOption,
    LimitOption,
    command_group,
    console,
    err,
    escape,
    load_cli_settings,
    print_rows,
    run_async,
    with_db,
)
from codered.cli_users import tokens_app, users_app

__all__ = ["app", "main"]

app = command_group(
    "Detect customer complaints in support mailboxes and acknowledge each with a timeline.",
    name="codered",
)
db_app = command_group("Database schema.")
incidents_app = command_group("Incidents opened from complaints.")
outbox_app = command_group("Outgoing mail.")
deadletters_app = command_group("Messages that could not be processed.")
app.add_typer(db_app, name="db")
app.add_typer(incidents_app, name="incidents")
app.add_typer(outbox_app, name="outbox")
app.add_typer(deadletters_app, name="deadletters")
app.add_typer(drafts_app, name="drafts")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(auth_app, name="auth")
app.add_typer(tokens_app, name="tokens")
register_incident_commands(incidents_app)
register_lifecycle_commands(incidents_app)
register_report_command(incidents_app)
register_init_command(app)
app.add_typer(calls_app, name="calls")


def _setup_logging(verbose: bool, log_format: str = "text", settings: Any = None) -> None:
    import logging

    from codered.logs import NOISY, JsonFormatter, RedactSecrets, secrets_of

    handler: logging.Handler
    if log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
    else:
        from rich.logging import RichHandler

        handler = RichHandler(console=err(), show_path=False, rich_tracebacks=False)
    handler.addFilter(RedactSecrets(secrets_of(settings) if settings is not None else []))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(name)s: %(message)s",
        handlers=[handler],
    )
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def run(
    config: ConfigOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    log_format: Annotated[
        str, typer.Option("--log-format", help="text (for a terminal) or json (one object a line).")
    ] = "text",
) -> None:
    """Run the service: watch every mailbox, acknowledge complaints, deliver the outbox."""
    settings = load_cli_settings(config)
    if log_format not in ("text", "json"):
        err().print("[bold red]error:[/] --log-format is text or json", highlight=False)
        raise typer.Exit(2)
    _setup_logging(verbose, log_format, settings)
    from codered.crashpoints import check_environment
    from codered.service import Service

    try:
        check_environment()
    except ValueError as exc:
        err().print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None

    import asyncio
    import signal

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Service(settings).run(stop)

    asyncio.run(_main())


@app.command()
def check(config: ConfigOption = None) -> None:
    """Test every connection (database, IMAP, SMTP, model) and report mailbox health."""
    settings = load_cli_settings(config)
    from codered.check import run_checks

    results = run_async(run_checks(settings))
    for result in results:
        mark = (
            "[red]FAIL[/]"
            if not result.ok
            else ("[yellow]WARN[/]" if result.warning else "[green] OK [/]")
        )
        console().print(f"{mark} {escape(result.name)}: {escape(result.detail)}", highlight=False)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command()
def demo(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the demo database here (default: a temporary folder).")
    ] = None,
) -> None:
    """Run codered against an embedded mailbox and SMTP sink with a dozen sample emails."""
    from codered.demo import run_demo

    raise typer.Exit(run_demo(console(), duration=duration, data_dir=data_dir))


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Create or upgrade the schema to the newest revision."""
    settings = load_cli_settings(config)
    from codered.db.migrate import current_revision, head_revision

    async def _work(db: Any) -> str | None:
        return await current_revision(db)

    revision = run_async(with_db(settings, _work))
    console().print(f"schema is at revision {revision} (newest: {head_revision()})")


@incidents_app.command("list")
def incidents_list(
    config: ConfigOption = None, as_json: JsonOption = False, limit: LimitOption = 100
) -> None:
    """Incidents, newest first."""
    settings = load_cli_settings(config)
    from codered.queries import list_incidents

    async def _work(db: Any) -> list[dict[str, Any]]:
        async with db.read() as session:
            return await list_incidents(session, limit)

    rows = run_async(with_db(settings, _work))
    print_rows(
        rows,
        as_json,
        [
            "reference",
            "customer",
            "subject",
            "category",
            "severity",
            "status",
            "acknowledged_at",
            "reply_by",
        ],
        "Incidents",
    )


@outbox_app.command("list")
def outbox_list(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    limit: LimitOption = 100,
    status: Annotated[str | None, typer.Option(help="pending, sending, sent or failed.")] = None,
) -> None:
    """Outgoing mail, newest first."""
    settings = load_cli_settings(config)
    from codered.queries import list_outbox

    async def _work(db: Any) -> list[dict[str, Any]]:
        async with db.read() as session:
            return await list_outbox(session, limit, status)

    rows = run_async(with_db(settings, _work))
    print_rows(
        rows,
        as_json,
        [
            "id",
            "message_id",
            "to",
            "subject",
            "kind",
            "status",
            "attempts",
            "sent_at",
            "last_error",
        ],
        "Outbox",
    )


@outbox_app.command("retry")
def outbox_retry(
    outbox_id: Annotated[int, typer.Argument(help="Outbox id from `outbox list`.")],
    config: ConfigOption = None,
) -> None:
    """Send a failed message again now (same bytes, same Message-ID)."""
    settings = load_cli_settings(config)
    from codered.connections import oauth_tokens, smtp_server, smtp_servers
    from codered.outbox import OutboxWorker, SendResult
    from codered.outbox_actions import retry_failed

    async def _work(db: Any) -> SendResult:
        servers = smtp_servers(settings, oauth_tokens(settings))
        worker = OutboxWorker(db, smtp_server(settings), servers=servers)
        return await retry_failed(worker, outbox_id)

    try:
        result = run_async(with_db(settings, _work))
    except (LookupError, ValueError) as exc:
        err().print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    console().print(
        f"outbox {result.outbox_id}: {result.status} ({escape(result.detail)})", highlight=False
    )
    if result.status != "sent":
        raise typer.Exit(1)


@deadletters_app.command("list")
def deadletters_list(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    limit: LimitOption = 100,
    all_: Annotated[
        bool, typer.Option("--all", help="Include dead letters already retried.")
    ] = False,
) -> None:
    """Messages that could not be processed, with the reason."""
    settings = load_cli_settings(config)
    from codered.queries import list_dead_letters

    async def _work(db: Any) -> list[dict[str, Any]]:
        async with db.read() as session:
            return await list_dead_letters(session, limit, include_retried=all_)

    rows = run_async(with_db(settings, _work))
    print_rows(
        rows, as_json, ["id", "reason", "when", "mailbox", "uid", "size", "status"], "Dead letters"
    )


@deadletters_app.command("retry")
def deadletters_retry(
    dead_letter_id: Annotated[int, typer.Argument(help="Dead letter id from `deadletters list`.")],
    config: ConfigOption = None,
) -> None:
    """Run a dead letter through the pipeline again (fetching it first if it was never fetched)."""
    settings = load_cli_settings(config)
    from codered.connections import imap_account, oauth_tokens
    from codered.deadletters import retry_dead_letter
    from codered.pipeline import Outcome, Pipeline
    from inbox.watcher import fetch_one

    def fetch_raw(mailbox: str, uidvalidity: int, uid: int) -> bytes:
        account = imap_account(settings.mailbox(mailbox), oauth_tokens(settings))
        return fetch_one(account, uidvalidity, uid)

    async def _work(db: Any) -> Outcome:
        return await retry_dead_letter(db, Pipeline(db, settings), dead_letter_id, fetch_raw)

    try:
        outcome = run_async(with_db(settings, _work))
    except (LookupError, ValueError, RuntimeError) as exc:
        err().print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    ref = f" ({outcome.incident_reference})" if outcome.incident_reference else ""
    console().print(
        f"dead letter {dead_letter_id}: {outcome.action}{ref}: {escape(outcome.reason)}",
        highlight=False,
    )
    if outcome.action == "dead_letter":
        raise typer.Exit(1)


def main() -> None:
    app()
