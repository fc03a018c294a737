"""Business time: working hours on a calendar, public holidays, pauses, correct across DST.

An SLA counts business time ("4 working hours"), not wall-clock time. A :class:`Calendar` says
when work happens: working hours per weekday (several intervals a day, e.g. a lunch break), an
IANA time zone (:mod:`zoneinfo`), the public holidays of a country or subdivision from the
maintained ``holidays`` package, and company days off. Two operations answer every SLA question:

- :meth:`Calendar.add_business_time` — the instant at which ``duration`` of business time has
  passed since ``start`` (a due time);
- :meth:`Calendar.business_time_between` — how much business time lies between two instants
  (an elapsed time), both optionally excluding *pauses* (a ticket waiting on the customer).

Working hours are wall-clock times in the calendar's zone. An instant counts when its local
wall time lies in a working interval of its local date: on the day clocks go forward the lost
hour never counts, on the day they go back the repeated hour counts twice. Inputs and results
are aware datetimes (results in UTC); naive inputs are refused.

    >>> import datetime as dt
    >>> cal = Calendar("Europe/Berlin", {"mon": "09:00-12:00,13:00-18:00"})
    >>> start = dt.datetime(2030, 6, 3, 11, 0, tzinfo=dt.UTC)          # Monday 13:00 in Berlin
    >>> cal.add_business_time(start, dt.timedelta(hours=2)).isoformat()
    '2030-06-03T13:00:00+00:00'
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DAYS", "Calendar", "Interval", "parse_hours"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
UTC = dt.UTC
Interval = tuple[dt.datetime, dt.datetime]
#: a calendar with no working time at all within this many days is refused (would never end)
HORIZON_DAYS = 3660


def _parse_clock(text: str) -> dt.timedelta:
    h, _, m = text.strip().partition(":")
    if not (h.isdigit() and m.isdigit() and len(m) == 2):
        raise ValueError(f"bad time {text!r} (use HH:MM)")
    value = dt.timedelta(hours=int(h), minutes=int(m))
    if int(m) > 59 or value > dt.timedelta(hours=24):
        raise ValueError(f"bad time {text!r} (00:00 to 24:00)")
    return value


def parse_hours(spec: str | Sequence[str]) -> tuple[tuple[dt.timedelta, dt.timedelta], ...]:
    """``"09:00-12:00,13:00-18:00"`` (or a list of ``"HH:MM-HH:MM"``) as sorted offsets from midnight.

    Intervals must be non-empty and must not overlap; ``24:00`` ends the day.
    """
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for part in (p for p in parts if p.strip()):
        a, sep, b = part.partition("-")
        if not sep:
            raise ValueError(f"bad interval {part!r} (use HH:MM-HH:MM)")
        s, e = _parse_clock(a), _parse_clock(b)
        if e <= s:
            raise ValueError(f"interval {part.strip()!r} ends before it starts")
        out.append((s, e))
    out.sort()
    for (_, e1), (s2, _) in pairwise(out):
        if s2 < e1:
            raise ValueError(f"working intervals overlap in {spec!r}")
    return tuple(out)


def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (with a time zone)")
    return value.astimezone(UTC)


def _merge(intervals: Iterable[tuple[dt.datetime, dt.datetime | None]]) -> list[tuple[dt.datetime, dt.datetime | None]]:
    """Sort and merge pauses; an end of None means "still paused"."""
    out: list[tuple[dt.datetime, dt.datetime | None]] = []
    for s, e in sorted(((_aware(s, "pause start"), None if e is None else _aware(e, "pause end")) for s, e in intervals),
                       key=lambda p: p[0]):
        if e is not None and e <= s:
            continue
        if out and (out[-1][1] is None or s <= out[-1][1]):
            last_s, last_e = out[-1]
            out[-1] = (last_s, None if e is None or last_e is None else max(last_e, e))
        else:
            out.append((s, e))
    return out


def _subtract(piece: Interval, pauses: Sequence[tuple[dt.datetime, dt.datetime | None]]) -> Iterator[Interval]:
    """``piece`` minus the (merged, sorted) pauses."""
    s, e = piece
    for ps, pe in pauses:
        if pe is not None and pe <= s:
            continue
        if ps >= e:
            break
        if ps > s:
            yield (s, ps)
        if pe is None:
            return
        s = max(s, pe)
        if s >= e:
            return
    if s < e:
        yield (s, e)


class Calendar:
    """Working hours per weekday in a time zone, minus public holidays and company days off.

    :param timezone: an IANA zone name (``"Europe/Berlin"``).
    :param hours: weekday (``mon`` … ``sun``) → ``"HH:MM-HH:MM[,HH:MM-HH:MM…]"``; days not
        listed are off. The default is Monday to Friday, 09:00 to 17:00.
    :param holidays: a country code of the ``holidays`` package, optionally with a subdivision
        (``"DE"``, ``"DE-BY"``, ``"US-CA"``); None for no public holidays.
    :param extra_days_off: further local dates (``date`` or ``"YYYY-MM-DD"``) with no work.
    """

    def __init__(self, timezone: str = "UTC", hours: Mapping[str, str | Sequence[str]] | None = None,
                 holidays: str | None = None, extra_days_off: Iterable[dt.date | str] = ()) -> None:
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {timezone!r} (an IANA name such as Europe/Berlin)") from None
        self.timezone = timezone
        spec = dict.fromkeys(DAYS[:5], "09:00-17:00") if hours is None else dict(hours)
        unknown = sorted(set(spec) - set(DAYS))
        if unknown:
            raise ValueError(f"unknown weekday(s) {', '.join(unknown)} (use {', '.join(DAYS)})")
        self.hours = tuple(parse_hours(spec.get(d, "")) for d in DAYS)
        if not any(self.hours):
            raise ValueError("the calendar has no working hours on any weekday")
        self.holidays = holidays
        self.extra_days_off = frozenset(d if isinstance(d, dt.date) else dt.date.fromisoformat(d) for d in extra_days_off)
        self._days: dict[dt.date, tuple[Interval, ...]] = {}

    @cached_property
    def _public(self) -> object | None:
        if not self.holidays:
            return None
        import holidays as hol

        country, _, subdiv = self.holidays.partition("-")
        try:
            return hol.country_holidays(country.upper(), subdiv=subdiv.upper() or None)
        except (NotImplementedError, ValueError, KeyError) as e:  # unknown country or subdivision
            raise ValueError(f"holidays {self.holidays!r}: {e} (a country code of the holidays package, "
                             "optionally -SUBDIVISION, e.g. DE or DE-BY)") from None

    def check(self) -> None:
        """Load the holiday table now, so a bad country or subdivision fails at configuration time."""
        _ = self._public

    def is_working_day(self, day: dt.date) -> bool:
        """True when the local date has working hours and is no public holiday or day off."""
        if not self.hours[day.weekday()] or day in self.extra_days_off:
            return False
        public = self._public
        return public is None or day not in public  # type: ignore[operator]

    # -- the working intervals of one local date, as UTC instants ------------------------------
    def _segments(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime, dt.timedelta]]:
        """The UTC span of the local date, split where the UTC offset changes: (from, to, offset)."""
        start = dt.datetime.combine(day, dt.time(), self.zone).astimezone(UTC)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), self.zone).astimezone(UTC)
        first, last = self._offset(start), self._offset(end - dt.timedelta(seconds=1))
        if first == last:
            return [(start, end, first)]
        lo, hi = start, end - dt.timedelta(seconds=1)  # offset(lo) == first, offset(hi) == last
        while hi - lo > dt.timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            mid = mid.replace(microsecond=0)
            if self._offset(mid) == first:
                lo = mid
            else:
                hi = mid
        return [(start, hi, first), (hi, end, last)]

    def _offset(self, instant: dt.datetime) -> dt.timedelta:
        return instant.astimezone(self.zone).utcoffset() or dt.timedelta(0)

    def day_intervals(self, day: dt.date) -> tuple[Interval, ...]:
        """The working intervals of a local date as UTC instants (empty on a day off)."""
        cached = self._days.get(day)
        if cached is not None:
            return cached
        pieces: list[Interval] = []
        if self.is_working_day(day):
            midnight = dt.datetime.combine(day, dt.time(), UTC)  # local wall time, read as if UTC
            for seg_start, seg_end, offset in self._segments(day):
                for s, e in self.hours[day.weekday()]:
                    lo, hi = max(midnight + s - offset, seg_start), min(midnight + e - offset, seg_end)
                    if lo < hi:
                        pieces.append((lo, hi))
        pieces.sort()
        merged: list[Interval] = []
        for start, end in pieces:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        if len(self._days) > 20_000:
            self._days.clear()
        self._days[day] = result = tuple(merged)
        return result

    def _intervals_from(self, start: dt.datetime) -> Iterator[Interval]:
        """Working intervals from ``start`` on (clipped), day after day, forever."""
        day = start.astimezone(self.zone).date() - dt.timedelta(days=1)
        idle = 0
        while True:
            found = False
            for s, e in self.day_intervals(day):
                if e > start:
                    found = True
                    yield (max(s, start), e)
            idle = 0 if found else idle + 1
            if idle > HORIZON_DAYS:
                raise ValueError(f"no working time within {HORIZON_DAYS} days after {start.isoformat()}")
            day += dt.timedelta(days=1)

    # -- the two operations -----------------------------------------------------------------------
    def add_business_time(self, start: dt.datetime, duration: dt.timedelta,
                          pauses: Iterable[tuple[dt.datetime, dt.datetime | None]] = ()) -> dt.datetime:
        """The earliest instant at which ``duration`` of business time (pauses excluded) has
        passed since ``start``; ``start`` itself for a zero duration. Result in UTC."""
        start = _aware(start, "start")
        if duration < dt.timedelta(0):
            raise ValueError("duration must not be negative")
        if duration == dt.timedelta(0):
            return start
        merged = _merge(pauses)
        left = duration
        for piece in self._intervals_from(start):
            for s, e in _subtract(piece, merged):
                if e - s >= left:
                    return s + left
                left -= e - s
            if merged and merged[-1][1] is None and piece[1] >= merged[-1][0]:
                raise ValueError("the duration never elapses: the pause has no end")
        raise AssertionError("unreachable")  # pragma: no cover

    def business_time_between(self, a: dt.datetime, b: dt.datetime,
                              pauses: Iterable[tuple[dt.datetime, dt.datetime | None]] = ()) -> dt.timedelta:
        """Business time from ``a`` to ``b`` with pauses excluded (negative when ``b`` is before ``a``)."""
        a, b = _aware(a, "a"), _aware(b, "b")
        if b < a:
            return -self.business_time_between(b, a, pauses)
        merged = _merge(pauses)
        total = dt.timedelta(0)
        day, last = a.astimezone(self.zone).date() - dt.timedelta(days=1), b.astimezone(self.zone).date() + dt.timedelta(days=1)
        while day <= last:
            for s, e in self.day_intervals(day):
                lo, hi = max(s, a), min(e, b)
                if lo < hi:
                    total += sum((pe - ps for ps, pe in _subtract((lo, hi), merged)), dt.timedelta(0))
            day += dt.timedelta(days=1)
        return total

    def __repr__(self) -> str:
        return f"Calendar({self.timezone!r}, holidays={self.holidays!r})"
