"""What every ``codered`` command shares: options, loading settings, the database, tables.

Kept apart from the commands so that each group of commands can live in its own
module; nothing heavy is imported at module level (``--help`` stays instant).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

__all__ = [
    "ConfigOption",
    "JsonOption",
    "LimitOption",
    "T",
    "console",
    "err",
    "fail",
    "load_cli_settings",
    "login_name",
    "print_json",
    "print_rows",
    "run_async",
    "with_db",
]

T = TypeVar("T")

console = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML configuration file (default: $CODERED_CONFIG, then ./codered.toml).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, help="Most recent N rows.")]


def load_cli_settings(config: Path | None) -> Any:
    from codered.settings import ConfigError, load_settings, resolve_config_path

    try:
        return load_settings(resolve_config_path(config))
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


def run_async(coro: Awaitable[T]) -> T:
    async def _wrapped() -> T:
        return await coro

    return asyncio.run(_wrapped())


def print_rows(
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


async def with_db(settings: Any, work: Callable[[Any], Awaitable[T]], *, migrate: bool = True) -> T:
    from codered.db.engine import Database
    from codered.db.migrate import upgrade

    db = Database(settings.database.url)
    try:
        if migrate:
            await upgrade(db)
        return await work(db)
    finally:
        await db.dispose()


def login_name(default: str = "operator") -> str:
    """Who runs this command, for the audit trail when no ``--as`` is given."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return default


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr; ``raise fail(...)`` ends the command."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
