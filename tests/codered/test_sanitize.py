"""Showing hostile mail: what survives sanitizing is inert, and nothing here ever raises.

Each hostile message is built as raw bytes, the way it reaches the store, and
checked two ways: the output must not contain the tell-tale strings, and it
must parse (with the stdlib parser, a second opinion beside html5ever) into
allowlisted tags and attributes only.
"""

from __future__ import annotations

import base64
import hashlib
import re
from email.message import EmailMessage
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codered.web import sanitize
from codered.web.sanitize import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    CSP_FOR_MAIL_FRAME,
    IFRAME_SANDBOX,
    REMOTE_IMAGE_MARKER,
    DisplayMessage,
    DisplayPart,
    display_parts,
    frame_document,
    sanitize_html,
)

SAFE = "<p>Our API is down since 09:00 and <b>nobody</b> answers.</p>"
TEXT = "Our API is down since 09:00 and nobody answers."
FORBIDDEN = (
    "<script", "onerror", "onload", "javascript:", "tracker.example",
    "<iframe", "<form", "<meta", "<style", "<base", "<!--",
)  # fmt: skip

# name: (hostile HTML, remote loads it tries)
HOSTILE: dict[str, tuple[str, int]] = {
    "script": ("<script>alert(1)</script>", 0),
    "script in caps": ("<SCRIPT SRC=http://tracker.example/x.js></SCRIPT>", 0),
    "img onerror": ("<img src=x onerror=alert(1)>", 1),
    "javascript link": ('<a href="javascript:alert(1)">click</a>', 0),
    "mixed case link": ('<a href=" JaVaScRiPt:alert(1)">click</a>', 0),
    "entity link": ('<a href="&#106;avascript:alert(1)">click</a>', 0),
    "tab in scheme": ('<a href="java&#x09;script:alert(1)">click</a>', 0),
    "control prefix": ('<a href="&#x01;javascript:alert(1)">click</a>', 0),
    "vbscript link": ('<a href="vbscript:msgbox(1)">click</a>', 0),
    "data link": ('<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>', 0),
    "svg onload": ("<svg onload=alert(1)><circle r=5 /></svg>", 0),
    "body onload": ('<body onload="alert(1)">x</body>', 0),
    "iframe": ('<iframe src="http://tracker.example/frame"></iframe>', 0),
    "form": ('<form action="http://tracker.example/"><input name=pw><button>Go</button></form>', 0),
    "meta refresh": ('<meta http-equiv="refresh" content="0;url=http://tracker.example/">', 0),
    "style import": ("<style>@import url(http://tracker.example/x.css);</style>", 1),
    "style string import": ("<style>@import 'http://tracker.example/y.css';</style>", 1),
    "style attribute": ('<div style="background:url(http://tracker.example/b.png)">x</div>', 1),
    "tracking pixel": ('<img src="http://tracker.example/pixel.gif?u=1" width=1 height=1>', 1),
    "scheme relative": ('<img src="//tracker.example/p.gif">', 1),
    "srcset": ('<img srcset="http://tracker.example/a 1x, http://tracker.example/b 2x">', 1),
    "table background": ('<table background="http://tracker.example/"><tr><td>c</table>', 1),
    "base": ('<base href="http://tracker.example/">', 0),
    "link stylesheet": ('<link rel=stylesheet href="http://tracker.example/s.css">', 0),
    "comment": ("<!-- internal: ticket 4711 -->", 0),
    "conditional": ('<!--[if gte mso 9]><img src="http://tracker.example/"><![endif]-->', 0),
    "downlevel revealed": ('<![if !mso]><img src="http://tracker.example/dl.gif"><![endif]>', 1),
    "object": ('<object data="http://tracker.example/x.swf"></object>', 0),
    "embed": ('<embed src="http://tracker.example/x.swf">', 0),
    "template": ('<template><img src="http://tracker.example/t.gif"></template>', 0),
    "noscript": ('<noscript><img src="http://tracker.example/n.gif"></noscript>', 0),
    "math mxss": (
        '<math><mtext><table><mglyph><style><!--</style><img title="--&gt;&lt;/mglyph&gt;&lt;img'
        '&Tab;src=1&Tab;onerror=alert(1)&gt;"></table></mtext></math>', 0,
    ),
    "svg mxss": ('<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">', 1),
    "noscript mxss": ('<noscript><p title="</noscript><img src=x onerror=alert(1)>">', 1),
}  # fmt: skip


