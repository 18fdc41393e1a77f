"""OAuth2: the encrypted token store, refreshing access tokens, and XOAUTH2 against Dovecot."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from codered.check import run_checks
from codered.db.engine import Database
from codered.db.models import AuditEntry
from codered.embedded import SmtpSink
from codered.oauth import (
    AccessTokens,
    OAuthClient,
    OAuthRefreshError,
    TokenStore,
    TokenStoreError,
    client_for,
    xoauth2_string,
)
from inbox.imap import ImapLoginError, close_quietly, connect
from mailer.deliver import DeliveryError, SmtpServer, check_smtp, deliver
from tests.support import mail
from tests.support.dovecot import DovecotServer
from tests.support.oauth_servers import OAuthServer
from tests.support.oauth_smtp import XOAuthSmtpSink
from tests.support.service import RunningService, make_settings, query, wait_until


def _store(tmp_path: Path, environ: dict[str, str] | None = None) -> TokenStore:
    return TokenStore(tmp_path / "tokens.json", tmp_path / "token.key", environ=environ or {})


@pytest.fixture
def oauth_server() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


@pytest.fixture
def oauth_smtp(oauth_server: OAuthServer) -> Iterator[XOAuthSmtpSink]:
    with XOAuthSmtpSink(oauth_server.authority, user=oauth_server.authority.username) as sink:
        yield sink


def test_xoauth2_string() -> None:
    assert xoauth2_string("u@x", "t") == "user=u@x\x01auth=Bearer t\x01\x01"


def test_store_encrypts_at_rest_and_creates_a_private_key(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.save("support", "secret-refresh-token", provider="google")
    assert store.load("support") == "secret-refresh-token"
    assert "secret-refresh-token" not in (tmp_path / "tokens.json").read_text()
    assert stat.S_IMODE((tmp_path / "token.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600
    assert _store(tmp_path).load("support") == "secret-refresh-token"  # same key file
    assert store.load("other") is None
    assert store.delete("support") and store.load("support") is None


def test_store_with_the_wrong_key_says_so(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    _store(tmp_path).save("support", "x")
    other = _store(tmp_path, {"CODERED_TOKEN_KEY": Fernet.generate_key().decode()})
    with pytest.raises(TokenStoreError, match="does not match the key"):
        other.load("support")


def test_access_tokens_refresh_before_expiry_cache_and_alert_once(
    tmp_path: Path, oauth_server: OAuthServer
) -> None:
    store = _store(tmp_path)
    store.save("support", "refresh-1")
    now = [1000.0]
    failures: list[tuple[str, str]] = []
    tokens = AccessTokens(
        store, on_failure=lambda m, r: failures.append((m, r)), clock=lambda: now[0]
    )
    tokens.register("support", OAuthClient(oauth_server.token_url, "cid", "csecret", "imap"))
    authority = oauth_server.authority

    assert tokens.get("support") == "access-1"
    now[0] += 3600 - 300 - 1  # still more than five minutes left: cached
    assert tokens.get("support") == "access-1"
    assert len(authority.requests) == 1
    assert authority.requests[0] == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-1",
        "client_id": "cid",
        "client_secret": "csecret",
        "scope": "imap",
    }
    now[0] += 2  # inside the margin, not yet expired: refreshed ahead of time
    assert tokens.provider("support")() == "access-2"

    authority.refusing = True
    now[0] += 3600
    for _ in range(2):
        with pytest.raises(OAuthRefreshError, match="invalid_grant: Token revoked"):
            tokens.get("support")
    assert len(failures) == 1
    assert failures[0][0] == "support" and "invalid_grant" in failures[0][1]

    authority.refusing = False  # the streak ends with a success; a new one alerts again
    assert tokens.get("support") == "access-3"
    authority.refusing = True
    now[0] += 3600
    with pytest.raises(OAuthRefreshError):
        tokens.get("support")
    assert len(failures) == 2
    tokens.close()


def test_no_refresh_token_names_the_command(tmp_path: Path) -> None:
    tokens = AccessTokens(_store(tmp_path))
    tokens.register("support", OAuthClient("http://127.0.0.1:9/token", "cid"))
    with pytest.raises(OAuthRefreshError, match="codered auth login --mailbox support"):
        tokens.get("support")


def test_presets_and_settings(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        993,
        587,
        mailboxes=[
            {
                "name": "ms",
                "address": "support@acme.example",
                "imap_host": "outlook.office365.com",
                "imap_username": "support@acme.example",
                "auth": "oauth2",
                "oauth_provider": "microsoft",
                "oauth_client_id": "app",
                "oauth_tenant": "acme.example",
            }
        ],
    )
    client = client_for(settings.mailbox("ms"))
    assert client.token_url == "https://login.microsoftonline.com/acme.example/oauth2/v2.0/token"
    assert "offline_access" in client.scope and "SMTP.Send" in client.scope
    assert settings.mailbox("ms").password() == ""
    assert settings.security.token_store_path(settings) == tmp_path / "codered-tokens.json"


def test_login_answer_is_stored_and_errors_are_one_line(tmp_path: Path) -> None:
    from codered.cli_auth import LoginError, store_login

    settings = make_settings(tmp_path, 993, 587, security={"token_store": str(tmp_path / "t.json")})
    store_login(settings, "support", "microsoft", {"refresh_token": "rt-1", "access_token": "a"})
    key = settings.security.key_file_path(settings)
    assert TokenStore(tmp_path / "t.json", key).load("support") == "rt-1"
    with pytest.raises(LoginError, match=r"^authorization_declined: user said no$"):
        store_login(
            settings,
            "support",
            "microsoft",
            {"error": "authorization_declined", "error_description": "user\nsaid no"},
        )


# --- against Dovecot's oauth2 passdb ------------------------------------------------------------


@pytest.fixture
def oauth_dovecot(oauth_server: OAuthServer) -> Iterator[DovecotServer]:
    server = DovecotServer(oauth2_introspection_url=oauth_server.introspection_url)
    try:
        server.start()
    except RuntimeError as exc:
        server.cleanup()
        if "oauth2" in str(exc):
            pytest.skip(f"this Dovecot lacks the oauth2 passdb: {exc}")
        raise
    try:
        yield server
    finally:
        server.cleanup()


def test_imap_xoauth2_login_against_dovecot(
    oauth_dovecot: DovecotServer, oauth_server: OAuthServer
) -> None:
    oauth_server.authority.active.add("good-token")
    client = connect(oauth_dovecot.account(token_provider=lambda: "good-token"))
    try:
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    finally:
        close_quietly(client)
    assert "good-token" in oauth_server.authority.introspections

    with pytest.raises(ImapLoginError) as refused:
        connect(oauth_dovecot.account(token_provider=lambda: "wrong-token"))
    assert str(refused.value).startswith("login failed for support: ")
    assert "\n" not in str(refused.value)

    def broken() -> str:
        raise OAuthRefreshError("token endpoint refused the refresh: invalid_grant")

    with pytest.raises(ImapLoginError, match=r"no access token for support: .*invalid_grant"):
        connect(oauth_dovecot.account(token_provider=broken))


async def test_smtp_xoauth2_against_a_server_that_requires_it(oauth_server: OAuthServer) -> None:
    authority = oauth_server.authority
    authority.active.add("good-token")
    raw = b"From: support@acme.example\r\nTo: dana@northwind.example\r\nSubject: t\r\n\r\nhi\r\n"

    def server(provider: Any, user: str = "support") -> SmtpServer:
        return SmtpServer("127.0.0.1", sink.port, "none", username=user, token_provider=provider)

    with XOAuthSmtpSink(authority, user="support") as sink:
        described = await check_smtp(server(lambda: "good-token"))
        assert "authenticated as support with XOAUTH2" in described
        await deliver(server(lambda: "good-token"), "support@acme.example", ["d@x.example"], raw)
        [received] = sink.messages
        assert received.raw == raw and received.recipients == ("d@x.example",)
        assert ("support", "good-token") in sink.attempts

        with pytest.raises(DeliveryError) as refused:
            await deliver(server(lambda: "stale-token"), "support@acme.example", ["d@x"], raw)
        assert refused.value.permanent and "535" in refused.value.reply
        with pytest.raises(DeliveryError, match="535"):
            await deliver(server(lambda: "good-token", user="intruder"), "s@a", ["d@x"], raw)

        def broken() -> str:
            raise OAuthRefreshError("token endpoint refused the refresh: invalid_grant")

        with pytest.raises(DeliveryError) as no_token:
            await deliver(server(broken), "support@acme.example", ["d@x"], raw, max_attempts=1)
        assert "no access token for SMTP" in no_token.value.reply
        assert "invalid_grant" in no_token.value.reply
        assert len(sink.messages) == 1  # nothing refused was delivered


def _alerts(settings: Any) -> list[dict[str, Any]]:
    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.read() as session:
            rows = await session.scalars(
                select(AuditEntry).where(AuditEntry.kind == "alert.oauth_refresh_failed")
            )
            return [dict(r.data) for r in rows]

    return query(settings, work)


def test_service_watches_with_oauth2_and_alerts_when_refresh_fails(
    oauth_dovecot: DovecotServer,
    oauth_server: OAuthServer,
    oauth_smtp: XOAuthSmtpSink,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Watch and answer over XOAUTH2; when the grant is revoked, the admin alert still
    reaches them through the shared relay, since the mailbox's own server is locked out."""
    from cryptography.fernet import Fernet

    monkeypatch.setenv("CODERED_TOKEN_KEY", Fernet.generate_key().decode())
    settings = make_settings(
        tmp_path,
        oauth_dovecot.port,
        smtp_sink.port,
        username=oauth_dovecot.username,
        password="",
        mailboxes=[
            {
                "name": "support",
                "address": "support@acme.example",
                "imap_host": "127.0.0.1",
                "imap_port": oauth_dovecot.port,
                "imap_security": "none",
                "imap_username": oauth_dovecot.username,
                "poll_interval_seconds": 1.0,
                "auth": "oauth2",
                "oauth_provider": "custom",
                "oauth_client_id": "codered-test",
                "oauth_token_url": oauth_server.token_url,
                "smtp_host": "127.0.0.1",
                "smtp_port": oauth_smtp.port,
                "smtp_security": "none",
            }
        ],
        security={"token_store": str(tmp_path / "tokens.json"), "admin_email": "ops@acme.example"},
    )
    store = TokenStore(tmp_path / "tokens.json", tmp_path / "unused.key")
    store.save("support", oauth_server.authority.refresh_token)
    assert json.loads((tmp_path / "tokens.json").read_text())["mailboxes"]["support"]

    with RunningService(settings) as service:
        service.wait_for_baseline()
        _, raw = mail.outage_complaint()
        oauth_dovecot.append(raw)
        # The acknowledgement goes out through the mailbox's own server, over XOAUTH2.
        [ack] = oauth_smtp.wait_for(1, timeout=20)
        assert list(ack.recipients) == ["dana@northwind.example"]
        assert oauth_server.authority.issued  # the watcher signed in with a fresh token
        assert oauth_smtp.attempts[0] == ("support", oauth_server.authority.issued[-1])
        assert not smtp_sink.messages

        # The provider revokes the grant; the next login needs a new token and fails.
        oauth_server.authority.refusing = True
        oauth_server.authority.active.clear()
        assert service.service is not None and service.service.tokens is not None
        service.service.tokens.margin_seconds = 10**9  # every cached token counts as expiring
        oauth_dovecot.kill()
        oauth_dovecot.start()
        alerts = wait_until(lambda: _alerts(settings), 30, "an oauth refresh alert")
        # The admin hears of it at once, by email.
        notices = wait_until(
            lambda: [m for m in smtp_sink.messages if "ops@acme.example" in m.recipients],
            20,
            "the alert email to the admin",
        )
    assert b"OAuth2 refresh failed" in notices[0].raw
    assert b"Auto-Submitted: auto-generated" in notices[0].raw
    assert alerts[0]["mailbox"] == "support"
    assert "invalid_grant" in alerts[0]["reason"]
    assert len(_alerts(settings)) == 1
    # `codered check` shows it as a failed line of its own, with the command that fixes it.
    results = asyncio.run(run_checks(settings))
    [alert] = [r for r in results if r.name == "alert"]
    assert not alert.ok
    assert "support cannot sign in" in alert.detail and "invalid_grant" in alert.detail
    assert "codered auth login --mailbox support" in alert.detail
    [imap] = [r for r in results if r.name == "imap support"]
    assert not imap.ok and "invalid_grant" in imap.detail
