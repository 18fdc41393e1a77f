"""OUT: composing messages and delivering them over SMTP.

Acknowledgements are composed here from an incident's facts into exact bytes
(:func:`compose_acknowledgement`); the application stores those bytes in its
outbox and hands them to :func:`deliver`, which retries only what is worth
retrying. Nothing in this package knows about the database or the pipeline.
"""

from .acknowledgement import format_reply_by, greeting_name, normalize_language
from .compose import (
    LOOP_HEADER,
    REFERENCE_HEADER,
    AcknowledgementFacts,
    ComposedMessage,
    acknowledgement_message_id,
    compose_acknowledgement,
    loop_marker,
    reply_subject,
)
from .deliver import DeliveryError, DeliveryResult, SmtpServer, check_smtp, deliver
from .headers import (
    header_names,
    mailbox,
    references_chain,
    sanitize_header_value,
    sanitize_message_id,
)
from .reply import ReplyFacts, compose_reply, draft_message_id

__all__ = [
    "LOOP_HEADER",
    "REFERENCE_HEADER",
    "AcknowledgementFacts",
    "ComposedMessage",
    "DeliveryError",
    "DeliveryResult",
    "ReplyFacts",
    "SmtpServer",
    "acknowledgement_message_id",
    "check_smtp",
    "compose_acknowledgement",
    "compose_reply",
    "deliver",
    "draft_message_id",
    "format_reply_by",
    "greeting_name",
    "header_names",
    "loop_marker",
    "mailbox",
    "normalize_language",
    "references_chain",
    "reply_subject",
    "sanitize_header_value",
    "sanitize_message_id",
]
