"""Customer tiers for SLA overrides, through value_analysis's published hook.

value_analysis publishes ``value_customer_tiers(uow, customer_ids, tiers)`` over its latest
snapshot; we never import it nor read its tables. Asked only when an ``[[service.sla_overrides]]``
entry names a tier: once for a whole batch of customers, so a bulk import does not ask per row.
"""
from __future__ import annotations

from collections.abc import Iterable

from crm_service.settings import ServiceSettings
from crmcore.uow import UnitOfWork

TIERS_HOOK = "value_customer_tiers"  # published by value_analysis (firstresult)


def tiers_of(uow: UnitOfWork, cfg: ServiceSettings, customer_ids: Iterable[int]) -> dict[int, str]:
    """Tier per customer for the tiers the overrides name ({} without value_analysis or a snapshot).

    A tier value_analysis does not know, or no snapshot yet, simply matches nobody: the ticket
    then gets its priority's (or category's) policy, as the README says.
    """
    named = cfg.tiers()
    wanted = sorted(set(customer_ids))
    if not named or not wanted or not uow.hooks.has_spec(TIERS_HOOK):
        return {}
    answer = uow.hooks.call(TIERS_HOOK, uow=uow, customer_ids=wanted, tiers=sorted(named))
    return dict(answer or {})
