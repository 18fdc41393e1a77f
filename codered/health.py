"""Health and metrics, read from the database: the same answers from every process.

Readiness means: the database answers, and every configured mailbox is connected
and has synced within its limit (a few IDLE renewals, or a few polls). Metrics
are counted from the tables at scrape time, so several processes behind one
load balancer never disagree and a restart never resets a counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from codered.db.models import (
    Draft,
    InboundMessage,
    Incident,
    MailboxState,
    ModelCall,
    OutboxMessage,
    PolicyEvent,
)
from codered.settings import Settings

__all__ = [
    "LIVE_STATES",
    "MailboxHealth",
    "mailbox_health",
    "metric_values",
    "open_alerts",
    "sync_limit",
]

LIVE_STATES = frozenset({"idle", "polling", "syncing"})
ACK_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
IDLE_RENEW = timedelta(seconds=540)


@dataclass(frozen=True)
class MailboxHealth:
    mailbox: str
    ready: bool
    state: str
    seconds_since_sync: float | None
    problem: str | None


def sync_limit(poll_interval_seconds: float) -> timedelta:
    """How stale a mailbox may be and still count as synced: two IDLE renewals, or three
    polls, whichever is longer, plus a minute of slack."""
    return max(IDLE_RENEW * 2, timedelta(seconds=3 * poll_interval_seconds)) + timedelta(minutes=1)


async def mailbox_health(
    session: AsyncSession, settings: Settings, now: datetime
) -> list[MailboxHealth]:
    rows = {s.mailbox: s for s in await session.scalars(select(MailboxState))}
    result = []
    for box in settings.mailboxes:
        state = rows.get(box.name)
        if state is None:
            result.append(MailboxHealth(box.name, False, "unknown", None, "never connected"))
            continue
        since = (now - state.last_sync_at).total_seconds() if state.last_sync_at else None
        problem = None
        if state.state not in LIVE_STATES:
            problem = f"{state.state}: {state.last_error or 'not connected'}"
        elif since is None or since > sync_limit(box.poll_interval_seconds).total_seconds():
            problem = f"last synced {since or 0:.0f} s ago"
        result.append(MailboxHealth(box.name, problem is None, state.state, since, problem))
    return result


async def database_answers(session: AsyncSession) -> bool:
    try:
        await session.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


async def _grouped(session: AsyncSession, column: Any, *where: Any) -> dict[str, int]:
    query = select(column, func.count()).group_by(column)
    for condition in where:
        query = query.where(condition)
    return {str(key): int(count) for key, count in (await session.execute(query)).all()}


async def metric_values(session: AsyncSession, settings: Settings, now: datetime) -> dict[str, Any]:
    """Every number ``/metrics`` shows, as plain values (rendered by ``codered.web.health``)."""
    sent = await _grouped(session, OutboxMessage.kind, OutboxMessage.status == "sent")
    acks = (
        await session.execute(
            select(Incident.opened_at, OutboxMessage.sent_at)
            .join(OutboxMessage, OutboxMessage.incident_id == Incident.id)
            .where(OutboxMessage.kind == "acknowledgement", OutboxMessage.sent_at.is_not(None))
        )
    ).all()
    seconds = [max(0.0, (sent_at - opened).total_seconds()) for opened, sent_at in acks if sent_at]
    usage = (
        await session.execute(
            select(
                func.coalesce(func.sum(ModelCall.prompt_tokens), 0),
                func.coalesce(func.sum(ModelCall.completion_tokens), 0),
                func.coalesce(func.sum(ModelCall.cost_usd), 0.0),
            )
        )
    ).one()
    violations = await _grouped(
        session,
        PolicyEvent.policy,
        PolicyEvent.key.like("call_overdue:%") | PolicyEvent.key.like("update_missed:%"),
    )
    missed = await session.scalar(
        select(func.count())
        .select_from(PolicyEvent)
        .where(PolicyEvent.key.like("promise_lapsing:%"))
    )
    return {
        "received": await _grouped(session, InboundMessage.mailbox),
        "decisions": await _grouped(
            session, InboundMessage.action, InboundMessage.action.is_not(None)
        ),
        "sent": sent,
        "failures": await _grouped(session, OutboxMessage.kind, OutboxMessage.status == "failed"),
        "ack_seconds": seconds,
        "mailboxes": await mailbox_health(session, settings, now),
        "drafts": await _grouped(session, Draft.status),
        "violations": violations,
        "promises_lapsing": int(missed or 0),
        "model_calls": await _grouped(session, ModelCall.ok),
        "tokens": {"prompt": int(usage[0]), "completion": int(usage[1])},
        "cost_usd": float(usage[2] or 0.0),
    }


async def open_alerts(session: AsyncSession, now: datetime) -> list[str]:
    """Sign-in failures of the last day that no sync has followed: the desk's banner."""
    from codered.db.models import AuditEntry

    entries = (
        await session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.kind == "alert.oauth_refresh_failed",
                AuditEntry.at >= now - timedelta(days=1),
            )
            .order_by(AuditEntry.id.desc())
            .limit(20)
        )
    ).all()
    states = {s.mailbox: s for s in await session.scalars(select(MailboxState))}
    shown: dict[str, str] = {}
    for entry in entries:
        mailbox = str(entry.data.get("mailbox"))
        state = states.get(mailbox)
        synced_since = state is not None and state.last_sync_at and state.last_sync_at > entry.at
        if mailbox not in shown and not synced_since:
            shown[mailbox] = (
                f"Mailbox {mailbox} cannot sign in: {entry.data.get('reason')}. "
                f"Run codered auth login --mailbox {mailbox}."
            )
    return list(shown.values())
