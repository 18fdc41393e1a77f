"""What every ``codered`` command shares: options, loading settings, the database, tables.

Kept apart from the commands so that each group of commands can live in its own
module. Nothing heavy is imported at module level, not even rich or asyncio: building
the command tree for ``--help`` must cost no more than typer itself (the startup
benchmark holds ``codered --help`` to 300 ms), so the consoles, markup escaping and the
event loop are all reached through functions that import on first use.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer._click.exceptions import NoArgsIsHelpError
from typer.core import TyperGroup

if TYPE_CHECKING:
    from rich.console import Console
    from typer._click import Context, HelpFormatter
    from typer.core import TyperOption

__all__ = [
    "ConfigOption",
    "JsonOption",
    "LimitOption",
    "PlainHelpGroup",
    "T",
    "command_group",
    "console",
    "err",
    "escape",
    "fail",
    "load_cli_settings",
    "login_name",
    "print_json",
    "print_rows",
    "run_async",
    "with_db",
]

T = TypeVar("T")


@cache
def console() -> Console:
    """The rich console on stdout, made on first use (importing rich is ~20 ms)."""
    from rich.console import Console

    return Console()


@cache
def err() -> Console:
    """The rich console on stderr, for errors and progress that must not mix with output."""
    from rich.console import Console

    return Console(stderr=True)


def escape(text: str) -> str:
    """rich's markup escaping, imported when a command prints rather than when it is defined."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


class PlainHelpGroup(TyperGroup):
    """A command group whose help is click's plain text, with command summaries kept whole.

    Why not typer's rich help panels: rendering them imports ``typer.rich_utils``, which
    pulls in rich's Markdown, Syntax and Traceback and with them markdown-it, pygments and
    attrs, about 100 ms of a ~200 ms ``--help``. Plain click help says the same things. Its
    one loss is that click cuts each command's summary to the terminal width with "...";
    here every summary is its whole first sentence, wrapped instead of cut.
    """

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        """The group's ``--help``, defaulting to False rather than None.

        Why: typer coerces every parameter value that is not already a bool through a
        pydantic TypeAdapter, and a ``--help`` that was not given is None. So every group
        on the way to ``codered drafts --help`` imported pydantic (~70 ms) only to turn
        None into False.
        """
        option = super().get_help_option(ctx)
        if option is not None:
            option.default = False
        return option

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        """A group given no command prints its help on stdout (exit 2), as rich's did.

        Plain click sends that help to stderr, so ``codered | less`` would show nothing.
        """
        try:
            return super().parse_args(ctx, args)
        except NoArgsIsHelpError:
            typer.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(2)

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        """Each command with its whole first sentence, wrapped rather than cut with "..."."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=sys.maxsize)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def command_group(help: str, *, name: str | None = None) -> typer.Typer:
    """A ``typer.Typer`` for ``codered`` or one of its groups, all with the same settings.

    ``rich_markup_mode=None`` keeps typer from rendering help and usage errors with rich
    (typer reads it from the top-level app, but a group run on its own, such as
    ``audit_app``, needs it too); ``PlainHelpGroup`` keeps the summaries whole.
    """
    return typer.Typer(
        name=name,
        help=help,
        cls=PlainHelpGroup,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )


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
        err().print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


def run_async(coro: Awaitable[T]) -> T:
    """Run one coroutine to its end; asyncio is imported here, not when the CLI is built."""
    import asyncio

    async def _wrapped() -> T:
        return await coro

    return asyncio.run(_wrapped())


def print_rows(
    rows: Sequence[dict[str, Any]], as_json: bool, columns: Sequence[str], title: str
) -> None:
    if as_json:
        sys.stdout.write(json.dumps(list(rows), indent=2, ensure_ascii=False) + "\n")
        return
    out = console()
    if not rows:
        out.print(f"[dim]no {title.lower()}[/]")
        return
    from rich.table import Table
    from rich.text import Text

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
    budget = max(12, (out.width - fixed) // max(len(free), 1))
    for i, column in enumerate(columns):
        width = min(widths[i], budget) if i in free else widths[i]
        table.add_column(column.replace("_", " "), no_wrap=True, overflow="ellipsis", width=width)
    for line in cells:
        table.add_row(*line)
    out.print(table)


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
    err().print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
