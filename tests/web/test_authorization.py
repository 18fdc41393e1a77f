"""Every route, every role: exactly the allowed answer, checked over real HTTP; every denial
is audited, and a form without the session's CSRF token is refused."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select

from codered.db.engine import Database
from codered.db.models import AuditEntry, InboundMessage
from tests.support.service import query
from tests.web.conftest import Desk

ANON = "anonymous"
WHO = (ANON, "csm", "manager", "admin")
OK, DENIED = "ok", "denied"


def _allowed(*roles: str) -> dict[str, str]:
    return {who: (OK if who in roles else DENIED) for who in WHO}


VIEW = _allowed("csm", "manager")
MANAGE = _allowed("manager")
ADMIN = _allowed("admin")


def _inbound_id(desk: Desk) -> int:
    async def work(db: Database) -> int:
        async with db.read() as session:
            return int((await session.scalars(select(InboundMessage.id))).first() or 0)

    return query(desk.settings, work)


def _denials(desk: Desk) -> int:
    async def work(db: Database) -> int:
        async with db.read() as session:
            kinds = (await session.scalars(select(AuditEntry.kind))).all()
            return sum(1 for k in kinds if k == "auth.denied")

    return query(desk.settings, work)


def _pending_draft(desk: Desk) -> int:
    created = desk.cli("drafts", "create", desk.reference, "--kind", "update", "--json")
    return int(json.loads(created.stdout)["id"])


def test_pages_answer_each_role_as_the_table_says(desk: Desk) -> None:
    ref, mail_id = desk.reference, _inbound_id(desk)
    routes = [
        ("GET", "/", VIEW),
        ("GET", "/incidents", VIEW),
        ("GET", f"/incidents/{ref}", VIEW),
        ("GET", f"/mail/{mail_id}", VIEW),
        ("GET", "/audit", MANAGE),
        ("GET", "/audit/export", MANAGE),
        ("GET", "/overview", MANAGE),
        ("GET", "/users", ADMIN),
        ("POST", f"/incidents/{ref}/notes", VIEW),
        ("POST", f"/incidents/{ref}/drafts", VIEW),
        ("POST", "/drafts/{draft}/save", VIEW),
        ("POST", "/drafts/{draft}/reject", VIEW),
        ("POST", "/users", ADMIN),
    ]
    forms = {
        "notes": {"text": "A fact.", "about": "what"},
        "drafts": {"kind": "update"},
        "save": {"text": "Hello Dana,\n\nAn edit on Tuesday, 1 December 2026 at 14:30.\n"},
        "reject": {"reason": "not needed"},
        "move": {"state": "investigating"},
        "owner": {"name": "alice"},
        "calls": {"participants": "Dana, alice", "minutes": "10", "notes": "Talked it through."},
        "users": {"name": "newperson", "role": "csm", "password": "long enough password"},
    }
    denials_before = _denials(desk)
    expected_denials = 0
    for who in WHO:
        if who == ANON:
            client, csrf = httpx.Client(base_url=desk.url, timeout=20), ""
        else:
            client, csrf = desk.browser(who)
        for method, path, table in routes:
            path = path.replace("{draft}", str(_pending_draft(desk))) if "{draft}" in path else path
            if method == "GET":
                answer = client.get(path)
            else:
                form = dict(forms[path.rstrip("/").split("/")[-1]], csrf_token=csrf)
                if path == "/users":
                    form["name"] = f"new{who}"
                answer = client.post(path, data=form)
            where = f"{who} {method} {path}"
            if who == ANON:
                assert answer.status_code == 303, where
                assert answer.headers["location"].startswith("/login"), where
            elif table[who] == OK:
                assert answer.status_code in (200, 303), f"{where}: {answer.status_code}"
                if answer.status_code == 303:
                    assert not answer.headers["location"].startswith("/login"), where
            else:
                assert answer.status_code == 403, f"{where}: {answer.status_code}"
                expected_denials += 1
        client.close()
    assert _denials(desk) - denials_before == expected_denials


@pytest.mark.parametrize("who", ["csm", "manager", "admin"])
def test_the_api_answers_each_role_as_the_table_says(desk: Desk, who: str) -> None:
    ref = desk.reference
    call = {
        "incident": ref,
        "started_at": "2026-12-01T10:00:00Z",
        "duration_minutes": 15,
        "participants": ["Dana Whitfield", "alice"],
        "notes": "Walked through the outage.",
    }
    routes = [
        ("GET", "/api/incidents", None, VIEW),
        ("GET", f"/api/incidents/{ref}", None, VIEW),
        ("POST", f"/api/incidents/{ref}/notes", {"text": "A fact."}, VIEW),
        ("GET", "/api/drafts?status=pending", None, VIEW),
        ("POST", "/api/drafts/{draft}/reject", {"reason": "no"}, VIEW),
        ("POST", "/api/drafts/{draft}/approve", {}, VIEW),
        ("POST", "/api/calls", call, VIEW),
        ("GET", "/api/audit/export", None, MANAGE),
    ]
    with desk.api(who) as client:
        for method, path, body, table in routes:
            if "{draft}" in path:
                path = path.replace("{draft}", str(_pending_draft(desk)))
            answer = client.request(method, path, json=body)
            if table[who] == OK:
                assert answer.status_code in (200, 201, 202), f"{who} {path}: {answer.text}"
            else:
                assert answer.status_code == 403, f"{who} {path}: {answer.status_code}"


def test_the_api_needs_credentials(desk: Desk) -> None:
    with httpx.Client(base_url=desk.url, timeout=20) as client:
        for path in ("/api/incidents", "/api/drafts", "/api/audit/export"):
            assert client.get(path).status_code == 401
            bad = client.get(path, headers={"Authorization": "Bearer cr_not-a-token"})
            assert bad.status_code == 401
            assert bad.headers["www-authenticate"] == "Bearer"
        assert client.post("/api/calls", json={}).status_code == 401
        schema = client.get("/api/openapi.json").json()
    assert "/api/drafts/{draft_id}/approve" in schema["paths"]


def test_a_csm_may_not_override_a_blocking_finding(desk: Desk) -> None:
    created = desk.cli("drafts", "create", desk.reference, "--kind", "summary", "--json")
    draft = json.loads(created.stdout)
    assert any(f["severity"] == "blocking" for f in draft["finding_list"]), created.stdout
    with desk.api("csm") as client:
        blocked = client.post(f"/api/drafts/{draft['id']}/approve", json={})
        assert blocked.status_code == 409 and blocked.json()["detail"]["findings"]
        denied = client.post(f"/api/drafts/{draft['id']}/approve", json={"override": "trust me"})
        assert denied.status_code == 403
    with desk.api("manager") as client:
        approved = client.post(
            f"/api/drafts/{draft['id']}/approve",
            json={"override": "checked the gaps with the customer"},
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["to"] == ["dana@northwind.example"]
    assert len(desk.sink.wait_for(2, timeout=15)) == 2


def test_a_form_without_the_csrf_token_is_refused(desk: Desk) -> None:
    client, csrf = desk.browser("csm")
    path = f"/incidents/{desk.reference}/notes"
    assert client.post(path, data={"text": "forged"}).status_code == 403
    assert client.post(path, data={"text": "forged", "csrf_token": "x" + csrf}).status_code == 403
    assert client.post(path, data={"text": "real", "csrf_token": csrf}).status_code == 303
    notes = json.loads(desk.cli("incidents", "show", desk.reference, "--json").stdout)["notes"]
    assert [n["text"] for n in notes] == ["real"]


def test_sign_in_is_throttled_and_cookies_are_strict(desk: Desk) -> None:
    with httpx.Client(base_url=desk.url, timeout=20) as client:
        signed = client.post("/login", data={"name": "csm", "password": "correct horse battery"})
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        for _ in range(5):
            assert (
                client.post("/login", data={"name": "manager", "password": "wrong"}).status_code
                == 401
            )
        throttled = client.post(
            "/login", data={"name": "manager", "password": "correct horse battery"}
        )
        assert throttled.status_code == 429


def test_a_mailbox_that_cannot_sign_in_is_a_banner_on_every_page(desk: Desk) -> None:
    from codered import audit

    client, _ = desk.browser("csm")
    assert "cannot sign in" not in client.get("/").text

    async def alert(db: Database) -> None:
        async with db.write() as session:
            await audit.append(
                session,
                "alert.oauth_refresh_failed",
                {"mailbox": "support", "reason": "invalid_grant"},
            )

    query(desk.settings, alert)
    for path in ("/", f"/incidents/{desk.reference}"):
        page = client.get(path).text
        assert 'class="alert"' in page and "Mailbox support cannot sign in: invalid_grant" in page
    assert "cannot sign in" not in client.get("/api/incidents").text
    with httpx.Client(base_url=desk.url, timeout=20) as stranger:
        assert "cannot sign in" not in stranger.get("/login").text
