"""Named crash points: let a test kill the real process at the exact moments that matter.

Why: invariants 1 and 2 of DESIGN.md ("nothing is lost", "each complaint is
acknowledged once") are claims about what survives a crash between two
commits. A test can only check them by crashing the real ``codered run`` at
each boundary, restarting it, and reading the end state. Killing it at a random
time rarely lands between, say, the SMTP server's ``250`` and our commit of
``sent``; a named point lands there every time.

Usage: the product calls ``crashpoint("after_raw_commit")`` at each boundary.
With ``CODERED_CRASH_AT=after_raw_commit:2`` in the environment, the second
pass of that point in this process ends it with ``os._exit(86)``: no
``finally`` blocks, no flushing, no closing of sockets or of the database,
exactly like a power cut or SIGKILL (committed data is on disk because the
database runs with synchronous commits). ``:k`` may be left out and means 1.
Without the variable every call is a no-op costing one global lookup and one
comparison. The variable is read once, at the first call; a malformed value or
an unknown point name raises :class:`ValueError` naming the valid ones (at the
first call and every later one, so a typo cannot silently disable a test).

The points, in the order a complaint meets them:

``after_fetch``
    The watcher fetched a batch from IMAP; nothing of it is stored yet
    (``DatabaseMailboxStore._store_batch``, before its transaction).
``after_raw_commit``, ``after_cursor_advance``
    The raw bytes are committed. The IMAP cursor advances in *the same*
    transaction as the raw rows, so both points sit right after that one
    commit (same function), under two names so each guarantee has its own
    test. One commit is stronger than two: with "store, commit, advance,
    commit" a crash in between leaves stored mail behind an old cursor (safe
    only thanks to the UID dedupe), and the opposite order would lose mail;
    with one commit there is no state in which the two disagree.
``after_decision_commit``
    The decision, the incident and the acknowledgement's outbox row are
    committed together (``Pipeline._record``); nothing has been sent.
``before_smtp_data``
    An outbox row is claimed (``sending``, leased to this process) and its
    bytes are read; no SMTP connection is open yet (``OutboxWorker._send``).
``after_smtp_250``
    The server accepted the message, ``sent`` is not committed yet
    (``OutboxWorker._send``). This is the one documented window in which a
    message can go out twice: the next process re-sends the same bytes with
    the same Message-ID.
"""

from __future__ import annotations

import os
import threading
from typing import Final

__all__ = ["CRASH_POINTS", "ENV_VAR", "EXIT_CODE", "check_environment", "crashpoint"]

CRASH_POINTS: Final = (
    "after_fetch",
    "after_raw_commit",
    "after_cursor_advance",
    "after_decision_commit",
    "before_smtp_data",
    "after_smtp_250",
)
ENV_VAR: Final = "CODERED_CRASH_AT"
EXIT_CODE: Final = 86


class _Target:
    """The one point this process dies at, and how often it has been passed so far."""

    __slots__ = ("at_pass", "lock", "name", "seen")

    def __init__(self, name: str, at_pass: int) -> None:
        self.name = name
        self.at_pass = at_pass
        self.seen = 0
        self.lock = threading.Lock()


class _Unread:
    """Marks that the environment has not been read yet."""


_UNREAD: Final = _Unread()
_target: _Target | ValueError | _Unread | None = _UNREAD


def crashpoint(name: str) -> None:
    """Exit the process at once with status 86 if ``name`` is the armed point's k-th pass."""
    target = _target
    if target is None:
        return
    if isinstance(target, _Unread):
        target = _load()
        if target is None:
            return
    if isinstance(target, ValueError):
        raise target
    if name != target.name:
        if name not in CRASH_POINTS:
            raise ValueError(_unknown(name, "crashpoint()"))
        return
    with target.lock:
        target.seen += 1
        if target.seen < target.at_pass:
            return
    message = f"codered: crash point {name} reached (pass {target.seen}); exiting now\n"
    os.write(2, message.encode())
    os._exit(EXIT_CODE)


def check_environment() -> None:
    """Raise ValueError now for a bad ``CODERED_CRASH_AT``, rather than deep in a watcher
    thread (which would report it and retry forever)."""
    target = _target if not isinstance(_target, _Unread) else _load()
    if isinstance(target, ValueError):
        raise target


def _load() -> _Target | ValueError | None:
    """Read ``CODERED_CRASH_AT`` once; remember the outcome, including a bad value."""
    global _target
    result = _parse(os.environ.get(ENV_VAR, ""))
    _target = result
    return result


def _parse(value: str) -> _Target | ValueError | None:
    value = value.strip()
    if not value:
        return None
    name, _, count = value.partition(":")
    name = name.strip()
    if name not in CRASH_POINTS:
        return ValueError(_unknown(name, ENV_VAR))
    count = count.strip() or "1"
    if not count.isdigit() or int(count) < 1:
        return ValueError(
            f"{ENV_VAR}={value!r}: the pass number after ':' must be a positive integer"
        )
    return _Target(name, int(count))


def _unknown(name: str, where: str) -> str:
    return f"{where}: unknown crash point {name!r}; valid points: {', '.join(CRASH_POINTS)}"
