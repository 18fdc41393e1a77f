"""``codered audit verify`` and ``codered audit export``: proving and reading the audit trail.

Why on the command line: an auditor or manager must be able to check the chain and take
out the entries they need without database access or SQL. ``export`` streams (one batch
of rows in memory at a time), writes a file only once it is complete (``FILE.partial``
until then), and records itself in the trail: who exported what, how much, to where.

``audit_app`` runs on its own too (``python -c "from codered.cli_audit import audit_app;
audit_app()" verify``), before it is mounted as ``codered audit``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from codered.cli_support import (
    ConfigOption,
    JsonOption,
    command_group,
    console,
    err,
    escape,
    fail,
    load_cli_settings,
    login_name,
    print_json,
    run_async,
    with_db,
)

__all__ = ["audit_app"]

audit_app = command_group(
    "The hash-chained audit trail: verify that nothing was changed, export entries."
)


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def _who() -> str:
    return login_name()


@audit_app.command("verify")
def audit_verify(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Check every link of the chain; exit 1 naming the first entry that does not match.

    Detected: a change to any field of any entry (its hash no longer matches), an entry
    deleted or inserted in the middle (the next entry's link breaks) and entries swapped
    or reordered (the links no longer follow id order).

    Not detectable from the chain alone: entries cut off its *end* (what is left is a
    valid, shorter chain), and a rewrite by someone who also recomputes every later hash
    (the hash is unkeyed). Against both, the last entry's id and hash are printed so they
    can be kept outside the database; any earlier export holds them too. An entry there
    that is missing here, or has another hash, proves the change.
    """
    settings = load_cli_settings(config)
    from codered.audit import VerifyResult, verify
    from codered.audit_export import verified_head

    async def _work(db: Any) -> tuple[VerifyResult, tuple[int, str] | None]:
        async with db.read() as session:
            result = await verify(session)
            head = await verified_head(session, result.entries) if result.ok else None
            return result, head

    result, head = run_async(with_db(settings, _work))
    if as_json:
        print_json(
            {
                "ok": result.ok,
                "entries": result.entries,
                "first_broken_id": result.first_broken_id,
                "problem": result.problem,
                "last_id": head[0] if head else None,
                "last_hash": head[1] if head else None,
            }
        )
    elif result.ok:
        last = f"; last entry {head[0]}, hash {head[1]}" if head else ""
        console().print(
            f"audit trail intact: {result.entries} entries{last}", highlight=False, soft_wrap=True
        )
    else:
        console().print(
            f"audit trail BROKEN at entry {result.first_broken_id}: {result.problem} "
            f"(checked {result.entries} entries)",
            highlight=False,
            soft_wrap=True,
        )
    if not result.ok:
        raise typer.Exit(1)


def _when(option: str, value: str | None, *, end_of_day: bool = False) -> datetime | None:
    from codered.audit_export import parse_time

    if value is None:
        return None
    try:
        return parse_time(value, end_of_day=end_of_day)
    except ValueError as exc:
        raise fail(f"{option}: {exc}", 2) from None


@contextmanager
def _destination(output: Path | None) -> Iterator[TextIO]:
    """stdout, or ``FILE.partial`` renamed to FILE once everything is written (removed on
    failure), so a half-written export never looks like a whole one. A path that exists
    and is not a regular file (``/dev/stdout``, a FIFO) is written directly."""
    if output is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    direct = output.exists() and not output.is_file()
    target = output if direct else output.with_name(output.name + ".partial")
    try:
        handle = target.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror or exc}", 2) from None
    try:
        with handle:
            yield handle
    except BaseException:
        if not direct:
            target.unlink(missing_ok=True)
        raise
    if not direct:
        os.replace(target, output)


SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="From this time on: 2026-12-01 or an ISO time (naive = UTC).",
        show_default=False,
    ),
]
UntilOption = Annotated[
    str | None,
    typer.Option(
        "--until",
        help="Before this time; a bare date includes that whole day (UTC).",
        show_default=False,
    ),
]


@audit_app.command("export")
def audit_export(
    since: SinceOption = None,
    until: UntilOption = None,
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="jsonl (exact, re-verifiable) or csv.")
    ] = ExportFormat.jsonl,
    kind: Annotated[str | None, typer.Option(help="Only this kind, e.g. draft.approved.")] = None,
    incident: Annotated[str | None, typer.Option(help="Only this incident (CR-1042).")] = None,
    customer: Annotated[
        str | None, typer.Option(help="Only this customer's incidents (email address).")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Only entries by this person.")] = None,
    limit: Annotated[
        int | None, typer.Option(min=0, help="At most N entries, oldest first.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here ('-': stdout).")
    ] = None,
    as_: Annotated[
        str | None, typer.Option("--as", help="Who exports (recorded; default: your login name).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Audit entries in chain order, as JSON Lines or CSV; the export itself is audited."""
    if output is not None and str(output) == "-":
        output = None
    start = _when("--since", since)
    end = _when("--until", until, end_of_day=True)
    if start is not None and end is not None and start >= end:
        raise fail("--since must be before --until", 2)
    who = (as_ if as_ is not None else _who()).strip()
    if not who:
        raise fail("--as needs a name", 2)
    settings = load_cli_settings(config)
    from codered.audit_export import audit_rows, csv_header, csv_line, jsonl_line, record_export

    line = csv_line if fmt is ExportFormat.csv else jsonl_line
    filters = {
        "since": start.isoformat() if start else None,
        "until": end.isoformat() if end else None,
        "kind": kind,
        "incident": incident.strip().upper() if incident else None,
        "customer": customer,
        "actor": actor,
        "limit": limit,
    }

    async def _record(db: Any, rows: int, complete: bool) -> None:
        where = str(output) if output else None
        await record_export(
            db,
            actor=who,
            filters=filters,
            rows=rows,
            fmt=fmt.value,
            output=where,
            complete=complete,
        )

    async def _work(db: Any) -> int:
        written = 0
        try:
            async with db.read() as session:
                with _destination(output) as out:
                    if fmt is ExportFormat.csv:
                        out.write(csv_header())
                    async for row in audit_rows(
                        session,
                        since=start,
                        until=end,
                        kind=kind,
                        incident=incident,
                        customer=customer,
                        actor=actor,
                        limit=limit,
                    ):
                        out.write(line(row))
                        written += 1
        except OSError as exc:  # disk full, or the reader of a pipe went away
            # Whatever was written has left the database: record it, marked incomplete.
            await _record(db, written, complete=False)
            if isinstance(exc, BrokenPipeError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise fail(f"export stopped after {written} entries: {exc}") from None
        await _record(db, written, complete=True)
        return written

    try:
        written = run_async(with_db(settings, _work))
    except LookupError as exc:
        raise fail(str(exc)) from None
    if output is not None:
        err().print(
            f"exported {written} entries to {escape(str(output))}", highlight=False, soft_wrap=True
        )
