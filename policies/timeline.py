"""Timelines: when we promise the customer an answer.

The acknowledgement states a concrete time ("by Tuesday 14:30"), so the time
must be one the team can keep: the target for the severity, times a safety
``buffer``, counted in business time where the target says so (skipping
nights, weekends and public holidays), then rounded *up* to the next half hour
so the promise reads naturally and is never earlier than computed.

Time-zone rules: wall times (opening, closing, half hours) are built in the
company's zone with :mod:`zoneinfo`; every duration is measured between UTC
instants. That keeps DST weekends right: a 2-hour critical target across the
spring-forward night is two real hours, and an 8-hour business day stays
09:00-17:00 on the clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holiday_tables

from policies.model import Severity

__all__ = [
    "DEFAULT_TARGETS",
    "MAX_SCAN_DAYS",
    "BusinessCalendar",
    "Target",
    "add_business_time",
    "customer_zone",
    "next_opening",
    "reply_by",
    "round_up_half_hour",
]

MAX_SCAN_DAYS = 3 * 366
"""How far ahead we look for business time before giving up (a calendar with no open day)."""

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HALF_HOUR = timedelta(minutes=30)


def _weekday(token: str, spec: str) -> int:
    key = token.strip().lower()[:3]
    if key not in _DAY_NAMES or not token.strip().isalpha():
        raise ValueError(
            f"unknown weekday {token.strip()!r} in days={spec!r}; "
            "use mon, tue, wed, thu, fri, sat, sun, e.g. 'mon-fri' or 'sun-thu'"
        )
    return _DAY_NAMES.index(key)


def _parse_days(spec: str) -> frozenset[int]:
    days: set[int] = set()
    for part in spec.split(","):
        if not part.strip():
            raise ValueError(f"empty weekday in days={spec!r}")
        first, dash, last = part.partition("-")
        start = _weekday(first, spec)
        end = _weekday(last, spec) if dash else start
        span = (end - start) % 7  # "sun-thu" wraps around the weekend
        days.update((start + step) % 7 for step in range(span + 1))
    return frozenset(days)


_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _parse_hours(spec: str) -> tuple[time, time]:
    match = _HOURS.match(spec)
    if match is None:
        raise ValueError(f"business hours {spec!r} must look like '09:00-17:00'")
    h1, m1, h2, m2 = (int(group) for group in match.groups())
    try:
        opens, closes = time(h1, m1), time(h2, m2)
    except ValueError:
        raise ValueError(f"business hours {spec!r} contain an impossible time") from None
    return opens, closes


def _holiday_table(country: str, subdivision: str | None) -> Any:
    """The ``holidays`` table for a country, with errors that name the bad value."""
    try:
        holiday_tables.country_holidays(country)
    except NotImplementedError:
        raise ValueError(
            f"unknown holiday country {country!r} (use an ISO code like 'DE')"
        ) from None
    try:
        return holiday_tables.country_holidays(country, subdiv=subdivision)
    except (NotImplementedError, ValueError):
        raise ValueError(
            f"unknown holiday subdivision {subdivision!r} for country {country!r}"
        ) from None


@dataclass(frozen=True)
class BusinessCalendar:
    """When the support team works: zone, daily hours, working weekdays and public holidays.

    ``weekdays`` uses Python's numbering (Monday is 0). Holidays come from the
    ``holidays`` package for ``country`` (ISO code such as ``"DE"``) and
    optional ``subdivision`` (``"BY"``), plus any ``extra_holidays``. Business
    hours must not cross midnight.
    """

    tz: ZoneInfo
    opens: time
    closes: time
    weekdays: frozenset[int] = frozenset(range(5))
    country: str | None = None
    subdivision: str | None = None
    extra_holidays: frozenset[date] = frozenset()
    _table: Any = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.opens >= self.closes:
            raise ValueError(
                f"opening time {self.opens:%H:%M} must be before closing time "
                f"{self.closes:%H:%M} (business hours cannot cross midnight)"
            )
        if not self.weekdays or not self.weekdays <= set(range(7)):
            raise ValueError(f"weekdays {sorted(self.weekdays)} must be a non-empty subset of 0-6")
        if self.country is not None:
            table = _holiday_table(self.country, self.subdivision)
            object.__setattr__(self, "_table", table)

    @classmethod
    def from_strings(
        cls,
        timezone: str = "UTC",
        hours: str = "09:00-17:00",
        days: str = "mon-fri",
        holidays: str | None = None,
        subdivision: str | None = None,
    ) -> BusinessCalendar:
        """Build a calendar from configuration text.

        ``holidays`` is a country code (``"DE"``), optionally with its
        subdivision (``"DE-BY"``); empty or None means no public holidays.

        >>> calendar = BusinessCalendar.from_strings("Europe/Berlin", "09:00-17:00", "sun-thu")
        >>> calendar.day_length
        datetime.timedelta(seconds=28800)
        """
        try:
            tz = ZoneInfo(timezone.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {timezone!r} (use an IANA name)") from None
        opens, closes = _parse_hours(hours)
        country: str | None = None
        if holidays and holidays.strip():
            country, _, sub = holidays.strip().upper().partition("-")
            subdivision = sub or subdivision
        return cls(tz, opens, closes, _parse_days(days), country, subdivision)

    @property
    def day_length(self) -> timedelta:
        """Length of one business day on the clock, e.g. 8 hours for 09:00-17:00."""
        today = date(2000, 1, 1)
        return datetime.combine(today, self.closes) - datetime.combine(today, self.opens)

    def is_holiday(self, day: date) -> bool:
        return day in self.extra_holidays or (self._table is not None and day in self._table)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.weekdays and not self.is_holiday(day)

    def local(self, day: date, at: time) -> datetime:
        """The UTC instant of wall time ``at`` on ``day`` in this zone (gaps resolve forward)."""
        return datetime.combine(day, at, tzinfo=self.tz).astimezone(UTC)

    def is_open(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside business hours."""
        instant = _utc(moment)
        day = instant.astimezone(self.tz).date()
        if not self.is_business_day(day):
            return False
        return self.local(day, self.opens) <= instant < self.local(day, self.closes)


