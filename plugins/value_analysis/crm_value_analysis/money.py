"""Money in the plugin's outputs: a Decimal rounded to cents, so JSON carries a decimal string.

The snapshot keeps analytics as floats (estimates, cheap to write and read); every report turns
the amounts it returns into :class:`~decimal.Decimal` here, and both faces (``--json`` through
``emit_json``, the API through ``jsonable``) print a Decimal as a string -- never
``14124286.719999986``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator

CENT = Decimal("0.01")

#: Keys whose values are amounts of money wherever they appear in a report row.
MONEY_KEYS = frozenset({
    "revenue", "monetary", "total_revenue", "avg_monetary", "min_monetary", "max_monetary",
    "clv_deterministic", "clv_probabilistic", "deterministic_total", "probabilistic_total",
    "acquisition_cost", "mean_spend", "own_average_spend",
    "profit", "gross_margin", "cost_to_serve", "total_profit", "total_loss",
})


def money(value: Any) -> Decimal | None:
    """An amount as a Decimal to the cent (None for None, NaN and infinities)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value.quantize(CENT, ROUND_HALF_EVEN) if value.is_finite() else None
    v = float(value)
    if not math.isfinite(v):
        return None
    # repr gives the shortest decimal that round-trips, so 0.1 stays 0.1 (not 0.1000000000000000055…)
    return Decimal(repr(v)).quantize(CENT, ROUND_HALF_EVEN)


def money_fields(row: Mapping[str, Any], keys: frozenset[str] = MONEY_KEYS) -> dict[str, Any]:
    """``row`` with the values of its money keys as Decimals."""
    return {k: (money(v) if k in keys else v) for k, v in row.items()}


#: A pydantic field type for amounts read from float columns.
Money = Annotated[Decimal, BeforeValidator(money)]

__all__ = ["CENT", "MONEY_KEYS", "Money", "money", "money_fields"]
