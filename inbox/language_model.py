"""Loading py3langid's bundled model for a few languages, without ever holding all of it.

Why not ``LanguageIdentifier.from_model_file``: it holds the whole model (scores for 142
languages, 28 MB) for as long as it lives, and while loading it keeps two copies of the
largest table (the 39 MB state machine, once as a NumPy array and once as the stdlib
array it becomes). The process's peak memory is then about 130 MB for language detection
alone, where codered answers in four languages. Here the state machine is read straight
into its stdlib array, and the score table a block of rows at a time, keeping only the
columns of the wanted languages: about 45 MB at the peak, and the same answers
(``tests/inbox/test_language_model.py`` compares them with py3langid's own loader).

The file layout (an ``.npz`` compressed with LZMA, with the arrays ``ptc``, ``pc``,
``classes``, ``nextmove``, ``nextmove_row`` and ``out_feat``) is that of py3langid 0.4,
the version pyproject pins. Anything else raises :class:`UnexpectedModel`, and the caller
falls back to py3langid's own loader.
"""

from __future__ import annotations

import lzma
import shutil
import sys
import tempfile
import zipfile
from array import array
from collections.abc import Sequence
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy
from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

__all__ = ["UnexpectedModel", "load_identifier"]

_ROWS_PER_BLOCK = 4096
"""Rows of the score table read at a time (about 1 MB)."""
_TYPECODES = {2: "H", 4: "I", 8: "L"}
"""Item size → the stdlib array type py3langid uses for it (unsigned)."""


class UnexpectedModel(Exception):  # noqa: N818 - it names what was found, not an error kind
    """The bundled model is not laid out as this loader expects."""


def _header(member: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    version = npy.read_magic(member)
    if version == (1, 0):
        return npy.read_array_header_1_0(member)
    if version == (2, 0):
        return npy.read_array_header_2_0(member)
    raise UnexpectedModel(f"unknown .npy version {version}")


def _read_small(model: zipfile.ZipFile, name: str) -> np.ndarray[Any, Any]:
    with model.open(f"{name}.npy") as member:
        return npy.read_array(member, allow_pickle=False)


def _read_unsigned(model: zipfile.ZipFile, name: str) -> array[int]:
    """A 1-D unsigned array read into a stdlib array, as py3langid holds it, in blocks."""
    with model.open(f"{name}.npy") as member:
        shape, _fortran, dtype = _header(member)
        if len(shape) != 1 or dtype.kind != "u" or dtype.itemsize not in _TYPECODES:
            raise UnexpectedModel(f"{name}: {dtype} {shape}")
        if dtype.byteorder == (">" if sys.byteorder == "little" else "<"):
            raise UnexpectedModel(f"{name}: byte order {dtype.byteorder}")
        values: array[int] = array(_TYPECODES[dtype.itemsize])
        left = shape[0] * dtype.itemsize
        while left:
            block = member.read(min(left, 1 << 20))
            if not block:
                raise UnexpectedModel(f"{name}: ends early")
            values.frombytes(block)
            left -= len(block)
        return values


def _read_columns(model: zipfile.ZipFile, columns: list[int]) -> np.ndarray[Any, Any]:
    """The score table's ``columns`` only, read a block of rows at a time."""
    with model.open("ptc.npy") as member:
        shape, fortran, dtype = _header(member)
        if len(shape) != 2 or fortran:
            raise UnexpectedModel(f"ptc: {dtype} {shape}")
        rows, width = shape
        kept = []
        done = 0
        while done < rows:
            count = min(_ROWS_PER_BLOCK, rows - done)
            block = member.read(count * width * dtype.itemsize)
            if len(block) != count * width * dtype.itemsize:
                raise UnexpectedModel("ptc: ends early")
            kept.append(np.frombuffer(block, dtype=dtype).reshape(count, width)[:, columns])
            done += count
        return np.concatenate(kept)


class _Model:
    """The decompressed model file, open for reading its arrays one by one."""

    def __enter__(self) -> zipfile.ZipFile:
        self._file = tempfile.TemporaryFile(suffix=".npz")
        with lzma.open(MODEL_DIR / MODEL_FILE) as source:
            shutil.copyfileobj(source, self._file, length=1 << 20)
        self._file.seek(0)
        self._zip = zipfile.ZipFile(self._file)
        return self._zip

    def __exit__(self, *exc: object) -> None:
        self._zip.close()
        self._file.close()


def load_identifier(languages: Sequence[str]) -> tuple[LanguageIdentifier | None, list[str]]:
    """An identifier that chooses among ``languages`` only, with normalised probabilities
    (the same as py3langid's full model restricted with ``set_languages``), and which of
    ``languages`` the model knows, sorted. No identifier when it knows fewer than two:
    there is nothing to choose."""
    with _Model() as model:
        classes: list[str] = _read_small(model, "classes").tolist()
        known = sorted(set(languages) & set(classes))
        if len(known) < 2:
            return None, known
        # The same columns set_languages keeps: every class whose code is wanted.
        columns = [i for i, code in enumerate(classes) if code in known]
        pc = _read_small(model, "pc")
        identifier = LanguageIdentifier(
            _read_columns(model, columns),
            pc[columns],
            [classes[i] for i in columns],
            _read_unsigned(model, "nextmove"),
            _read_small(model, "out_feat").tolist(),
            norm_probs=True,
            tk_row=_read_unsigned(model, "nextmove_row"),
        )
        return identifier, known
