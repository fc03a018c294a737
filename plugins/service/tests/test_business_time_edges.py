"""SLA due times and pauses at the calendar's edges, as stored on tickets (both engines), checked
against an independent minute-by-minute walk written here: it knows nothing of
``crmcore.businesstime``, only zoneinfo, the ``holidays`` package and the hours strings.

The edges are the issue's: a ticket opened on a Friday evening before a public holiday Monday, a
pause across a weekend, a daylight-saving change (spring and autumn), a calendar with a lunch break.
"""
from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import crm_service.plugin as PLUGIN
import holidays as hol
import pytest
from crm_service import tickets
from crm_service.models import Ticket
from crm_service.schemas import TicketOpen
from crm_service.testing import FrozenClock

from crmcore import CRM
from crmcore.schemas import CustomerCreate

TZ = "Europe/Berlin"
DAYS = ("mon", "tue", "wed", "thu", "fri")
OFFICE = dict.fromkeys(DAYS, "09:00-18:00")
LUNCH = dict.fromkeys(DAYS, "09:00-12:00,13:00-18:00")
CONFIG = {"service": {
    "calendars": {"default": {"timezone": TZ, "holidays": "DE", "hours": OFFICE},
                  "lunch": {"timezone": TZ, "holidays": "DE", "hours": LUNCH}},
    "teams": {"support": {}, "field": {"calendar": "lunch"}}}}
TARGETS = {"high": (4, 16), "low": (16, 80)}  # the default policies: first response / resolution hours
MIN = dt.timedelta(minutes=1)


@functools.cache
def _public() -> hol.HolidayBase:
    return hol.country_holidays("DE")


def working(hours: dict[str, str], u: dt.datetime) -> bool:
    """Is the UTC minute starting at ``u`` inside the calendar's working hours?"""
    local = u.astimezone(ZoneInfo(TZ))
    if local.date() in _public():
        return False
    minute = local.hour * 60 + local.minute
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()]
    for part in filter(None, hours.get(day, "").split(",")):
        lo, hi = ((int(x[:2]) * 60 + int(x[3:])) for x in part.split("-"))
        if lo <= minute < hi:
            return True
    return False


def walk_add(hours: dict[str, str], start: dt.datetime, minutes: int,
             pause: tuple[dt.datetime, dt.datetime] | None = None) -> dt.datetime:
    """The instant ``minutes`` working minutes after ``start``, minutes inside ``pause`` not counted."""
    u = start
    while True:
        if working(hours, u) and not (pause and pause[0] <= u < pause[1]):
            minutes -= 1
            if minutes == 0:
                return u + MIN
        u += MIN


def walk_between(hours: dict[str, str], a: dt.datetime, b: dt.datetime) -> int:
    return sum(working(hours, a + i * MIN) for i in range(int((b - a) / MIN)))


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo(TZ)).astimezone(dt.UTC)


@pytest.fixture
def crm(make_crm: Callable[..., CRM]) -> CRM:
    crm = make_crm(plugins=[PLUGIN], config=CONFIG)
    crm.clock = FrozenClock(at(2030, 6, 3, 10, 0))  # type: ignore[attr-defined]
    return crm


def _open(crm: CRM, opened: dt.datetime, team: str, priority: str) -> Ticket:
    crm.clock.set(opened)  # type: ignore[attr-defined]
    with crm.unit_of_work("test") as uow:
        cid = uow.customers.create(CustomerCreate(name="Edge")).id
        tid = tickets.open_ticket(uow, cid, TicketOpen(subject="s", team=team, priority=priority, opened_at=opened))[0].id
    return _load(crm, tid)


def _load(crm: CRM, tid: int) -> Ticket:
    with crm.unit_of_work(read_only=True) as uow:
        t = uow.session.get(Ticket, tid)
        assert t is not None
        uow.session.expunge(t)
        return t


EDGES = {
    "friday evening before Whit Monday": at(2030, 6, 7, 17, 30),
    "friday before the spring DST change": at(2030, 3, 29, 16, 0),
    "friday before the autumn DST change": at(2030, 10, 25, 15, 45),
    "inside the lunch break": at(2030, 6, 4, 12, 20),
    "on a Sunday": at(2030, 6, 2, 11, 0),
}


@pytest.mark.parametrize("team", ["support", "field"])
@pytest.mark.parametrize("priority", sorted(TARGETS))
@pytest.mark.parametrize("edge", sorted(EDGES))
def test_due_times_match_the_minute_walk(crm: CRM, edge: str, priority: str, team: str) -> None:
    hours = LUNCH if team == "field" else OFFICE
    opened = EDGES[edge]
    t = _open(crm, opened, team, priority)
    first, resolution = TARGETS[priority]
    assert t.first_response_due == walk_add(hours, opened, first * 60)
    assert t.resolution_due == walk_add(hours, opened, resolution * 60)


@pytest.mark.parametrize("team", ["support", "field"])
def test_a_pause_across_a_weekend_matches_the_minute_walk(crm: CRM, team: str) -> None:
    """Waiting from Friday 15:10 to Monday 10:05: the paused business minutes and the moved due time."""
    hours = LUNCH if team == "field" else OFFICE
    clock: Any = crm.clock  # type: ignore[attr-defined]
    opened, paused, resumed = at(2030, 6, 14, 14, 0), at(2030, 6, 14, 15, 10), at(2030, 6, 17, 10, 5)
    t = _open(crm, opened, team, "low")
    clock.set(paused)
    with crm.unit_of_work("test") as uow:
        tickets.change_status(uow, t.id, "waiting")
    clock.set(resumed)
    with crm.unit_of_work("test") as uow:
        tickets.change_status(uow, t.id, "open", reason="answered")
    t = _load(crm, t.id)
    assert t.paused_minutes == walk_between(hours, paused, resumed)
    assert t.first_response_due == walk_add(hours, opened, 16 * 60, (paused, resumed))
    assert t.resolution_due == walk_add(hours, opened, 80 * 60, (paused, resumed))
