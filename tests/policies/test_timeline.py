"""Timelines: business hours, weekends, holidays, time zones, DST and half-hour rounding."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.model import Severity
from policies.timeline import (
    DEFAULT_TARGETS,
    BusinessCalendar,
    Target,
    add_business_time,
    next_opening,
    reply_by,
    round_up_half_hour,
)

BERLIN = ZoneInfo("Europe/Berlin")
CAL = BusinessCalendar.from_strings("Europe/Berlin", "09:00-17:00", "mon-fri", "DE")


def berlin(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=BERLIN)


# --- parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 hours", Target(timedelta(hours=2))),
        ("2h", Target(timedelta(hours=2))),
        ("30 minutes", Target(timedelta(minutes=30))),
        ("45m", Target(timedelta(minutes=45))),
        ("4 business hours", Target(timedelta(hours=4), business=True)),
        ("4bh", Target(timedelta(hours=4), business=True)),
        ("1 business day", Target(timedelta(0), business=True, business_days=1)),
        ("1bd", Target(timedelta(0), business=True, business_days=1)),
        ("1.5 Hours", Target(timedelta(minutes=90))),
        ("2 days", Target(timedelta(days=2))),
    ],
)
def test_target_parse(text: str, expected: Target) -> None:
    assert Target.parse(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "2 fortnights", "-1 hours", "0h", "4 business", "h"])
def test_target_parse_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="target"):
        Target.parse(text)


def test_a_business_day_lasts_as_long_as_the_calendar_day() -> None:
    assert Target.parse("1bd").duration(CAL) == timedelta(hours=8)
    short = BusinessCalendar.from_strings("UTC", "10:00-16:30", "mon-fri")
    assert Target.parse("2 business days").duration(short) == timedelta(hours=13)


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("mon,tue,thu", {0, 1, 3}),
        ("sun-thu", {6, 0, 1, 2, 3}),
        ("Monday-Wednesday, sat", {0, 1, 2, 5}),
        ("fri-mon", {4, 5, 6, 0}),
    ],
)
def test_days_spec(days: str, expected: set[int]) -> None:
    assert BusinessCalendar.from_strings(days=days).weekdays == expected


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"hours": "9-5"}, "9-5"),
        ({"hours": "25:00-26:00"}, "25:00-26:00"),
        ({"hours": "17:00-09:00"}, "17:00"),
        ({"days": "mon-fry"}, "fry"),
        ({"days": "mon,,fri"}, "mon,,fri"),
        ({"holidays": "XX"}, "XX"),
        ({"holidays": "DE-ZZ"}, "ZZ"),
    ],
)
def test_invalid_calendar_strings_name_the_bad_value(kwargs: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError) as info:
        BusinessCalendar.from_strings(**kwargs)
    assert named in str(info.value)


def test_default_targets_match_the_policy_and_are_read_only() -> None:
    assert DEFAULT_TARGETS[Severity.CRITICAL] == Target(timedelta(hours=2))
    assert DEFAULT_TARGETS[Severity.HIGH] == Target(timedelta(hours=4), business=True)
    assert DEFAULT_TARGETS[Severity.NORMAL].duration(CAL) == timedelta(hours=8)
    with pytest.raises(TypeError):
        DEFAULT_TARGETS[Severity.HIGH] = Target(timedelta(0))  # type: ignore[index]


# --- reply_by ---------------------------------------------------------------------------


def test_high_inside_business_hours_is_six_hours_rounded_up() -> None:
    # Monday 10:07 + 4 business hours x 1.5 = 16:07, rounded up to 16:30.
    assert reply_by(berlin(2025, 3, 3, 10, 7), Severity.HIGH, CAL) == berlin(2025, 3, 3, 16, 30)


def test_high_spills_over_the_evening_into_the_next_morning() -> None:
    # Monday 15:00: 2 hours today, 4 tomorrow from 09:00.
    assert reply_by(berlin(2025, 3, 3, 15, 0), Severity.HIGH, CAL) == berlin(2025, 3, 4, 13, 0)


def test_received_in_the_evening_starts_at_the_next_opening() -> None:
    assert reply_by(berlin(2025, 3, 3, 19, 45), Severity.HIGH, CAL) == berlin(2025, 3, 4, 15, 0)


def test_received_on_a_weekend_starts_on_monday() -> None:
    assert reply_by(berlin(2025, 3, 8, 11, 0), Severity.HIGH, CAL) == berlin(2025, 3, 10, 15, 0)
    assert reply_by(berlin(2025, 3, 8, 11, 0), Severity.NORMAL, CAL) == berlin(2025, 3, 11, 13, 0)


def test_german_unity_day_is_skipped() -> None:
    # Thursday 2 Oct 16:00: 1 hour, then Fri 3 Oct (holiday) and the weekend, Mon 09:00 + 5h.
    assert reply_by(berlin(2025, 10, 2, 16, 0), Severity.HIGH, CAL) == berlin(2025, 10, 6, 14, 0)


def test_christmas_is_skipped_but_christmas_eve_is_a_working_day() -> None:
    due = reply_by(berlin(2025, 12, 23, 15, 0), Severity.NORMAL, CAL)
    # 12 business hours: Tue 2h, Wed 24th 8h, Thu 25th + Fri 26th holidays, Mon 29th 2h.
    assert due == berlin(2025, 12, 29, 11, 0)


def test_regional_holidays_follow_the_subdivision() -> None:
    bavaria = BusinessCalendar.from_strings("Europe/Berlin", "09:00-17:00", "mon-fri", "DE-BY")
    assert bavaria.is_holiday(date(2025, 1, 6))  # Epiphany in Bavaria
    assert not CAL.is_holiday(date(2025, 1, 6))
    got = reply_by(berlin(2025, 1, 6, 10, 0), Severity.HIGH, bavaria)
    assert got == berlin(2025, 1, 7, 15, 0)


def test_critical_runs_around_the_clock() -> None:
    # Saturday 03:10 + 2h x 1.5 = 06:10 -> 06:30, no waiting for Monday.
    assert reply_by(berlin(2025, 3, 8, 3, 10), Severity.CRITICAL, CAL) == berlin(2025, 3, 8, 6, 30)


def test_received_in_another_zone_is_answered_in_the_company_zone() -> None:
    received = datetime(2025, 3, 3, 14, 0, tzinfo=ZoneInfo("America/New_York"))  # 20:00 Berlin
    due = reply_by(received, Severity.HIGH, CAL)
    assert due == berlin(2025, 3, 4, 15, 0)
    assert due.tzinfo == BERLIN
    assert reply_by(datetime(2025, 3, 3, 9, 0, tzinfo=UTC), Severity.HIGH, CAL).hour == 16


def test_spring_forward_critical_counts_real_hours() -> None:
    # 30 Mar 2025 01:15 CET; clocks jump 02:00 -> 03:00. Three real hours later is 05:15 CEST.
    due = reply_by(berlin(2025, 3, 30, 1, 15), Severity.CRITICAL, CAL)
    assert due == berlin(2025, 3, 30, 5, 30)
    assert due.utcoffset() == timedelta(hours=2)


def test_fall_back_critical_counts_real_hours() -> None:
    # 26 Oct 2025 01:45 CEST (23:45 UTC) + 3h = 02:45 UTC = 03:45 CET -> 04:00 CET.
    due = reply_by(berlin(2025, 10, 26, 1, 45), Severity.CRITICAL, CAL)
    assert due == datetime(2025, 10, 26, 3, 0, tzinfo=UTC)
    assert due.utcoffset() == timedelta(hours=1)


def test_business_time_across_the_dst_weekend_keeps_wall_clock_hours() -> None:
    # Friday 28 Mar 16:00 CET: 1 hour Friday, Monday 31 Mar (CEST) 09:00 + 5h = 14:00.
    assert reply_by(berlin(2025, 3, 28, 16, 0), Severity.HIGH, CAL) == berlin(2025, 3, 31, 14, 0)


def test_exact_half_hours_stay_and_buffer_is_applied() -> None:
    assert reply_by(berlin(2025, 3, 3, 10, 0), Severity.HIGH, CAL, buffer=1.0) == berlin(
        2025, 3, 3, 14, 0
    )
    assert reply_by(berlin(2025, 3, 3, 10, 0), Severity.HIGH, CAL, buffer=2.0) == berlin(
        2025, 3, 4, 10, 0
    )


def test_custom_targets() -> None:
    targets = {severity: Target.parse("30 minutes") for severity in Severity}
    due = reply_by(berlin(2025, 3, 8, 12, 1), Severity.NORMAL, CAL, targets, buffer=1.0)
    assert due == berlin(2025, 3, 8, 12, 31) + timedelta(minutes=29)


def test_sunday_to_thursday_week() -> None:
    israel = BusinessCalendar.from_strings("Asia/Jerusalem", "08:00-16:00", "sun-thu")
    friday = datetime(2025, 3, 7, 10, 0, tzinfo=israel.tz)
    assert reply_by(friday, Severity.HIGH, israel) == datetime(2025, 3, 9, 14, 0, tzinfo=israel.tz)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (berlin(2025, 3, 3, 10, 30), berlin(2025, 3, 3, 10, 30)),
        (berlin(2025, 3, 3, 10, 30, 1), berlin(2025, 3, 3, 11, 0)),
        (berlin(2025, 3, 3, 10, 0, 0, 1), berlin(2025, 3, 3, 10, 30)),
        (berlin(2025, 3, 3, 23, 59), berlin(2025, 3, 4, 0, 0)),
    ],
)
def test_round_up_half_hour(moment: datetime, expected: datetime) -> None:
    assert round_up_half_hour(moment, BERLIN) == expected


def test_rounding_uses_the_company_zone_half_hours() -> None:
    kathmandu = ZoneInfo("Asia/Kathmandu")  # UTC+05:45
    rounded = round_up_half_hour(datetime(2025, 3, 3, 4, 20, tzinfo=UTC), kathmandu)
    assert (rounded.hour, rounded.minute) == (10, 30)
    assert rounded.astimezone(UTC).minute == 45


def test_next_opening_and_add_business_time() -> None:
    assert next_opening(berlin(2025, 3, 3, 12, 0), CAL) == berlin(2025, 3, 3, 12, 0)
    assert next_opening(berlin(2025, 3, 3, 17, 0), CAL) == berlin(2025, 3, 4, 9, 0)
    assert next_opening(berlin(2025, 3, 7, 18, 0), CAL) == berlin(2025, 3, 10, 9, 0)
    # Ending exactly at closing time stays on the same day.
    assert add_business_time(berlin(2025, 3, 3, 9, 0), timedelta(hours=8), CAL) == berlin(
        2025, 3, 3, 17, 0
    )
    assert add_business_time(berlin(2025, 3, 3, 20, 0), timedelta(0), CAL) == berlin(
        2025, 3, 4, 9, 0
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: reply_by(datetime(2025, 3, 3, 10, 0), Severity.HIGH, CAL),
        lambda: reply_by(berlin(2025, 3, 3, 10, 0), Severity.HIGH, CAL, buffer=0),
        lambda: reply_by(berlin(2025, 3, 3, 10, 0), Severity.HIGH, CAL, buffer=float("nan")),
        lambda: reply_by(berlin(2025, 3, 3, 10, 0), Severity.HIGH, CAL, targets={}),
        lambda: add_business_time(berlin(2025, 3, 3, 10, 0), timedelta(hours=-1), CAL),
        lambda: BusinessCalendar(BERLIN, time(9), time(17), frozenset()),
        lambda: BusinessCalendar(BERLIN, time(9), time(17), frozenset({7})),
    ],
)
def test_invalid_inputs_raise_value_error(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


def test_a_calendar_that_never_opens_fails_instead_of_looping() -> None:
    mondays = frozenset(date(2025, 1, 6) + timedelta(weeks=n) for n in range(52 * 5))
    closed = BusinessCalendar(BERLIN, time(9), time(17), frozenset({0}), extra_holidays=mondays)
    with pytest.raises(ValueError, match="days"):
        reply_by(berlin(2025, 1, 1, 10, 0), Severity.HIGH, closed)
    with pytest.raises(ValueError, match="business hours"):
        next_opening(berlin(2025, 1, 1, 10, 0), closed)


# --- properties -------------------------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2035, 12, 31),
    timezones=st.sampled_from(
        [UTC, BERLIN, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")]
    ),
)


@settings(max_examples=300, deadline=None)
@given(moments, st.sampled_from(list(Severity)), st.floats(min_value=0.1, max_value=4.0))
def test_reply_by_is_later_and_on_a_half_hour(
    received: datetime, severity: Severity, buffer: float
) -> None:
    due = reply_by(received, severity, CAL, buffer=buffer)
    assert due >= received
    assert due.tzinfo == BERLIN
    assert due.minute in (0, 30) and due.second == 0 and due.microsecond == 0
    assert due - received <= timedelta(days=14)


@settings(max_examples=200, deadline=None)
@given(moments, st.integers(min_value=1, max_value=60 * 40))
def test_business_time_ends_inside_business_hours(start: datetime, minutes: int) -> None:
    end = add_business_time(start, timedelta(minutes=minutes), CAL)
    local = end.astimezone(BERLIN)
    assert CAL.is_business_day(local.date())
    assert time(9) < local.time() <= time(17)
    assert end > start


def _walked_half_hour(moment: datetime, tz: ZoneInfo) -> datetime:
    """The definition, minute by real minute: the first :00 or :30 at or after ``moment``."""
    instant = moment.astimezone(UTC)
    while True:
        local = instant.astimezone(tz)
        if local.minute % 30 == 0 and local.second == 0 and local.microsecond == 0:
            return local
        instant += timedelta(seconds=60 - local.second, microseconds=-local.microsecond)


@pytest.mark.parametrize(
    "zone", ["Europe/Berlin", "America/St_Johns", "Australia/Lord_Howe", "America/New_York"]
)
def test_round_up_half_hour_in_one_step_agrees_with_the_walk(zone: str) -> None:
    """The one-step shortcut, around every offset change of two years (DST gaps and repeated
    hours, half-hour and 45-minute offsets), gives what walking the minutes gives."""
    tz = ZoneInfo(zone)
    checked = 0
    instant = datetime(2026, 1, 1, tzinfo=UTC)
    offset = instant.astimezone(tz).utcoffset()
    while instant < datetime(2028, 1, 1, tzinfo=UTC):
        instant += timedelta(minutes=30)
        if instant.astimezone(tz).utcoffset() == offset:
            continue
        offset = instant.astimezone(tz).utcoffset()
        for seconds in range(-5400, 5400, 97):
            moment = instant + timedelta(seconds=seconds, microseconds=seconds % 7 * 1000)
            found = round_up_half_hour(moment, tz)
            expected = _walked_half_hour(moment, tz)
            assert (found, found.utcoffset()) == (expected, expected.utcoffset()), moment
            checked += 1
    assert checked > 200  # the zone really changed its offset in those years


def test_round_up_half_hour_on_a_45_minute_offset_agrees_with_the_walk() -> None:
    kathmandu = ZoneInfo("Asia/Kathmandu")  # +05:45: its half hours are :15 and :45 in UTC
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for seconds in range(0, 86400, 61):
        moment = start + timedelta(seconds=seconds)
        assert round_up_half_hour(moment, kathmandu) == _walked_half_hour(moment, kathmandu)
