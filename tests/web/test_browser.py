"""The review desk in headless Chromium (Debian's, driven by Playwright): a CSM edits and
approves a draft, a manager exports the audit trail, and hostile HTML mail stays inert.

Screenshots of the queue and the incident page are kept in ``tests/artifacts/``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.support.service import wait_until
from tests.web.conftest import PASSWORD, Desk

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()


def _sign_in(browser: Any, desk: Desk, role: str) -> Any:
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(desk.url + "/login")
    page.fill("input[name=name]", role)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    return page


def test_a_csm_edits_sees_a_finding_approves_and_the_customer_gets_the_edit(
    desk: Desk, browser: Any
) -> None:
    desk.cli(
        "incidents",
        "note",
        desk.reference,
        "We restarted the API gateway at 09:55 UTC.",
        "--about",
        "resolve",
    )
    draft = json.loads(
        desk.cli("drafts", "create", desk.reference, "--kind", "update", "--json").stdout
    )
    assert draft["finding_list"] == []
    page = _sign_in(browser, desk, "csm")
    page.wait_for_selector("table.queue")
    assert "update draft waiting for approval" in page.content()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "queue.png"), full_page=True)

    page.click(f"a[href='/incidents/{desk.reference}#draft-{draft['id']}']")
    box = page.locator(f"#draft-{draft['id']} textarea")
    text = box.input_value()
    # A careless edit: blame and "soon" appear as findings once saved.
    box.fill(text + "\nYou failed to configure the webhook. We will fix it soon.")
    page.click(f"#draft-{draft['id']} button.save")
    findings = page.locator(f"#draft-{draft['id']} li.finding")
    findings.first.wait_for()
    rules = {findings.nth(n).get_attribute("data-rule") for n in range(findings.count())}
    assert {"blame", "vague_timeline"} <= rules
    saved = page.locator(f"#draft-{draft['id']} textarea").input_value()
    assert "You failed to configure the webhook" in saved, "the saved edit is shown"
    page.screenshot(path=str(ARTIFACTS / "incident.png"), full_page=True)

    # The CSM takes it back out, adds a line of their own, and approves.
    final = text.replace("Here is where we stand", "Here is where we stand, from Alice,")
    page.locator(f"#draft-{draft['id']} textarea").fill(final)
    page.click(f"#draft-{draft['id']} button.save")
    page.wait_for_selector(f"#draft-{draft['id']} p.clean")
    page.click(f"#draft-{draft['id']} button.approve")
    page.wait_for_selector(f"#draft-{draft['id']} p.delivery")
    _, reply = desk.sink.wait_for(2, timeout=20)
    assert reply.recipients == ("dana@northwind.example",)
    body = reply.raw.decode("utf-8", "replace").replace("=\r\n", "")
    assert "from Alice," in body and "failed to configure" not in body


def test_a_manager_exports_the_audit_trail(desk: Desk, browser: Any, tmp_path: Path) -> None:
    page = _sign_in(browser, desk, "manager")
    page.goto(desk.url + "/audit")
    assert "Hash chain intact" in page.content()
    with page.expect_download() as download:
        page.click("#export-jsonl")
    target = tmp_path / "audit.jsonl"
    download.value.save_as(str(target))
    entries = [json.loads(line) for line in target.read_text().splitlines()]
    kinds = {e["kind"] for e in entries}
    assert {"decision", "incident.opened", "acknowledgement.queued", "mail.sent"} <= kinds
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)


HOSTILE_HTML = """<html><body>
<p>Our API is down.</p>
<script>alert('script')</script>
<img src="x" onerror="alert('onerror')">
<a href="javascript:alert('link')" id="js">click</a>
<img src="http://{tracker}/pixel.gif?u=1" width="1" height="1">
<svg onload="alert('svg')"></svg>
<div style="background:url(http://{tracker}/bg.png)">styled</div>
</body></html>"""


def _attached(desk: Desk, count: int) -> bool:
    with desk.api("csm") as client:
        thread = client.get(f"/api/incidents/{desk.reference}").json()["thread"]
    return len([m for m in thread if m["direction"] == "in"]) >= count


def test_hostile_html_mail_runs_nothing_and_loads_nothing_remote(desk: Desk, browser: Any) -> None:
    tracker = "tracker.invalid"
    message = EmailMessage()
    message["From"] = "Dana Whitfield <dana@northwind.example>"
    message["To"] = "support@acme.example"
    message["Subject"] = f"Re: outage [{desk.reference}]"
    message.set_content("Our API is down.")
    message.add_alternative(HOSTILE_HTML.replace("{tracker}", tracker), subtype="html")
    utf7 = (
        "From: Dana Whitfield <dana@northwind.example>\r\nTo: support@acme.example\r\n"
        f"Subject: Re: more [{desk.reference}]\r\nMessage-ID: <utf7.test@northwind.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-7\r\n\r\n"
        "+ADw-script+AD4-alert('utf7')+ADw-/script+AD4-\r\n"
    ).encode()
    desk.imap.append(bytes(message))
    desk.imap.append(utf7)
    wait_until(lambda: _attached(desk, 3), 20, "both messages attached to the incident")

    page = _sign_in(browser, desk, "csm")
    dialogs: list[str] = []
    remote: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.context.on("request", lambda r: remote.append(r.url) if tracker in r.url else None)
    page.goto(f"{desk.url}/incidents/{desk.reference}")
    for summary in page.locator("details summary").all():
        summary.click()
    frames = page.locator("iframe.mailframe")
    assert frames.count() >= 1
    for n in range(frames.count()):
        assert frames.nth(n).get_attribute("sandbox") == ""
    page.wait_for_timeout(1500)
    assert "Our API is down." in page.content()
    frame_texts = [frame.content() for frame in page.frames if "/mail/" in frame.url]
    assert frame_texts and all("<script" not in text.lower() for text in frame_texts)
    assert all("javascript:" not in text.lower() for text in frame_texts)
    assert dialogs == [] and remote == []
