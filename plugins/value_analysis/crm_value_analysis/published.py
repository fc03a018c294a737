"""What value_analysis publishes for other plugins to read, instead of them naming its tables.

``segment_columns`` answers the ``value_segment_columns`` hook (see ``hookspecs``): the latest
run's values per customer as a selectable, under the public names a segment rule uses.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from crm_value_analysis.models import CustomerValue, ValueRun

#: published column name -> the snapshot column it reads (the names are the contract, the columns are not)
SEGMENT_COLUMNS: dict[str, Any] = {
    "rfm_segment": CustomerValue.segment,
    "value_tier": CustomerValue.tier,
    "churn_risk": CustomerValue.churn_risk,
    "p_alive": CustomerValue.p_alive,
    "clv": CustomerValue.clv_probabilistic,
    "loyalty": CustomerValue.loyalty,
}


def segment_columns() -> Select[Any]:
    """``customer_id`` and the :data:`SEGMENT_COLUMNS` of the latest run (by ``as_of``); no rows before the first run."""
    latest = select(ValueRun.id).order_by(ValueRun.as_of.desc()).limit(1).scalar_subquery()
    return (select(CustomerValue.customer_id.label("customer_id"), *[col.label(name) for name, col in SEGMENT_COLUMNS.items()])
            .where(CustomerValue.run_id == latest))
