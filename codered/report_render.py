"""The incident report as Markdown and as a PDF (fpdf2): the same content, two forms.

Kept apart from :mod:`codered.report`, which reads the database: rendering is pure.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from codered.report import FONT_CANDIDATES, IncidentReport, _time, duration_words

__all__ = ["to_markdown", "to_pdf"]


@dataclass(frozen=True)
class _Section:
    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    note: str = ""


def _facts(r: IncidentReport) -> list[tuple[str, str]]:
    customer = f"{r.customer_name} ({r.customer})" if r.customer_name else r.customer
    if r.time_to_resolve is not None:
        resolve = duration_words(r.time_to_resolve)
    else:
        resolve = f"not resolved (open for {duration_words(r.generated_at - r.opened_at)})"
    ack = r.time_to_acknowledge
    ack_words = "not acknowledged" if ack is None else duration_words(ack)
    return [
        ("Reference", r.reference),
        ("Customer", customer),
        ("Subject", r.subject),
        ("Category", r.category or "uncategorised"),
        ("Severity", r.severity),
        ("Owner", r.owner or "unassigned"),
        ("Status", r.status),
        ("Opened (UTC)", _time(r.opened_at)),
        ("Acknowledged (UTC)", _time(r.acknowledged_at)),
        ("Resolved (UTC)", _time(r.resolved_at)),
        ("Time to acknowledge", ack_words),
        ("Time to resolve", resolve),
    ]


def _sections(r: IncidentReport) -> list[_Section]:
    counts = r.promise_counts()
    kept = f"{counts['kept']} kept, {counts['missed']} missed, {counts['open']} open"
    kept += f", {counts['superseded']} superseded" if counts["superseded"] else ""
    overdue = sum(1 for p in r.promises if p.status == "open" and p.due_at < r.generated_at)
    kept += f" ({overdue} open past due)" if overdue else ""
    return [
        _Section("Timeline", ("Time (UTC)", "Actor", "Event", "Description"),
                 [(_time(e.at), e.actor, e.kind, e.description) for e in r.timeline]),
        _Section("Messages", ("Time (UTC)", "Direction", "Kind", "From / to", "Subject", "Status"),
                 [(_time(m.at), m.direction, m.kind, m.address, m.subject, m.status)
                  for m in r.messages]),
        _Section("Calls", ("Started (UTC)", "Duration", "Participants", "Notes"),
                 [(_time(c.started_at), f"{c.duration_minutes} min", ", ".join(c.participants),
                   c.notes) for c in r.calls]),
        _Section("Promises", ("Due (UTC)", "Stated (UTC)", "Source", "Status", "Settled (UTC)"),
                 [(_time(p.due_at), _time(p.stated_at), p.source, p.status, _time(p.settled_at))
                  for p in r.promises], f"Promises: {kept}."),
    ]  # fmt: skip


_CONTROLS = {c: " " for c in range(32) if c != 10}
"""Control characters (tab, NUL, ...) become spaces; only newlines mean something."""


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROLS)


def _cell(text: str) -> str:
    """Customer text in a table cell: it may not end the cell, the row, or inject HTML."""
    text = _lines(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
    return "<br>".join(text.split("\n"))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def to_markdown(report: IncidentReport) -> str:
    title = " ".join(_cell(report.subject).replace("<br>", " ").split())
    lines = [f"# Incident report {report.reference}: {title}", ""]
    lines += [f"Generated {_time(report.generated_at)} UTC.", ""]
    lines += [*_table(("Field", "Value"), _facts(report)), ""]
    for section in _sections(report):
        lines += [f"## {section.title}", ""]
        lines += [*_table(section.header, section.rows), ""] if section.rows else ["_None._", ""]
        lines += [f"**{section.note}**", ""] if section.note else []
    lines += ["## Summary sent", ""]
    if report.summary:
        if report.summary_status != "sent":
            lines += [f"_Approved, not sent yet (outbox: {report.summary_status})._", ""]
        quoted = _lines(report.summary).replace("<", "&lt;").strip().split("\n")
        lines += [f"> {line}".rstrip() for line in quoted]
    else:
        lines.append("_No four-question summary has been approved._")
    return "\n".join(lines) + "\n"


_PUNCTUATION = str.maketrans({"—": "-", "–": "-", "‘": "'", "’": "'", "“": '"', "”": '"',
                              "…": "...", "•": "*", "→": "->"})  # fmt: skip


def _latin1(text: str) -> str:
    """Text the core PDF fonts can show: accents dropped where needed, the rest ``?``."""

    def one(char: str) -> str:
        if ord(char) < 256:
            return char
        decomposed = unicodedata.normalize("NFKD", char)
        return decomposed.encode("latin-1", "ignore").decode("latin-1") or "?"

    return "".join(map(one, text.translate(_PUNCTUATION)))


def to_pdf(report: IncidentReport, *, fonts: Sequence[Path] = FONT_CANDIDATES) -> bytes:
    """An A4 PDF of the same content; ``fonts=()`` forces the latin-1 core-font fallback."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(f"Incident report {report.reference}")
    pdf.set_creator("codered")
    font = next((path for path in fonts if path.is_file()), None)
    family, covered = "helvetica", None
    if font is not None:
        family = "body"
        bold = font.with_name(font.name.replace("Regular", "Bold").replace("Sans.", "Sans-Bold."))
        pdf.add_font(family, "", str(font))
        pdf.add_font(family, "B", str(bold if bold.is_file() else font))
        # A glyph the font lacks (CJK in DejaVu) would vanish without a trace: show "?".
        covered = {10, *getattr(pdf.fonts[family], "cmap", {})}

    def clean(text: str) -> str:
        text = _lines(text)
        if covered is None:
            return _latin1(text)
        return "".join(c if ord(c) in covered else "?" for c in text)

    pdf.add_page()

    def write(text: str, size: float = 9, style: str = "", height: float = 5) -> None:
        pdf.set_font(family, style, size)
        pdf.multi_cell(0, height, clean(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    write(f"Incident report {report.reference}: {report.subject}", 16, "B", 8)
    write(f"Generated {_time(report.generated_at)} UTC", 8)
    pdf.ln(3)
    for label, value in _facts(report):
        pdf.set_font(family, "B", 9)
        pdf.cell(45, 5, clean(label))
        write(value)
    for section in _sections(report):
        pdf.ln(4)
        write(section.title, 12, "B", 7)
        for row in section.rows:
            write("  ·  ".join(cell for cell in row if cell not in ("", "-")))
            pdf.ln(1)
        if not section.rows:
            write("None.")
        if section.note:
            write(section.note, style="B")
    pdf.ln(4)
    write("Summary sent", 12, "B", 7)
    if report.summary and report.summary_status != "sent":
        write(f"Approved, not sent yet (outbox: {report.summary_status}).", style="B")
    write(
        report.summary.strip() if report.summary else "No four-question summary has been approved."
    )
    return bytes(pdf.output())
