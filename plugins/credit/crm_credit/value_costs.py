"""Credit's answer to value_analysis's published ``value_customer_costs``: what each customer
costs credit over the analysis window, for profit per customer.

- ``credit.write_offs``: the write-offs posted in the window (one ``GROUP BY`` in SQL);
- ``credit.late_payment``: the financing cost of late payment at ``financing_rate_percent`` a
  year (only when the rate is set): for each debit item of the ledger (invoices, charges), the
  days of the window it was overdue times what was overdue -- its whole amount until the day
  it was settled, or what is still open of it at the window's end. The items and their settled
  days come from the open-item matching (one query for the whole ledger, then NumPy: matching
  by hand in SQL would be a recursive query per account). A part-payment before settlement
  counts as paid on time (the matching keeps no history of partial payments).

Amounts are summed in the ledger's currencies as they are (value_analysis analyses one
currency). A source with nothing to report registers nothing, so it does not make value's
"profit once a cost is configured" switch on by itself.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, text

from crm_credit.settings import settings
from crmcore import hookimpl


def write_offs(uow: Any, customer_ids: list[int], start: dt.date | None, end: dt.date) -> dict[int, float]:
    """Written off per customer, ``start <= day < end``, in one grouped query per 5000 customers."""
    from crm_credit import ledger  # NumPy: imported when value asks, not when the CLI starts

    out: dict[int, float] = {}
    since = "" if start is None else " AND occurred_at >= :start"
    stmt = text(f"SELECT customer_id, SUM(amount) FROM transactions WHERE kind = 'write_off' AND occurred_at < :end{since} "
                "AND customer_id IN :ids GROUP BY customer_id").bindparams(bindparam("ids", expanding=True))
    params: dict[str, Any] = {"end": ledger.until_param(uow.session, end - dt.timedelta(days=1))}
    if start is not None:
        params["start"] = ledger.until_param(uow.session, start - dt.timedelta(days=1))
    for i in range(0, len(customer_ids), 5000):
        for cid, total in uow.session.execute(stmt, {**params, "ids": customer_ids[i:i + 5000]}):
            if total:
                out[int(cid)] = float(total)
    return out


def late_payment_cost(uow: Any, customer_ids: list[int], start: dt.date | None, end: dt.date,
                      rate_percent: Decimal) -> dict[int, float]:
    """The financing cost of what each customer paid late (see the module docstring)."""
    import numpy as np

    from crm_credit import ledger

    if not customer_ids or rate_percent <= 0:
        return {}
    items = ledger.open_items(uow.session, end - dt.timedelta(days=1), customer_ids)
    if not items.size:
        return {}
    stop = ledger.day_of(end)
    begin = items.due if start is None else np.maximum(items.due, ledger.day_of(start))
    paid = items.paid_day >= 0
    settled_days = np.clip(np.minimum(np.where(paid, items.paid_day, stop), stop) - begin, 0, None)
    carried = np.where(paid, items.amount, items.open)  # cents overdue
    cents_days = carried.astype(np.float64) * settled_days
    keys, inverse = np.unique(items.customer, return_inverse=True)
    per = np.bincount(inverse, weights=cents_days, minlength=len(keys))
    factor = float(rate_percent) / 100.0 / 365.0 / ledger.UNIT
    return {int(c): round(v * factor, 2) for c, v in zip(keys.tolist(), per.tolist()) if v > 0}


@hookimpl(optionalhook=True)
def value_customer_costs(uow: Any, customer_ids: list[int], start: dt.date | None, end: dt.date,
                         register: Callable[[str, Mapping[int, float]], None]) -> None:
    """value_analysis's cost-to-serve query (its published hook): write-offs, financing of late payment."""
    ids = [int(c) for c in customer_ids]
    lost = write_offs(uow, ids, start, end)
    if lost:
        register("credit.write_offs", lost)
    late = late_payment_cost(uow, ids, start, end, settings(uow).financing_rate_percent)
    if late:
        register("credit.late_payment", late)
