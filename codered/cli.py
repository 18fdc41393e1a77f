"""The ``codered`` command. Heavy imports live inside commands so ``--help`` stays instant."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(
    name="codered",
    help="Detect customer complaints in support mailboxes and acknowledge each with a timeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
incidents_app = typer.Typer(help="Incidents opened from complaints.", no_args_is_help=True)
outbox_app = typer.Typer(help="Outgoing mail.", no_args_is_help=True)
deadletters_app = typer.Typer(help="Messages that could not be processed.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(incidents_app, name="incidents")
app.add_typer(outbox_app, name="outbox")
app.add_typer(deadletters_app, name="deadletters")

console = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML configuration file [default: $CODERED_CONFIG, then ./codered.toml].",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, help="Most recent N rows.")]


def _settings(config: Path | None) -> Any:
    from codered.settings import ConfigError, load_settings, resolve_config_path

    try:
        return load_settings(resolve_config_path(config))
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


def _run(coro: Awaitable[T]) -> T:
    async def _wrapped() -> T:
        return await coro

    return asyncio.run(_wrapped())


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=False)],
    )
    for noisy in ("aiosqlite", "sqlalchemy", "mail.log", "asyncio", "imapclient", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _print_rows(
    rows: Sequence[dict[str, Any]], as_json: bool, columns: Sequence[str], title: str
) -> None:
    if as_json:
        sys.stdout.write(json.dumps(list(rows), indent=2, ensure_ascii=False) + "\n")
        return
    if not rows:
        console.print(f"[dim]no {title.lower()}[/]")
        return
    table = Table(title=title, title_justify="left", header_style="bold")
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [
        max(len(column), *(len(Text.from_markup(line[i]).plain) for line in cells))
        for i, column in enumerate(columns)
    ]
    free = [i for i, column in enumerate(columns) if column in _FREE_TEXT]
    fixed = sum(w for i, w in enumerate(widths) if i not in free) + 3 * len(columns) + 1
    # Every row stays on one line: identifiers and times whole (they get copied into the next
    # command), long free text shortened to what the terminal has left (``--json`` has it all).
    budget = max(12, (console.width - fixed) // max(len(free), 1))
    for i, column in enumerate(columns):
        width = min(widths[i], budget) if i in free else widths[i]
        table.add_column(column.replace("_", " "), no_wrap=True, overflow="ellipsis", width=width)
    for line in cells:
        table.add_row(*line)
    console.print(table)


_FREE_TEXT = frozenset({"subject", "reason", "last_error"})


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]-[/]"
    if isinstance(value, list):
        return escape(", ".join(str(v) for v in value))
    text = str(value)
    if len(text) >= 19 and text[4:5] == "-" and text[10:11] == "T":  # ISO time: minute precision
        return text[:16].replace("T", " ") + " UTC"
    return escape(text)


async def _with_db(
    settings: Any, work: Callable[[Any], Awaitable[T]], *, migrate: bool = True
) -> T:
    from codered.db.engine import Database
    from codered.db.migrate import upgrade

    db = Database(settings.database.url)
    try:
        if migrate:
            await upgrade(db)
        return await work(db)
    finally:
        await db.dispose()


@app.command()
def run(
    config: ConfigOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the service: watch every mailbox, acknowledge complaints, deliver the outbox."""
    settings = _settings(config)
    _setup_logging(verbose)
    from codered.crashpoints import check_environment
    from codered.service import Service

    try:
        check_environment()
    except ValueError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None

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
    settings = _settings(config)
    from codered.check import run_checks

    results = _run(run_checks(settings))
    for result in results:
        mark = (
            "[red]FAIL[/]"
            if not result.ok
            else ("[yellow]WARN[/]" if result.warning else "[green] OK [/]")
        )
        console.print(f"{mark} {escape(result.name)}: {escape(result.detail)}", highlight=False)
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

    raise typer.Exit(run_demo(console, duration=duration, data_dir=data_dir))


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Create or upgrade the schema to the newest revision."""
    settings = _settings(config)
    from codered.db.migrate import current_revision, head_revision

    async def _work(db: Any) -> str | None:
        return await current_revision(db)

    revision = _run(_with_db(settings, _work))
    console.print(f"schema is at revision {revision} (newest: {head_revision()})")


@incidents_app.command("list")
def incidents_list(
    config: ConfigOption = None, as_json: JsonOption = False, limit: LimitOption = 100
) -> None:
    """Incidents, newest first."""
    settings = _settings(config)
    from codered.queries import list_incidents

    async def _work(db: Any) -> list[dict[str, Any]]:
        async with db.read() as session:
            return await list_incidents(session, limit)

    rows = _run(_with_db(settings, _work))
    _print_rows(
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
    settings = _settings(config)
    from codered.queries import list_outbox

    async def _work(db: Any) -> list[dict[str, Any]]:
        async with db.read() as session:
            return await list_outbox(session, limit, status)

    rows = _run(_with_db(settings, _work))
    _print_rows(
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
    settings = _settings(config)
    from codered.outbox import OutboxWorker, SendResult, retry_failed
    from codered.service import smtp_server

    async def _work(db: Any) -> SendResult:
        return await retry_failed(OutboxWorker(db, smtp_server(settings)), outbox_id)

    try:
        result = _run(_with_db(settings, _work))
    except (LookupError, ValueError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    console.print(
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
    settings = _settings(config)
    from codered.queries import list_dead_letters

    async def _work(db: Any) -> list[dict[str, Any]]:
        async with db.read() as session:
            return await list_dead_letters(session, limit, include_retried=all_)

    rows = _run(_with_db(settings, _work))
    _print_rows(
        rows, as_json, ["id", "reason", "when", "mailbox", "uid", "size", "status"], "Dead letters"
    )


@deadletters_app.command("retry")
def deadletters_retry(
    dead_letter_id: Annotated[int, typer.Argument(help="Dead letter id from `deadletters list`.")],
    config: ConfigOption = None,
) -> None:
    """Run a dead letter through the pipeline again (fetching it first if it was never fetched)."""
    settings = _settings(config)
    from codered.deadletters import retry_dead_letter
    from codered.pipeline import Outcome, Pipeline
    from codered.service import imap_account
    from inbox.watcher import fetch_one

    def fetch_raw(mailbox: str, uidvalidity: int, uid: int) -> bytes:
        return fetch_one(imap_account(settings.mailbox(mailbox)), uidvalidity, uid)

    async def _work(db: Any) -> Outcome:
        return await retry_dead_letter(db, Pipeline(db, settings), dead_letter_id, fetch_raw)

    try:
        outcome = _run(_with_db(settings, _work))
    except (LookupError, ValueError, RuntimeError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    ref = f" ({outcome.incident_reference})" if outcome.incident_reference else ""
    console.print(
        f"dead letter {dead_letter_id}: {outcome.action}{ref}: {escape(outcome.reason)}",
        highlight=False,
    )
    if outcome.action == "dead_letter":
        raise typer.Exit(1)


def main() -> None:
    app()
