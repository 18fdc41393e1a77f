"""``codered incidents report``: one incident as Markdown, PDF or JSON.

Markdown goes to stdout so it can be piped into a ticket or a chat; a PDF is binary and
would garble a terminal, so it is only ever written to a file.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from codered.cli_support import ConfigOption, console, fail, load_cli_settings, run_async, with_db

__all__ = ["ReportFormat", "register_report_command"]


class ReportFormat(StrEnum):
    markdown = "markdown"
    pdf = "pdf"
    json = "json"


def register_report_command(incidents_app: typer.Typer) -> None:
    """Add ``incidents report`` to the ``incidents`` group."""

    @incidents_app.command("report")
    def incidents_report(
        reference: Annotated[str, typer.Argument(help="Incident reference, e.g. CR-1042.")],
        fmt: Annotated[
            ReportFormat,
            typer.Option(
                "--format", "-f", help="Markdown (default), a PDF (needs --output) or JSON."
            ),
        ] = ReportFormat.markdown,
        output: Annotated[
            Path | None,
            typer.Option(
                "--output", "-o", dir_okay=False, help="Write to this file (needed for pdf)."
            ),
        ] = None,
        config: ConfigOption = None,
    ) -> None:
        """An incident start to finish: facts, times, timeline, messages, calls, promises."""
        if fmt is ReportFormat.pdf and output is None:
            raise fail("a PDF is written to a file: add --output FILE", 2)
        settings = load_cli_settings(config)
        from codered.db.models import utcnow
        from codered.report import IncidentReport, incident_report
        from codered.report_render import to_markdown, to_pdf

        async def _work(db: Any) -> IncidentReport:
            async with db.read() as session:
                return await incident_report(session, reference, now=utcnow())

        try:
            report = run_async(with_db(settings, _work))
        except LookupError as exc:
            raise fail(str(exc)) from None
        if fmt is ReportFormat.pdf:
            data = to_pdf(report)
        elif fmt is ReportFormat.json:
            text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False)
            data = (text + "\n").encode("utf-8")
        else:
            data = to_markdown(report).encode("utf-8")
        if output is None:
            sys.stdout.write(data.decode("utf-8"))
            return
        try:
            output.write_bytes(data)
        except OSError as exc:
            raise fail(f"cannot write {output}: {exc}") from None
        console().print(
            f"{fmt.value} report of {report.reference} written to {output} ({len(data)} bytes)",
            highlight=False,
            markup=False,
        )
