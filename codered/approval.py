"""A person's decision on a draft: approve (maybe edited, maybe over a finding) or reject.

Why one transaction: the approval, the edit, the re-checked findings, the
outbox row with the exact bytes to send and the audit entries commit together,
so there is never an approved draft without its message, nor a message without
a recorded approval (DESIGN invariant 5). Recipients and headers come from the
incident and our own settings, never from the draft's text.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from codered import audit
from codered.db.engine import Database
from codered.db.models import Draft, InboundMessage, Incident, OutboxMessage, utcnow
from codered.draft_context import gather_context
from codered.outbox_rows import outbox_row
from codered.promises import record_promise
from codered.settings import Settings
from drafting.kinds import DraftKind
from inbox.message import EmailAddress
from mailer.reply import ReplyFacts, compose_reply
from policies.wording import check_wording

__all__ = ["Approval", "ApprovalBlockedError", "approve_draft", "reject_draft", "save_edit"]

MAX_TEXT_CHARS = 100_000


class ApprovalBlockedError(ValueError):
    """Blocking findings remain and no override reason was given."""

    def __init__(self, draft_id: int, findings: list[dict[str, Any]]) -> None:
        lines = [f"  {f['rule']}: {f['message']}" for f in findings]
        super().__init__(
            f"draft {draft_id} has {len(findings)} blocking finding(s); edit the text "
            "or approve with --override REASON:\n" + "\n".join(lines)
        )
        self.findings = findings


@dataclass(frozen=True)
class Approval:
    draft_id: int
    outbox_id: int
    message_id: str
    recipients: tuple[str, ...]
    edited: bool
    findings: list[dict[str, Any]]


def _diff(before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), "drafted", "approved", lineterm="", n=1
    )
    return "\n".join(lines)


async def _pending(session: AsyncSession, draft_id: int) -> tuple[Draft, Incident]:
    draft = await session.get(Draft, draft_id, with_for_update=True)
    if draft is None:
        raise LookupError(f"no draft with id {draft_id} (see `codered drafts list`)")
    if draft.status != "pending":
        hint = {
            "failed": f"it failed: {draft.error}; create a new draft",
            "requested": "it is still waiting to be drafted",
            "drafting": "it is being drafted right now",
        }.get(draft.status, f"it was {draft.status} by {draft.decided_by} at {draft.decided_at}")
        raise ValueError(f"draft {draft_id} cannot be decided: {hint}")
    incident = await session.get(Incident, draft.incident_id)
    assert incident is not None
    return draft, incident


async def _thread_ids(session: AsyncSession, incident: Incident) -> tuple[str | None, list[str]]:
    """The customer's latest Message-ID, and the thread's ids oldest first (ours included)."""
    inbound = (
        await session.execute(
            select(InboundMessage.fetched_at, InboundMessage.message_id)
            .where(InboundMessage.incident_id == incident.id)
            .order_by(InboundMessage.id)
        )
    ).all()
    ours = (
        await session.execute(
            select(OutboxMessage.created_at, OutboxMessage.message_id)
            .where(
                OutboxMessage.incident_id == incident.id,
                OutboxMessage.kind.notlike("internal.%"),
            )
            .order_by(OutboxMessage.id)
        )
    ).all()
    latest = next((mid for _, mid in reversed(inbound) if mid), None)
    ordered = sorted([*inbound, *ours], key=lambda row: row[0])
    return latest, [mid for _, mid in ordered if mid]


async def _recheck(
    session: AsyncSession,
    settings: Settings,
    draft: Draft,
    incident: Incident,
    text: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """Check ``text`` (a person's edit) like a draft; store and return the findings."""
    gathered = await gather_context(
        session,
        settings,
        incident,
        DraftKind(draft.kind),
        now=now,
        source_text=draft.source_text or "",
    )
    checked = check_wording(text, kind=draft.kind, known_text=gathered.context.known_text())
    draft.findings = [f.to_dict() for f in checked]
    return list(draft.findings)


async def save_edit(
    db: Database,
    settings: Settings,
    draft_id: int,
    *,
    actor: str,
    text: str,
    clock: Callable[[], datetime] = utcnow,
) -> list[dict[str, Any]]:
    """Keep a person's edit of a pending draft, re-checked; returns the new findings."""
    if not actor.strip():
        raise ValueError("say who edits")
    if not text.strip():
        raise ValueError("the text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the edited text is longer than {MAX_TEXT_CHARS} characters")
    async with db.write() as session:
        draft, incident = await _pending(session, draft_id)
        before = draft.edited_text or draft.text or ""
        after = text.replace("\r\n", "\n").strip() + "\n"
        findings = await _recheck(session, settings, draft, incident, after, clock())
        if after.strip() != before.strip():
            draft.edited_text = after
            await audit.append(
                session,
                "draft.edited",
                {"draft_id": draft.id, "diff": _diff(before, after), "findings": findings},
                actor=actor.strip(),
                incident_id=incident.id,
            )
        return findings


async def approve_draft(
    db: Database,
    settings: Settings,
    draft_id: int,
    *,
    actor: str,
    edited_text: str | None = None,
    override: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Approval:
    """Approve ``draft_id`` as ``actor``; the message is in the outbox when this returns."""
    actor = actor.strip()
    if not actor:
        raise ValueError("say who approves (--as NAME)")
    override = (override or "").strip() or None
    if edited_text is not None and len(edited_text) > MAX_TEXT_CHARS:
        raise ValueError(f"the edited text is longer than {MAX_TEXT_CHARS} characters")
    async with db.write() as session:
        draft, incident = await _pending(session, draft_id)
        drafted = draft.text or ""
        current = draft.edited_text or drafted
        final = current
        edited = edited_text is not None and edited_text.strip() != current.strip()
        findings = list(draft.findings)
        if edited:
            assert edited_text is not None
            final = edited_text.strip() + "\n"
            findings = await _recheck(session, settings, draft, incident, final, clock())
            await audit.append(
                session,
                "draft.edited",
                {"draft_id": draft.id, "diff": _diff(current, final), "findings": findings},
                actor=actor,
                incident_id=incident.id,
            )
        if not final.strip():
            raise ValueError(f"draft {draft_id} has no text to send")
        blocking = [f for f in findings if f["severity"] == "blocking"]
        if blocking and override is None:
            raise ApprovalBlockedError(draft_id, blocking)
        now = clock()
        latest, thread_ids = await _thread_ids(session, incident)
        mailbox = settings.mailbox(incident.mailbox)
        composed = compose_reply(
            ReplyFacts(
                reference=incident.reference,
                draft_id=draft.id,
                customer=EmailAddress(incident.customer_email, incident.customer_name),
                original_subject=incident.subject,
                in_reply_to=latest,
                thread_ids=tuple(thread_ids),
                text=final,
                from_address=EmailAddress(
                    mailbox.address.lower(), settings.sender_name(mailbox.name)
                ),
            ),
            now=now,
        )
        outbox = outbox_row(
            composed,
            incident_id=incident.id,
            kind=f"reply.{draft.kind}",
            mailbox=incident.mailbox,
            due=now,
        )
        session.add(outbox)
        await session.flush()
        draft.status = "approved"
        draft.final_text = final
        draft.decided_by = actor
        draft.decided_at = now
        draft.override_reason = override if blocking else None
        draft.outbox_id = outbox.id
        if draft.promise_at is not None and draft.promise_at != incident.reply_by:
            await audit.append(
                session,
                "incident.promise_moved",
                {
                    "from": incident.reply_by.isoformat(),
                    "to": draft.promise_at.isoformat(),
                    "draft_id": draft.id,
                },
                actor=actor,
                incident_id=incident.id,
            )
            incident.reply_by = draft.promise_at
        if draft.promise_at is not None:
            await record_promise(
                session,
                incident_id=incident.id,
                due_at=draft.promise_at,
                stated_at=now,
                source=f"reply.{draft.kind}",
                outbox_id=outbox.id,
            )
        await audit.append(
            session,
            "draft.approved",
            {
                "draft_id": draft.id,
                "kind": draft.kind,
                "drafter": draft.drafter,
                "edited": final.strip() != drafted.strip(),
                "override_reason": draft.override_reason,
                "blocking_findings": [f["rule"] for f in blocking],
                "final_text": final,
                "outbox_id": outbox.id,
                "message_id": composed.message_id,
                "to": list(composed.recipients),
            },
            actor=actor,
            incident_id=incident.id,
        )
        return Approval(
            draft.id,
            outbox.id,
            composed.message_id,
            composed.recipients,
            final.strip() != drafted.strip(),
            findings,
        )


async def reject_draft(
    db: Database,
    draft_id: int,
    *,
    actor: str,
    reason: str,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    actor, reason = actor.strip(), reason.strip()
    if not actor:
        raise ValueError("say who rejects (--as NAME)")
    if not reason:
        raise ValueError("give a reason (--reason TEXT): it is how the next draft gets better")
    async with db.write() as session:
        draft, incident = await _pending(session, draft_id)
        draft.status = "rejected"
        draft.decided_by = actor
        draft.decided_at = clock()
        draft.reject_reason = reason[:2000]
        await audit.append(
            session,
            "draft.rejected",
            {"draft_id": draft.id, "kind": draft.kind, "reason": draft.reject_reason},
            actor=actor,
            incident_id=incident.id,
        )
