"""``codered incidents move`` and ``codered calls log``: the incident's life and its calls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from codered.cli_support import (
    ConfigOption,
    command_group,
    console,
    escape,
    fail,
    load_cli_settings,
    login_name,
    run_async,
    with_db,
)

__all__ = ["calls_app", "register_lifecycle_commands"]

calls_app = command_group("Phone calls with customers (each one followed by an email).")


@calls_app.command("log")
def calls_log(
    reference: Annotated[str, typer.Argument(help="Incident reference, e.g. CR-1042.")],
    notes: Annotated[str, typer.Option("--notes", help="What was said and agreed.")],
    participants: Annotated[
        list[str], typer.Option("--participant", "-p", help="Who took part (repeat).")
    ],
    duration: Annotated[int, typer.Option("--minutes", min=0, max=1440, help="How long.")],
    started: Annotated[
        str | None, typer.Option("--started", help="When it began (ISO time; default: now).")
    ] = None,
    as_: Annotated[str | None, typer.Option("--as", help="Who logs it.")] = None,
    config: ConfigOption = None,
) -> None:
    """Log a call; its recap draft is requested at once, and an email must follow in time."""
    settings = load_cli_settings(config)
    try:
        when = datetime.fromisoformat(started) if started else datetime.now(UTC)
    except ValueError:
        raise fail(f"--started is not an ISO time: {started!r}", 2) from None
    from codered.calls import log_call

    async def _work(db: Any) -> tuple[int, int]:
        return await log_call(
            db,
            reference,
            started_at=when,
            duration_minutes=duration,
            participants=participants,
            notes=notes,
            actor=as_ or login_name(),
        )

    try:
        call_id, draft_id = run_async(with_db(settings, _work))
    except (LookupError, ValueError) as exc:
        raise fail(str(exc)) from None
    console().print(
        f"call {call_id} logged on {reference.upper()}; recap draft {draft_id} "
        "requested (the running service drafts it)",
        highlight=False,
    )


def register_lifecycle_commands(incidents_app: typer.Typer) -> None:
    @incidents_app.command("assign")
    def incidents_assign(
        reference: Annotated[str, typer.Argument(help="Incident reference, e.g. CR-1042.")],
        owner: Annotated[str, typer.Argument(help="The CSM who owns it from now on.")],
        as_: Annotated[str, typer.Option("--as", help="Who assigns it (recorded).")],
        config: ConfigOption = None,
    ) -> None:
        """Give an incident to a CSM by hand (the rules and round robin assign new ones)."""
        settings = load_cli_settings(config)
        from codered.lifecycle import assign_owner_by_hand

        try:
            before = run_async(
                with_db(settings, lambda db: assign_owner_by_hand(db, reference, owner, actor=as_))
            )
        except (LookupError, ValueError) as exc:
            raise fail(str(exc)) from None
        console().print(
            f"{reference.upper()}: owner {escape(before or 'nobody')} → {escape(owner)}",
            highlight=False,
        )

    @incidents_app.command("move")
    def incidents_move(
        reference: Annotated[str, typer.Argument(help="Incident reference, e.g. CR-1042.")],
        state: Annotated[
            str,
            typer.Argument(
                help="acknowledged, gathering_facts, investigating, "
                "resolving, resolved, summarized or closed."
            ),
        ],
        as_: Annotated[str, typer.Option("--as", help="Who moves it (recorded).")],
        config: ConfigOption = None,
    ) -> None:
        """Move an incident to its next step; resolving it drafts the four-question summary."""
        settings = load_cli_settings(config)
        from codered.lifecycle import move_incident

        async def _work(db: Any) -> tuple[str, int | None]:
            return await move_incident(db, reference, state, actor=as_)

        try:
            before, draft_id = run_async(with_db(settings, _work))
        except (LookupError, ValueError) as exc:
            raise fail(str(exc)) from None
        console().print(f"{reference.upper()}: {escape(before)} → {escape(state)}", highlight=False)
        if draft_id is not None:
            console().print(
                f"debrief: four-question summary draft {draft_id} requested", highlight=False
            )