def alternative(html: str, text: str = TEXT) -> bytes:
    message = EmailMessage()
    message["From"] = "Ann <ann@customer.example>"
    message["To"] = "support@acme.example"
    message["Subject"] = "API down"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


def html_only(html: str) -> bytes:
    message = EmailMessage()
    message["From"] = "ann@customer.example"
    message["Subject"] = "API down"
    message.set_content(html, subtype="html")
    return message.as_bytes()


def raw_mail(content_type: str, body: bytes, extra: str = "") -> bytes:
    head = f"From: ann@customer.example\r\nSubject: x\r\nMIME-Version: 1.0\r\n{extra}"
    return f"{head}Content-Type: {content_type}\r\n\r\n".encode() + body


class _Inspector(HTMLParser):
    """Fails on anything in the output that is not on the allowlist."""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in ALLOWED_TAGS, tag
        allowed = ALLOWED_ATTRIBUTES["*"] | ALLOWED_ATTRIBUTES.get(tag, frozenset())
        for name, value in attrs:
            if tag == "a" and name == "rel":
                assert value == "noopener noreferrer nofollow"
                continue
            assert name in allowed, (tag, name)
            if name == "href":
                assert re.match(r"(https?|mailto):", value or "", re.I), value
            if name == "src":
                assert re.fullmatch(
                    r"cid:\S+|data:image/(png|gif|jpeg|webp);base64,[\w+/=\s]*", value or "", re.I
                ), value

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_comment(self, data: str) -> None:
        raise AssertionError(f"comment survived: {data!r}")

    def handle_decl(self, decl: str) -> None:
        raise AssertionError(f"declaration survived: {decl!r}")

    def handle_pi(self, data: str) -> None:
        raise AssertionError(f"processing instruction survived: {data!r}")

    def unknown_decl(self, data: str) -> None:
        raise AssertionError(f"declaration survived: {data!r}")


def assert_inert(html: str) -> None:
    inspector = _Inspector(convert_charrefs=True)
    inspector.feed(html)
    inspector.close()


def assert_clean(html: str) -> None:
    lowered = html.lower()
    for needle in FORBIDDEN:
        assert needle not in lowered, (needle, html)
    assert_inert(html)


# --- hostile HTML, in both shapes of message --------------------------------------------


@pytest.mark.parametrize("build", [alternative, html_only], ids=["alternative", "html-only"])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_html_is_inert_and_the_complaint_survives(name: str, build: object) -> None:
    hostile, remote = HOSTILE[name]
    assert callable(build)
    shown = display_parts(build(SAFE + hostile + "<p>Please call me.</p>"))
    assert shown.html is not None
    assert_clean(shown.html)
    assert "Our API is down since 09:00" in shown.text
    assert "Our API is down since 09:00" in shown.html
    assert "Please call me." in shown.html
    assert shown.blocked_remote == remote
    assert ("not loaded" in " ".join(shown.notes)) == bool(remote)


def test_every_hostile_snippet_at_once() -> None:
    everything = "".join(hostile for hostile, _ in HOSTILE.values())
    shown = display_parts(alternative(SAFE + everything))
    assert shown.html is not None
    assert_clean(shown.html)
    expected = sum(remote for _, remote in HOSTILE.values())
    assert shown.blocked_remote == expected
    assert f"{expected} remote images were not loaded" in shown.notes


def test_text_part_is_the_text_when_both_exist() -> None:
    shown = display_parts(alternative("<p>HTML words</p>", text="Plain words"))
    assert shown.text.strip() == "Plain words"
    assert shown.html is not None and "HTML words" in shown.html
    assert shown.parts == (DisplayPart("text", shown.text), DisplayPart("html", shown.html))


