"""The last check before composed bytes leave: the header block is exactly the fields set.

``mailer.compose`` splits its own header block itself (the ``email`` parser was a third of
composing); these cases hold that split to what a receiving server would see.
"""

from __future__ import annotations

import pytest

from mailer.compose import _verify_header_block

FIELDS = ["From", "To", "Subject"]


def test_folded_fields_pass() -> None:
    raw = (
        b"From: a@acme.example\r\nTo: b@contoso.example\r\n"
        b"Subject: a long subject\r\n folded onto a second line\r\n\tand a third\r\n\r\nbody"
    )
    _verify_header_block(raw, FIELDS)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (  # an injected field
            b"From: a@acme.example\r\nTo: b@contoso.example\r\nSubject: x\r\n"
            b"Bcc: everyone@contoso.example\r\n\r\nbody",
            "unexpected header fields",
        ),
        (  # a line that is neither a field nor a continuation
            b"From: a@acme.example\r\nTo: b@contoso.example\r\nSubject: x\r\n"
            b"no colon here\r\n\r\nbody",
            "malformed header line",
        ),
        (  # a field name with a space: a server would not read it as the field we meant
            b"From: a@acme.example\r\nTo: b@contoso.example\r\nSub ject: x\r\n\r\nbody",
            "malformed header line",
        ),
        (b" From: a@acme.example\r\nTo: b\r\nSubject: x\r\n\r\nbody", "continuation"),
        (b"From: a@acme.example\nBcc: c\r\nTo: b\r\nSubject: x\r\n\r\nbody", "bare CR or LF"),
        (b"From: a@acme.example\r\nTo: b\r\n\r\nbody", "unexpected header fields"),
    ],
)
def test_anything_else_is_refused(raw: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        _verify_header_block(raw, FIELDS)
