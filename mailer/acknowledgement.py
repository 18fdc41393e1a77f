"""The words of the acknowledgement: templates, category phrases, greetings and dates.

The acknowledgement is the first thing an upset customer hears from us, so the
text is fixed, reviewed prose (``templates/ack.<lang>.txt``), never model output
(DESIGN invariant 5). The tables here supply the few variable parts in each
language. Dates are formatted with small hand-written tables rather than the
process locale or babel: the locale is global state shared by every thread,
and the four languages we write need only weekday and month names.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache
from importlib import resources

from policies.model import Category

from .headers import sanitize_header_value

__all__ = [
    "LANGUAGES",
    "AcknowledgementText",
    "check_template",
    "default_subject",
    "format_reply_by",
    "greeting_name",
    "normalize_language",
    "render_acknowledgement",
]

LANGUAGES = ("en", "de", "fr", "es")


def _words(text: str) -> tuple[str, ...]:
    """Space-separated word lists keep the name tables readable at a glance."""
    return tuple(text.split())


_WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}

_MONTHS = {
    "en": _words(
        "January February March April May June July August September October November December"
    ),
    "de": _words(
        "Januar Februar März April Mai Juni Juli August September Oktober November Dezember"
    ),
    "fr": _words(
        "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
    ),
    "es": _words(
        "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"
    ),
}

# Each phrase fills the same slot in its template ("how disruptive {issue} can be"),
# so it is written to fit that sentence grammatically; None is "no category known".
_ISSUES: dict[str, dict[Category | None, str]] = {
    "en": {
        Category.TECHNICAL_ISSUE: "a technical problem",
        Category.SERVICE_OUTAGE: "a service outage",
        Category.PERFORMANCE: "a performance problem",
        Category.CONTRACT_DISPUTE: "a disagreement over a contract",
        Category.BILLING: "a billing problem",
        Category.COMMUNICATION_BREAKDOWN: "a breakdown in communication",
        Category.COMPLIANCE: "a compliance concern",
        Category.STRATEGIC_SHIFT: "an unexpected change of direction",
        Category.EMERGENCY: "an urgent situation",
        None: "an issue like this",
    },
    "de": {
        Category.TECHNICAL_ISSUE: "ein technisches Problem",
        Category.SERVICE_OUTAGE: "ein Ausfall des Dienstes",
        Category.PERFORMANCE: "ein Performance-Problem",
        Category.CONTRACT_DISPUTE: "eine Unstimmigkeit beim Vertrag",
        Category.BILLING: "ein Problem mit der Abrechnung",
        Category.COMMUNICATION_BREAKDOWN: "eine Lücke in der Kommunikation",
        Category.COMPLIANCE: "ein offenes Compliance-Thema",
        Category.STRATEGIC_SHIFT: "eine unerwartete Richtungsänderung",
        Category.EMERGENCY: "eine dringende Notlage",
        None: "ein solches Problem",
    },
    "fr": {
        Category.TECHNICAL_ISSUE: "un problème technique",
        Category.SERVICE_OUTAGE: "une interruption de service",
        Category.PERFORMANCE: "un problème de performance",
        Category.CONTRACT_DISPUTE: "un désaccord sur un contrat",
        Category.BILLING: "un problème de facturation",
        Category.COMMUNICATION_BREAKDOWN: "un problème de communication",
        Category.COMPLIANCE: "une question de conformité",
        Category.STRATEGIC_SHIFT: "un changement d'orientation inattendu",
        Category.EMERGENCY: "une situation d'urgence",
        None: "un problème de ce type",
    },
    "es": {
        Category.TECHNICAL_ISSUE: "un problema técnico",
        Category.SERVICE_OUTAGE: "una interrupción del servicio",
        Category.PERFORMANCE: "un problema de rendimiento",
        Category.CONTRACT_DISPUTE: "un desacuerdo sobre un contrato",
        Category.BILLING: "un problema de facturación",
        Category.COMMUNICATION_BREAKDOWN: "un problema de comunicación",
        Category.COMPLIANCE: "una cuestión de cumplimiento normativo",
        Category.STRATEGIC_SHIFT: "un cambio de rumbo inesperado",
        Category.EMERGENCY: "una situación de emergencia",
        None: "un problema así",
    },
}

_GREETINGS = {  # (with a first name, without one)
    "en": ("Hello {name},", "Hello,"),
    "de": ("Hallo {name},", "Guten Tag,"),
    "fr": ("Bonjour {name},", "Bonjour,"),
    "es": ("Hola, {name}:", "Hola:"),
}

_ABOUT_SUBJECT = {  # quotes the customer's subject in the first sentence, in local typography
    "en": ' about "{subject}"',
    "de": " zu „{subject}“",
    "fr": " concernant «\u00a0{subject}\u00a0»",
    "es": " sobre «{subject}»",
}

_DEFAULT_SUBJECTS = {
    "en": "Support request",
    "de": "Supportanfrage",
    "fr": "Demande d'assistance",
    "es": "Solicitud de soporte",
}

_TITLES = frozenset(
    _words("mr mrs ms miss mx dr prof sir madam herr frau m mme mlle sr sra srta don doña")
)
_NOT_NAMES = frozenset(
    _words(
        "support info admin administrator team service services customer customers "
        "billing sales office accounts accounting helpdesk help contact mail webmaster "
        "postmaster noreply no-reply reception hr it the kundenservice kundendienst "
        "buchhaltung service-client comptabilité atención soporte facturación"
    )
)
_NAME_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")
_MAX_SUBJECT_IN_BODY = 200


@dataclass(frozen=True)
class AcknowledgementText:
    """The rendered body and the language it was written in."""

    language: str
    text: str


def normalize_language(language: str) -> str:
    """Map ``de``, ``DE``, ``de-AT`` or ``de_CH`` to ``de``; anything unsupported to ``en``."""
    primary = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
    return primary if primary in LANGUAGES else "en"


def default_subject(language: str) -> str:
    """What the subject says when the customer's message had none."""
    return _DEFAULT_SUBJECTS[normalize_language(language)]


