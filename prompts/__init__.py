"""Prompt templates as versioned text files (package data); no logic lives here.

Load one with :func:`load`, e.g. ``load("classify.v1")``.
"""

from __future__ import annotations

from importlib.resources import files

__all__ = ["load"]


def load(name: str) -> str:
    """The text of ``prompts/<name>.txt``; the version is in the name so drafts can record it."""
    return (files("prompts") / f"{name}.txt").read_text(encoding="utf-8")
