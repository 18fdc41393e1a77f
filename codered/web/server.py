"""Serving the web application inside the service's own event loop with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

__all__ = ["WebServer"]

log = logging.getLogger(__name__)


class _QuietSignals(uvicorn.Server):
    """The service owns SIGINT and SIGTERM; uvicorn must not replace its handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class WebServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="off", access_log=False
        )
        self.server = _QuietSignals(config)
        self.host, self.port = host, port

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop``; a port that cannot be bound is logged, and the rest of the
        service goes on (uvicorn exits with SystemExit then, which must not end the loop)."""

        async def exit_on_stop() -> None:
            await stop.wait()
            self.server.should_exit = True

        watcher = asyncio.create_task(exit_on_stop())
        try:
            await self.server.serve()
        except SystemExit:
            log.error(
                "the review desk cannot be served on %s:%d (is the port in use?); "
                "the service goes on without it",
                self.host,
                self.port,
            )
        finally:
            watcher.cancel()

    @property
    def bound_port(self) -> int | None:
        for server in getattr(self.server, "servers", []):
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return None