_TARGET = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(business\s+|b)?"
    r"(minutes?|mins?|m|hours?|hrs?|h|days?|d)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Target:
    """How quickly a severity must be answered.

    ``amount`` is clock time; with ``business`` it counts only inside business
    hours. ``business_days`` counts whole business days, each as long as the
    calendar's business day (so "1 business day" is 8 hours for 09:00-17:00).
    """

    amount: timedelta
    business: bool = False
    business_days: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Target:
        """Parse "2 hours", "4 business hours", "1 business day", "30 minutes", "2h", "4bh", "1bd".

        >>> Target.parse("4bh")
        Target(amount=datetime.timedelta(seconds=14400), business=True, business_days=0.0)
        """
        match = _TARGET.match(text)
        if match is None:
            raise ValueError(
                f"cannot read target {text!r}; write e.g. '2 hours', '4 business hours', "
                "'1 business day', '30 minutes', '2h', '4bh' or '1bd'"
            )
        number = float(match.group(1))
        business = match.group(2) is not None
        unit = match.group(3).lower()[0]
        if number <= 0 or not math.isfinite(number):
            raise ValueError(f"target {text!r} must be a positive amount of time")
        if unit == "d" and business:
            return cls(timedelta(0), True, number)
        if unit == "d":
            return cls(timedelta(days=number))
        minutes = number * (60 if unit == "h" else 1)
        return cls(timedelta(minutes=minutes), business)

    def duration(self, calendar: BusinessCalendar) -> timedelta:
        """The target as one span of (business or clock) time for ``calendar``."""
        return self.amount + calendar.day_length * self.business_days


DEFAULT_TARGETS: Mapping[Severity, Target] = MappingProxyType(
    {
        Severity.CRITICAL: Target(timedelta(hours=2)),
        Severity.HIGH: Target(timedelta(hours=4), business=True),
        Severity.NORMAL: Target(timedelta(0), business=True, business_days=1),
    }
)
"""Critical: 2 hours around the clock; high: 4 business hours; normal: 1 business day."""


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC)


def next_opening(moment: datetime, calendar: BusinessCalendar) -> datetime:
    """``moment`` itself if the team is working then, else when it next opens (company zone)."""
    instant = _utc(moment)
    day = instant.astimezone(calendar.tz).date()
    for _ in range(MAX_SCAN_DAYS):
        if calendar.is_business_day(day):
            opening = calendar.local(day, calendar.opens)
            if instant < calendar.local(day, calendar.closes):
                return max(instant, opening).astimezone(calendar.tz)
        day += timedelta(days=1)
    raise ValueError(f"no business hours within {MAX_SCAN_DAYS} days of {moment.isoformat()}")


