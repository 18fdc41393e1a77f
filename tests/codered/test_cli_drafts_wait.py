"""``codered drafts create`` with a service running: when the service claims the request
first, the command waits for the service's draft instead of printing an empty one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from codered.cli_drafts import _finished
from codered.db.engine import Database
from codered.db.migrate import upgrade
from codered.db.models import Draft, InboundMessage
from codered.drafts import DraftingWorker, make_drafter, request_draft
from codered.pipeline import Pipeline
from drafting.kinds import DraftKind
from tests.support import mail
from tests.support.service import make_settings


async def test_the_command_waits_for_a_draft_another_worker_claimed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, 1, 2)
    db = Database(settings.database.url)
    try:
        await upgrade(db)
        _, raw = mail.outage_complaint()
        async with db.write() as session:
            session.add(InboundMessage(mailbox="support", uidvalidity=1, uid=1, size=1, raw=raw))
        [outcome] = await Pipeline(db, settings).process_pending()
        assert outcome.incident_reference is not None
        draft_id = await request_draft(
            db, outcome.incident_reference, DraftKind.SUMMARY, actor="csm"
        )
        service = DraftingWorker(db, settings, make_drafter(settings), identity="svc:1:x")
        assert await service._claim(draft_id)  # the running service got there first
        cli = DraftingWorker(db, settings, make_drafter(settings), identity="cli:2:y")
        assert await cli.run(draft_id) is None

        async def service_drafts_later() -> None:
            await asyncio.sleep(0.5)
            async with db.write() as session:  # hand the claim back, then draft it for real
                draft = await session.get(Draft, draft_id)
                assert draft is not None
                draft.status = "requested"
            assert await service.run(draft_id) is not None

        drafting = asyncio.create_task(service_drafts_later())
        detail = await _finished(db, draft_id, 10)
        await drafting
        assert detail["status"] == "pending"
        assert detail["finding_list"], "the finished draft comes with its wording findings"
    finally:
        await db.dispose()
