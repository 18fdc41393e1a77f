"""Small writes that arrive together commit together, each still as soon as it can.

Why: the outbox sends several messages at once, and each one's "sent" must be committed
right after the server's 250 (that gap is the only window in which a message can go out
twice). Committed one by one, the marks queue behind each other for the write lock and
each pays its own fsync. Here a mark that arrives while a commit is under way waits for
the next one, which takes every mark waiting by then: no mark waits longer than it
would have for the lock anyway, and a flood pays one commit per group.

A caller that knows more items are about to come (the outbox, with a group of sends in
flight) announces them (:meth:`announce`): the next commit then waits for them, at most
``gather_seconds``, so that a group of sends finishing within milliseconds of each other
pays one commit rather than two or three.

A group is first written without savepoints; if an item fails (a bug, a row gone), the
transaction is rolled back and the group written again with a savepoint per item, so that
the one that fails fails alone: its submitter gets the exception, the others their commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from codered import audit
from codered.db.engine import Database

__all__ = ["GroupCommit"]

log = logging.getLogger(__name__)

Item = TypeVar("Item")


class GroupCommit(Generic[Item]):
    def __init__(
        self,
        db: Database,
        write_one: Callable[[Session, Item], None],
        *,
        write_many: Callable[[Session, list[Item]], None] | None = None,
        urgent: bool = True,
        gather_seconds: float = 0.05,
    ) -> None:
        self.db = db
        self.write_one = write_one
        self.write_many = write_many or self._each
        """Writes a whole group at once when nothing fails (``write_one`` for each, if None)."""
        self.urgent = urgent
        self.gather_seconds = gather_seconds
        self._announced = 0
        """Items announced and neither submitted nor withdrawn yet."""
        self._arrived = asyncio.Event()
        self._waiting: list[tuple[Item, asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None
        self.commits = 0
        """Transactions committed (read by tests)."""

    def announce(self, count: int) -> None:
        """``count`` items will be submitted (or withdrawn) shortly."""
        self._announced += count

    def settle(self) -> None:
        """Everything announced has been submitted or has failed: wait for nothing more."""
        self._announced = 0
        self._arrived.set()

    def withdraw(self) -> None:
        """One announced item will not come after all (its send failed)."""
        self._announced = max(0, self._announced - 1)
        self._arrived.set()

    async def submit(self, item: Item) -> None:
        """Write ``item``; returns once its transaction committed, raises if it failed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._announced = max(0, self._announced - 1)
        self._waiting.append((item, done))
        self._arrived.set()
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting(), name="group-commit")
        await asyncio.shield(done)  # a cancelled submitter does not cancel the others' commit

    async def _commit_waiting(self) -> None:
        # Bounded: each round takes every item waiting, and only ``submit`` adds more.
        while self._waiting:
            await self._gather()
            group, self._waiting = self._waiting, []
            try:
                failures = await self.db.run_write_optimistic(
                    partial(self._write_all, [item for item, _ in group]), urgent=self.urgent
                )
            except Exception as exc:  # the commit itself failed: nobody's write stands
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
                continue
            self.commits += 1
            for (_, done), failure in zip(group, failures, strict=True):
                if done.done():
                    continue
                if failure is None:
                    done.set_result(None)
                else:
                    done.set_exception(failure)

    def _each(self, session: Session, items: list[Item]) -> None:
        for item in items:
            self.write_one(session, item)

    async def _gather(self) -> None:
        """Wait for announced items, at most ``gather_seconds`` (each wait is bounded by it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.gather_seconds
        while self._announced > 0 and (left := deadline - loop.time()) > 0:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    def _write_all(
        self, items: list[Item], session: Session, isolate: bool
    ) -> list[Exception | None]:
        """Write every item; with ``isolate`` each under a savepoint, a failure its own.
        Without, all at once, and the first failure raises (see run_write_optimistic)."""
        if not isolate:
            with audit.appending_together(session):
                self.write_many(session, items)
            return [None] * len(items)
        failures: list[Exception | None] = []
        for item in items:
            try:
                with session.begin_nested():
                    self.write_one(session, item)
            except Exception as exc:
                log.exception("writing %r failed", item)
                failures.append(exc)
            else:
                failures.append(None)
        return failures
