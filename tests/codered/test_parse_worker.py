"""The parse worker answers as the service itself would, and nothing depends on it.

A real ``python -m codered.parse_worker`` process is started for each test. It is killed,
stopped (SIGSTOP, a hang) and broken for good; every batch must still come back parsed,
the same as ``parse_batch`` in this process gives it. The last test runs the whole service
with its worker against pymap and an SMTP sink, and checks the worker ends with it.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from codered import parse_worker
from codered.db.engine import Database
from codered.db.models import Incident
from codered.embedded import EmbeddedImapServer, SmtpSink
from codered.parse_worker import Parsed, ParseWorker, parse_batch
from tests.support import mail
from tests.support.service import RunningService, make_settings, query, wait_until

GERMAN = (
    b"From: Jonas <jonas@contoso.example>\r\nTo: support@acme.example\r\n"
    b"Subject: Ausfall\r\nMessage-ID: <de-1@contoso.example>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    + b"Seit heute Morgen ist der Dienst komplett ausgefallen und niemand antwortet. "
    b"Das ist inakzeptabel, wir verlieren Geld!\r\n"
)


def _batch() -> list[bytes | None]:
    return [
        mail.outage_complaint(sender="Ann <ann@contoso.example>")[1],
        mail.question(sender="Bo <bo@contoso.example>")[1],
        mail.bounce()[1],
        GERMAN,
        None,  # not stored: becomes its dead-letter reason
    ]


def _summary(answers: list[Parsed | str]) -> list[object]:
    """What the pipeline uses of each answer, comparable across processes."""
    return [
        answer
        if isinstance(answer, str)
        else (
            answer.email.message_id,
            answer.email.subject,
            answer.email.new_text,
            answer.classification,
            answer.language,
        )
        for answer in answers
    ]


@pytest.fixture
async def worker() -> AsyncIterator[ParseWorker]:
    started = ParseWorker()
    try:
        yield started
    finally:
        started.close()


async def test_the_worker_answers_as_this_process_would(worker: ParseWorker) -> None:
    assert await worker.start()
    assert worker.pid is not None and worker.pid != os.getpid()
    batch = _batch()
    answers = await worker.parse(batch)
    assert _summary(answers) == _summary(parse_batch(batch))
    complaint, question, bounce, german, missing = answers
    assert isinstance(complaint, Parsed) and complaint.classification.is_complaint
    assert complaint.language == "en"
    assert isinstance(german, Parsed) and german.language == "de"
    assert isinstance(question, Parsed) and question.language is None  # not a complaint
    assert isinstance(bounce, Parsed)
    assert missing == "cannot parse: the message was not stored"
    assert worker.restarts_left == parse_worker.RESTARTS


async def test_a_killed_worker_is_started_again(worker: ParseWorker) -> None:
    assert await worker.start()
    first = worker.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not _running(first), 10, "the killed worker to end")
    # The service may notice before the batch (then a new worker parses it) or during it
    # (then it is parsed here, and the next batch starts a new worker): either way the
    # batch comes back parsed, and one restart is used.
    batch = _batch()
    answers = await worker.parse(batch)
    assert _summary(answers) == _summary(parse_batch(batch))
    again = await worker.parse(batch[:2])
    assert _summary(again) == _summary(parse_batch(batch[:2]))
    assert worker.pid is not None and worker.pid != first
    assert worker.restarts_left == parse_worker.RESTARTS - 1


async def test_a_hung_worker_is_replaced_and_its_batch_parsed_here(
    worker: ParseWorker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert await worker.start()
    hung = worker.pid
    assert hung is not None
    os.kill(hung, signal.SIGSTOP)
    monkeypatch.setattr(parse_worker, "ANSWER_SECONDS", 0.5)
    batch = _batch()
    with caplog.at_level(logging.WARNING, logger="codered.parse_worker"):
        answers = await worker.parse(batch)
    assert _summary(answers) == _summary(parse_batch(batch))
    assert "no answer within" in caplog.text
    assert not _alive(hung)  # killed and reaped, not left behind
    monkeypatch.setattr(parse_worker, "ANSWER_SECONDS", 60.0)
    assert _summary(await worker.parse(batch[:1])) == _summary(parse_batch(batch[:1]))
    assert worker.pid not in (None, hung)


async def test_after_too_many_failures_everything_is_parsed_here(
    worker: ParseWorker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A worker that exits at once, before it says it is ready.
    monkeypatch.setattr(parse_worker.sys, "executable", "/bin/false")
    with caplog.at_level(logging.WARNING, logger="codered.parse_worker"):
        batch = _batch()
        for _ in range(parse_worker.RESTARTS + 2):
            answers = await worker.parse(batch)
            assert _summary(answers) == _summary(parse_batch(batch))
    assert worker.in_service
    assert "parsing in the service from now on" in caplog.text
    assert caplog.text.count("parsing in the service from now on") == 1


def _running(pid: int) -> bool:
    """Neither gone nor a zombie (killed, not yet reaped by its parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_service_decides_through_its_worker_and_ends_it(
    tmp_path: Path, pymap_server: EmbeddedImapServer, smtp_sink: SmtpSink
) -> None:
    settings = make_settings(
        tmp_path, pymap_server.port, smtp_sink.port, pipeline={"parse_worker": True}
    )
    with RunningService(settings) as running:
        assert running.service is not None and running.service.parser is not None
        parser = running.service.parser
        wait_until(lambda: parser.pid is not None, 30, "the parse worker to start")
        pid = parser.pid
        assert pid is not None
        pymap_server.append(GERMAN)
        pymap_server.append(mail.question(sender="Bo <bo@contoso.example>")[1])
        wait_until(
            lambda: [m for m in smtp_sink.messages if "jonas@contoso.example" in m.recipients],
            30,
            "the acknowledgement of the German complaint",
        )
        languages = query(settings, _incident_languages)
        assert languages == {"jonas@contoso.example": "de"}  # detected by the worker
        assert parser.pid == pid  # one worker all along
    assert not _alive(pid)  # the service ended its worker


async def _incident_languages(db: Database) -> dict[str, str]:
    async with db.read() as session:
        rows = await session.execute(select(Incident.customer_email, Incident.language))
        return {email: language for email, language in rows}
