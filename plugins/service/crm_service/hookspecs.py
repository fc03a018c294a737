"""Hooks the service plugin publishes (registered through ``crm_add_hookspecs``).

They are *queries*: another plugin (value_analysis's loyalty index, credit's complaint factor,
a profit view) calls them through ``uow.hooks.pm.hook.<name>(...)`` instead of reading the
``service_*`` tables; the service plugin answers (``firstresult``: one answer).
"""
from __future__ import annotations

from typing import Any

from crmcore import hookspec


@hookspec(firstresult=True)
def service_satisfaction(uow: Any, customer_ids: list[int]) -> dict[int, dict[str, Any]]:  # type: ignore[empty-body]
    """Satisfaction of the given customers, for loyalty and credit factors.

    :param uow: the caller's unit of work.
    :param customer_ids: the customers asked about.
    :return: customer id -> ``{"csat_avg": float | None, "csat_answers": int, "last_nps": int | None,
        "nps_category": "promoter" | "passive" | "detractor" | None, "complaints": int}``;
        ``complaints`` counts every complaint ticket the customer ever opened (no window: for a
        factor over a period, ask :func:`service_complaints`).
    """


@hookspec(firstresult=True)
def service_complaints(uow: Any, customer_ids: list[int], since: Any, until: Any) -> dict[int, int]:  # type: ignore[empty-body]
    """Complaint tickets per customer opened in a window (credit's complaint factor over its
    lookback window, as of a day).

    :param uow: the caller's unit of work.
    :param customer_ids: the customers asked about.
    :param since: the first day (a ``datetime.date``, inclusive; UTC).
    :param until: the last day (a ``datetime.date``, inclusive; UTC).
    :return: customer id -> complaint tickets opened ``since <= day <= until`` (customers with
        none are left out).
    """


@hookspec(firstresult=True)
def service_cost_to_serve(uow: Any, customer_ids: list[int]) -> dict[int, float]:  # type: ignore[empty-body]
    """Cost to serve each customer: business hours of handling (open to resolution, pauses
    excluded) times the team's ``hourly_rate``.

    :param uow: the caller's unit of work.
    :param customer_ids: the customers asked about.
    :return: customer id -> cost (in the company's currency, a float for analytics).
    """
