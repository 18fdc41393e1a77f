"""The in-process SQLite writer lock, with a lane for writes that must not wait in line.

Why: SQLite has one writer at a time, and our writers take turns on this lock. In an
outage flood the pipeline records decisions in batches while the outbox commits each
sent acknowledgement and the watcher commits fetched mail. With a plain FIFO lock the
outbox's tiny commits wait behind every batch, and acknowledgements trickle out. Urgent
writers (storing mail, marking a message sent) go first; the others wait while any
urgent writer is waiting. Batches are kept short (see the pipeline), so nobody starves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["WriteLock"]

_MAX_YIELDS = 1000
"""Bound on how often an ordinary writer steps aside; then it just takes its turn."""


class WriteLock:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._urgent_waiting = 0
        self._no_urgent = asyncio.Event()
        self._no_urgent.set()

    @asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        if urgent:
            self._urgent_waiting += 1
            self._no_urgent.clear()
            try:
                await self._lock.acquire()
            finally:
                self._urgent_waiting -= 1
                if self._urgent_waiting == 0:
                    self._no_urgent.set()
        else:
            for _ in range(_MAX_YIELDS):
                await self._no_urgent.wait()
                await self._lock.acquire()
                if self._urgent_waiting == 0:
                    break
                self._lock.release()  # an urgent writer arrived meanwhile: after you
            else:
                await self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()
