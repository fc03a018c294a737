"""Business-time arithmetic, checked against an independent minute-by-minute count.

The brute force below knows nothing of the module's interval logic: it walks UTC minutes,
converts each to local wall time with zoneinfo and asks "is this local minute inside a working
interval of a working day and outside every pause?".
"""
from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

import holidays as hol
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.businesstime import Calendar, parse_hours

UTC = dt.UTC
BERLIN = "Europe/Berlin"
LUNCH = {d: "09:00-12:00,13:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}
MIN = dt.timedelta(minutes=1)


@functools.cache
def _public(country: str) -> hol.HolidayBase:
    return hol.country_holidays(country)


def brute_working(spec: dict[str, str], tz: str, country: str | None, days_off: set[dt.date], u: dt.datetime) -> bool:
    """Is the UTC minute starting at ``u`` working time? (independent of the module)"""
    local = u.astimezone(ZoneInfo(tz))
    day = local.date()
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    if day in days_off or (country and day in _public(country)):
        return False
    minute = local.hour * 60 + local.minute
    for part in filter(None, spec.get(names[day.weekday()], "").split(",")):
        a, b = part.split("-")
        lo = int(a[:2]) * 60 + int(a[3:])
        hi = int(b[:2]) * 60 + int(b[3:])
        if lo <= minute < hi:
            return True
    return False


def brute_between(spec: dict[str, str], tz: str, country: str | None, days_off: set[dt.date], a: dt.datetime,
                  b: dt.datetime, pauses: list[tuple[dt.datetime, dt.datetime]] = ()) -> dt.timedelta:
    n, u = 0, a
    while u < b:
        if brute_working(spec, tz, country, days_off, u) and not any(ps <= u < pe for ps, pe in pauses):
            n += 1
        u += MIN
    return n * MIN


def brute_add(spec: dict[str, str], tz: str, country: str | None, days_off: set[dt.date], start: dt.datetime,
              minutes: int, pauses: list[tuple[dt.datetime, dt.datetime]] = ()) -> dt.datetime:
    u, left = start, minutes
    if left == 0:
        return start
    while True:
        if brute_working(spec, tz, country, days_off, u) and not any(ps <= u < pe for ps, pe in pauses):
            left -= 1
            if left == 0:
                return u + MIN
        u += MIN


def local(tz: str, *args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo(tz))


# -- the edge cases ---------------------------------------------------------------------------

def test_friday_evening_before_a_public_holiday_monday() -> None:
    """Opened Friday 17:00 before Easter Monday 2030 (22 April, a German holiday): 4 business hours
    are Friday 17-18 and Tuesday 09-12."""
    cal = Calendar(BERLIN, {d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}, holidays="DE")
    assert not cal.is_working_day(dt.date(2030, 4, 19)) and not cal.is_working_day(dt.date(2030, 4, 22))
    start = local(BERLIN, 2030, 4, 18, 17, 0)  # Thursday before Good Friday, Easter Monday
    due = cal.add_business_time(start, dt.timedelta(hours=4))
    assert due == local(BERLIN, 2030, 4, 23, 12, 0)
    assert cal.business_time_between(start, due) == dt.timedelta(hours=4)


def test_friday_evening_before_a_holiday_monday_whit_monday() -> None:
    cal = Calendar(BERLIN, {d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}, holidays="DE")
    start = local(BERLIN, 2030, 6, 7, 17, 0)  # Friday; Monday 10 June 2030 is Whit Monday
    assert cal.add_business_time(start, dt.timedelta(hours=4)) == local(BERLIN, 2030, 6, 11, 12, 0)


def test_pause_across_a_weekend() -> None:
    cal = Calendar(BERLIN, LUNCH)
    start = local(BERLIN, 2030, 6, 6, 9, 0)  # Thursday
    pause = (local(BERLIN, 2030, 6, 7, 15, 0), local(BERLIN, 2030, 6, 10, 10, 0))  # Fri 15:00 -> Mon 10:00
    due = cal.add_business_time(start, dt.timedelta(hours=16), pauses=[pause])
    # Thu 8h, Fri 09-12 + 13-15 = 5h, paused until Mon 10:00, then Mon 10-12 + 13-14 = 3h
    assert due == local(BERLIN, 2030, 6, 10, 14, 0)
    assert cal.business_time_between(start, due, [pause]) == dt.timedelta(hours=16)
    assert cal.business_time_between(start, due) == dt.timedelta(hours=20)


def test_daylight_saving_changes() -> None:
    """A 24-hour calendar counts 23 hours on the spring day and 25 on the autumn day."""
    cal = Calendar(BERLIN, {d: "00:00-24:00" for d in ("sat", "sun")})
    spring = (local(BERLIN, 2030, 3, 31, 0, 0), local(BERLIN, 2030, 4, 1, 0, 0))
    autumn = (local(BERLIN, 2030, 10, 27, 0, 0), local(BERLIN, 2030, 10, 28, 0, 0))
    assert cal.business_time_between(*spring) == dt.timedelta(hours=23)
    assert cal.business_time_between(*autumn) == dt.timedelta(hours=25)
    # office hours across the change stay 9 wall-clock hours a day
    office = Calendar(BERLIN, {d: "09:00-18:00" for d in ("fri", "mon")})
    due = office.add_business_time(local(BERLIN, 2030, 3, 29, 12, 0), dt.timedelta(hours=8))
    assert due == local(BERLIN, 2030, 4, 1, 11, 0)


def test_hours_inside_the_skipped_and_repeated_hour_match_the_brute_force() -> None:
    spec = {d: "01:30-02:30,03:00-04:00" for d in ("sun",)}
    cal = Calendar(BERLIN, spec)
    for a, b in [(dt.datetime(2030, 3, 30, 20, tzinfo=UTC), dt.datetime(2030, 3, 31, 6, tzinfo=UTC)),
                 (dt.datetime(2030, 10, 26, 20, tzinfo=UTC), dt.datetime(2030, 10, 27, 6, tzinfo=UTC))]:
        assert cal.business_time_between(a, b) == brute_between(spec, BERLIN, None, set(), a, b)


def test_lunch_break() -> None:
    cal = Calendar(BERLIN, LUNCH)
    start = local(BERLIN, 2030, 6, 4, 11, 30)
    assert cal.add_business_time(start, dt.timedelta(hours=1)) == local(BERLIN, 2030, 6, 4, 13, 30)
    assert cal.business_time_between(local(BERLIN, 2030, 6, 4, 12, 0), local(BERLIN, 2030, 6, 4, 13, 0)) == dt.timedelta(0)


def test_extra_days_off_and_subdivisions() -> None:
    cal = Calendar(BERLIN, LUNCH, holidays="DE-BY", extra_days_off=["2030-12-24"])
    assert not cal.is_working_day(dt.date(2030, 12, 24))
    assert not cal.is_working_day(dt.date(2031, 1, 6))  # Epiphany: Bavaria only
    assert Calendar(BERLIN, LUNCH, holidays="DE-BE").is_working_day(dt.date(2031, 1, 6))


def test_zero_duration_and_reversed_spans() -> None:
    cal = Calendar(BERLIN, LUNCH)
    t = local(BERLIN, 2030, 6, 8, 3, 0)  # a Saturday night
    assert cal.add_business_time(t, dt.timedelta(0)) == t
    a, b = local(BERLIN, 2030, 6, 3, 9, 0), local(BERLIN, 2030, 6, 3, 10, 0)
    assert cal.business_time_between(b, a) == -dt.timedelta(hours=1)


@pytest.mark.parametrize("kwargs, message", [
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"hours": {"monday": "09:00-17:00"}}, "unknown weekday"),
    ({"hours": {"mon": "17:00-09:00"}}, "ends before it starts"),
    ({"hours": {"mon": "09:00-12:00,11:00-13:00"}}, "overlap"),
    ({"hours": {"mon": "9-17"}}, "bad time"),
    ({"hours": {"mon": "09:00-25:00"}}, "00:00 to 24:00"),
    ({"hours": {}}, "no working hours"),
])
def test_bad_calendars_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Calendar(**kwargs)  # type: ignore[arg-type]