def test_html_only_text_comes_from_inscriptis_without_script_or_style() -> None:
    shown = display_parts(html_only("<style>p{color:red}</style><script>x=1</script>" + SAFE))
    assert "Our API is down since 09:00 and nobody answers." in shown.text
    assert "color" not in shown.text and "x=1" not in shown.text


# --- links, images, comments -----------------------------------------------------------


def test_https_and_mailto_links_survive_with_rel_and_without_target() -> None:
    clean, blocked = sanitize_html(
        '<a href="https://status.acme.example/i/42?a=1&b=2" target="_top" rel="opener">status</a>'
        ' <a href="mailto:ops@acme.example">mail</a> <a href="/admin">relative</a>'
        ' <a href="#top">anchor</a> <a href="cid:x@y">cid</a>'
    )
    assert blocked == 0
    assert 'href="https://status.acme.example/i/42?a=1&amp;b=2"' in clean
    assert 'href="mailto:ops@acme.example"' in clean
    assert clean.count('rel="noopener noreferrer nofollow"') == 5
    assert "target" not in clean and "opener" not in clean.replace("noopener", "")
    assert "/admin" not in clean and "#top" not in clean and "cid:" not in clean
    assert_inert(clean)


def test_remote_images_become_their_alt_text_or_a_marker() -> None:
    clean, blocked = sanitize_html(
        '<img src="https://cdn.example/logo.png" alt="ACME &amp; &lt;Co&gt;">'
        '<img src="http://tracker.example/p.gif" width="1" height="1">'
        '<IMG SRC="HTTPS://cdn.example/x.png" alt="   ">'
    )
    assert blocked == 3
    assert clean == f"[ACME &amp; &lt;Co&gt;]{REMOTE_IMAGE_MARKER}{REMOTE_IMAGE_MARKER}"


def test_embedded_images_survive_and_unsafe_ones_go_quietly() -> None:
    png = "data:image/png;base64,iVBORw0KGgo="
    clean, blocked = sanitize_html(
        f'<img src="cid:logo@acme.example" alt="logo" width="120"><img src="{png}">'
        '<img src="data:image/svg+xml;base64,PHN2Zz4=" alt="svg">'
        '<img src="javascript:alert(1)" alt="js"><img src="data:text/html,x" alt="html">'
    )
    assert blocked == 0
    assert '<img src="cid:logo@acme.example" alt="logo" width="120">' in clean
    assert f'<img src="{png}">' in clean
    assert clean.count("<img") == 5 and clean.count("src=") == 2
    assert_inert(clean)


def test_an_attacker_cannot_forge_the_blocked_marker_into_markup() -> None:
    clean, blocked = sanitize_html(
        '<img src="cid:remote-image-blocked.codered.invalid" alt="&quot;><script>x</script>">'
    )
    assert blocked == 0
    assert "<script" not in clean and clean == '["&gt;&lt;script&gt;x&lt;/script&gt;]'


def test_style_is_removed_entirely_and_counted_per_url() -> None:
    clean, blocked = sanitize_html(
        "<p style=\"color:red; background:url(http://t.example/a) , url( '//t.example/b')\">x</p>"
        '<p style="background:url(data:image/png;base64,AAAA)">y</p>'
        "<style>a{background:URL(http://t.example/c)}</style>"
    )
    assert clean == "<p>x</p><p>y</p>"
    assert blocked == 3


def test_allowed_presentational_attributes_survive() -> None:
    html = (
        '<table border="1" cellpadding="2" cellspacing="0" width="100%"><tbody><tr>'
        '<td colspan="2" align="right">a</td><th rowspan="1">b</th></tr></tbody></table>'
        '<font color="red">c</font><p dir="rtl" lang="ar" title="t">d</p>'
    )
    clean, _ = sanitize_html(html)
    assert clean == html


def test_disallowed_attributes_and_tags_go_but_their_text_stays() -> None:
    clean, _ = sanitize_html(
        '<p class="x" id="y" data-x="1" onclick="alert(1)">one</p><custom-tag>two</custom-tag>'
        "<textarea>three</textarea><font face=Arial size=7>four</font>"
    )
    assert clean == "<p>one</p>two" + "three<font>four</font>"


