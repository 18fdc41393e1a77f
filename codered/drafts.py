"""Drafts from request to "waiting for a person": request, claim, draft, check, store.

Why a queue: drafting may take a model many seconds, and it must never hold
up the pipeline (acknowledgements do not wait for a model). A draft is first
*requested* (a row), then claimed with a lease by whoever drafts it (the CLI
at once, or the service's drafting task for requests from elsewhere), then
stored as *pending* with its wording findings, or as *failed* with the reason.
No database transaction is open while a model is thinking.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from codered import audit
from codered.db.engine import Database
from codered.db.models import Draft, Incident, ModelCall, utcnow
from codered.draft_context import gather_context
from codered.queries import find_incident
from codered.settings import Settings
from drafting.drafter import Drafter, DraftingError, DraftResult, ModelDrafter, TemplateDrafter
from drafting.kinds import DraftKind
from drafting.model import CallRecord, ModelClient, ModelSettings
from policies.wording import check_wording

__all__ = [
    "DraftOutcome",
    "DraftingWorker",
    "make_drafter",
    "request_draft",
]

log = logging.getLogger(__name__)

MAX_SOURCE_CHARS = 50_000


def make_drafter(settings: Settings) -> Drafter:
    """The offline templates when no model is configured, else the model through litellm."""
    llm = settings.llm
    if llm.model == "offline":
        return TemplateDrafter()
    client = ModelClient(
        ModelSettings(
            model=llm.model,
            api_base=llm.api_base,
            api_key=llm.api_key(),
            temperature=llm.temperature,
            timeout_seconds=llm.timeout_seconds,
            max_tokens=llm.max_tokens,
            max_attempts=llm.max_attempts,
            retry_deadline_seconds=llm.retry_deadline_seconds,
        )
    )
    return ModelDrafter(client, max_input_tokens=llm.max_input_tokens)


async def request_draft(
    db: Database, reference: str, kind: DraftKind, *, actor: str, source_text: str | None = None
) -> int:
    """Queue a draft of ``kind`` for incident ``reference``; returns the draft id."""
    text = (source_text or "").strip()
    if kind is DraftKind.REWRITE and not text:
        raise ValueError("a rewrite needs the text to rewrite (--text or --text-file)")
    if len(text) > MAX_SOURCE_CHARS:
        raise ValueError(f"the text is longer than {MAX_SOURCE_CHARS} characters")
    async with db.write() as session:
        incident = await find_incident(session, reference)
        draft = Draft(
            incident_id=incident.id,
            kind=kind.value,
            status="requested",
            requested_by=actor,
            source_text=text or None,
            notes_to_csm=[],
            findings=[],
            template=False,
            omitted_messages=0,
            prompt_tokens=0,
            completion_tokens=0,
        )
        session.add(draft)
        await session.flush()
        await audit.append(
            session,
            "draft.requested",
            {"draft_id": draft.id, "kind": kind.value, "source_text": text or None},
            actor=actor,
            incident_id=incident.id,
        )
        return draft.id


@dataclass(frozen=True)
class DraftOutcome:
    draft_id: int
    status: str
    """``pending`` (waiting for a person) or ``failed``."""
    detail: str


class DraftingWorker:
    """Claims requested drafts and drafts them; several may run, each draft is drafted once."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        drafter: Drafter,
        *,
        identity: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.drafter = drafter
        self.identity = identity
        self.clock = clock
        # A lease outlives every retry of one draft, so a live drafter is never overtaken.
        llm = settings.llm
        self.lease = timedelta(
            seconds=llm.retry_deadline_seconds + 2 * (llm.timeout_seconds * llm.max_attempts) + 60
        )

    async def run_requested(self, limit: int = 5) -> list[DraftOutcome]:
        """Draft up to ``limit`` requested (or abandoned) drafts, oldest first."""
        now = self.clock()
        async with self.db.read() as session:
            ids = (
                await session.scalars(
                    select(Draft.id)
                    .where(
                        or_(
                            Draft.status == "requested",
                            (Draft.status == "drafting") & (Draft.lease_until < now),
                        )
                    )
                    .order_by(Draft.id)
                    .limit(limit)
                )
            ).all()
        outcomes = []
        for draft_id in ids:
            outcome = await self.run(draft_id)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    async def run(self, draft_id: int) -> DraftOutcome | None:
        """Draft one; None when someone else has it (or it is done)."""
        if not await self._claim(draft_id):
            return None
        async with self.db.read() as session:
            draft = await session.get(Draft, draft_id)
            assert draft is not None
            incident = await session.get(Incident, draft.incident_id)
            assert incident is not None
            gathered = await gather_context(
                session,
                self.settings,
                incident,
                DraftKind(draft.kind),
                now=self.clock(),
                source_text=draft.source_text or "",
            )
        try:
            result = await self.drafter.draft(gathered.context)
        except DraftingError as exc:
            return await self._failed(draft_id, exc.reason, exc.drafter, exc.prompt, exc.calls)
        except Exception as exc:  # a bug must end as a failed draft, not a stuck one
            log.exception("draft %s: unexpected error while drafting", draft_id)
            reason = f"{type(exc).__name__}: {exc}"
            return await self._failed(draft_id, reason, self.drafter.name, None, [])
        checked = check_wording(
            result.text, kind=gathered.context.kind.value, known_text=gathered.context.known_text()
        )
        findings = [finding.to_dict() for finding in checked]
        return await self._stored(draft_id, result, findings, gathered.promise_at)

    async def _claim(self, draft_id: int) -> bool:
        now = self.clock()
        async with self.db.write() as session:
            claimed = await session.execute(
                update(Draft)
                .where(
                    Draft.id == draft_id,
                    or_(
                        Draft.status == "requested",
                        (Draft.status == "drafting") & (Draft.lease_until < now),
                    ),
                )
                .values(status="drafting", lease_owner=self.identity, lease_until=now + self.lease)
            )
            return bool(getattr(claimed, "rowcount", 0))

    async def _record_calls(
        self, session: AsyncSession, draft: Draft, calls: list[CallRecord]
    ) -> None:
        for call in calls:
            session.add(
                ModelCall(
                    incident_id=draft.incident_id,
                    draft_id=draft.id,
                    purpose=f"draft.{draft.kind}",
                    model=call.model,
                    ok=call.ok,
                    prompt_tokens=call.prompt_tokens,
                    completion_tokens=call.completion_tokens,
                    cost_usd=call.cost_usd,
                    duration_ms=call.duration_ms,
                    error=call.error,
                )
            )
        draft.prompt_tokens = sum(c.prompt_tokens for c in calls)
        draft.completion_tokens = sum(c.completion_tokens for c in calls)
        costs = [c.cost_usd for c in calls if c.cost_usd is not None]
        draft.cost_usd = sum(costs) if costs else None

    async def _stored(
        self,
        draft_id: int,
        result: DraftResult,
        findings: list[dict[str, Any]],
        promise_at: datetime | None,
    ) -> DraftOutcome | None:
        async with self.db.write() as session:
            draft = await self._owned(session, draft_id)
            if draft is None:
                return None
            draft.status = "pending"
            draft.drafted_at = self.clock()
            draft.drafter = result.drafter
            draft.template = result.template
            draft.prompt = result.prompt
            draft.content = result.content.model_dump(mode="json")
            draft.text = result.text
            draft.notes_to_csm = list(result.content.notes_to_csm)
            draft.findings = findings
            draft.promise_at = promise_at
            draft.omitted_messages = result.omitted_messages
            draft.lease_owner = draft.lease_until = None
            await self._record_calls(session, draft, result.calls)
            await audit.append(
                session,
                "draft.created",
                {
                    "draft_id": draft.id,
                    "kind": draft.kind,
                    "drafter": draft.drafter,
                    "template": draft.template,
                    "prompt": draft.prompt,
                    "text": draft.text,
                    "findings": findings,
                    "prompt_tokens": draft.prompt_tokens,
                    "completion_tokens": draft.completion_tokens,
                    "cost_usd": draft.cost_usd,
                },
                incident_id=draft.incident_id,
            )
        blocking = sum(1 for f in findings if f["severity"] == "blocking")
        return DraftOutcome(draft_id, "pending", f"{len(findings)} findings, {blocking} blocking")

    async def _failed(
        self,
        draft_id: int,
        reason: str,
        drafter: str,
        prompt: str | None,
        calls: list[CallRecord],
    ) -> DraftOutcome | None:
        async with self.db.write() as session:
            draft = await self._owned(session, draft_id)
            if draft is None:
                return None
            draft.status = "failed"
            draft.drafted_at = self.clock()
            draft.drafter = drafter
            draft.prompt = prompt
            draft.error = reason[:2000]
            draft.lease_owner = draft.lease_until = None
            await self._record_calls(session, draft, calls)
            await audit.append(
                session,
                "draft.failed",
                {"draft_id": draft.id, "kind": draft.kind, "drafter": drafter, "reason": reason},
                incident_id=draft.incident_id,
            )
        log.warning("draft %s failed: %s", draft_id, reason)
        return DraftOutcome(draft_id, "failed", reason)

    async def _owned(self, session: AsyncSession, draft_id: int) -> Draft | None:
        draft = await session.get(Draft, draft_id, with_for_update=True)
        if draft is None or draft.status != "drafting" or draft.lease_owner != self.identity:
            log.warning("draft %s: lease lost while drafting; the result is discarded", draft_id)
            return None
        return draft