def test_bad_holiday_country_and_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="holiday"):
        Calendar(BERLIN, holidays="XX").check()
    with pytest.raises(ValueError, match="aware"):
        Calendar(BERLIN).add_business_time(dt.datetime(2030, 1, 1), dt.timedelta(hours=1))
    with pytest.raises(ValueError, match="pause has no end"):
        Calendar(BERLIN).add_business_time(local(BERLIN, 2030, 6, 3, 9, 0), dt.timedelta(hours=1),
                                           pauses=[(local(BERLIN, 2030, 6, 3, 9, 30), None)])


def test_parse_hours() -> None:
    assert parse_hours(["13:00-18:00", "09:00-12:00"])[0] == (dt.timedelta(hours=9), dt.timedelta(hours=12))


# -- property tests against the brute force ---------------------------------------------------------

ZONES = st.sampled_from([BERLIN, "America/New_York", "Asia/Kolkata", "UTC"])
SPECS = st.sampled_from([
    LUNCH,
    {d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")},
    {"sat": "00:00-24:00", "sun": "01:30-02:30,02:45-03:15", "mon": "08:00-08:30"},
    {"sun": "00:00-03:00,22:00-24:00", "wed": "10:00-11:00,11:00-12:00"},
])
# around both 2030 DST changes in Europe and the US, minute-aligned
INSTANTS = st.integers(0, 4 * 24 * 60).flatmap(lambda m: st.sampled_from([
    dt.datetime(2030, 3, 8, tzinfo=UTC), dt.datetime(2030, 3, 28, tzinfo=UTC), dt.datetime(2030, 10, 24, tzinfo=UTC),
    dt.datetime(2030, 11, 1, tzinfo=UTC), dt.datetime(2030, 4, 17, tzinfo=UTC)]).map(lambda base: base + m * MIN))
PAUSES = st.lists(st.tuples(st.integers(0, 3 * 24 * 60), st.integers(1, 36 * 60)), max_size=2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tz=ZONES, spec=SPECS, a=INSTANTS, span=st.integers(0, 3 * 24 * 60), raw=PAUSES, country=st.sampled_from([None, "DE"]))
def test_between_matches_the_brute_force(tz: str, spec: dict[str, str], a: dt.datetime, span: int,
                                         raw: list[tuple[int, int]], country: str | None) -> None:
    b = a + span * MIN
    pauses = [(a + s * MIN, a + (s + n) * MIN) for s, n in raw]
    cal = Calendar(tz, spec, holidays=country)
    assert cal.business_time_between(a, b, pauses) == brute_between(spec, tz, country, set(), a, b, pauses)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tz=ZONES, spec=SPECS, start=INSTANTS, minutes=st.integers(0, 12 * 60), raw=PAUSES,
       off=st.sets(st.integers(0, 6), max_size=2))
def test_add_matches_the_brute_force(tz: str, spec: dict[str, str], start: dt.datetime, minutes: int,
                                     raw: list[tuple[int, int]], off: set[int]) -> None:
    pauses = [(start + s * MIN, start + (s + n) * MIN) for s, n in raw]
    days_off = {start.date() + dt.timedelta(days=i) for i in off}
    cal = Calendar(tz, spec, extra_days_off=days_off)
    due = cal.add_business_time(start, minutes * MIN, pauses)
    assert due == brute_add(spec, tz, None, days_off, start, minutes, pauses)
    assert cal.business_time_between(start, due, pauses) == minutes * MIN
