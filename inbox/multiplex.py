"""Many mailboxes, no thread each: IDLE waits share the event loop's selector.

Why: a watcher spends nearly all its life waiting in IDLE. With a thread per
mailbox, a process watching hundreds of mailboxes holds hundreds of threads that
do nothing. Here each mailbox is an asyncio task. The steps that block (connect,
SEARCH and FETCH, the store's commit, ``DONE``) run in a small thread pool shared
by all mailboxes, and the wait itself registers the IDLE socket with the loop
(``add_reader``), so a thousand idle mailboxes cost one selector and no threads.

The steps are the same :class:`~inbox.watcher.MailboxWatcher` methods the
watcher's own thread uses, so both drivers keep the same invariants: nothing is
acknowledged from history, the cursor moves only after the store committed, and a
failure reconnects with backoff. The stop flag is looked at every second at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from inbox.watcher import MailboxWatcher

__all__ = ["watch_on_loop"]

T = TypeVar("T")
Step = Callable[..., Awaitable[Any]]
"""Runs one blocking watcher step in the pool and returns its result."""

_TICK_SECONDS = 1.0
"""Longest stretch between two looks at the stop flag while waiting."""


async def watch_on_loop(watcher: MailboxWatcher, executor: Executor) -> None:
    """Run ``watcher`` until its :meth:`~MailboxWatcher.request_stop`; never raises for
    a mailbox's own trouble (that is reported as its status and retried)."""
    loop = asyncio.get_running_loop()

    async def step(function: Callable[..., T], *args: Any) -> T:
        return await loop.run_in_executor(executor, function, *args)

    try:
        while not watcher.stopping:
            try:
                await _session(watcher, step)
            except Exception as exc:
                if watcher.stopping:
                    break
                await _sleep(watcher, await step(watcher.failed, exc))
    finally:
        with contextlib.suppress(Exception):
            await step(watcher.stopped)


async def _session(watcher: MailboxWatcher, step: Step) -> None:
    client, cursor, idle = await step(watcher.open_session)
    try:
        cursor = await step(watcher.catch_up, client, cursor)
        while not watcher.stopping:
            if idle:
                await _wait_idle(watcher, client, step)
            else:
                await step(watcher.begin_poll)
                await _sleep(watcher, watcher.account.poll_interval_seconds)
                if watcher.stopping:
                    break
                await step(client.noop)
            if watcher.stopping:
                break
            cursor = await step(watcher.catch_up, client, cursor)
    finally:
        await step(watcher.end_session, client)


async def _wait_idle(watcher: MailboxWatcher, client: Any, step: Step) -> None:
    """IDLE until the socket has input (news, a keep-alive, or EOF), the renewal, or stop;
    the caller's catch-up then looks at what, if anything, arrived."""
    woken = await step(watcher.begin_idle, client)
    deadline = time.monotonic() + watcher.account.idle_renew_seconds
    while not woken and not watcher.stopping:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        woken = await _readable(client.socket(), min(_TICK_SECONDS, remaining))
    await step(client.idle_done)


async def _readable(sock: Any, seconds: float) -> bool:
    """Whether ``sock`` turns readable within ``seconds``, waiting on the loop's selector."""
    loop = asyncio.get_running_loop()
    try:
        fd = sock.fileno()
    except (OSError, ValueError):
        return True  # closed: the next read reports it
    if fd < 0:
        return True
    ready = loop.create_future()

    def on_readable() -> None:
        if not ready.done():
            ready.set_result(True)

    try:
        loop.add_reader(fd, on_readable)
    except (OSError, ValueError):
        return True
    try:
        return await asyncio.wait_for(ready, seconds)
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)


async def _sleep(watcher: MailboxWatcher, seconds: float) -> None:
    """Sleep in ticks so a stop request ends the wait within a second."""
    deadline = time.monotonic() + seconds
    while not watcher.stopping:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        await asyncio.sleep(min(_TICK_SECONDS, remaining))
