"""Parsing, classifying and language detection of stored mail, in a process of their own.

Why a second process: the service is one Python process, so all its work takes turns on
one core under the GIL. In an outage flood about a fifth of that work is parsing (the
``email`` package, finding the new text), the offline detector and language detection,
and all three are pure functions of a message's stored bytes. In a worker process they
run on the other core, beside recording, sending and filing, instead of between them.
The language model (py3langid, about 100 MB) is then loaded in the worker only.

Nothing depends on the worker: the bytes are committed before they are parsed, and a
batch the worker cannot answer (it died, it hung past :data:`ANSWER_SECONDS`, it could
not be started) is parsed in the service itself, as it was before there was a worker.
A worker that failed is started again for the next batch, at most :data:`RESTARTS`
times in the life of the service; after that everything is parsed in the service and
the log says so once.

The worker ignores SIGINT and SIGTERM: Ctrl-C in a terminal and ``systemctl stop``
signal the whole process group, and the service, not the signal, decides when the
worker's last batch is done. It ends when the service closes its pipe, and by itself
when the service is gone (its next read of the pipe ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from inbox.language import detect_language
from inbox.message import InboundEmail, ParseError
from inbox.parse import parse_email
from policies.detect import classify_offline
from policies.model import Classification

__all__ = ["ANSWER_SECONDS", "RESTARTS", "ParseWorker", "Parsed", "parse_batch", "serve"]

log = logging.getLogger(__name__)

ANSWER_SECONDS = 60.0
"""Longest the service waits for one batch; a worker slower than this is stopped."""
RESTARTS = 5
"""Times a failed worker is started again before the service parses everything itself."""
_WARM_UP_TEXT = "Our service has been down since this morning and nobody answers."


@dataclass(frozen=True)
class Parsed:
    """One message as the pipeline needs it: parsed, classified offline and, when it
    looks like a complaint, the language to answer it in."""

    email: InboundEmail
    classification: Classification
    language: str | None
    """Detected for messages the offline detector calls complaints (those are the ones
    acknowledged), None otherwise: the incident opener detects it itself if it needs it."""


def parse_batch(raws: list[bytes | None]) -> list[Parsed | str]:
    """Parse and classify each message; one that cannot be parsed becomes its dead-letter
    reason. Pure: the same bytes give the same answer in the worker or in the service."""
    parsed: list[Parsed | str] = []
    for raw in raws:
        if raw is None:
            parsed.append("cannot parse: the message was not stored")
            continue
        try:
            email = parse_email(raw)
        except ParseError as exc:
            parsed.append(f"cannot parse: {exc.reason}")
            continue
        classification = classify_offline(email.subject, email.new_text)
        language = detect_language(email.new_text) if classification.is_complaint else None
        parsed.append(Parsed(email, classification, language))
    return parsed


_FRAME = struct.Struct("!Q")
"""Each message on the pipes: its length, then that many bytes of pickle."""


def _write_frame(fd: int, value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_FRAME.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    """``size`` bytes from ``fd``; EOFError at its end, TimeoutError past ``deadline``."""
    parts: list[bytes] = []
    while size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        part = os.read(fd, min(size, 1 << 20))
        if not part:
            raise EOFError
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def _read_frame(fd: int, deadline: float | None = None) -> object:
    (size,) = _FRAME.unpack(_read_exactly(fd, _FRAME.size, deadline))
    # Only ever from the other end of our own private pipe: the service or its worker.
    return pickle.loads(_read_exactly(fd, size, deadline))  # noqa: S301


def serve(requests: int, answers: int) -> None:
    """The worker's whole life: answer each batch until the service closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Load the language model and the lexicon now, before the first batch waits for them.
    detect_language(_WARM_UP_TEXT)
    classify_offline("warm-up", _WARM_UP_TEXT)
    _write_frame(answers, "ready")
    while True:
        try:
            raws = _read_frame(requests)
        except (EOFError, OSError):  # the service closed the pipe or is gone
            return
        if raws is None:
            return
        assert isinstance(raws, list)
        _write_frame(answers, parse_batch(raws))


class _WorkerGoneError(Exception):
    """The worker did not answer: it died, hung, or never started."""