def test_lone_surrogates_do_not_raise() -> None:
    clean, _ = sanitize_html("<p>a\ud800b</p>")
    assert clean.startswith("<p>a") and clean.endswith("b</p>")


# --- charsets ----------------------------------------------------------------------------

UTF7_BODY = b"+ADw-script+AD4-alert(1)+ADw-/script+AD4-"


@pytest.mark.parametrize(
    "charset",
    ["utf-7", "UTF-7", "utf7", "UTF_7", "unicode-1-1-utf-7", "csunicode11utf7", '"utf-7"'],
)
def test_utf7_html_is_never_html(charset: str) -> None:
    shown = display_parts(raw_mail(f"text/html; charset={charset}", UTF7_BODY))
    assert shown.html is None
    assert "+ADw-script+AD4-" in shown.text and "<script" not in shown.text
    assert any("not supported for HTML" in note for note in shown.notes)


def test_utf7_html_beside_a_text_part_keeps_the_text() -> None:
    body = (
        b"--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nOur API is down\r\n"
        b"--b\r\nContent-Type: text/html; charset=utf-7\r\n\r\n" + UTF7_BODY + b"\r\n--b--\r\n"
    )
    shown = display_parts(raw_mail('multipart/alternative; boundary="b"', body))
    assert shown.html is None
    assert shown.text.strip() == "Our API is down"


def test_utf7_in_base64_transfer_encoding_is_caught_too() -> None:
    encoded = base64.b64encode(UTF7_BODY)
    extra = "Content-Transfer-Encoding: base64\r\n"
    shown = display_parts(raw_mail("text/html; charset=utf-7", encoded, extra))
    assert shown.html is None and "+ADw-script" in shown.text


@pytest.mark.parametrize("charset", ["x-klingon", "base64", "rot13"])
def test_unknown_charset_is_decoded_as_best_we_can_and_still_sanitized(charset: str) -> None:
    body = "<p>Our API is down – résumé</p><script>alert(1)</script>".encode()
    shown = display_parts(raw_mail(f"text/html; charset={charset}", body))
    assert shown.html is not None
    assert "Our API is down – résumé" in shown.html and "<script" not in shown.html
    assert "Our API is down – résumé" in shown.text
    assert any(f"{charset} is unknown" in note for note in shown.notes)


def test_declared_charset_is_used() -> None:
    body = "<p>Störung seit 9 Uhr</p>".encode("iso-8859-1")
    shown = display_parts(raw_mail("text/html; charset=iso-8859-1", body))
    assert shown.html == "<p>Störung seit 9 Uhr</p>"
    assert shown.notes == ()


def test_a_hostile_charset_name_is_not_echoed_raw_into_notes() -> None:
    shown = display_parts(raw_mail('text/plain; charset="x\x01\x7f' + "y" * 100 + '"', b"hi"))
    assert shown.text.strip() == "hi"
    assert all(note.isprintable() and len(note) < 120 for note in shown.notes)


# --- structure, size, malformed mail ---------------------------------------------------


def test_html_larger_than_the_limit_is_text_only() -> None:
    shown = display_parts(html_only("<p>" + "Our API is down. " * 40_000 + "</p>"))
    assert shown.html is None
    assert "the HTML part was larger than 500 KB and is shown as text only" in shown.notes
    assert shown.text.startswith("Our API is down.")


def test_the_html_limit_is_a_parameter() -> None:
    raw = html_only(SAFE)
    assert display_parts(raw, max_html_bytes=10).html is None
    assert display_parts(raw, max_html_bytes=10_000).html is not None


def test_html_attachments_are_not_shown() -> None:
    message = EmailMessage()
    message["From"] = "ann@customer.example"
    message.set_content(TEXT)
    message.add_attachment("<p>attached page</p>", subtype="html", filename="page.html")
    shown = display_parts(message.as_bytes())
    assert shown.html is None and "attached page" not in shown.text


def test_related_html_with_inline_cid_image() -> None:
    message = EmailMessage()
    message["From"] = "ann@customer.example"
    message.set_content(TEXT)
    message.add_alternative('<p>See</p><img src="cid:shot@customer.example">', subtype="html")
    *_, html_part = message.iter_parts()
    html_part.add_related(b"\x89PNG\r\n", "image", "png", cid="<shot@customer.example>")
    shown = display_parts(message.as_bytes())
    assert shown.html is not None and 'src="cid:shot@customer.example"' in shown.html
    assert shown.blocked_remote == 0


