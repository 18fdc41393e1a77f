"""A small threaded TCP proxy on 127.0.0.1 that injects network faults on demand.

The proxy listens on a free loopback port and forwards every accepted
connection to ``target_host:target_port``, both directions. A test points the
client under test at :attr:`FaultProxy.port` and scripts faults at any time:

* :meth:`FaultProxy.cut_after_server_bytes` arms the *next* connection: once the
  server has sent ``n`` bytes on it, the proxy forwards exactly those ``n`` bytes
  and then closes both sides (a connection lost in the middle of a response).
* :meth:`FaultProxy.drop_all` closes every open connection now.
* :meth:`FaultProxy.refuse` makes the proxy accept new connections and close
  them at once (the server looks unreachable).

Counters: :attr:`connections` (every accepted connection, refused ones
included), :attr:`refused` and :attr:`cuts`. Everything is bounded: every loop
waits in ``select`` with a short timeout, all threads are daemons, and
:meth:`close` stops them all.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from types import TracebackType
from typing import Self

_TICK = 0.1
"""Longest any loop waits in ``select`` before looking at its stop flags."""
_CHUNK = 64 * 1024


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One proxied connection: the client's socket, the server's, and its fault plan."""

    def __init__(self, client: socket.socket, server: socket.socket, cut_after: int | None):
        self.client = client
        self.server = server
        self.cut_after = cut_after
        self.server_bytes = 0
        self.closed = threading.Event()

    def shut(self) -> None:
        """Close both sides now (safe from any thread, idempotent)."""
        self.closed.set()
        _close(self.client)
        _close(self.server)


class FaultProxy:
    """Forwards 127.0.0.1:``port`` to ``target_host:target_port``; see the module docstring."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._links: list[_Link] = []
        self._threads: list[threading.Thread] = []
        self._cut_next: int | None = None
        self._refusing = False
        self._connections = 0
        self._refused = 0
        self._cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy", daemon=True)
        self._acceptor.start()

    # --- counters -------------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Connections accepted so far, including refused ones."""
        with self._lock:
            return self._connections

    @property
    def refused(self) -> int:
        """Connections accepted and closed at once because of :meth:`refuse`."""
        with self._lock:
            return self._refused

    @property
    def cuts(self) -> int:
        """How many armed cuts have actually fired."""
        with self._lock:
            return self._cuts

    # --- faults ---------------------------------------------------------------------------

    def cut_after_server_bytes(self, n: int) -> None:
        """Arm the next connection: forward ``n`` server bytes, then close both sides."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._cut_next = n

    def disarm(self) -> None:
        """Forget an armed cut that no connection has taken yet."""
        with self._lock:
            self._cut_next = None

    def drop_all(self) -> None:
        """Close every open connection now, both sides."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.shut()

    def refuse(self, on: bool) -> None:
        """While on, new connections are accepted and closed immediately."""
        with self._lock:
            self._refusing = on

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop accepting, close every connection and join all threads."""
        self._stop.set()
        self.drop_all()
        self._acceptor.join(2)
        _close(self._listener)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(2)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- threads --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                readable = select.select([self._listener], [], [], _TICK)[0]
            except (OSError, ValueError):
                return
            if not readable:
                continue
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return
            client.setblocking(True)
            with self._lock:
                self._connections += 1
                refusing = self._refusing
                if refusing:
                    self._refused += 1
            if refusing:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                cut, self._cut_next = self._cut_next, None
                link = _Link(client, server, cut)
                self._links.append(link)
                thread = threading.Thread(
                    target=self._pump, args=(link,), name="faultproxy-link", daemon=True
                )
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _pump(self, link: _Link) -> None:
        try:
            while not self._stop.is_set() and not link.closed.is_set():
                try:
                    readable = select.select([link.client, link.server], [], [], _TICK)[0]
                except (OSError, ValueError):
                    return
                for sock in readable:
                    data = sock.recv(_CHUNK)
                    if not data:
                        return
                    if sock is link.server:
                        if not self._forward_server(link, data):
                            return
                    else:
                        link.server.sendall(data)
        except OSError:
            return
        finally:
            link.shut()
            with self._lock:
                if link in self._links:
                    self._links.remove(link)

    def _forward_server(self, link: _Link, data: bytes) -> bool:
        """Send server bytes to the client; False once an armed cut has fired."""
        if link.cut_after is not None:
            room = link.cut_after - link.server_bytes
            if len(data) >= room:
                link.client.sendall(data[:room])
                link.server_bytes += room
                with self._lock:
                    self._cuts += 1
                return False
        link.client.sendall(data)
        link.server_bytes += len(data)
        return True