def greeting_name(display_name: str, email: str = "") -> str | None:
    """The first name to greet, or None when the display name does not look like a person.

    ``"Doe, Jane"`` gives ``Jane``; titles (``Dr.``, ``Frau``, ``Mme``) are
    skipped; role names (``Support``, ``Billing``), usernames equal to the
    mailbox's local part, digits and encoded junk give None, so the greeting
    falls back to a neutral one rather than greeting "Dear Noreply".
    """
    name = sanitize_header_value(display_name, max_length=200).strip("\"' ")
    if not name or "@" in name or "=?" in name:
        return None
    if "," in name:
        last, _, first = name.partition(",")
        name = first.strip() or last.strip()
    words = [word for word in name.split() if word.lower().rstrip(".") not in _TITLES]
    if not words:
        return None
    first = words[0]
    if not _NAME_WORD.fullmatch(first) or not 2 <= len(first) <= 40:
        return None
    if first.lower() in _NOT_NAMES:
        return None
    if len(words) == 1 and first.lower() == email.rpartition("@")[0].lower():
        return None
    if first.isupper() or first.islower():
        first = "-".join(part.capitalize() for part in first.split("-"))
    return first


def _utc_offset(moment: datetime) -> str:
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("reply-by time must be timezone-aware")
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


def _zone_label(moment: datetime) -> str:
    """``CET (UTC+01:00)`` for a named zone, ``(UTC+01:00)`` for a bare offset, ``UTC`` for UTC.

    Always includes the numeric offset: abbreviations are ambiguous (``IST``,
    ``CST``) and a fixed-offset zone taken from a Date header has no name at all.
    """
    offset = _utc_offset(moment)
    name = moment.tzname() or ""
    if offset == "UTC+00:00" and name in ("", "UTC", "GMT", "Z", offset):
        return "UTC"
    if not name or name == offset or name[0] in "+-" or name.startswith("UTC"):
        return f"({offset})"
    return f"{name} ({offset})"


