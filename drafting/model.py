"""The one door to language models: litellm behind a small interface.

litellm is imported lazily (it takes seconds to import) and told to use its
bundled cost map so that importing it never reaches the network. Structured
output is requested as JSON matching a pydantic schema (litellm's
``response_format``; the schema is also in the prompt for servers that
ignore it) and validated, with one repair attempt when the answer does not
validate. Transient failures (429, 5xx, timeouts, dropped connections) are
retried with exponential backoff and jitter within a deadline; everything
else fails at once. Every HTTP call is reported back as a :class:`CallRecord`
(tokens and cost from litellm's own counters), failed ones included, so the
application can record what each draft cost.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

__all__ = [
    "CallRecord",
    "JsonAnswer",
    "ModelClient",
    "ModelError",
    "ModelSettings",
    "import_litellm",
]

M = TypeVar("M", bound=BaseModel)

_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
_TRANSIENT_NAMES = frozenset(
    {"Timeout", "APIConnectionError", "RateLimitError", "ServiceUnavailableError",
     "InternalServerError", "APITimeoutError", "TimeoutError"}
)  # fmt: skip


@dataclass(frozen=True)
class CallRecord:
    """One HTTP call to a model, as litellm counted it."""

    model: str
    ok: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    """None when litellm's cost map does not know the model (local servers, say)."""
    duration_ms: int = 0
    error: str | None = None


class ModelError(Exception):
    """The model could not give a valid answer (network, provider, or invalid output).

    ``calls`` holds every call made on the way, so failures are accounted for too;
    ``transient`` says whether trying again later may help.
    """

    def __init__(
        self, message: str, *, transient: bool = False, calls: Sequence[CallRecord] = ()
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.calls: list[CallRecord] = list(calls)


@dataclass(frozen=True)
class ModelSettings:
    model: str
    api_base: str | None = None
    api_key: str | None = None
    temperature: float = 0.2
    timeout_seconds: float = 20.0
    """Per HTTP call."""
    max_tokens: int = 1200
    max_attempts: int = 3
    """HTTP calls per answer for transient failures (1 = no retry)."""
    retry_deadline_seconds: float = 60.0
    """No new attempt starts after this many seconds."""
    retry_initial_seconds: float = 1.0


@dataclass
class JsonAnswer(Generic[M]):
    value: M
    calls: list[CallRecord] = field(default_factory=list)


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


async def import_litellm() -> Any:
    """Import litellm in a worker thread: its import takes seconds and must not stall the
    event loop (acknowledgements are sent from it) nor count against a model timeout."""
    return await asyncio.to_thread(_litellm)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, ModelError) and exc.transient


def _describe(exc: BaseException) -> tuple[str, bool]:
    status = getattr(exc, "status_code", None)
    transient = (isinstance(status, int) and status in _TRANSIENT_STATUS) or any(
        cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__
    )
    label = type(exc).__name__ + (f" (HTTP {status})" if isinstance(status, int) else "")
    detail = " ".join(str(exc).split())[:300]
    return f"{label}: {detail}".rstrip(": "), transient


def response_format(schema: type[BaseModel]) -> dict[str, Any]:
    """litellm's ``response_format`` asking for JSON that matches ``schema``."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": schema.__name__,
            "schema": schema.model_json_schema(),
            "strict": False,
        },
    }


class ModelClient:
    """Ask for JSON matching a pydantic schema; raise :class:`ModelError` on any failure."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings

    async def complete_json(self, messages: list[dict[str, str]], schema: type[M]) -> JsonAnswer[M]:
        """The validated answer and every call it took (at most two answers: one repair)."""
        calls: list[CallRecord] = []
        answer = await self._complete_with_retries(messages, schema, calls)
        try:
            return JsonAnswer(_validate(answer, schema), calls)
        except ModelError as first:
            repair = [
                *messages,
                {"role": "assistant", "content": answer[:8000]},
                {
                    "role": "user",
                    "content": f"That was not valid ({first}). Reply with only the JSON object "
                    "that matches the schema.",
                },
            ]
            second = await self._complete_with_retries(repair, schema, calls)
            try:
                return JsonAnswer(_validate(second, schema), calls)
            except ModelError as exc:
                raise ModelError(f"{exc} (after one repair attempt)", calls=calls) from None

    async def prepare(self) -> None:
        """Load the client library ahead of the first call."""
        await import_litellm()

    async def _complete_with_retries(
        self, messages: list[dict[str, str]], schema: type[BaseModel], calls: list[CallRecord]
    ) -> str:
        s = self.settings
        stop = stop_after_attempt(max(1, s.max_attempts)) | stop_after_delay(
            s.retry_deadline_seconds
        )
        retrying = AsyncRetrying(
            stop=stop,
            wait=wait_exponential_jitter(
                multiplier=s.retry_initial_seconds, max=30.0, jitter=s.retry_initial_seconds
            ),
            retry=retry_if_exception(_is_transient),
            reraise=False,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._complete(messages, schema, calls)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            attempts = exc.last_attempt.attempt_number
            message = f"{last} (gave up after {attempts} attempts)"
            raise ModelError(message, transient=True, calls=calls) from None
        except ModelError as exc:
            exc.calls = calls
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _complete(
        self, messages: list[dict[str, str]], schema: type[BaseModel], calls: list[CallRecord]
    ) -> str:
        litellm = await import_litellm()
        s = self.settings
        started = time.monotonic()
        try:
            response = await litellm.acompletion(
                model=s.model,
                messages=messages,
                api_base=s.api_base,
                api_key=s.api_key,
                temperature=s.temperature,
                max_tokens=s.max_tokens,
                timeout=s.timeout_seconds,
                response_format=response_format(schema),
                drop_params=True,
                num_retries=0,  # retries are ours (tenacity), with a deadline
                max_retries=0,
            )
        except Exception as exc:
            text, transient = _describe(exc)
            calls.append(CallRecord(s.model, False, duration_ms=_ms(started), error=text))
            raise ModelError(text, transient=transient) from exc
        calls.append(_record(litellm, response, s.model, started))
        try:
            content = response.choices[0].message.content
        except (AttributeError, IndexError) as exc:
            raise ModelError("the model returned no message") from exc
        if not isinstance(content, str) or not content.strip():
            raise ModelError("the model returned an empty message")
        return content


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _record(litellm: Any, response: Any, model: str, started: float) -> CallRecord:
    usage = getattr(response, "usage", None)
    cost: float | None
    try:
        cost = float(litellm.completion_cost(completion_response=response))
    except Exception:  # a model litellm's cost map does not know
        cost = None
    return CallRecord(
        model=model,
        ok=True,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cost_usd=cost,
        duration_ms=_ms(started),
    )


def _validate(answer: str, schema: type[M]) -> M:
    text = answer.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        return schema.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ModelError(f"invalid JSON for {schema.__name__}: {str(exc)[:300]}") from exc
