"""An SMTP sink that requires AUTH XOAUTH2 and checks the bearer token with an Authority.

aiosmtpd offers a mechanism for every ``auth_<NAME>`` method of the handler; this one
decodes the XOAUTH2 initial response (``user=…\\x01auth=Bearer …\\x01\\x01``) and accepts
it only when the token is one the local token endpoint issued and still honours, for the
user it was issued to. Mail without AUTH is refused with 530, as at Google and Microsoft.
"""

from __future__ import annotations

import base64
import json
import warnings
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from codered.embedded import SmtpSink, _Recorder, free_port
from tests.support.oauth_servers import Authority

__all__ = ["XOAuthSmtpSink"]


class _XOAuthHandler(_Recorder):
    """Records mail like the sink's own handler; adds the XOAUTH2 mechanism."""

    def __init__(self, sink: XOAuthSmtpSink) -> None:
        super().__init__(sink)
        self._sink: XOAuthSmtpSink = sink

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        """``AUTH XOAUTH2 <base64>``: the whole credential comes as the initial response."""
        if len(args) != 2:
            return AuthResult(
                success=False, handled=False, message="501 5.5.2 initial response required"
            )
        try:
            fields = base64.b64decode(args[1], validate=True).decode().split("\x01")
        except ValueError:
            return AuthResult(
                success=False, handled=False, message="501 5.5.2 cannot decode the response"
            )
        values = dict(f.split("=", 1) for f in fields if "=" in f)
        user, token = values.get("user", ""), values.get("auth", "").removeprefix("Bearer ")
        self._sink.attempts.append((user, token))
        answer = self._sink.authority.introspect(token)
        if answer.get("active") and user == self._sink.user:
            return AuthResult(success=True, auth_data=user)
        # As Gmail does: a base64 JSON error as a challenge, then 535 after the empty reply.
        error = json.dumps({"status": "401", "schemes": "bearer"})
        await server.challenge_auth(error)
        return AuthResult(
            success=False, handled=False, message="535 5.7.8 Username and token not accepted"
        )


class XOAuthSmtpSink(SmtpSink):
    """Records mail like :class:`SmtpSink`, but only from a client signed in with XOAUTH2."""

    def __init__(self, authority: Authority, user: str) -> None:
        super().__init__()
        self.authority = authority
        self.user = user
        self.attempts: list[tuple[str, str]] = []

    def start(self) -> Self:
        port = free_port()
        with warnings.catch_warnings():  # "AUTH without TLS": deliberate, on loopback
            warnings.simplefilter("ignore", UserWarning)
            controller = Controller(
                _XOAuthHandler(self),
                hostname=self.host,
                port=port,
                auth_required=True,
                auth_require_tls=False,  # loopback only; real providers use STARTTLS or 465
            )
            controller.start()
        self._controller, self.port = controller, port
        return self
