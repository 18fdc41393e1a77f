"""``codered auth login``: sign a mailbox in with OAuth2 once and keep its refresh token.

Microsoft uses msal's device-code flow (the operator opens a URL on any device and
types a code), Google the installed-app flow of google-auth-oauthlib (a browser on this
machine, redirected to a local port). Both libraries are imported inside the command
only. Whatever the flow, :func:`store_login` takes its token answer and saves the
refresh token encrypted in the :class:`~codered.oauth.TokenStore`; that is the part
the tests exercise, since real providers cannot be reached from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import typer

from codered.cli_support import ConfigOption, command_group, console, fail, load_cli_settings

__all__ = ["LoginError", "auth_app", "store_login"]

auth_app = command_group("OAuth2 sign-in for mailboxes.")

Provider = Literal["google", "microsoft"]


class LoginError(Exception):
    """The provider did not hand out a refresh token; one line for the operator."""


def store_login(settings: Any, mailbox: str, provider: str, answer: Mapping[str, Any]) -> None:
    """Save the refresh token of a token answer (``refresh_token`` key) for ``mailbox``.

    Raises :class:`LoginError` with the provider's ``error``/``error_description`` when
    the answer carries none (for example a consent that was declined).
    """
    from codered.oauth import TokenStore

    token = answer.get("refresh_token")
    if not isinstance(token, str) or not token:
        error = answer.get("error") or "no refresh_token in the answer"
        detail = answer.get("error_description")
        text = f"{error}: {detail}" if detail else str(error)
        raise LoginError(" ".join(text.split()))
    security = settings.security
    store = TokenStore(security.token_store_path(settings), security.key_file_path(settings))
    store.save(mailbox, token, provider=provider)


def _microsoft(box: Any, scopes: list[str]) -> Mapping[str, Any]:
    import msal

    app = msal.PublicClientApplication(
        box.oauth_client_id,
        authority=f"https://login.microsoftonline.com/{box.oauth_tenant}",
    )
    # msal adds offline_access (and openid, profile) itself and refuses them in the list.
    wanted = [s for s in scopes if s not in {"offline_access", "openid", "profile"}]
    flow = app.initiate_device_flow(scopes=wanted)
    if "user_code" not in flow:
        raise LoginError(str(flow.get("error_description") or flow.get("error") or flow))
    console().print(flow["message"], highlight=False)
    result: Mapping[str, Any] = app.acquire_token_by_device_flow(flow)
    return result


def _google(box: Any, scopes: list[str]) -> Mapping[str, Any]:
    from google_auth_oauthlib.flow import InstalledAppFlow

    config = {
        "installed": {
            "client_id": box.oauth_client_id,
            "client_secret": box.oauth_client_secret() or "",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    }
    flow = InstalledAppFlow.from_client_config(config, scopes=scopes)
    # access_type=offline and prompt=consent make Google return a refresh token every time.
    credentials = flow.run_local_server(port=0, access_type="offline", prompt="consent")
    return {"refresh_token": credentials.refresh_token}


@auth_app.command("login")
def auth_login(
    mailbox: Annotated[str, typer.Option("--mailbox", help="The mailbox's configured name.")],
    provider: Annotated[
        str, typer.Option("--provider", help="google or microsoft (default: the mailbox's).")
    ] = "",
    config: ConfigOption = None,
) -> None:
    """Sign the mailbox in and store its refresh token (encrypted) for the service."""
    settings = load_cli_settings(config)
    from codered.oauth import client_for

    try:
        box = settings.mailbox(mailbox)
    except KeyError:
        raise fail(f"no mailbox named {mailbox} in the configuration", 2) from None
    chosen = provider or box.oauth_provider or ""
    if chosen not in ("google", "microsoft"):
        raise fail("--provider must be google or microsoft", 2)
    if box.auth != "oauth2" or not box.oauth_client_id:
        raise fail(f'mailbox {mailbox} needs auth = "oauth2" and oauth_client_id', 2)
    scopes = client_for(box).scope.split()
    try:
        answer = _microsoft(box, scopes) if chosen == "microsoft" else _google(box, scopes)
        store_login(settings, mailbox, chosen, answer)
    except LoginError as exc:
        raise fail(f"sign-in failed: {exc}") from None
    console().print(f"mailbox {mailbox}: signed in with {chosen}; refresh token stored")
