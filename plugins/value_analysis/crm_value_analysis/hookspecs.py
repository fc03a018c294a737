"""Hooks the value_analysis plugin publishes (registered through ``crm_add_hookspecs``).

A *query* other plugins answer so that profit per customer counts their costs without this
plugin reading their tables: marketing's cost per contact, credit's write-offs and the
financing cost of late payment... A plugin that is not installed simply does not answer, and
the report lists the sources that did.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from crmcore import hookspec


@hookspec
def value_customer_costs(uow: Any, customer_ids: list[int], start: dt.date | None, end: dt.date,
                         register: Callable[[str, Mapping[int, float]], None]) -> None:
    """Costs of serving the given customers over ``start <= day < end`` (start None: all history).

    :param uow: the caller's unit of work.
    :param customer_ids: the customers analysed (sorted).
    :param start: first day of the analysis window, or None for all history.
    :param end: the day after the window's last day.
    :param register: call ``register(source, {customer_id: cost})`` once per kind of cost, with a
        dotted source name (``"marketing.contacts"``) and costs in the analysed currency (>= 0).
    """


@hookspec
def value_loyalty_signals(uow: Any, customer_ids: list[int], start: dt.date | None, end: dt.date,
                          register: Callable[[str, Mapping[int, float]], None]) -> None:
    """Loyalty factors other plugins know, for the given customers over ``start <= day < end``.

    :param uow: the caller's unit of work.
    :param customer_ids: the customers analysed (sorted).
    :param start: first day of the analysis window, or None for all history.
    :param end: the day after the window's last day.
    :param register: call ``register(signal, {customer_id: value})`` per signal you know:
        ``"referrals"`` (leads and customers this customer referred, a count >= 0; sales),
        ``"discounted_share"`` (share 0..1 of spend bought under a discount or a price campaign),
        ``"campaign_share"`` (share 0..1 of purchases attributed to a campaign; marketing).
    """


@hookspec(firstresult=True)
def value_customer_lost(uow: Any, customer_id: int, reason: str, note: str | None, source: str) -> dict[str, Any] | None:
    """Record why a customer was lost, from another plugin (credit calls it on a write-off with
    ``reason="malicious"``, the customer left owing money). Implemented by value_analysis.

    :param uow: the caller's unit of work (the record is part of its transaction).
    :param customer_id: the customer lost.
    :param reason: one of the configured ``churn_reasons``.
    :param note: free text (at most 500 characters), or None.
    :param source: who records it, e.g. ``"credit.write_off"``.
    :return: the stored record.
    """


@hookspec(firstresult=True)
def value_customer_tiers(uow: Any, customer_ids: list[int], tiers: list[str]) -> dict[int, str] | None:
    """The value tier (1/4/15/80 pyramid: ``vip``, ``key``, ``regular``... as configured) of the
    given customers in the latest run, for the tiers asked; other plugins (service's SLA
    overrides) ask it instead of reading this plugin's tables. Implemented by value_analysis.

    :param uow: the caller's unit of work.
    :param customer_ids: the customers asked about.
    :param tiers: the tier names of interest; a name this plugin does not know matches nobody.
    :return: {customer_id: tier} for the customers in one of ``tiers`` ({} before the first run).
    """


@hookspec(firstresult=True)
def value_segment_columns(uow: Any) -> Any:
    """The latest run's per-customer values as a SQLAlchemy selectable, for rules that compile to
    SQL (marketing's segment fields ``rfm_segment``, ``value_tier``, ``churn_risk``, ``p_alive``,
    ``clv``, ``loyalty``) instead of reading this plugin's tables. Implemented by value_analysis.

    :param uow: the caller's unit of work.
    :return: a ``Select`` with the columns ``customer_id``, ``rfm_segment`` (str), ``value_tier``
        (str), ``churn_risk`` (bool), ``p_alive``, ``clv`` (the probabilistic CLV) and ``loyalty``
        (numbers; NULL: not available), one row per customer of the latest run (no row before the
        first run). Use it as a subquery joined on ``customer_id``.
    """
