"""The pieces every configuration section shares: strictness, empty-means-unset, secrets.

Kept apart from :mod:`codered.settings` so the per-mailbox section can live in its own
module without an import cycle.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

__all__ = ["ConfigError", "Section", "Security", "resolve_secret"]

Security = Literal["tls", "starttls", "none"]


class ConfigError(Exception):
    """A configuration problem, phrased for the person who edits the file."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: Any) -> Any:
        """``key = ""`` for an optional key means "not set", as operators expect when they
        blank out a value (an empty ``api_base`` must not reach the model client)."""
        if not isinstance(data, dict):
            return data
        optional = {
            name
            for name, info in cls.model_fields.items()
            if not info.is_required() and info.default is None
        }
        return {k: (None if k in optional and v == "" else v) for k, v in data.items()}


def resolve_secret(
    value: str | None, env_name: str | None, key: str, info: ValidationInfo
) -> str | None:
    """Resolve ``key`` / ``key_env``: a named environment variable must exist when named.

    The environment comes from the validation context (so tests and callers can pass their
    own), falling back to the process environment."""
    context = info.context if isinstance(info.context, dict) else {}
    environ: Mapping[str, str] = context.get("environ", os.environ)
    if env_name:
        if env_name not in environ:
            raise ValueError(
                f"{key}_env names the environment variable {env_name}, which is not set"
            )
        return environ[env_name]
    return value
