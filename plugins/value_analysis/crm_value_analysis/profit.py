"""Profit per customer: revenue minus cost of goods, minus the cost to serve.

Cost of goods is the entry's own ``cost`` when it carries one, else revenue x the category's
margin. Gross margin is one ``GROUP BY customer`` over the analysis window when entries carry
costs or margins per category are configured (``category_margins``), else revenue x ``margin`` in
NumPy. Cost to serve comes
from other plugins through hooks, never from their tables: the service plugin's handling cost
(its published ``service_cost_to_serve``) and every answer to our ``value_customer_costs``
(:mod:`hookspecs`). A plugin that is not there contributes nothing, and ``sources`` says which
costs were counted.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Float, case, cast, func, literal, select

from crm_value_analysis import reads
from crm_value_analysis.schemas import ValueSettings

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BASES = ("profit", "revenue")


@dataclass(frozen=True)
class ProfitPart:
    """Gross margin, cost to serve and profit per customer (aligned with ``ids``), and what was counted."""

    gross_margin: FloatArray
    cost_to_serve: FloatArray
    profit: FloatArray
    sources: list[str] = field(default_factory=list)
    margins: str = "uniform"

    @property
    def costs_configured(self) -> bool:
        return self.margins != "uniform" or bool(self.sources)

    def summary(self, basis: str) -> dict[str, Any]:
        """What the run's summary says about profit (amounts rounded to cents, as decimal strings)."""
        loss = self.profit < 0
        return {"basis": basis, "margins": self.margins, "cost_sources": self.sources,
                "total_gross_margin": _text(self.gross_margin.sum()), "total_cost_to_serve": _text(self.cost_to_serve.sum()),
                "total_profit": _text(self.profit.sum()), "unprofitable": int(loss.sum()),
                "unprofitable_loss": _text(-self.profit[loss].sum())}


def _text(value: float) -> str:
    return f"{round(float(value), 2):.2f}"


def _signed(settings: ValueSettings, value: Any) -> Any:
    """``value`` with the entry's revenue sign: netting kinds (credit notes) count negative."""
    if not settings.netting_kinds:
        return value
    return case((reads._kind().in_([k.value for k in settings.netting_kinds]), -value), else_=value)


def gross_margin_query(session: Any, settings: ValueSettings, period: reads.Period, entry_costs: bool = False) -> Any:
    """Gross margin per customer over the period (one GROUP BY): net revenue x the margin of the
    entry's category -- or, with ``entry_costs``, amount - cost for the entries that carry a cost."""
    tx = reads.Transaction
    rate: Any = literal(settings.margin)
    if settings.category_margins:
        rate = case({k: literal(m) for k, m in settings.category_margins.items()}, value=tx.category, else_=rate)
    margin: Any = cast(reads._signed_amount(settings), Float) * rate
    if entry_costs:
        margin = case((tx.cost.is_not(None), cast(_signed(settings, tx.amount - tx.cost), Float)), else_=margin)
    return (select(reads._customer(), func.sum(margin)).select_from(tx)
            .where(*reads._where(session, settings, period)).group_by(reads._customer()))


def entry_costs_exist(session: Any, settings: ValueSettings, period: reads.Period) -> bool:
    """Whether any entry of the period carries its own cost of goods (``transactions.cost``)."""
    tx = reads.Transaction
    return session.scalar(select(tx.id).where(*reads._where(session, settings, period), tx.cost.is_not(None))
                          .limit(1)) is not None


def gross_margins(session: Any, ids: IntArray, settings: ValueSettings, period: reads.Period,
                  revenue: FloatArray) -> tuple[FloatArray, str]:
    """Gross margin per customer and how it was counted: ``"uniform"`` (revenue x margin, no query),
    ``"per_category"``, or ``"per_entry"`` (an entry's own cost when it has one, else its category's
    margin or the uniform one)."""
    entry_costs = entry_costs_exist(session, settings, period)
    if not settings.category_margins and not entry_costs:
        return revenue * settings.margin, "uniform"
    m = reads._fetch_array(session, gross_margin_query(session, settings, period, entry_costs), 2)
    out = np.zeros(ids.size)
    pos, found = reads._align(ids, m[:, 0]) if m.size else (np.zeros(0, np.int64), np.zeros(0, bool))
    out[pos[found]] = np.nan_to_num(m[found, 1])
    return out, "per_entry" if entry_costs else "per_category"


def _add(total: FloatArray, ids: IntArray, costs: Mapping[int, float], source: str) -> None:
    if not costs:
        return
    keys = np.fromiter(costs.keys(), dtype=np.int64, count=len(costs))
    vals = np.fromiter(costs.values(), dtype=np.float64, count=len(costs))
    if not np.isfinite(vals).all() or (vals < 0).any():
        raise ValueError(f"cost source {source!r} returned a negative or non-finite cost")
    order = np.argsort(keys)
    pos, found = reads._align(ids, keys[order])
    np.add.at(total, pos[found], vals[order][found])


def costs_to_serve(uow: Any, ids: IntArray, period: reads.Period) -> tuple[FloatArray, list[str]]:
    """Cost to serve per customer from the plugins that answer, and the names of the sources."""
    total = np.zeros(ids.size)
    sources: list[str] = []
    hooks = uow.hooks.pm.hook
    id_list = ids.tolist()
    service = getattr(hooks, "service_cost_to_serve", None)
    if service is not None and service.get_hookimpls():
        answer = service(uow=uow, customer_ids=id_list)
        if answer is not None:
            _add(total, ids, answer, "service.handling")
            sources.append("service.handling")
    published = getattr(hooks, "value_customer_costs", None)
    if published is not None and published.get_hookimpls():
        def register(source: str, costs: Mapping[int, float]) -> None:
            _add(total, ids, costs, source)
            sources.append(str(source))
        published(uow=uow, customer_ids=id_list, start=period.start, end=period.end, register=register)
    return total, sources


def profit_part(uow: Any, ids: IntArray, settings: ValueSettings, period: reads.Period,
                revenue: FloatArray) -> ProfitPart:
    """Gross margin - cost to serve, per customer, over the analysis window."""
    gm, margins = gross_margins(uow.session, ids, settings, period, revenue)
    cost, sources = costs_to_serve(uow, ids, period)
    return ProfitPart(gross_margin=gm, cost_to_serve=cost, profit=gm - cost, sources=sources, margins=margins)


def choose_basis(settings: ValueSettings, part: ProfitPart) -> str:
    """What the pyramid, Pareto and dependency rank by: the setting, or profit once a cost is configured."""
    if settings.value_by != "auto":
        return settings.value_by
    return "profit" if part.costs_configured else "revenue"


__all__ = ["BASES", "ProfitPart", "choose_basis", "costs_to_serve", "entry_costs_exist", "gross_margin_query", "gross_margins",
           "profit_part"]
