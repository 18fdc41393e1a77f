"""``codered users ...`` and ``codered tokens ...``: accounts for the review desk and the API."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from codered.cli_support import (
    ConfigOption,
    JsonOption,
    command_group,
    console,
    fail,
    load_cli_settings,
    login_name,
    print_rows,
    run_async,
    with_db,
)

__all__ = ["tokens_app", "users_app"]

users_app = command_group("People who sign in to the review desk.")
tokens_app = command_group("Bearer tokens for the JSON API.")


def _operator() -> str:
    return f"cli:{login_name('unknown')}"


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt("Password", hide_input=True)
    second = typer.prompt("Repeat it", hide_input=True)
    if first != second:
        raise fail("the two passwords differ", 2)
    return str(first)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The sign-in name.")],
    role: Annotated[str, typer.Option("--role", help="csm, manager or admin.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    sso_only: Annotated[
        bool, typer.Option("--sso-only", help="No password: signs in through the SSO header.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Add a person; the password is prompted (twice) unless --password-stdin."""
    settings = load_cli_settings(config)
    password = None if sso_only else _password(password_stdin)
    from codered.accounts import add_user

    try:
        run_async(
            with_db(settings, lambda db: add_user(db, name, role, password, actor=_operator()))
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    console().print(f"user {name} added as {role}", highlight=False)


@users_app.command("list")
def users_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Everyone who may sign in, with their role."""
    settings = load_cli_settings(config)
    from codered.accounts import list_users

    async def _work(db: Any) -> list[dict[str, Any]]:
        async with db.read() as session:
            return [
                {
                    "name": u.name,
                    "role": u.role,
                    "created_at": u.created_at.isoformat(),
                    "password": u.password_hash is not None,
                    "disabled": u.disabled,
                }
                for u in await list_users(session)
            ]

    rows = run_async(with_db(settings, _work))
    print_rows(rows, as_json, ["name", "role", "created_at", "password", "disabled"], "Users")


@tokens_app.command("create")
def tokens_create(
    user: Annotated[str, typer.Option("--user", help="Whose role the token acts with.")],
    config: ConfigOption = None,
) -> None:
    """Create an API token and print it once (only its hash is stored)."""
    settings = load_cli_settings(config)
    from codered.accounts import create_token

    try:
        token = run_async(with_db(settings, lambda db: create_token(db, user, actor=_operator())))
    except LookupError as exc:
        raise fail(str(exc)) from None
    sys.stdout.write(token + "\n")
