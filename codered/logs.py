"""Logging for ``codered run``: readable on a terminal, or one JSON object per line for a log
collector (``--log-format json``). Either way, configured secrets never reach a log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

__all__ = ["JsonFormatter", "RedactSecrets", "secrets_of"]

NOISY = (
    "aiosqlite",
    "sqlalchemy",
    "mail.log",
    "asyncio",
    "imapclient",
    "alembic",
    "httpx",
    "LiteLLM",
    "uvicorn.error",
)


def secrets_of(settings: object) -> list[str]:
    """Every password and key the settings hold, longest first (so none hides another)."""
    found: list[str] = []
    for box in getattr(settings, "mailboxes", []):
        found.append(box.password())
    smtp = getattr(settings, "smtp", None)
    if smtp is not None and smtp.resolved_password():
        found.append(smtp.resolved_password())
    llm = getattr(settings, "llm", None)
    if llm is not None and llm.api_key():
        found.append(llm.api_key())
    return sorted({s for s in found if s and len(s) >= 4}, key=len, reverse=True)


class RedactSecrets(logging.Filter):
    """Replaces any configured secret in a record's message (and traceback) with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self._clean(record.getMessage())
            record.args = None
            if record.exc_info:
                record.exc_text = self._clean(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)
