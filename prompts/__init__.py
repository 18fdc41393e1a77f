"""Prompt templates as versioned files (package data); no logic lives here.

A prompt's name carries its version (``four_question_summary.v1``): a change
of wording is a new file, so every stored draft names exactly the words that
produced it. Load one with :func:`load` (``.md`` or ``.txt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

__all__ = ["Prompt", "load", "load_prompt"]


@dataclass(frozen=True)
class Prompt:
    name: str
    """Without the version, e.g. ``four_question_summary``."""
    version: str
    """e.g. ``v1``."""
    text: str

    @property
    def full_name(self) -> str:
        return f"{self.name}.{self.version}"


def load(name: str) -> str:
    """The text of ``prompts/<name>.md`` (or ``.txt``), e.g. ``load("classify.v1")``."""
    return load_prompt(name).text


def load_prompt(name: str) -> Prompt:
    base, _, version = name.rpartition(".")
    if not base or not version.startswith("v"):
        raise ValueError(f"a prompt name ends with its version, like 'classify.v1': {name!r}")
    for suffix in (".md", ".txt"):
        path = files("prompts") / f"{name}{suffix}"
        if path.is_file():
            return Prompt(base, version, path.read_text(encoding="utf-8"))
    raise FileNotFoundError(f"no prompt file prompts/{name}.md or .txt")
