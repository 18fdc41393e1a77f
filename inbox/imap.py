"""IMAP plumbing for the watcher: connecting, fetching, and one-line error messages.

Everything here is blocking (imapclient over a socket); the watcher calls it
from its own thread. The fetch helpers read without side effects (``PEEK``) and
never skip a message that still exists. Errors from sockets, TLS and the IMAP
protocol become short sentences an operator can act on, because they end up in
``codered check``, the health page and the logs, never as tracebacks.
"""

from __future__ import annotations

import contextlib
import logging
import re
import select
import socket
import ssl
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from inbox.ports import FetchedMessage, ImapAccount

__all__ = [
    "ImapCheckError",
    "ImapLoginError",
    "StoreError",
    "check_imap",
    "check_vanished",
    "close_quietly",
    "connect",
    "describe_error",
    "fetch_messages",
    "fetch_one",
    "input_pending",
    "message_id_of",
    "message_ids_in_folder",
    "socket_readable",
    "supports_idle",
    "uidnext",
]

log = logging.getLogger(__name__)
_ANGLE_ID = re.compile(rb"<[^<>\s]+>")
_BYTES_REPR = re.compile(r"""^b(['"])(.*)\1$""", re.DOTALL)


class ImapCheckError(Exception):
    """``check_imap`` failed; ``str(error)`` is a one-line explanation for the operator."""


class ImapLoginError(Exception):
    """The server refused our credentials ("login failed for <user>: <server text>")."""


class StoreError(Exception):
    """The watcher's store raised; nothing was advanced and the work will be retried."""


def _server_text(exc: BaseException) -> str:
    """imaplib puts the server's reply in ``str(exc)`` as ``b'...'``; unwrap it."""
    text = str(exc).strip()
    match = _BYTES_REPR.match(text)
    if match:
        text = match.group(2)
    return " ".join(text.split()) or type(exc).__name__


