"""With ``[llm] model`` set, the model decides what is a complaint; when it fails, the offline
scorer does, and the acknowledgement never waits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codered.embedded import EmbeddedImapServer, SmtpSink
from tests.e2e.helpers import inbound, processed
from tests.support import mail
from tests.support.llm_stub import Reply, llm_stub
from tests.support.service import RunningService, make_settings, wait_until


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODERED_TEST_LLM_KEY", "sk-test")


def _settings(tmp_path: Path, imap: EmbeddedImapServer, sink: SmtpSink, api_base: str) -> object:
    return make_settings(
        tmp_path,
        imap.port,
        sink.port,
        llm={
            "model": "openai/stub-model",
            "api_base": api_base,
            "api_key_env": "CODERED_TEST_LLM_KEY",
            "timeout_seconds": 3.0,
        },
    )


def test_the_model_overrules_the_scorer_when_it_answers(
    pymap_server: EmbeddedImapServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    with llm_stub() as stub:
        stub.default = Reply(
            json.dumps(
                {
                    "is_complaint": False,
                    "category": None,
                    "severity": "normal",
                    "confidence": 0.8,
                    "evidence": ["a status-page test message"],
                }
            )
        )
        settings = _settings(tmp_path, pymap_server, smtp_sink, stub.api_base)
        with RunningService(settings) as service:
            service.wait_for_baseline()
            pymap_server.append(mail.outage_complaint()[1])
            wait_until(lambda: processed(settings, 1), 20, "message processed")
    [message] = inbound(settings)
    assert message.action == "ignore" and message.deciding_rule == "not_a_complaint"
    assert message.decision["classification"]["source"] == "model:openai/stub-model"
    assert smtp_sink.messages == []
    assert len(stub.requests) >= 1


def test_a_failing_model_falls_back_to_the_offline_scorer(
    pymap_server: EmbeddedImapServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    with llm_stub() as stub:
        stub.default = Reply(status=500)
        settings = _settings(tmp_path, pymap_server, smtp_sink, stub.api_base)
        with RunningService(settings) as service:
            service.wait_for_baseline()
            pymap_server.append(mail.outage_complaint()[1])
            smtp_sink.wait_for(1, timeout=30)
    [message] = inbound(settings)
    assert message.action == "acknowledge"
    classification = message.decision["classification"]
    assert classification["source"] == "offline (model fallback)"
    assert any("model openai/stub-model failed" in s for s in classification["signals"])
