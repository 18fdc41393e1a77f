"""Behind a single-sign-on proxy: the configured header names the user, and only a known,
enabled user is let in, with their own role."""

from __future__ import annotations

from pathlib import Path

import httpx

from codered.accounts import add_user
from codered.db.engine import Database
from codered.embedded import EmbeddedImapServer, SmtpSink, free_port
from tests.support.service import RunningService, make_settings, query, wait_until


def test_the_trusted_header_signs_known_users_in_with_their_role(tmp_path: Path) -> None:
    port = free_port()
    with EmbeddedImapServer() as imap, SmtpSink() as sink:
        settings = make_settings(
            tmp_path,
            imap.port,
            sink.port,
            username=imap.username,
            password=imap.password,
            web={"port": port, "trusted_user_header": "X-Forwarded-User"},
        )
        with RunningService(settings):

            async def people(db: Database) -> None:
                await add_user(db, "maria", "manager", None, actor="test")
                await add_user(db, "sam", "csm", None, actor="test")

            query(settings, people)
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, timeout=20) as client:
                wait_until(lambda: client.get("/login").status_code == 200, 20, "the desk")
                manager = client.get("/audit", headers={"X-Forwarded-User": "maria"})
                csm = client.get("/audit", headers={"X-Forwarded-User": "sam"})
                stranger = client.get("/audit", headers={"X-Forwarded-User": "mallory"})
                nobody = client.get("/audit")
                note = {"text": "A fact from behind the proxy."}
                forged = client.post(
                    "/incidents/CR-1001/notes",
                    data=note,
                    headers={"X-Forwarded-User": "sam", "Origin": "https://evil.example"},
                )
                same_site = client.post(
                    "/incidents/CR-1001/notes",
                    data=note,
                    headers={"X-Forwarded-User": "sam", "Origin": url},
                )
                # An SSO-only account has no password: the sign-in form cannot open it.
                form = client.post("/login", data={"name": "maria", "password": ""})
    assert manager.status_code == 200 and "Audit trail" in manager.text
    assert csm.status_code == 403
    assert stranger.status_code == 303 and nobody.status_code == 303
    assert form.status_code in (401, 422)
    # No session, so no CSRF token: a form counts only when this site's page sent it.
    assert forged.status_code == 403
    assert same_site.status_code == 303  # allowed (the incident does not exist: a flash)
