"""The running service: a watcher per mailbox, the pipeline, the outbox and the policy clock.

Latency matters (an acknowledgement within a second), so nothing here polls
on a timer when there is work: the watcher wakes the pipeline the moment raw
bytes are committed, and the pipeline wakes the outbox worker the moment an
acknowledgement is queued. The timers below are only the safety net for
retries and for work left by a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from codered.audit import append
from codered.connections import imap_account, oauth_tokens, smtp_server, smtp_servers
from codered.db.engine import Database
from codered.db.migrate import upgrade
from codered.db.models import utcnow
from codered.drafts import DraftingWorker, make_drafter
from codered.escalations import Escalator
from codered.filing import MailboxFiler
from codered.job_leases import release_lease
from codered.leaseholders import worker_identity
from codered.mailbox_lock import hold_mailbox
from codered.mailstore import DatabaseMailboxStore
from codered.notifications import queue_alert_mail
from codered.outbox import OutboxWorker
from codered.parse_worker import ParseWorker
from codered.pipeline import Classifier, Outcome, Pipeline
from codered.policy_clock import CLOCK_LEASE, PolicyClock
from codered.recent_texts import RecentTexts
from codered.settings import MailboxSettings, Settings
from codered.worker_share import HEARTBEAT_SECONDS, WorkerShare
from inbox.multiplex import watch_on_loop
from inbox.ports import WatcherState, WatcherStatus
from inbox.watcher import MailboxWatcher

if TYPE_CHECKING:
    from codered.web.server import WebServer

__all__ = ["Service", "ServiceHooks", "imap_account", "oauth_tokens", "smtp_server"]

log = logging.getLogger(__name__)

IMAP_POOL_MAX = 8
"""Threads for the blocking IMAP steps (connect, SEARCH, FETCH, store) of all mailboxes
together; more mailboxes than this simply take turns for those steps."""

SAFETY_NET_SECONDS = 5.0
WARM_UP_AFTER_SECONDS = 3.0
"""The offline models load once a mailbox is watched, or after this long at the latest."""
DRAFT_POLL_SECONDS = 2.0
"""Drafts are requested from other processes (the CLI, later the web UI): look this often."""


@dataclass
class ServiceHooks:
    """Observers for the demo and tests; the service works the same without them."""

    on_outcome: Callable[[Outcome], None] | None = None
    on_status: Callable[[WatcherStatus], None] | None = None
    on_sent: Callable[[int, str], None] | None = None
    on_ready: Callable[[], None] | None = None
    """Called once the schema is current and every watcher thread has started."""


def _model_classifier(settings: Settings) -> Classifier | None:
    if settings.llm.model == "offline" or not settings.llm.classify:
        return None
    from drafting.classify import ModelClassifier  # lazy: litellm costs seconds to import

    return ModelClassifier.from_settings(settings.llm)


class Service:
    """Runs until ``stop`` is set; every component restarts itself on error."""

    def __init__(self, settings: Settings, *, hooks: ServiceHooks | None = None) -> None:
        self.settings = settings
        self.hooks = hooks or ServiceHooks()
        self.db = Database(settings.database.url)
        self._pipeline_wakeup = asyncio.Event()
        self._outbox_wakeup = asyncio.Event()
        self._policy_wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.tokens = oauth_tokens(settings, on_failure=self._oauth_failed)

        def decided() -> None:  # a new acknowledgement: send it, and check escalation now
            self._outbox_wakeup.set()
            self._policy_wakeup.set()

        # Mailboxes this process watches now; on PostgreSQL it decides only their mail, so
        # that processes sharing the database share the deciding as they share the watching.
        self.held: set[str] = set()
        self._yield: dict[str, asyncio.Event] = {
            m.name: asyncio.Event() for m in settings.mailboxes
        }
        texts = RecentTexts()  # parsed once by the pipeline, read again by escalation
        self.parser = ParseWorker() if settings.pipeline.parse_worker else None
        self.pipeline = Pipeline(
            self.db,
            settings,
            classifier=_model_classifier(settings),
            on_outbox=decided,
            mailboxes=None if self.db.is_sqlite else (lambda: self.held),
            texts=texts,
            parser=self.parser,
        )
        self.share = WorkerShare(self.db, worker_identity(), len(settings.mailboxes))
        self.outbox = OutboxWorker(
            self.db,
            smtp_server(settings),
            servers=smtp_servers(settings, self.tokens),
            max_attempts=settings.smtp.max_attempts,
            lease_seconds=settings.smtp.timeout_seconds * 3 + 30,
            parallel=settings.smtp.connections,
        )
        self.drafting = DraftingWorker(
            self.db, settings, make_drafter(settings), identity=worker_identity()
        )
        self.policies = PolicyClock(
            self.db,
            settings,
            on_outbox=self._outbox_wakeup.set,
            escalator=Escalator(self.db, settings, on_outbox=self._outbox_wakeup.set, texts=texts),
        )
        self.filer = MailboxFiler(self.db, settings, tokens=self.tokens)
        self.watchers: list[MailboxWatcher] = []
        # Blocking IMAP steps of every mailbox; the waits in IDLE need no thread at all.
        self._imap_pool = ThreadPoolExecutor(
            max_workers=min(IMAP_POOL_MAX, max(2, len(settings.mailboxes))),
            thread_name_prefix="imap",
        )
        self.store: DatabaseMailboxStore | None = None
        self.web: WebServer | None = None
        if settings.web.enabled:
            # FastAPI and uvicorn (~150 ms to import) only when the desk is served.
            from codered.web.app import create_app
            from codered.web.server import WebServer

            app = create_app(settings, self.db, on_outbox=self._outbox_wakeup.set)
            self.web = WebServer(app, settings.web.host, settings.web.port)

    def _oauth_failed(self, mailbox: str, reason: str) -> None:
        """From any thread, once per failure streak: log it and audit ``alert.*``."""
        log.error("mailbox %s: OAuth2 token refresh failed: %s", mailbox, reason)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(self._audit_oauth_failure(mailbox, reason), loop)
        future.add_done_callback(_log_failure)

    async def _audit_oauth_failure(self, mailbox: str, reason: str) -> None:
        async with self.db.write() as session:
            entry = await append(
                session, "alert.oauth_refresh_failed", {"mailbox": mailbox, "reason": reason}
            )
            admin = self.settings.security.admin_email
            if admin:
                await queue_alert_mail(
                    session,
                    self.settings,
                    mailbox=mailbox,
                    key=f"oauth:{entry.hash[:16]}",
                    to=admin,
                    subject=f"codered: {mailbox} cannot sign in (OAuth2 refresh failed)",
                    lines=[
                        f"Refreshing the access token of {mailbox} failed: {reason}",
                        "The mailbox is not watched until it signs in again. Run: "
                        f"codered auth login --mailbox {mailbox} --provider ...",
                    ],
                )
        self._outbox_wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        await upgrade(self.db)
        loop = asyncio.get_running_loop()
        self._loop = loop
        watching = asyncio.Event()

        def on_status(status: WatcherStatus) -> None:
            if status.state in (WatcherState.IDLE, WatcherState.POLLING):
                loop.call_soon_threadsafe(watching.set)
            if self.hooks.on_status is not None:
                self.hooks.on_status(status)

        self.store = DatabaseMailboxStore(self.db, loop, on_status=on_status)

        def wake_pipeline() -> None:
            loop.call_soon_threadsafe(self._pipeline_wakeup.set)

        watch_tasks = [
            asyncio.create_task(self._watch(mailbox, stop, wake_pipeline), name=mailbox.name)
            for mailbox in self.settings.mailboxes
        ]
        log.info("codered serves %d mailbox(es)", len(watch_tasks))
        if self.hooks.on_ready is not None:
            self.hooks.on_ready()
        tasks: list[asyncio.Task[None]] = [
            # The language model file and the lexicon take most of a second to load; load
            # them now, so the first complaint is not the one that waits for it, but once a
            # mailbox is watched (or after a few seconds): connecting comes first.
            asyncio.create_task(_warm_up_when(watching, self.parser), name="warm-up-offline"),
        ]
        if self.pipeline.classifier is not None:
            # Load the model client in the background now, not when the first complaint waits.
            tasks.append(asyncio.create_task(self.pipeline.classifier.prepare(), name="warm-up"))
        tasks += [
            asyncio.create_task(self._pipeline_loop(stop), name="pipeline"),
            asyncio.create_task(self._outbox_loop(stop), name="outbox"),
            # Its own task: a model that takes a minute never holds up the pipeline.
            asyncio.create_task(self._drafting_loop(stop), name="drafting"),
            asyncio.create_task(self._policy_loop(stop), name="policies"),
        ]
        if not self.db.is_sqlite:
            tasks.append(asyncio.create_task(self._share_loop(stop), name="worker-share"))
        if self.web is not None:
            tasks.append(asyncio.create_task(self.web.run(stop), name="web"))
            log.info("review desk on http://%s:%d/", self.web.host, self.web.port)
        try:
            await stop.wait()
        finally:
            self._outbox_wakeup.set()
            self._pipeline_wakeup.set()
            # Watchers end on ``stop`` by themselves (their threads are joined); only then do
            # the workers go, so no watcher commits into a closed database. The outbox loop
            # finishes the row it is sending (cancelling it after the server's 250 but before
            # our commit would send that message again on the next start).
            await asyncio.wait(watch_tasks, timeout=30)
            grace = self.settings.smtp.timeout_seconds * 2 + 5
            await asyncio.wait([t for t in tasks if t.get_name() == "outbox"], timeout=grace)
            await self.filer.drain(seconds=10)
            self.outbox.close()
            if self.parser is not None:
                await asyncio.to_thread(self.parser.close)
            for task in [*watch_tasks, *tasks]:
                task.cancel()
            await asyncio.gather(*watch_tasks, *tasks, return_exceptions=True)
            with contextlib.suppress(Exception):  # another process may take over at once
                await release_lease(self.db, CLOCK_LEASE, self.policies.identity)
                await self.share.leave()
            await self.db.dispose()
            self._imap_pool.shutdown(wait=False, cancel_futures=True)
            if self.tokens is not None:
                self.tokens.close()

    async def _watch(
        self, mailbox: MailboxSettings, stop: asyncio.Event, wake: Callable[[], None]
    ) -> None:
        """Watch one mailbox while this process holds its lock; stand by otherwise.

        The watcher runs as a task of this loop (:func:`inbox.multiplex.watch_on_loop`):
        its IDLE wait shares the loop's selector and its blocking steps the IMAP pool,
        so a process watching many mailboxes needs no thread per mailbox."""
        assert self.store is not None
        give_up = self._yield[mailbox.name]
        while not stop.is_set():
            async with hold_mailbox(
                self.db,
                mailbox.name,
                stop,
                may_take=lambda: len(self.held) < self.share.share,
            ) as lost:
                if lost is None:
                    return
                give_up.clear()
                self.held.add(mailbox.name)
                account = imap_account(mailbox, self.tokens)
                watcher = MailboxWatcher(account, self.store, on_stored=wake)
                self.watchers.append(watcher)
                watching = asyncio.create_task(
                    watch_on_loop(watcher, self._imap_pool), name=f"imap-{mailbox.name}"
                )
                waiters = [
                    asyncio.create_task(stop.wait()),
                    asyncio.create_task(lost.wait()),
                    asyncio.create_task(give_up.wait()),
                ]
                try:
                    await asyncio.wait([*waiters, watching], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
                    await _stop_watching(watcher, watching)
                    self.watchers.remove(watcher)
                    self.held.discard(mailbox.name)
                if give_up.is_set():
                    log.info(
                        "%s: handed over to share the mailboxes with other workers", mailbox.name
                    )

    async def _share_loop(self, stop: asyncio.Event) -> None:
        """Renew this worker's row; above its share, let one mailbox go per pass (PostgreSQL)."""
        while not stop.is_set():
            try:
                share = await self.share.renew(utcnow())
                if len(self.held) > share:
                    self._yield[sorted(self.held)[-1]].set()
            except Exception:
                log.exception("worker share pass failed; retrying shortly")
            await _wait(stop, HEARTBEAT_SECONDS)

    async def _pipeline_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._pipeline_wakeup.clear()
            try:
                outcomes = await self.pipeline.process_pending()
            except Exception:
                log.exception("pipeline pass failed; retrying shortly")
                outcomes = []
                await asyncio.sleep(1.0)
            for outcome in outcomes:
                if self.hooks.on_outcome is not None:
                    self.hooks.on_outcome(outcome)
            if outcomes:
                continue  # there may be more behind them
            await _wait(self._pipeline_wakeup, SAFETY_NET_SECONDS)

    async def _outbox_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._outbox_wakeup.clear()
            try:
                results = await self.outbox.send_due(stop=stop)
                wait = await self.outbox.next_due_in()
            except Exception:
                log.exception("outbox pass failed; retrying shortly")
                results, wait = [], 1.0
            for result in results:
                if result.status == "sent":
                    self.filer.sent(result.outbox_id)
                if self.hooks.on_sent is not None:
                    self.hooks.on_sent(result.outbox_id, result.status)
            if results:
                continue
            timeout = (
                SAFETY_NET_SECONDS if wait is None else min(max(wait, 0.05), SAFETY_NET_SECONDS)
            )
            await _wait(self._outbox_wakeup, timeout)

    async def _drafting_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                drafted = await self.drafting.run_requested()
            except Exception:
                log.exception("drafting pass failed; retrying shortly")
                drafted = []
            if not drafted:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), DRAFT_POLL_SECONDS)

    async def _policy_loop(self, stop: asyncio.Event) -> None:
        """Every policy each ``clock_seconds``; in between, a new incident wakes only the
        escalation check, so a flood of new incidents does not run every policy per batch."""
        loop = asyncio.get_running_loop()
        next_full = loop.time()
        while not stop.is_set():
            self._policy_wakeup.clear()
            try:
                if loop.time() >= next_full:
                    next_full = loop.time() + self.settings.policies.clock_seconds
                    await self.policies.tick()
                    await self.filer.close_idle()
                else:
                    await self.policies.escalate_new()
            except Exception:
                log.exception("policy clock pass failed; retrying shortly")
            await _wait(self._policy_wakeup, max(0.05, next_full - loop.time()))


