"""``codered drafts ...`` and the incident commands that feed them (``note``, ``show``).

Drafting here runs in this process, with a spinner, so a CSM sees the draft at
once; ``--queue`` leaves it to the running service instead. Approving writes
the message to the outbox and, unless ``--no-send``, delivers it right away by
the same path the service uses.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from codered.cli_support import (
    ConfigOption,
    JsonOption,
    LimitOption,
    command_group,
    console,
    escape,
    fail,
    load_cli_settings,
    login_name,
    print_json,
    print_rows,
    run_async,
    with_db,
)

__all__ = ["drafts_app", "register_incident_commands"]

drafts_app = command_group(
    "Drafted replies waiting for a person: create, list, show, approve, reject."
)


class KindChoice(StrEnum):
    summary = "summary"
    update = "update"
    delay = "delay"
    recap = "recap"
    rewrite = "rewrite"


class AboutChoice(StrEnum):
    what = "what"
    why = "why"
    resolve = "resolve"
    prevent = "prevent"


def _who() -> str:
    return login_name()


AsOption = Annotated[
    str | None, typer.Option("--as", help="Who does this (recorded in the audit trail).")
]
TextOption = Annotated[str | None, typer.Option("--text", help="Call notes, or text to rewrite.")]
TextFileOption = Annotated[
    Path | None, typer.Option("--text-file", help="Read --text from this file ('-' for stdin).")
]


def _read_text(text: str | None, path: Path | None) -> str | None:
    if path is None:
        return text
    if text is not None:
        raise fail("give --text or --text-file, not both", 2)
    try:
        if str(path) == "-":
            return typer.get_text_stream("stdin").read()
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {path}: {exc}", 2) from None


def _show(detail: dict[str, Any]) -> None:
    """A draft as a CSM reads it: the text, then what to look at before approving."""
    label = "template draft (no model)" if detail["template"] else f"model {detail['model']}"
    console().print(
        f"[bold]draft {detail['id']}[/] · {detail['incident']} · {detail['kind']} · "
        f"[bold]{detail['status']}[/] · {escape(label or '-')}",
        highlight=False,
    )
    if detail["prompt"]:
        console().print(f"prompt: {escape(detail['prompt'])}", highlight=False)
    cost = detail["cost_usd"]
    console().print(
        f"tokens: {detail['prompt_tokens']} in, {detail['completion_tokens']} out; cost: "
        + ("unknown for this model" if cost is None else f"${cost:.6f}"),
        highlight=False,
    )
    if detail["error"]:
        console().print(f"[red]failed:[/] {escape(detail['error'])}", highlight=False)
    text = detail["final_text"] or detail["text"]
    if text:
        console().rule("text" if not detail["final_text"] else "approved text")
        console().print(escape(text), highlight=False, markup=True)
        console().rule()
    for note in detail["notes_to_csm"]:
        console().print(f"[cyan]note:[/] {escape(note)}", highlight=False)
    for finding in detail["finding_list"]:
        colour = "red" if finding["severity"] == "blocking" else "yellow"
        where = f" ({finding['section']})" if finding.get("section") else ""
        excerpt = f' "{finding["excerpt"]}"' if finding.get("excerpt") else ""
        console().print(
            f"[{colour}]{finding['severity']}[/] {finding['rule']}{where}:{escape(excerpt)} "
            f"{escape(finding['message'])}",
            highlight=False,
        )
    if not detail["finding_list"] and detail["status"] == "pending":
        console().print("[green]no wording findings[/]")
    if detail.get("delivery"):
        d = detail["delivery"]
        console().print(
            f"delivery: outbox {d['outbox_id']} {d['status']} to {', '.join(d['to'])}"
            + (f" ({escape(d['smtp_reply'] or '')})" if d["smtp_reply"] else ""),
            highlight=False,
        )


async def _detail(db: Any, draft_id: int) -> dict[str, Any]:
    from codered.draft_queries import draft_detail

    async with db.read() as session:
        return await draft_detail(session, draft_id)


async def _finished(db: Any, draft_id: int, seconds: float) -> dict[str, Any]:
    """The draft once it is no longer being drafted, or as it is after ``seconds``."""
    import asyncio

    detail = await _detail(db, draft_id)
    for _ in range(max(1, int(seconds / 0.2))):  # bounded: ``seconds`` in 0.2 s steps
        if detail["status"] not in ("requested", "drafting"):
            break
        await asyncio.sleep(0.2)
        detail = await _detail(db, draft_id)
    return detail


@drafts_app.command("create")
def drafts_create(
    reference: Annotated[str, typer.Argument(help="Incident reference, e.g. CR-1042.")],
    kind: Annotated[KindChoice, typer.Option("--kind", help="What to draft.")],
    text: TextOption = None,
    text_file: TextFileOption = None,
    as_: AsOption = None,
    queue: Annotated[
        bool, typer.Option("--queue", help="Leave the drafting to the running service.")
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Draft a summary, update, delay notice, call recap or rewrite for a person to approve."""
    settings = load_cli_settings(config)
    source = _read_text(text, text_file)
    from codered.drafts import DraftingWorker, make_drafter, request_draft
    from codered.leaseholders import worker_identity
    from drafting.kinds import DraftKind

    async def _work(db: Any) -> dict[str, Any]:
        draft_id = await request_draft(
            db, reference, DraftKind(kind.value), actor=as_ or _who(), source_text=source
        )
        if not queue:
            drafter = make_drafter(settings)
            worker = DraftingWorker(db, settings, drafter, identity=worker_identity())
            with console().status(f"drafting {kind.value} for {reference} with {drafter.name}…"):
                if await worker.run(draft_id) is None:
                    # A running service claimed the request first: wait for its draft.
                    return await _finished(db, draft_id, settings.llm.retry_deadline_seconds + 30)
        return await _detail(db, draft_id)

    try:
        detail = run_async(with_db(settings, _work))
    except (LookupError, ValueError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json(detail)
    elif queue:
        console().print(f"draft {detail['id']} queued; the running service drafts it")
    else:
        _show(detail)
    if detail["status"] == "failed":
        raise typer.Exit(1)


@drafts_app.command("list")
def drafts_list(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    limit: LimitOption = 100,
    status: Annotated[
        str | None,
        typer.Option(help="requested, drafting, pending, failed, approved or rejected."),
    ] = None,
    incident: Annotated[str | None, typer.Option(help="Only this incident (CR-1042).")] = None,
) -> None:
    """Drafts, newest first."""
    settings = load_cli_settings(config)
    from codered.draft_queries import list_drafts

    async def _work(db: Any) -> list[dict[str, Any]]:
        async with db.read() as session:
            return await list_drafts(session, limit, status, incident)

    rows = run_async(with_db(settings, _work))
    columns = ["id", "incident", "kind", "status", "model", "created_at", "findings", "blocking"]
    print_rows(rows, as_json, columns, "Drafts")


@drafts_app.command("show")
def drafts_show(
    draft_id: Annotated[int, typer.Argument(help="Draft id from `drafts list`.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One draft: its text, findings, notes, model, prompt version, tokens and cost."""
    settings = load_cli_settings(config)
    try:
        detail = run_async(with_db(settings, lambda db: _detail(db, draft_id)))
    except LookupError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json(detail)
    else:
        _show(detail)


@drafts_app.command("approve")
def drafts_approve(
    draft_id: Annotated[int, typer.Argument(help="Draft id from `drafts list`.")],
    as_: Annotated[str, typer.Option("--as", help="Who approves (recorded).")],
    edit_file: Annotated[
        Path | None, typer.Option("--edit-file", help="Send this text instead (your edit).")
    ] = None,
    override: Annotated[
        str | None,
        typer.Option("--override", help="Why it may go out despite blocking findings."),
    ] = None,
    no_send: Annotated[
        bool, typer.Option("--no-send", help="Only queue it; the running service sends it.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Approve a draft (optionally edited); it goes out through the outbox, in the thread."""
    settings = load_cli_settings(config)
    edited = _read_text(None, edit_file)
    from codered.approval import approve_draft
    from codered.connections import oauth_tokens, smtp_server, smtp_servers
    from codered.outbox import OutboxWorker
    from codered.outbox_actions import send_now

    async def _work(db: Any) -> tuple[Any, Any]:
        approval = await approve_draft(
            db, settings, draft_id, actor=as_, edited_text=edited, override=override
        )
        sent = None
        if not no_send:
            worker = OutboxWorker(
                db,
                smtp_server(settings),
                servers=smtp_servers(settings, oauth_tokens(settings)),
                max_attempts=settings.smtp.max_attempts,
            )
            sent = await send_now(worker, approval.outbox_id)
        return approval, sent

    try:
        approval, sent = run_async(with_db(settings, _work))
    except (LookupError, ValueError) as exc:
        raise fail(str(exc)) from None
    edited_note = " (edited)" if approval.edited else ""
    console().print(
        f"draft {draft_id} approved{edited_note}; outbox {approval.outbox_id} to "
        f"{', '.join(approval.recipients)}, Message-ID {approval.message_id}",
        highlight=False,
    )
    if sent is None:
        console().print("queued: the running service delivers it", highlight=False)
    else:
        console().print(f"delivery: {sent.status} ({escape(sent.detail)})", highlight=False)
        if sent.status == "failed":
            raise typer.Exit(1)


@drafts_app.command("reject")
def drafts_reject(
    draft_id: Annotated[int, typer.Argument(help="Draft id from `drafts list`.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")],
    as_: Annotated[str, typer.Option("--as", help="Who rejects (recorded).")],
    config: ConfigOption = None,
) -> None:
    """Reject a draft with a reason; nothing is sent."""
    settings = load_cli_settings(config)
    from codered.approval import reject_draft

    async def _work(db: Any) -> None:
        await reject_draft(db, draft_id, actor=as_, reason=reason)

    try:
        run_async(with_db(settings, _work))
    except (LookupError, ValueError) as exc:
        raise fail(str(exc)) from None
    console().print(f"draft {draft_id} rejected", highlight=False)


def register_incident_commands(incidents_app: typer.Typer) -> None:
    """Add ``incidents note`` and ``incidents show`` to the ``incidents`` group."""

    @incidents_app.command("note")
    def incidents_note(
        reference: Annotated[str, typer.Argument(help="Incident reference, e.g. CR-1042.")],
        text: Annotated[str, typer.Argument(help="The fact, in a sentence or two.")],
        about: Annotated[
            AboutChoice | None,
            typer.Option(help="Which question it answers: what, why, resolve or prevent."),
        ] = None,
        as_: AsOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Record a fact on an incident: summaries are drafted from these, and only these."""
        settings = load_cli_settings(config)
        from codered.notes import add_note, parse_about

        async def _work(db: Any) -> int:
            question = parse_about(about.value if about else None)
            return await add_note(db, reference, text, author=as_ or _who(), about=question)

        try:
            note_id = run_async(with_db(settings, _work))
        except (LookupError, ValueError) as exc:
            raise fail(str(exc)) from None
        console().print(f"note {note_id} recorded on {reference.upper()}", highlight=False)

    @incidents_app.command("show")
    def incidents_show(
        reference: Annotated[str, typer.Argument(help="Incident reference, e.g. CR-1042.")],
        config: ConfigOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """One incident: its facts, its drafts, and what its model calls cost."""
        settings = load_cli_settings(config)
        from codered.draft_queries import incident_detail

        async def _work(db: Any) -> dict[str, Any]:
            async with db.read() as session:
                return await incident_detail(session, reference)

        try:
            detail = run_async(with_db(settings, _work))
        except LookupError as exc:
            raise fail(str(exc)) from None
        if as_json:
            print_json(detail)
            return
        console().print(
            f"[bold]{detail['reference']}[/] {escape(detail['subject'])} · "
            f"{detail['customer']} · {detail['category'] or '-'} · {detail['severity']} · "
            f"{detail['status']} · reply by {detail['reply_by']}",
            highlight=False,
        )
        for note in detail["notes"]:
            about = f"({note['about']}) " if note["about"] else ""
            console().print(
                f"  note {note['id']} {about}by {escape(note['author'])}: {escape(note['text'])}",
                highlight=False,
            )
        print_rows(
            detail["drafts"],
            False,
            ["id", "kind", "status", "model", "created_at", "blocking"],
            "Drafts",
        )
        usage = detail["model_usage"]
        cost = usage["cost_usd"]
        console().print(
            f"model calls: {usage['calls']} ({usage['failed_calls']} failed), tokens "
            f"{usage['prompt_tokens']} in / {usage['completion_tokens']} out, cost "
            + ("unknown" if cost is None else f"${cost:.6f}"),
            highlight=False,
        )