def test_too_many_parts_are_bounded() -> None:
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(300))
    shown = display_parts(raw_mail('multipart/mixed; boundary="b"', parts + b"--b--\r\n"))
    assert "part 0" in shown.text and "part 298" not in shown.text
    assert any("more than 200 parts" in note for note in shown.notes)


def test_deep_nesting_is_bounded() -> None:
    depth = 40
    opening = b"".join(
        b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (i, i + 1)
        for i in range(depth)
    )
    inner = b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n" % depth
    closing = b"".join(b"--b%d--\r\n" % i for i in range(depth, -1, -1))
    shown = display_parts(raw_mail('multipart/mixed; boundary="b0"', opening + inner + closing))
    assert "deep text" not in shown.text
    assert any("nested more than 20 levels" in note for note in shown.notes)


def test_absurd_nesting_falls_back_to_the_source() -> None:
    opening = b"".join(
        b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (i, i + 1)
        for i in range(3000)
    )
    shown = display_parts(raw_mail('multipart/mixed; boundary="b0"', opening))
    assert shown.html is None
    assert shown.notes in (
        ("the message could not be read; shown as source",),
        ("parts nested more than 20 levels deep were not read",),
    )


def test_any_unexpected_failure_falls_back_to_the_source(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(sanitize, "BytesParser", explode)
    shown = display_parts(b"Subject: hi\r\n\r\n<script>Our API is down\x00</script>")
    assert shown == DisplayMessage(
        "Subject: hi\n\n<script>Our API is down</script>",
        None,
        0,
        ("the message could not be read; shown as source",),
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n\r\n",
        b"no headers at all, just <b>text</b>",
        b"\xff\xfe\x00\x01" * 50,
        raw_mail('multipart/alternative; boundary="never"', b"<p>Our API is down</p>"),
        raw_mail("multipart/mixed", b"--x\r\n\r\nno boundary parameter"),
        raw_mail('multipart/mixed; boundary="b"', b"--b\r\nContent-Type: text/html\r\n\r\n<p>cut"),
        raw_mail("text/html", b"!!!not base64!!!", "Content-Transfer-Encoding: base64\r\n"),
        raw_mail(
            "text/html", b"=ZZ=\r\n<p>x=3D", "Content-Transfer-Encoding: quoted-printable\r\n"
        ),
        raw_mail("text/html; charset=base64", b"<p>x</p>"),
        raw_mail("text/html; charset*=utf-8''%ff%fe", b"<p>x</p>"),
        raw_mail("text/", b"<p>x</p>"),
        raw_mail("message/rfc822", b"Subject: inner\r\n\r\nforwarded"),
        b"Content-Type: text/html\r\nContent-Disposition: attachment; filename*=bad''\r\n\r\nx",
        b"From: \x00\x01\r\nContent-Type: text/html; charset=\xff\r\n\r\n<p>\xe9</p>",
    ],
)
def test_malformed_mail_never_raises(raw: bytes) -> None:
    shown = display_parts(raw)
    assert isinstance(shown, DisplayMessage)
    if shown.html is not None:
        assert_inert(shown.html)


def test_a_multipart_without_its_boundary_is_shown_as_text() -> None:
    raw = raw_mail('multipart/alternative; boundary="never"', b"<p>Our API is down</p>")
    shown = display_parts(raw)
    assert "Our API is down" in shown.text and shown.html is None
    assert any("MIME structure is broken" in note for note in shown.notes)


# --- the frame -------------------------------------------------------------------------