async def _warm_up_when(watching: asyncio.Event, parser: ParseWorker | None) -> None:
    """Once a mailbox is watched: start the parse worker (which loads the models itself),
    or load them here when there is none or it cannot start."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(watching.wait(), WARM_UP_AFTER_SECONDS)
    began = time.monotonic()
    if parser is not None and await parser.start():
        log.info("%s in %.2f s (in the parse worker)", WARMED_UP, time.monotonic() - began)
        return
    await asyncio.to_thread(_warm_up)


WARMED_UP = "language model and detector loaded"
"""Logged when :func:`_warm_up` is done (the benchmarks wait for it)."""


def _warm_up() -> None:
    from inbox.language import detect_language
    from policies.detect import classify_offline

    began = time.monotonic()
    detect_language("Our service has been down since this morning and nobody answers.")
    classify_offline("warm-up", "Our service has been down since this morning.")
    log.info("%s in %.2f s", WARMED_UP, time.monotonic() - began)


async def _stop_watching(watcher: MailboxWatcher, watching: asyncio.Task[None]) -> None:
    """Ask the watcher to end; after 1.5 s shut its socket under a step stuck in a read,
    which turns the read into an error it ends on."""
    watcher.request_stop()
    _, pending = await asyncio.wait([watching], timeout=1.5)
    if pending:
        watcher.abort_connection()
        _, pending = await asyncio.wait([watching], timeout=5)
    if pending:
        log.warning("mailbox %s: watcher did not stop in time", watcher.account.name)
        watching.cancel()


def _log_failure(future: Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("could not audit an OAuth2 failure: %s", future.exception())


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Sleep until ``event`` is set or ``seconds`` pass, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
