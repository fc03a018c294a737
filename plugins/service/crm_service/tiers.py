"""Customer tiers for SLA overrides, from value_analysis's documented service API.

value_analysis publishes ``select_customers(uow, tiers=[...])`` ("Service API (for other
plugins)" in its README) over its latest snapshot; we never read its tables. Asked only when
value_analysis is loaded and an ``[[service.sla_overrides]]`` entry names a tier: one query per
named tier for a whole batch of customers, so a bulk import does not ask per row.
"""
from __future__ import annotations

from collections.abc import Iterable

from crm_service.settings import ServiceSettings
from crmcore.errors import CRMError
from crmcore.uow import UnitOfWork

VALUE_PLUGIN = "value_analysis"


def tiers_of(uow: UnitOfWork, cfg: ServiceSettings, customer_ids: Iterable[int]) -> dict[int, str]:
    """Tier per customer for the tiers the overrides name ({} without value_analysis or a snapshot).

    A tier value_analysis does not know, or no snapshot yet, simply matches nobody: the ticket
    then gets its priority's (or category's) policy, as the README says.
    """
    named = cfg.tiers()
    wanted = set(customer_ids)
    if not named or not wanted or not uow.hooks.is_registered(VALUE_PLUGIN):
        return {}
    from crm_value_analysis.services import select_customers  # the documented read (see module doc)

    out: dict[int, str] = {}
    for tier in sorted(named):
        try:
            ids = select_customers(uow, tiers=[tier])
        except CRMError:  # NoRunYet, or a tier name value_analysis does not have
            continue
        out.update((cid, tier) for cid in ids if cid in wanted)
    return out
