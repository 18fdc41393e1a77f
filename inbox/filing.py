"""What we sent, visible in the mailbox itself: a copy in Sent, and flags on what we answered.

A person who opens the shared mailbox in their own mail client should see what
codered did: each message it sent sits in the Sent folder (found by the
``\\Sent`` special-use attribute of RFC 6154, or configured, or ``Sent``
created when the server has none), and the customer's message we answered
carries ``\\Answered`` and a keyword such as ``$Acknowledged``. These are the
only changes codered makes to a mailbox; the watcher itself stays read-only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from imapclient.imapclient import SENT

from inbox.imap import close_quietly, connect, describe_error
from inbox.ports import ImapAccount

__all__ = ["FilingError", "file_sent_copy", "mark_answered"]

DEFAULT_SENT = "Sent"


class FilingError(Exception):
    """One line for the operator: what could not be filed, and why."""


def _sent_folder(client: Any, configured: str | None) -> str:
    if configured:
        return configured
    found = client.find_special_folder(SENT)
    if found:
        return str(found)
    if not client.folder_exists(DEFAULT_SENT):
        client.create_folder(DEFAULT_SENT)
    return DEFAULT_SENT


def file_sent_copy(
    account: ImapAccount, raw: bytes, *, sent_folder: str | None, when: datetime
) -> str:
    """APPEND ``raw`` to the Sent folder, marked ``\\Seen``; returns the folder's name."""
    try:
        client = connect(account)
    except Exception as exc:
        raise FilingError(describe_error(exc, account)) from None
    try:
        folder = _sent_folder(client, sent_folder)
        client.append(folder, raw, flags=[b"\\Seen"], msg_time=when)
        return folder
    except Exception as exc:
        raise FilingError(f"cannot append to Sent: {describe_error(exc, account)}") from None
    finally:
        close_quietly(client)


def mark_answered(account: ImapAccount, uidvalidity: int, uid: int, keyword: str) -> bool:
    """Set ``\\Answered`` and ``keyword`` on the message; False when the folder was renumbered
    or the message is gone (nothing to mark, nothing wrong)."""
    try:
        client = connect(account)
    except Exception as exc:
        raise FilingError(describe_error(exc, account)) from None
    try:
        info = client.select_folder(account.folder, readonly=False)
        if int(info.get(b"UIDVALIDITY", 0)) != uidvalidity:
            return False
        flags = [b"\\Answered"] + ([keyword.encode("ascii")] if keyword else [])
        done = client.add_flags([uid], flags, silent=False)
        return uid in done
    except Exception as exc:
        raise FilingError(f"cannot flag UID {uid}: {describe_error(exc, account)}") from None
    finally:
        close_quietly(client)