def _enable_keepalive(sock: Any) -> None:
    """TCP keepalive notices a peer that vanished without a FIN (a pulled cable,
    a NAT that forgot us) during a long IDLE, long before the 9-minute renewal."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 20), ("TCP_KEEPCNT", 3)):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError:
        pass  # best effort: IDLE renewal still bounds how long a dead peer goes unnoticed


def _access_token(account: ImapAccount) -> str:
    assert account.token_provider is not None
    try:
        return account.token_provider()
    except Exception as exc:  # the provider's own error, already one line
        raise ImapLoginError(f"no access token for {account.username}: {exc}") from None


def connect(account: ImapAccount) -> IMAPClient:
    """Open a connection and log in; the caller selects a folder and logs out.

    ``security`` is ``tls`` (implicit TLS, RFC 8314), ``starttls`` (RFC 3501
    section 6.2.1, refused if the server does not offer it, so credentials never
    cross in clear text by accident) or ``none`` (local test servers only).
    With ``account.token_provider`` set, logs in with SASL XOAUTH2 (the access token
    as the bearer credential) instead of LOGIN.
    Raises :class:`ImapLoginError` when the credentials are refused and socket
    or imapclient errors otherwise; :func:`describe_error` turns either into a line.
    """
    context = ssl.create_default_context() if account.security != "none" else None
    client = IMAPClient(
        account.host,
        port=account.port,
        ssl=account.security == "tls",
        ssl_context=context,
        timeout=account.connect_timeout_seconds,
    )
    try:
        _enable_keepalive(client.socket())
        if account.security == "starttls":
            client.starttls(context)
        try:
            if account.token_provider is not None:
                client.oauth2_login(account.username, _access_token(account))
            else:
                client.login(account.username, account.password)
        except LoginError as exc:
            raise ImapLoginError(
                f"login failed for {account.username}: {_server_text(exc)}"
            ) from None
    except BaseException:
        close_quietly(client)
        raise
    return client


def supports_idle(client: IMAPClient) -> bool:
    """Whether the server offers IDLE (RFC 2177) now that we are logged in.

    Capabilities are read after login because servers may advertise more to an
    authenticated client than in the greeting (RFC 3501 section 7.2.1).
    """
    return bool(client.has_capability("IDLE"))


def close_quietly(client: IMAPClient) -> None:
    """Log out politely if the connection still works, otherwise just close the socket."""
    try:
        client.logout()
    except Exception:
        with contextlib.suppress(Exception):  # already closed is the goal
            client.shutdown()


def describe_error(exc: BaseException, account: ImapAccount) -> str:
    """One line, no traceback, naming the server, for status pages and logs."""
    where = f"{account.host}:{account.port}"
    if isinstance(exc, ImapLoginError | ImapCheckError | StoreError):
        text = str(exc)
    elif isinstance(exc, ConnectionRefusedError):
        text = f"connection refused by {where}"
    elif isinstance(exc, TimeoutError):
        text = f"no answer from {where} within {account.connect_timeout_seconds:g}s"
    elif isinstance(exc, ssl.SSLError):
        text = f"TLS failed with {where}: {exc.reason or exc}"
    elif isinstance(exc, socket.gaierror):
        text = f"cannot resolve {account.host}: {exc.strerror or exc}"
    elif isinstance(exc, ConnectionResetError | BrokenPipeError):
        text = f"connection to {where} lost: {exc.strerror or exc}"
    elif isinstance(exc, IMAPClientAbortError):
        reason = _server_text(exc)
        if reason.endswith("EOF"):  # imaplib's "socket error: EOF"
            reason = "the server closed it"
        text = f"connection to {where} lost: {reason}"
    elif isinstance(exc, IMAPClientError):
        text = f"IMAP error from {where}: {_server_text(exc)}"
    elif isinstance(exc, OSError):
        text = f"network error with {where}: {exc.strerror or exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def check_imap(account: ImapAccount) -> str:
    """Connect, log in and select the folder read-only; describe it in one line.

    >>> check_imap(account)  # doctest: +SKIP
    'INBOX: 12 messages, UIDVALIDITY 1700000000, UIDNEXT 13, IDLE supported'

    Raises :class:`ImapCheckError` with an operator-readable message on any failure.
    """
    try:
        client = connect(account)
    except Exception as exc:
        raise ImapCheckError(describe_error(exc, account)) from None
    try:
        idle = supports_idle(client)
        try:
            info = client.select_folder(account.folder, readonly=True)
        except IMAPClientError as exc:
            raise ImapCheckError(
                f"folder {account.folder!r} cannot be opened: {_server_text(exc)}"
            ) from None
        count = info.get(b"EXISTS", 0)
        parts = [f"{account.folder}: {count} message{'' if count == 1 else 's'}"]
        parts.append(f"UIDVALIDITY {info.get(b'UIDVALIDITY', '?')}")
        if b"UIDNEXT" in info:
            parts.append(f"UIDNEXT {info[b'UIDNEXT']}")
        parts.append(
            "IDLE supported"
            if idle
            else f"no IDLE (polling every {account.poll_interval_seconds:g}s)"
        )
        return ", ".join(parts)
    except ImapCheckError:
        raise
    except Exception as exc:
        raise ImapCheckError(describe_error(exc, account)) from None
    finally:
        close_quietly(client)


def fetch_one(account: ImapAccount, uidvalidity: int, uid: int) -> bytes:
    """Download one message whole, ignoring the size cap, for an operator's explicit
    retry of a dead letter (``codered deadletters retry``). Read-only, ``BODY.PEEK[]``.

    Raises :class:`LookupError` when the folder was renumbered (UIDVALIDITY differs)
    or the message is gone, and :class:`RuntimeError` (one line) when the server
    cannot be reached.
    """
    try:
        client = connect(account)
    except Exception as exc:
        raise RuntimeError(describe_error(exc, account)) from None
    try:
        info = client.select_folder(account.folder, readonly=True)
        current = int(info.get(b"UIDVALIDITY", 0))
        if current != uidvalidity:
            raise LookupError(
                f"{account.folder} was renumbered (UIDVALIDITY {current}, not {uidvalidity}); "
                f"UID {uid} no longer identifies the message"
            )
        raw = client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {}).get(b"BODY[]")
        if not isinstance(raw, bytes):
            raise LookupError(f"UID {uid} is no longer in {account.folder}")
        return raw
    except LookupError:
        raise
    except Exception as exc:
        raise RuntimeError(describe_error(exc, account)) from None
    finally:
        close_quietly(client)


# --- low-level helpers the watcher uses ---------------------------------------------------


def uidnext(client: Any, folder: str, info: dict[bytes, Any]) -> int:
    """UIDNEXT from SELECT, else STATUS (RFC 3501 says SELECT "should" send it)."""
    if b"UIDNEXT" in info:
        return int(info[b"UIDNEXT"])
    status = client.folder_status(folder, ["UIDNEXT"])
    return int(status[b"UIDNEXT"])


def message_id_of(fetched: dict[bytes, Any]) -> str | None:
    """The ``<id@host>`` from a ``BODY[HEADER.FIELDS (MESSAGE-ID)]`` response."""
    header = next((v for k, v in fetched.items() if k.startswith(b"BODY[HEADER.FIELDS")), None)
    if not isinstance(header, bytes):
        return None
    unfolded = re.sub(rb"\r?\n[ \t]+", b" ", header)
    match = re.search(rb"(?im)^message-id[ \t]*:(.*)$", unfolded)
    if match is None:
        return None
    value = match.group(1).strip()
    angle = _ANGLE_ID.search(value)
    if angle is not None:
        return angle.group().decode("ascii", "replace")
    if value and not re.search(rb"\s", value):
        return "<" + value.decode("ascii", "replace") + ">"
    return None


def check_vanished(client: Any, missing: list[int], what: str) -> None:
    """Messages the server did not return were expunged, or the reply was wrong.

    Skipping a message that still exists would lose it once the cursor moves
    past, so ask again: if any is still there, fail and let the retry fetch it.
    """
    if not missing:
        return
    still_there = client.search(["UID", ",".join(str(u) for u in missing)])
    if still_there:
        raise IMAPClientError(f"server returned no {what} for UIDs {sorted(still_there)[:10]}")
    log.info("UIDs %s were expunged before they could be fetched", missing[:10])


def socket_readable(sock: Any, timeout: float = 0.0) -> bool:
    """Wait up to ``timeout`` seconds for the socket to have input (or EOF)."""
    try:
        return bool(select.select([sock], [], [], timeout)[0])
    except (OSError, ValueError):
        return True  # a closed socket counts as readable: the next read reports EOF


def input_pending(client: Any) -> bool:
    """Whether imaplib already buffered input that poll() on the socket cannot see.

    imaplib reads through a buffered file object, so an ``EXISTS`` the server sent
    in the same packet as the IDLE continuation can sit in that buffer while the
    socket looks idle; we peek without blocking. This reaches into imaplib, so
    any surprise simply means "nothing pending".
    """
    peek = getattr(getattr(getattr(client, "_imap", None), "file", None), "peek", None)
    if peek is None:
        return False
    sock = client.socket()
    timeout = sock.gettimeout()
    try:
        sock.setblocking(False)
        return bool(peek(1))
    except (OSError, ValueError):
        return False
    finally:
        sock.settimeout(timeout)


def take_exists_reports(client: Any) -> bool:
    """Whether the server reported ``EXISTS`` since the last call, and forget those reports.

    A session's view of a mailbox only grows when the server sends ``EXISTS``
    (RFC 3501 7.3.1), and it may send it *with* the reply to a SEARCH that was
    answered from the old view: pymap does exactly that, so the SEARCH finds
    nothing while the new message is already announced. imapclient leaves such
    reports in imaplib's ``untagged_responses``; we read and clear them there,
    so a catch-up searches again instead of idling past the new mail. Anything
    unexpected in imaplib's internals means "no report".
    """
    responses = getattr(getattr(client, "_imap", None), "untagged_responses", None)
    if not isinstance(responses, dict):
        return False
    return bool(responses.pop("EXISTS", None))


def message_ids_in_folder(client: Any, chunk: int) -> dict[str, list[int]]:
    """Message-ID → UIDs (ascending) for every message in the selected folder,
    reading only that header (``BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]``)."""
    uids_by_id: dict[str, list[int]] = {}
    uids = sorted(client.search("ALL"))
    for start in range(0, len(uids), chunk):
        part = uids[start : start + chunk]
        headers = client.fetch(part, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        for uid in part:
            message_id = message_id_of(headers.get(uid, {}))
            if message_id is not None:
                uids_by_id.setdefault(message_id, []).append(uid)
    return uids_by_id


def internal_dates(client: Any, uids: Sequence[int], chunk: int) -> dict[int, datetime]:
    """UID → the server's arrival time (INTERNALDATE, RFC 3501 2.3.3), timezone-aware."""
    dates: dict[int, datetime] = {}
    for start in range(0, len(uids), chunk):
        part = list(uids[start : start + chunk])
        for uid, data in client.fetch(part, ["INTERNALDATE"]).items():
            value = data.get(b"INTERNALDATE")
            if isinstance(value, datetime):
                # imapclient gives local naive times unless told otherwise.
                dates[uid] = value if value.tzinfo else value.astimezone()
    return dates


