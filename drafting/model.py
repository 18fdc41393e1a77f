"""The one door to language models: litellm behind a small interface.

litellm is imported lazily (it takes seconds to import) and told to use its
bundled cost map so that importing it never reaches the network. Structured
output is requested as JSON and validated with pydantic, with one repair
attempt when the model's answer does not validate.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

__all__ = ["ModelClient", "ModelError", "ModelSettings"]

M = TypeVar("M", bound=BaseModel)


class ModelError(Exception):
    """The model could not give a valid answer (network, provider, or invalid output)."""


@dataclass(frozen=True)
class ModelSettings:
    model: str
    api_base: str | None = None
    api_key: str | None = None
    temperature: float = 0.2
    timeout_seconds: float = 20.0
    max_tokens: int = 1200


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    return litellm


async def import_litellm() -> Any:
    """Import litellm in a worker thread: its import takes seconds and must not stall the
    event loop (acknowledgements are sent from it) nor count against a model timeout."""
    return await asyncio.to_thread(_litellm)


class ModelClient:
    """Ask for JSON matching a pydantic schema; raise :class:`ModelError` on any failure."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings

    async def complete_json(self, messages: list[dict[str, str]], schema: type[M]) -> M:
        answer = await self._complete(messages)
        try:
            return _validate(answer, schema)
        except ModelError as first:
            repair = [
                *messages,
                {"role": "assistant", "content": answer},
                {
                    "role": "user",
                    "content": f"That was not valid ({first}). Reply with only the JSON object.",
                },
            ]
            return _validate(await self._complete(repair), schema)

    async def prepare(self) -> None:
        """Load the client library ahead of the first call."""
        await import_litellm()

    async def _complete(self, messages: list[dict[str, str]]) -> str:
        litellm = await import_litellm()
        s = self.settings
        try:
            response = await litellm.acompletion(
                model=s.model,
                messages=messages,
                api_base=s.api_base,
                api_key=s.api_key,
                temperature=s.temperature,
                max_tokens=s.max_tokens,
                timeout=s.timeout_seconds,
                response_format={"type": "json_object"},
                num_retries=0,
            )
        except Exception as exc:
            raise ModelError(f"{type(exc).__name__}: {str(exc)[:300]}") from exc
        try:
            content = response.choices[0].message.content
        except (AttributeError, IndexError) as exc:
            raise ModelError("the model returned no message") from exc
        if not isinstance(content, str) or not content.strip():
            raise ModelError("the model returned an empty message")
        return content


def _validate(answer: str, schema: type[M]) -> M:
    text = answer.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        return schema.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ModelError(f"invalid JSON for {schema.__name__}: {str(exc)[:300]}") from exc