def test_the_frame_policy_allows_no_script_and_no_network() -> None:
    directives = dict(d.strip().partition(" ")[::2] for d in CSP_FOR_MAIL_FRAME.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["img-src"] == "data: cid:"
    assert directives["base-uri"] == "'none'" and directives["form-action"] == "'none'"
    assert directives["frame-ancestors"] == "'self'" and "sandbox" in directives
    assert re.fullmatch(r"'sha256-[A-Za-z0-9+/]+=*'", directives["style-src"])
    assert "script-src" not in directives and "http" not in CSP_FOR_MAIL_FRAME
    assert IFRAME_SANDBOX == ""


def test_frame_document_puts_the_policy_first_and_pins_its_own_style() -> None:
    document = frame_document("<p>hello</p>")
    assert document.startswith('<!doctype html><html><head><meta charset="utf-8"><meta http-equiv')
    head = document.split("</head>", 1)[0]
    assert head.index("Content-Security-Policy") < head.index("<base") < head.index("<style")
    assert '<base target="_blank">' in head and "href" not in head
    meta = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', head)
    assert meta is not None
    policy = meta[1].replace("&#x27;", "'")
    assert "sandbox" not in policy and "frame-ancestors" not in policy  # ignored in <meta>
    assert CSP_FOR_MAIL_FRAME.startswith(policy)
    style = re.search(r"<style>(.*)</style>", head)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style[1].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy
    assert document.endswith("<body><p>hello</p></body></html>")


# --- fuzzing -----------------------------------------------------------------------------

FRAGMENTS = [
    "<", ">", "</", "/>", '"', "'", "=", "&", "&#", "&#x3c;", "&lt;", "<!--", "-->", "<![CDATA[",
    "]]>", "<!DOCTYPE html>", "<?xml?>", "<script>", "</script>", "<style>", "</style>",
    "<img src=", "<img src=x onerror=alert(1)>", "<a href=", "javascript:", "jav&#x09;ascript:",
    "http://tracker.example/", "data:image/png;base64,AAAA", "cid:x", " onload=", " style=",
    "url(", "<svg>", "<math>", "<mglyph>", "<table>", "<td>", "<textarea>", "<noscript>",
    "<template>", "<iframe srcdoc=", "<base href=", "<meta http-equiv=refresh>", "<p>", "</p>",
    "<b>", "<font color=red>", "\x00", "\r\n", "\t", "\u2028", "+ADw-",
]  # fmt: skip
html_strings = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)), max_size=40)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(html_strings)
def test_fuzz_sanitize_html(pieces: list[str]) -> None:
    clean, blocked = sanitize_html("".join(pieces))
    assert "<script" not in clean.lower()
    assert blocked >= 0
    assert_inert(clean)


@FUZZ
@given(st.binary(max_size=2000))
def test_fuzz_display_parts_with_random_bytes(raw: bytes) -> None:
    shown = display_parts(raw)
    assert isinstance(shown, DisplayMessage)
    assert shown.html is None or "<script" not in shown.html.lower()


mime_headers = st.lists(
    st.sampled_from(
        [
            b"Content-Type: text/html; charset=utf-7\r\n",
            b"Content-Type: text/html; charset=x-unknown\r\n",
            b"Content-Type: text/html\r\n",
            b"Content-Type: text/plain; charset=utf-8\r\n",
            b'Content-Type: multipart/alternative; boundary="b"\r\n',
            b'Content-Type: multipart/related; boundary="b"\r\n',
            b"Content-Transfer-Encoding: base64\r\n",
            b"Content-Transfer-Encoding: quoted-printable\r\n",
            b"Content-Disposition: attachment; filename=x.html\r\n",
            b"Content-Disposition: inline\r\n",
        ]
    ),
    max_size=4,
)


@FUZZ
@given(mime_headers, st.lists(st.one_of(mime_headers, html_strings), max_size=6))
def test_fuzz_display_parts_with_mime_shaped_input(
    headers: list[bytes], chunks: list[list[bytes] | list[str]]
) -> None:
    body = b""
    for chunk in chunks:
        body += b"\r\n--b\r\n" + b"".join(
            piece if isinstance(piece, bytes) else piece.encode("utf-8", "surrogatepass")
            for piece in chunk
        )
    shown = display_parts(b"From: a@b.example\r\n" + b"".join(headers) + b"\r\n" + body)
    assert isinstance(shown, DisplayMessage)
    if shown.html is not None:
        assert "<script" not in shown.html.lower()
        assert_inert(shown.html)
