"""Connection settings for a mailbox's IMAP and SMTP servers, built from the configuration.

Kept apart from the service so that filing, the CLI and the checks can build the same
accounts without importing the service (and everything it starts).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from codered.settings import MailboxSettings, Settings
from inbox.ports import ImapAccount
from mailer.deliver import SmtpServer

if TYPE_CHECKING:
    from codered.oauth import AccessTokens

__all__ = ["imap_account", "oauth_tokens", "smtp_server", "smtp_servers"]


def _token_provider(
    mailbox: MailboxSettings, tokens: AccessTokens | None
) -> Callable[[], str] | None:
    """The access-token source of an ``auth = "oauth2"`` mailbox; None for a password one."""
    if mailbox.auth != "oauth2":
        return None
    if tokens is None:
        raise ValueError(f"mailbox {mailbox.name} uses OAuth2: pass its AccessTokens")
    return tokens.provider(mailbox.name)


def imap_account(mailbox: MailboxSettings, tokens: AccessTokens | None = None) -> ImapAccount:
    """IMAP settings of ``mailbox``; an ``oauth2`` one takes its tokens from ``tokens``."""
    provider = _token_provider(mailbox, tokens)
    return ImapAccount(
        name=mailbox.name,
        host=mailbox.imap_host,
        port=mailbox.imap_port,
        security=mailbox.imap_security,
        username=mailbox.imap_username,
        password=mailbox.password(),
        folder=mailbox.folder,
        max_message_bytes=int(mailbox.max_message_mb * 1024 * 1024),
        poll_interval_seconds=mailbox.poll_interval_seconds,
        token_provider=provider,
    )


def smtp_server(
    settings: Settings, mailbox: str | None = None, tokens: AccessTokens | None = None
) -> SmtpServer:
    """The SMTP server for ``mailbox``: its own when it names one, else ``[smtp]``.

    A mailbox with ``auth = "oauth2"`` and its own SMTP server signs in there with
    XOAUTH2 (as ``smtp_username``, else ``imap_username``); ``[smtp]`` keeps its password.
    """
    box = settings.mailbox(mailbox) if mailbox else None
    if box is not None and box.smtp_host:
        password = os.environ.get(box.smtp_password_env) if box.smtp_password_env else None
        provider = _token_provider(box, tokens)
        username = box.smtp_username
        if provider is not None:
            username = username or box.imap_username
        return SmtpServer(
            host=box.smtp_host,
            port=box.smtp_port,
            security=box.smtp_security,
            username=username,
            password=password,
            timeout_seconds=settings.smtp.timeout_seconds,
            token_provider=provider,
        )
    smtp = settings.smtp
    return SmtpServer(
        host=smtp.host,
        port=smtp.port,
        security=smtp.security,
        username=smtp.username,
        password=smtp.resolved_password(),
        timeout_seconds=smtp.timeout_seconds,
    )


def smtp_servers(settings: Settings, tokens: AccessTokens | None = None) -> dict[str, SmtpServer]:
    """Mailboxes that send through their own SMTP server."""
    return {
        b.name: smtp_server(settings, b.name, tokens) for b in settings.mailboxes if b.smtp_host
    }


def oauth_tokens(
    settings: Settings, on_failure: Callable[[str, str], None] | None = None
) -> AccessTokens | None:
    """The shared token source when any mailbox uses OAuth2, else None."""
    if not any(m.auth == "oauth2" for m in settings.mailboxes):
        return None
    from codered.oauth import access_tokens  # httpx and cryptography only when needed

    return access_tokens(settings, on_failure=on_failure)