def add_business_time(start: datetime, duration: timedelta, calendar: BusinessCalendar) -> datetime:
    """The moment when ``duration`` of business time has passed since ``start``.

    The clock starts at ``start`` if the team is working, else at the next
    opening; the result is in the company's zone. A duration that ends exactly
    at closing time ends then, not at the next opening.
    """
    if duration < timedelta(0):
        raise ValueError(f"duration {duration} must not be negative")
    instant = _utc(start)
    remaining = duration
    day = instant.astimezone(calendar.tz).date()
    for _ in range(MAX_SCAN_DAYS):
        if calendar.is_business_day(day):
            opening = calendar.local(day, calendar.opens)
            closing = calendar.local(day, calendar.closes)
            cursor = max(instant, opening)
            if cursor < closing:
                available = closing - cursor
                if remaining <= available:
                    return (cursor + remaining).astimezone(calendar.tz)
                remaining -= available
        day += timedelta(days=1)
    raise ValueError(
        f"adding {duration} of business time to {start.isoformat()} needs more than "
        f"{MAX_SCAN_DAYS} days; check the calendar's days and holidays"
    )


def round_up_half_hour(moment: datetime, tz: ZoneInfo) -> datetime:
    """The first :00 or :30 on the wall clock in ``tz`` at or after ``moment``.

    Walks real minutes (in UTC), so a DST gap or repeated hour cannot produce a
    time earlier than ``moment``, and zones like Asia/Kathmandu (+05:45) round
    on their own half hours.
    """
    instant = _utc(moment)
    # The usual case in one step: the next half hour of the wall clock now, kept only if
    # the zone's offset does not change before it (checked on the result).
    local = instant.astimezone(tz)
    if local.second or local.microsecond or local.minute % 30:
        ahead = timedelta(
            minutes=29 - local.minute % 30,
            seconds=59 - local.second,
            microseconds=1_000_000 - local.microsecond,
        )
        candidate = (instant + ahead).astimezone(tz)
        on_the_half_hour = candidate.minute % 30 == 0 and not (
            candidate.second or candidate.microsecond
        )
        if on_the_half_hour and candidate.utcoffset() == local.utcoffset():
            return candidate
    for _ in range(32):
        local = instant.astimezone(tz)
        if local.minute % 30 == 0 and local.second == 0 and local.microsecond == 0:
            return local
        instant += timedelta(seconds=60 - local.second, microseconds=-local.microsecond)
    raise AssertionError("unreachable: a half hour is at most 31 steps away")  # pragma: no cover


def reply_by(
    received_at: datetime,
    severity: Severity,
    calendar: BusinessCalendar,
    targets: Mapping[Severity, Target] = DEFAULT_TARGETS,
    buffer: float = 1.5,
) -> datetime:
    """The time we promise a reply by, in the company's zone.

    Target for ``severity`` times ``buffer``, added in clock or business
    time, then rounded up to the next half hour.

    >>> cal = BusinessCalendar.from_strings("Europe/Berlin", "09:00-17:00", "mon-fri", "DE")
    >>> str(reply_by(datetime(2025, 3, 3, 10, 7, tzinfo=cal.tz), Severity.HIGH, cal))
    '2025-03-03 16:30:00+01:00'
    """
    if not math.isfinite(buffer) or buffer <= 0:
        raise ValueError(f"buffer {buffer!r} must be a positive number")
    try:
        target = targets[severity]
    except KeyError:
        raise ValueError(f"no reply target configured for severity {severity!s}") from None
    span = target.duration(calendar) * buffer
    if target.business:
        due = add_business_time(received_at, span, calendar)
    else:
        due = _utc(received_at) + span
    return round_up_half_hour(due, calendar.tz)


def customer_zone(utc_offset_minutes: int | None, fallback: tzinfo) -> tzinfo:
    """The zone to state times in: the customer's UTC offset (from their ``Date`` header)
    where known and plausible, else ``fallback`` (the company's zone)."""
    if utc_offset_minutes is None or abs(utc_offset_minutes) > 14 * 60:
        return fallback
    if utc_offset_minutes == 0:
        return UTC
    return timezone(timedelta(minutes=utc_offset_minutes))
