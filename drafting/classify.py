"""Complaint classification by a language model, for when ``[llm] model`` names one.

The model only classifies; it never chooses recipients, headers or actions,
and the customer's text reaches it delimited as data. The offline scorer in
``policies.detect`` remains the fallback (the pipeline handles that).
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from pydantic import BaseModel, Field

import prompts
from drafting.model import ModelClient, ModelSettings
from policies.model import Category, Classification, Severity

__all__ = ["ModelClassifier", "ModelVerdict"]

MAX_EMAIL_CHARS = 8000


class ModelVerdict(BaseModel):
    is_complaint: bool
    category: Category | None = None
    severity: Severity = Severity.NORMAL
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[str] = Field(default_factory=list, max_length=5)


class _LlmSettings(Protocol):
    model: str
    api_base: str | None
    api_key_env: str | None
    temperature: float
    timeout_seconds: float
    max_tokens: int


def _delimit(text: str) -> str:
    """Keep the customer's text from closing our delimiter."""
    return text.replace("<email>", "(email)").replace("</email>", "(/email)")


class ModelClassifier:
    PROMPT = "classify.v1"

    def __init__(self, client: ModelClient) -> None:
        self.client = client
        self.name = client.settings.model

    @classmethod
    def from_settings(cls, llm: _LlmSettings) -> ModelClassifier:
        api_key = os.environ.get(llm.api_key_env) if llm.api_key_env else None
        return cls(
            ModelClient(
                ModelSettings(
                    model=llm.model,
                    api_base=llm.api_base,
                    api_key=api_key,
                    temperature=llm.temperature,
                    timeout_seconds=llm.timeout_seconds,
                    max_tokens=min(llm.max_tokens, 400),
                    max_attempts=1,  # the acknowledgement is waiting: no retries here
                )
            )
        )

    async def prepare(self) -> None:
        """Pay the client library's import cost once, outside any timeout."""
        await self.client.prepare()

    async def classify(self, subject: str, text: str) -> Classification:
        email = f"Subject: {subject}\n\n{text[:MAX_EMAIL_CHARS]}"
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": prompts.load(self.PROMPT)},
            {"role": "user", "content": f"<email>\n{_delimit(email)}\n</email>"},
        ]
        verdict = (await self.client.complete_json(messages, ModelVerdict)).value
        return Classification(
            is_complaint=verdict.is_complaint,
            category=verdict.category if verdict.is_complaint else None,
            severity=verdict.severity,
            confidence=verdict.confidence,
            signals=tuple(f"model: {e[:200]}" for e in verdict.evidence),
            source=f"model:{self.name}",
        )
