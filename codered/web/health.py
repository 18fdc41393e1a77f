"""``/healthz``, ``/readyz`` and ``/metrics``: for load balancers and Prometheus, no sign-in.

They say only how the service is, never what a customer wrote; put the desk behind
your reverse proxy and expose these three to your monitoring only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from codered.db.models import utcnow
from codered.health import ACK_BUCKETS, database_answers, mailbox_health, metric_values

__all__ = ["router"]

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> Response:
    db = request.app.state.guard.db
    async with db.read() as session:
        database = await database_answers(session)
        boxes = (
            await mailbox_health(session, request.app.state.settings, utcnow()) if database else []
        )
    ready = database and all(b.ready for b in boxes)
    body = {
        "ready": ready,
        "database": database,
        "mailboxes": {
            b.mailbox: {
                "ready": b.ready,
                "state": b.state,
                "problem": b.problem,
                "seconds_since_sync": b.seconds_since_sync,
            }
            for b in boxes
        },
    }
    return JSONResponse(body, status_code=200 if ready else 503)


def _counter(name: str, doc: str, label: str, values: dict[str, Any]) -> CounterMetricFamily:
    """One counter family with a value per label, from ``{label value: count}``."""
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, count in values.items():
        family.add_metric([key], count)
    return family


class _Snapshot(Collector):
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def collect(self) -> Iterator[Metric]:
        v = self.values
        yield _counter(
            "codered_messages_received", "Messages fetched and stored.", "mailbox", v["received"]
        )
        yield _counter("codered_decisions", "Decisions by action.", "action", v["decisions"])
        yield CounterMetricFamily(
            "codered_acknowledgements_sent",
            "Acknowledgements sent.",
            value=v["sent"].get("acknowledgement", 0),
        )
        yield _counter("codered_messages_sent", "Messages sent, by kind.", "kind", v["sent"])
        yield CounterMetricFamily(
            "codered_send_failures",
            "Messages that could not be sent.",
            value=sum(v["failures"].values()),
        )
        seconds = sorted(v["ack_seconds"])
        buckets = [(str(b), sum(1 for s in seconds if s <= b)) for b in ACK_BUCKETS]
        buckets.append(("+Inf", len(seconds)))
        yield HistogramMetricFamily(
            "codered_time_to_acknowledge_seconds",
            "From arrival to the acknowledgement's SMTP 250.",
            buckets=buckets,
            sum_value=sum(seconds),
        )
        since = GaugeMetricFamily(
            "codered_seconds_since_last_sync", "Per mailbox.", labels=["mailbox"]
        )
        up = GaugeMetricFamily(
            "codered_mailbox_ready", "1 when connected and synced.", labels=["mailbox"]
        )
        for box in v["mailboxes"]:
            if box.seconds_since_sync is not None:
                since.add_metric([box.mailbox], box.seconds_since_sync)
            up.add_metric([box.mailbox], 1.0 if box.ready else 0.0)
        yield since
        yield up
        yield GaugeMetricFamily(
            "codered_drafts_waiting",
            "Drafts waiting for a person.",
            value=v["drafts"].get("pending", 0),
        )
        yield _counter(
            "codered_policy_violations",
            "Overdue follow-ups and missed updates.",
            "policy",
            v["violations"],
        )
        yield _counter(
            "codered_model_calls",
            "Calls to a language model.",
            "ok",
            {ok.lower(): n for ok, n in v["model_calls"].items()},
        )
        yield _counter(
            "codered_model_tokens",
            "Tokens, as the provider counted them.",
            "direction",
            v["tokens"],
        )
        yield CounterMetricFamily(
            "codered_model_cost_usd", "Cost by litellm's price list.", value=v["cost_usd"]
        )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    async with request.app.state.guard.db.read() as session:
        values = await metric_values(session, request.app.state.settings, utcnow())
    registry = CollectorRegistry()
    registry.register(_Snapshot(values))
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")