class ParseWorker:
    """The service's side of the worker: one batch at a time over a pair of pipes.

    The worker is ``python -m codered.parse_worker``, not a ``multiprocessing`` child:
    a spawned child imports the parent's main module (the whole command line) first,
    which would cost it the memory it exists to save."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        """One batch on the pipes at a time (callers come from threads)."""
        self.restarts_left = RESTARTS
        self.closed = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def in_service(self) -> bool:
        """True once batches are parsed in the service itself for good."""
        return self.closed or self.restarts_left < 0

    async def start(self) -> bool:
        """Start the worker and wait until it has loaded its models; False if it could not."""
        return await asyncio.to_thread(self._ensure_started)

    async def parse(self, raws: list[bytes | None]) -> list[Parsed | str]:
        """``parse_batch(raws)`` in the worker, or here when the worker cannot answer."""
        if not raws:
            return []
        return await asyncio.to_thread(self._parse_blocking, raws)

    def close(self) -> None:
        """Tell the worker to end and wait a moment for it; it is killed if it lingers."""
        self.closed = True
        with self._lock:
            self._stop_process(ask=True)

    def _parse_blocking(self, raws: list[bytes | None]) -> list[Parsed | str]:
        with self._lock:
            if not self.in_service and self._ensure_started_locked():
                try:
                    return self._round_trip(raws)
                except _WorkerGoneError as exc:
                    log.warning("parse worker failed (%s); this batch is parsed here", exc)
                    self._stop_process(ask=False)
                    self._lose_a_restart()
        return parse_batch(raws)

    def _ensure_started(self) -> bool:
        with self._lock:
            return self._ensure_started_locked()

    def _ensure_started_locked(self) -> bool:
        if self._process is not None and self._process.poll() is None:
            return True
        if self.in_service:
            return False
        if self._process is not None:  # it died between batches
            log.warning("parse worker ended with %s", self._process.returncode)
            self._stop_process(ask=False)
            self._lose_a_restart()
            if self.in_service:
                return False
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "codered.parse_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                # Its tracebacks, if any, go where the service's own go.
                close_fds=True,
            )
        except OSError as exc:  # no processes or memory left: parse here
            log.warning("cannot start the parse worker (%r); parsing in the service", exc)
            self.restarts_left = -1
            return False
        try:
            if self._answer(ANSWER_SECONDS) != "ready":
                raise _WorkerGoneError("it did not say it was ready")
        except _WorkerGoneError as exc:
            log.warning("parse worker did not start (%s)", exc)
            self._stop_process(ask=False)
            self._lose_a_restart()
            return False
        log.info("parse worker started (pid %s)", self._process.pid)
        return True

    def _round_trip(self, raws: list[bytes | None]) -> list[Parsed | str]:
        assert self._process is not None and self._process.stdin is not None
        try:
            _write_frame(self._process.stdin.fileno(), raws)
        except OSError as exc:
            raise _WorkerGoneError(f"cannot send: {exc!r}") from exc
        answer = self._answer(ANSWER_SECONDS)
        if not isinstance(answer, list) or len(answer) != len(raws):
            raise _WorkerGoneError(f"unexpected answer {type(answer).__name__}")
        return answer

    def _answer(self, seconds: float) -> object:
        assert self._process is not None and self._process.stdout is not None
        try:
            return _read_frame(self._process.stdout.fileno(), time.monotonic() + seconds)
        except TimeoutError as exc:
            raise _WorkerGoneError(f"no answer within {seconds:.0f} s") from exc
        except (EOFError, OSError) as exc:
            raise _WorkerGoneError(f"it ended ({exc!r})") from exc
        except Exception as exc:  # an answer that cannot be read is no answer
            raise _WorkerGoneError(f"unreadable answer ({exc!r})") from exc

    def _lose_a_restart(self) -> None:
        self.restarts_left -= 1
        if self.in_service:
            log.error(
                "parse worker failed %d times; parsing in the service from now on",
                RESTARTS + 1,
            )

    def _stop_process(self, *, ask: bool) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if ask and process.stdin is not None:
            with contextlib.suppress(OSError):
                _write_frame(process.stdin.fileno(), None)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            process.wait(2.0 if ask else 0.01)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5.0)


def _main() -> None:
    """``python -m codered.parse_worker``: the requests on stdin, the answers on stdout.
    Anything else printed goes to stderr, so that it cannot corrupt an answer."""
    answers = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.fileno(), answers)


if __name__ == "__main__":
    # Run under the module's own name, not as ``__main__``: the answers' classes must be
    # pickled as ``codered.parse_worker.Parsed``, which is what the service reads.
    from codered.parse_worker import _main as main_of_the_module

    main_of_the_module()
