"""``codered check``: test every connection and print one line per check."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from codered.connections import imap_account, oauth_tokens, smtp_server
from codered.db.engine import Database
from codered.db.migrate import current_revision, head_revision
from codered.db.models import DeadLetter, OutboxMessage
from codered.health import open_alerts
from codered.queries import list_mailboxes
from codered.settings import Settings
from inbox.watcher import check_imap
from mailer.deliver import check_smtp

__all__ = ["CheckResult", "run_checks"]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    warning: bool = False


async def _check_database(settings: Settings) -> list[CheckResult]:
    db = Database(settings.database.url)
    try:
        current = await current_revision(db)
        head = head_revision()
        results = [
            CheckResult(
                "database",
                True,
                f"reachable; schema {current or 'not created'}"
                + ("" if current == head else f" (run `codered db upgrade` for {head})"),
                warning=current != head,
            )
        ]
        if current is not None:
            async with db.read() as session:
                mailboxes = {m["mailbox"]: m for m in await list_mailboxes(session)}
                waiting = await _waiting(session)
                alerts = await open_alerts(session, datetime.now(UTC))
            results.extend(_mailbox_state_results(settings, mailboxes, waiting))
            # An OAuth2 refresh that failed while the service ran, and no sync since.
            results.extend(CheckResult("alert", False, text) for text in alerts)
        return results
    except Exception as exc:
        return [CheckResult("database", False, f"{type(exc).__name__}: {exc}")]
    finally:
        await db.dispose()


async def _waiting(session: AsyncSession) -> dict[tuple[str, str], int]:
    """(mailbox, "dead letters" | "failed sends") → how many wait for a person."""
    counts: dict[tuple[str, str], int] = {}
    dead = await session.execute(
        select(DeadLetter.mailbox, func.count())
        .where(DeadLetter.status == "open")
        .group_by(DeadLetter.mailbox)
    )
    for mailbox, count in dead.all():
        counts[(mailbox, "dead letters")] = count
    failed = await session.execute(
        select(OutboxMessage.mailbox, func.count())
        .where(OutboxMessage.status == "failed")
        .group_by(OutboxMessage.mailbox)
    )
    for mailbox, count in failed.all():
        counts[(mailbox, "failed sends")] = count
    return counts


def _mailbox_state_results(
    settings: Settings,
    states: dict[str, dict[str, object]],
    waiting: dict[tuple[str, str], int],
) -> list[CheckResult]:
    results = []
    now = datetime.now(UTC)
    for mailbox in settings.mailboxes:
        state = states.get(mailbox.name)
        if state is None:
            results.append(
                CheckResult(f"sync {mailbox.name}", True, "not baselined yet (first run)")
            )
            continue
        synced = state["last_sync_at"]
        age = (
            f"{(now - datetime.fromisoformat(str(synced))).total_seconds():.0f} s ago"
            if synced
            else "never"
        )
        cursor = f"{state['uidvalidity']}:{state['last_uid']}"
        detail = f"state {state['state']}, last sync {age}, cursor {cursor}"
        if state["last_error"]:
            detail += f", last error: {state['last_error']}"
        dead = waiting.get((mailbox.name, "dead letters"), 0)
        failed = waiting.get((mailbox.name, "failed sends"), 0)
        detail += f"; {dead} dead letters and {failed} failed sends waiting"
        warning = state["warning"]
        if warning:
            detail += f"; WARNING: {warning}"
        results.append(CheckResult(f"sync {mailbox.name}", True, detail, warning=bool(warning)))
    return results


async def _check_imap(settings: Settings) -> list[CheckResult]:
    results = []
    tokens = oauth_tokens(settings)
    for mailbox in settings.mailboxes:
        try:
            detail = await asyncio.to_thread(check_imap, imap_account(mailbox, tokens))
            results.append(CheckResult(f"imap {mailbox.name}", True, detail))
        except Exception as exc:
            results.append(CheckResult(f"imap {mailbox.name}", False, str(exc)))
    return results


async def _check_smtp(settings: Settings) -> CheckResult:
    try:
        return CheckResult("smtp", True, await check_smtp(smtp_server(settings)))
    except Exception as exc:
        return CheckResult("smtp", False, str(exc))


async def _check_model(settings: Settings) -> CheckResult:
    if settings.llm.model == "offline":
        return CheckResult(
            "model", True, "offline scorer and template drafter (no model configured)"
        )
    from drafting.classify import ModelClassifier

    try:
        classifier = ModelClassifier.from_settings(settings.llm)
        verdict = await asyncio.wait_for(
            classifier.classify("Test", "Our dashboard has been down for an hour."),
            settings.llm.timeout_seconds,
        )
        return CheckResult("model", True, f"{settings.llm.model} answered ({verdict.category})")
    except Exception as exc:
        return CheckResult("model", False, f"{settings.llm.model}: {exc}")


async def run_checks(settings: Settings) -> list[CheckResult]:
    results = await _check_database(settings)
    results.extend(await _check_imap(settings))
    results.append(await _check_smtp(settings))
    results.append(await _check_model(settings))
    return results
