"""codered benchmarks: ``python -m tests.bench.bench SUBCOMMAND [--json] [--quick] [options]``.

Subcommands: ``latency``, ``flood``, ``catchup``, ``workers``, ``startup``, ``classify``,
``all`` (everything at its default size) and ``machine`` (only the machine header).
Each service benchmark starts its own servers (a private Dovecot or pymap, an SMTP
sink, a new database) and drives the real ``codered run`` in a subprocess.

Output: a table per result (``--json``: one JSON object per line, the machine first).
Targets print PASS or FAIL beside the measured value and never change the exit status;
correctness checks (nothing answered twice or to a machine, every complaint answered)
do: 0 when all hold, 1 when one failed, 2 when a benchmark could not run or timed out.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.bench.results import Result, machine_info
from tests.bench.scenarios import Options
from tests.bench.servers import BenchError, dovecot_available

__all__ = ["main"]

SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "latency": {"count": (200, 20), "warmup": (5, 2)},
    "flood": {"count": (2000, 60)},
    "catchup": {"existing": (20000, 500), "backlog": (5000, 100)},
    "workers": {"count": (2000, 120)},
    "startup": {"help_runs": (10, 3), "start_runs": (5, 1)},
    "classify": {"rounds": (5, 1), "contexts": (60, 12), "copies": (50, 5), "limit": (0, 100)},
}
"""Per size option: (default, with --quick). An option given explicitly always wins."""


def _default_server() -> str:
    return "dovecot" if dovecot_available() is None else "pymap"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="one JSON object per result line")
    common.add_argument("--quick", action="store_true", help="small sizes, for smoke runs")
    common.add_argument(
        "--profile", action="store_true", help="py-spy the service, print hot spots"
    )
    common.add_argument("--keep", action="store_true", help="keep temporary folders and logs")
    common.add_argument(
        "--no-file-sent",
        action="store_true",
        help="turn off filing copies in Sent (on by default, as shipped)",
    )
    subs = parser.add_subparsers(dest="command", required=True)
    latency = subs.add_parser("latency", parents=[common], help="one complaint at a time")
    latency.add_argument("--count", type=int, default=None)
    latency.add_argument("--warmup", type=int, default=None, help="not counted, for both sides")
    latency.add_argument("--server", choices=["dovecot", "pymap", "both"], default="both")
    flood = subs.add_parser("flood", parents=[common], help="many messages at once")
    flood.add_argument("--count", type=int, default=None)
    flood.add_argument("--connections", type=int, default=4, help="parallel APPEND connections")
    flood.add_argument("--server", choices=["dovecot", "pymap"], default=None)
    catchup = subs.add_parser("catchup", parents=[common], help="backlog after downtime")
    catchup.add_argument("--existing", type=int, default=None)
    catchup.add_argument("--backlog", type=int, default=None)
    workers = subs.add_parser("workers", parents=[common], help="1 and 2 processes, PostgreSQL")
    workers.add_argument("--count", type=int, default=None)
    workers.add_argument("--mailboxes", type=int, default=4, help="2 to 4 folders")
    workers.add_argument("--postgres-url", default=os.environ.get("CODERED_TEST_POSTGRES_URL"))
    startup = subs.add_parser("startup", parents=[common], help="--help and spawn-to-IDLE")
    startup.add_argument("--server", choices=["dovecot", "pymap"], default=None)
    startup.add_argument("--help-runs", type=int, default=None)
    startup.add_argument("--start-runs", type=int, default=None)
    classify = subs.add_parser("classify", parents=[common], help="detector speed, prompt size")
    classify.add_argument("--corpora", type=Path, default=None)
    classify.add_argument("--rounds", type=int, default=None)
    classify.add_argument("--contexts", type=int, default=None, help="DraftContexts per kind")
    classify.add_argument("--max-input-tokens", type=int, default=None)
    classify.add_argument("--limit", type=int, default=None, help="messages per corpus (0: all)")
    everything = subs.add_parser("all", parents=[common], help="every benchmark, default sizes")
    everything.add_argument("--postgres-url", default=os.environ.get("CODERED_TEST_POSTGRES_URL"))
    subs.add_parser("machine", parents=[common], help="only the machine header")
    return parser


def _quick(args: argparse.Namespace, name: str) -> None:
    """Fill the sizes not given on the command line: the default, or with ``--quick``
    the small one."""
    for key, (full, small) in SIZES[name].items():
        if getattr(args, key, None) is None:
            setattr(args, key, small if args.quick else full)


def _options(args: argparse.Namespace) -> Options:
    return Options(profile=args.profile, keep=args.keep, file_sent=not args.no_file_sent)


def run_latency(args: argparse.Namespace) -> list[Result]:
    from tests.bench.scenarios import latency

    _quick(args, "latency")
    servers = ["dovecot", "pymap"] if args.server == "both" else [args.server]
    if "dovecot" in servers and dovecot_available() is not None and args.server == "both":
        servers.remove("dovecot")
    return [latency(s, args.count, args.warmup, _options(args)) for s in servers]


def run_flood(args: argparse.Namespace) -> list[Result]:
    from tests.bench.scenarios import flood

    _quick(args, "flood")
    server = args.server or _default_server()
    return [flood(server, args.count, args.connections, _options(args))]


def run_catchup(args: argparse.Namespace) -> list[Result]:
    from tests.bench.scenarios import catchup

    _quick(args, "catchup")
    reason = dovecot_available()
    if reason:
        return [Result("catchup", {"skipped": reason})]
    return [catchup(args.existing, args.backlog, _options(args))]


def run_workers(args: argparse.Namespace) -> list[Result]:
    from tests.bench.workers import workers

    _quick(args, "workers")
    reason = dovecot_available()
    if reason:
        return [Result("workers", {"skipped": reason})]
    return workers(args.count, args.postgres_url, args.mailboxes, _options(args))


def run_startup(args: argparse.Namespace) -> list[Result]:
    from tests.bench.startup import startup

    _quick(args, "startup")
    server = args.server or _default_server()
    return [startup(server, args.help_runs, args.start_runs, _options(args))]


def run_classify(args: argparse.Namespace) -> list[Result]:
    from codered.settings import LlmSettings
    from tests.bench.classify import CORPORA, classify

    _quick(args, "classify")
    budget = args.max_input_tokens or LlmSettings().max_input_tokens
    return classify(
        args.corpora or CORPORA, args.rounds, args.copies, budget, args.contexts, args.limit
    )


def run_all(args: argparse.Namespace) -> list[Result]:
    """Everything with its default sizes (``--quick``: the small ones)."""
    parser = _parser()
    results: list[Result] = []
    for name in ("classify", "startup", "latency", "flood", "catchup", "workers"):
        argv = [name, *(["--quick"] if args.quick else []), *(["--keep"] if args.keep else [])]
        if args.profile:
            argv.append("--profile")
        if args.no_file_sent:
            argv.append("--no-file-sent")
        if name == "workers" and args.postgres_url:
            argv += ["--postgres-url", args.postgres_url]
        sub = parser.parse_args(argv)
        for result in COMMANDS[name](sub):
            results.append(result)
            _emit(result, args.json)
    return results


COMMANDS: dict[str, Callable[[argparse.Namespace], list[Result]]] = {
    "latency": run_latency,
    "flood": run_flood,
    "catchup": run_catchup,
    "workers": run_workers,
    "startup": run_startup,
    "classify": run_classify,
    "all": run_all,
    "machine": lambda _args: [],
}


def _emit(result: Result, as_json: bool) -> None:
    print(result.json_line() if as_json else result.table() + "\n", flush=True)


def _header(as_json: bool) -> None:
    info = machine_info()
    if as_json:
        print(json.dumps({"bench": "machine", **info}), flush=True)
    else:
        print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()) + "\n", flush=True)


def _stop_cleanly(signum: int, _frame: object) -> None:
    """SIGTERM (and SIGINT, even where a shell started us with it ignored) unwinds like
    Ctrl-C, so every ``finally`` runs: the service, Dovecot and temporary folders go."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop_cleanly)
    signal.signal(signal.SIGINT, _stop_cleanly)
    args = _parser().parse_args(argv)
    _header(args.json)
    began = time.monotonic()
    try:
        results = COMMANDS[args.command](args)
    except BenchError as exc:
        print(f"error: {args.command}: {exc}", file=sys.stderr, flush=True)
        return 2
    if args.command != "all":
        for result in results:
            _emit(result, args.json)
    if not args.json:
        print(f"({args.command} took {time.monotonic() - began:.1f} s)")
    return 0 if all(r.correct_ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
