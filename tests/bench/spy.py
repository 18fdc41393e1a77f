"""Sampling the running service with py-spy, and the hot spots as plain text.

Why py-spy: it attaches to the real ``codered run`` process by its PID, from outside,
with no change to the service and little overhead, so the profile shows where the time
goes under exactly the load being measured. It is optional: without it (``pip install
py-spy``), ``--profile`` only says so.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

__all__ = ["Profiler", "hot_spots"]

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")
_PLUMBING = re.compile(
    r"\((?:asyncio/(?:runners|base_events|events)|typer/\w+|_?click/\w+|\w+/threading|"
    r"futures/thread|codered/cli|concurrent/futures|python3\.\d+/threading)\.py\)|^<module>|"
    r"^\S+ \(threading\.py\)"
)
"""Frames every stack passes through (the event loop, the CLI, thread start-up): they say
nothing about where the time goes, so the inclusive list leaves them out."""
_PROJECT = re.compile(r"\((?:codered/(?!cli\.py)|inbox/|policies/|drafting/|mailer/)\w+\.py\)$")
"""Frames of codered's own packages (as shortened by :func:`_frame`), but the CLI's, which
only starts the event loop."""


class Profiler:
    """``py-spy record --format raw`` on one PID until :meth:`stop`."""

    def __init__(self, pid: int, output: Path, *, rate: int = 200) -> None:
        self.output = output
        self.available = shutil.which("py-spy") is not None
        self._process: subprocess.Popen[bytes] | None = None
        if self.available:
            self._process = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(rate),
                    "--format",
                    "raw",
                    "--output",
                    str(output),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )

    def stop(self) -> str:
        """Stop sampling (SIGINT makes py-spy write its file) and return the hot spots."""
        if self._process is None:
            return "py-spy is not installed (pip install py-spy); no profile taken"
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(signal.SIGINT)
        try:
            _, err = self._process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            _, err = self._process.communicate()
        if not self.output.exists():
            return f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}"
        return hot_spots(self.output)


def _frame(text: str) -> str:
    """``func (path/to/module.py:123)`` → ``func (module.py)``: lines merged per function."""
    match = _FRAME.match(text.strip())
    if not match:
        return text.strip()
    path = match.group("file")
    short = "/".join(Path(path).parts[-2:])
    return f"{match.group('func')} ({short})"


def hot_spots(raw: Path, top: int = 15) -> str:
    """Top functions by self samples and by inclusive samples from a collapsed-stack file."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    project: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for name in set(frames[1:]):  # the first frame is the thread name
            inclusive[name] += count
        ours = [f for f in frames if _PROJECT.search(f)]
        project[ours[-1] if ours else "(outside the project: library threads, idle loop)"] += count
    if not total:
        return "py-spy collected no samples (the service was idle?)"
    lines = [f"py-spy: {total} samples of active threads ({raw})", "  self time:"]
    lines += [f"    {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    lines.append("  inclusive (a function and what it calls; event loop and CLI frames left out):")
    useful = [(name, n) for name, n in inclusive.most_common() if not _PLUMBING.search(name)]
    lines += [f"    {n / total:6.1%}  {name}" for name, n in useful[: top * 2]]
    lines.append("  by the innermost project function on the stack (what asked for the work):")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in project.most_common(top)]
    return "\n".join(lines)
