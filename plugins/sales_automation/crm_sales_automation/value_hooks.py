"""What sales tells value_analysis through the hooks it publishes (``crm_value_analysis.hookspecs``).

``value_loyalty_signals`` -> ``"referrals"``: the leads and customers each analysed customer
referred in the window (a referral that went lead -> customer counted once), one GROUP BY. An
installation that records no referral at all answers nothing, so the loyalty index leaves the
factor out ("no data") instead of ranking everybody on zeros.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from crmcore import hookimpl


@hookimpl(optionalhook=True)
def value_loyalty_signals(uow: Any, customer_ids: list[int], start: dt.date | None, end: dt.date,
                          register: Callable[[str, Mapping[int, float]], None]) -> None:
    # on use: the services package brings numpy (lead scoring), which a CLI start must not pay for
    from crm_sales_automation.services.referrals import any_referral, referral_counts

    if not customer_ids or not any_referral(uow):
        return
    counts = referral_counts(uow, customer_ids, start, end)
    register("referrals", {c: float(n) for c, n in counts.items()})
