"""``service_complaints``: complaint tickets per customer opened in a window of days (credit's
complaint factor as of a day over its lookback window), checked against a count in Python."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from crm_service import hookspecs, surveys, tickets
from crm_service.schemas import TicketOpen

from crmcore import CRM

OPENED = [("A", "complaint", dt.datetime(2029, 6, 2, 23, 59, tzinfo=dt.UTC)),  # the day before the window
          ("A", "complaint", dt.datetime(2029, 6, 3, 0, 0, tzinfo=dt.UTC)),  # its first day
          ("A", "inquiry", dt.datetime(2029, 8, 1, tzinfo=dt.UTC)),
          ("A", "complaint", dt.datetime(2030, 6, 3, 23, 59, tzinfo=dt.UTC)),  # its last day
          ("B", "complaint", dt.datetime(2030, 6, 4, 0, 0, tzinfo=dt.UTC)),  # after it (a later complaint)
          ("B", "complaint", dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)),
          ("C", "complaint", dt.datetime(2028, 1, 1, tzinfo=dt.UTC))]


@pytest.mark.parametrize("since,until", [(dt.date(2029, 6, 3), dt.date(2030, 6, 3)),
                                         (dt.date(2029, 6, 2), dt.date(2030, 6, 4)),
                                         (dt.date(2027, 1, 1), dt.date(2027, 12, 31))])
def test_complaints_in_a_window_of_days(scrm: CRM, customer: Any, since: dt.date, until: dt.date) -> None:
    ids = {ref: customer(ref) for ref in ("A", "B", "C", "D")}
    with scrm.unit_of_work("test") as uow:
        for ref, kind, at in OPENED:
            tickets.open_ticket(uow, ids[ref], TicketOpen(subject="x", kind=kind, opened_at=at))
    expected: dict[int, int] = {}
    for ref, kind, at in OPENED:
        if kind == "complaint" and since <= at.date() <= until:
            expected[ids[ref]] = expected.get(ids[ref], 0) + 1
    with scrm.unit_of_work("test", read_only=True) as uow:
        assert surveys.complaints(uow, list(ids.values()), since, until) == expected
        assert surveys.complaints(uow, [ids["A"]], since, until) == {k: v for k, v in expected.items() if k == ids["A"]}
        # what credit asks: the published hook, answered by plugin.py
        assert uow.hooks.call("service_complaints", uow=uow, customer_ids=list(ids.values()),
                              since=since, until=until) == expected
    assert "since" in hookspecs.service_complaints.__code__.co_varnames  # the published signature