def format_reply_by(reply_by: datetime, display_tz: tzinfo, language: str) -> str:
    """The reply-by time as a reader of ``language`` expects it, in ``display_tz``.

    Weekday, full date, 24-hour time and zone are always present, so the
    promise is concrete, e.g. ``Tuesday, 4 March 2025 at 14:30 CET (UTC+01:00)``.
    """
    if reply_by.utcoffset() is None:
        raise ValueError("reply-by time must be timezone-aware")
    lang = normalize_language(language)
    local = reply_by.astimezone(display_tz)
    weekday = _WEEKDAYS[lang][local.weekday()]
    month = _MONTHS[lang][local.month - 1]
    zone = _zone_label(local)
    hh, mm = local.hour, local.minute
    if lang == "de":
        return f"{weekday}, {local.day}. {month} {local.year}, um {hh:02d}:{mm:02d} Uhr {zone}"
    if lang == "fr":
        day = "1er" if local.day == 1 else str(local.day)
        return f"{weekday} {day} {month} {local.year} à {hh} h {mm:02d} {zone}"
    if lang == "es":
        article = "la" if hh == 1 else "las"
        return f"{weekday} {local.day} de {month} de {local.year} a {article} {hh}:{mm:02d} {zone}"
    return f"{weekday}, {local.day} {month} {local.year} at {hh:02d}:{mm:02d} {zone}"


@cache
def _template(language: str) -> str:
    """Read ``templates/ack.<language>.txt`` once; it is package data, so it never changes."""
    path = resources.files(__package__ or "mailer").joinpath("templates", f"ack.{language}.txt")
    return path.read_text(encoding="utf-8")


TEMPLATE_FIELDS = frozenset(
    {"greeting", "about_subject", "issue", "reply_by", "reference", "company_name"}
)
_REQUIRED_FIELDS = ("reply_by", "reference")


def check_template(text: str) -> None:
    """Refuse a mailbox's own template that would break or break a promise.

    It must parse as a format string, use only the fields we fill, and state the
    timeline and the reference: an acknowledgement without a concrete reply-by time
    is exactly what this product exists to prevent. Blocking wording findings (blame,
    legal admissions) are refused too, because nobody reviews an acknowledgement."""
    from policies.wording import blocking, check_wording

    try:
        fields = {
            name for _, name, spec, conv in string.Formatter().parse(text) if name is not None
        }
    except ValueError as exc:
        raise ValueError(
            f"not a valid template ({exc}); write literal braces as {{{{ }}}}"
        ) from None
    unknown = sorted(fields - TEMPLATE_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{unknown[0]}}}; use {', '.join(sorted(TEMPLATE_FIELDS))}"
        )
    missing = [name for name in _REQUIRED_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"the template must contain {{{missing[0]}}}")
    problems = blocking(check_wording(text, kind="rewrite"))
    if problems:
        raise ValueError(f"wording: {problems[0].message}")


def render_acknowledgement(
    *,
    language: str,
    display_name: str,
    email: str,
    subject: str,
    category: Category | None,
    reply_by: datetime,
    display_tz: tzinfo,
    reference: str,
    company_name: str,
    template: str | None = None,
) -> AcknowledgementText:
    """Fill the language's template; every inbound value is sanitized before use.

    The template is formatted with ``str.format_map``: values are inserted as
    data and never interpreted, so braces in a customer's subject are harmless.
    ``template`` is a mailbox's own text for ``language``, checked by
    :func:`check_template` when the configuration was loaded.
    """
    lang = normalize_language(language)
    name = greeting_name(display_name, email)
    with_name, neutral = _GREETINGS[lang]
    greeting = with_name.format(name=name) if name else neutral
    clean_subject = sanitize_header_value(subject, max_length=_MAX_SUBJECT_IN_BODY)
    about = _ABOUT_SUBJECT[lang].format(subject=clean_subject) if clean_subject else ""
    values = {
        "greeting": greeting,
        "about_subject": about,
        "issue": _ISSUES[lang][category],
        "reply_by": format_reply_by(reply_by, display_tz, lang),
        "reference": sanitize_header_value(reference, max_length=64),
        "company_name": sanitize_header_value(company_name, max_length=200),
    }
    text = (template or _template(lang)).format_map(values)
    return AcknowledgementText(language=lang, text=text.rstrip("\n") + "\n")
