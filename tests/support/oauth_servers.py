"""Local OAuth2 servers for tests: a token endpoint and an RFC 7662 introspection endpoint.

Both run ``http.server`` on 127.0.0.1 with a free port in a daemon thread. They share
one :class:`Authority`, so an access token the token endpoint issues is one that the
introspection endpoint (which Dovecot's oauth2 passdb asks) knows.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs

__all__ = ["Authority", "OAuthServer"]


class Authority:
    """The state behind both endpoints; tests flip ``refusing`` and read ``requests``."""

    def __init__(self, refresh_token: str = "refresh-1", username: str = "support") -> None:
        self.refresh_token = refresh_token
        self.username = username
        self.expires_in = 3600
        self.refusing = False
        self.issued: list[str] = []
        self.active: set[str] = set()
        self.requests: list[dict[str, str]] = []
        self.introspections: list[str] = []
        self._lock = threading.Lock()

    def grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(form)
            if (
                self.refusing
                or form.get("grant_type") != "refresh_token"
                or form.get("refresh_token") != self.refresh_token
            ):
                return 400, {"error": "invalid_grant", "error_description": "Token revoked"}
            token = f"access-{len(self.issued) + 1}"
            self.issued.append(token)
            self.active.add(token)
            return 200, {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.expires_in,
            }

    def introspect(self, token: str) -> dict[str, Any]:
        with self._lock:
            self.introspections.append(token)
            if token in self.active:
                return {"active": True, "username": self.username}
            return {"active": False}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        authority = self.server.authority
        if self.path.startswith("/token"):
            status, body = authority.grant(form)
        elif self.path.startswith("/introspect"):
            status, body = 200, authority.introspect(form.get("token", ""))
        else:
            status, body = 404, {"error": "not_found"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    authority: Authority


class OAuthServer:
    """``token_url`` (``/token``) and ``introspection_url`` (``/introspect``) on one port."""

    def __init__(self, authority: Authority | None = None) -> None:
        self.authority = authority or Authority()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.authority = self.authority
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/introspect"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