def fetch_messages(
    client: Any, uids: Sequence[int], account: ImapAccount, batch_bytes: int
) -> Iterator[list[FetchedMessage]]:
    """Yield the messages in ``uids`` in ascending order, in batches of at most
    ``batch_bytes`` of message data, so memory stays bounded.

    Sizes come first (``RFC822.SIZE``): a message over ``max_message_bytes`` is
    never downloaded and comes back as ``raw=None, oversized=True``. Bodies are
    read with ``BODY.PEEK[]`` so the server does not set ``\\Seen`` (RFC 3501
    section 6.4.5). Messages expunged meanwhile are left out.
    """
    cap = account.max_message_bytes
    answer = client.fetch(uids, ["RFC822.SIZE"])
    sizes = {u: int(answer[u][b"RFC822.SIZE"]) for u in uids if b"RFC822.SIZE" in answer.get(u, {})}
    check_vanished(client, [u for u in uids if u not in sizes], "size")
    group: list[int] = []
    group_bytes = 0
    for uid in (u for u in uids if u in sizes):
        cost = sizes[uid] if sizes[uid] <= cap else 0
        if group and group_bytes + cost > batch_bytes:
            yield _download(client, group, sizes, account)
            group, group_bytes = [], 0
        group.append(uid)
        group_bytes += cost
    if group:
        yield _download(client, group, sizes, account)


def _download(
    client: Any, uids: list[int], sizes: dict[int, int], account: ImapAccount
) -> list[FetchedMessage]:
    cap = account.max_message_bytes
    wanted = [u for u in uids if sizes[u] <= cap]
    answer = client.fetch(wanted, ["BODY.PEEK[]"]) if wanted else {}
    raw = {
        u: answer[u][b"BODY[]"]
        for u in wanted
        if isinstance(answer.get(u, {}).get(b"BODY[]"), bytes)
    }
    check_vanished(client, [u for u in wanted if u not in raw], "body")
    batch: list[FetchedMessage] = []
    for uid in uids:
        if sizes[uid] > cap:
            log.warning(
                "mailbox %s: UID %d is %d bytes, over the %d-byte cap; not downloaded",
                account.name, uid, sizes[uid], cap,
            )  # fmt: skip
            batch.append(FetchedMessage(uid, sizes[uid], raw=None, oversized=True))
        elif uid in raw:
            batch.append(FetchedMessage(uid, sizes[uid], raw=raw[uid]))
    return batch
