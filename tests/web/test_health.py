"""``/healthz``, ``/readyz`` and ``/metrics`` over real HTTP, with a real Dovecot that is
stopped and started again, and counters that move as mail flows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from codered.embedded import SmtpSink, free_port
from tests.support import mail
from tests.support.dovecot import DovecotServer
from tests.support.service import RunningService, make_settings, wait_until


def _samples(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _ready(client: httpx.Client) -> Any:
    answer = client.get("/readyz")
    return answer.status_code == 200 and answer.json()


def _not_ready(client: httpx.Client) -> Any:
    answer = client.get("/readyz")
    return answer.status_code == 503 and answer.json()


def test_readiness_follows_the_mailbox_and_metrics_follow_the_mail(
    dovecot: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    port = free_port()
    settings = make_settings(
        tmp_path,
        dovecot.port,
        smtp_sink.port,
        username=dovecot.username,
        password=dovecot.password,
        web={"port": port},
    )
    with (
        RunningService(settings) as service,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        service.wait_for_baseline()
        wait_until(lambda: client.get("/healthz").status_code == 200, 20, "the web port")
        assert client.get("/healthz").json() == {"status": "alive"}
        ready = wait_until(lambda: _ready(client), 20, "ready")
        assert ready["database"] and ready["mailboxes"]["support"]["state"] in ("idle", "polling")
        before = _samples(client)
        assert before.get(("codered_messages_received_total", (("mailbox", "support"),)), 0) == 0

        dovecot.append(mail.outage_complaint()[1])
        smtp_sink.wait_for(1, timeout=20)
        after = wait_until(
            lambda: (s := _samples(client)).get(("codered_acknowledgements_sent_total", ())) and s,
            20,
            "the acknowledgement counted",
        )
        assert after[("codered_messages_received_total", (("mailbox", "support"),))] == 1
        assert after[("codered_decisions_total", (("action", "acknowledge"),))] == 1
        assert after[("codered_time_to_acknowledge_seconds_count", ())] == 1
        assert after[("codered_mailbox_ready", (("mailbox", "support"),))] == 1
        assert ("codered_drafts_waiting", ()) in after

        dovecot.kill()
        down = wait_until(lambda: _not_ready(client), 30, "not ready while Dovecot is down")
        assert down["mailboxes"]["support"]["problem"]
        assert client.get("/healthz").status_code == 200, "alive all the same"
        dovecot.start()
        wait_until(lambda: _ready(client), 60, "ready again after Dovecot is back")
