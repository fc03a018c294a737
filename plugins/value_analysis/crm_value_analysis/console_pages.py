"""The value pages of the console: the overview (pyramid, Pareto curve, R x F grid as SVG drawn
on the server, each with a table for screen readers) and the customers of one tier.

The numbers are the reports' (:mod:`crm_value_analysis.services`, :mod:`crm_value_analysis.lists`);
this module only turns them into coordinates. No JavaScript is involved.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from crm_value_analysis import lists, services
from crmcore.console import View
from crmcore.errors import InvalidInput
from crmcore.models import Account

#: drawing sizes (SVG user units)
PYR_LABEL, PYR_BAR, PYR_ROW = 110, 360, 40
PAR_X0, PAR_Y0, PAR_W, PAR_H = 56, 16, 380, 220
CELL_W, CELL_H, GRID_X0, GRID_Y0 = 64, 40, 70, 10


def run_currency(uow: Any, run: Any) -> str | None:
    """The currency of a run's money: the one it analysed (configured ``currency``, or chosen
    among several), else the only currency the accounts are kept in (a run over one currency
    stores none). None when that is not known: the figures then show as plain numbers."""
    chosen = (run.settings or {}).get("currency") or (run.summary or {}).get("currency")
    if chosen:
        return str(chosen)
    kept = uow.session.scalars(select(Account.currency).distinct().limit(2)).all()
    return str(kept[0]) if len(kept) == 1 else None


def pyramid_shapes(tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One centred bar per tier, best on top, as wide as its share of customers."""
    out = []
    for i, t in enumerate(tiers):
        share = t["customer_share"] or 0.0
        w = max(3.0, share * PYR_BAR)
        out.append({"name": t["name"], "x": PYR_LABEL + (PYR_BAR - w) / 2, "y": 6 + i * PYR_ROW, "w": round(w, 1),
                    "h": PYR_ROW - 10, "cy": 6 + i * PYR_ROW + (PYR_ROW - 10) / 2, "customers": t["customers"],
                    "customer_share": share, "revenue_share": t["revenue_share"] or 0.0})
    return out


def pareto_shapes(curve: list[tuple[float, float]]) -> dict[str, Any]:
    """The curve as a polyline, the diagonal of perfect equality, and the 20 % mark."""
    def x(v: float) -> float:
        return round(PAR_X0 + v * PAR_W, 1)

    def y(v: float) -> float:
        return round(PAR_Y0 + PAR_H - v * PAR_H, 1)

    at20 = next((v for c, v in curve if c >= 0.2), None)
    return {"points": " ".join(f"{x(c)},{y(v)}" for c, v in curve), "x0": PAR_X0, "y0": PAR_Y0, "x1": x(1), "y1": y(0),
            "ticks": [{"v": t, "x": x(t), "y": y(t)} for t in (0, 0.2, 0.4, 0.6, 0.8, 1.0)],
            "mark": None if at20 is None else {"x": x(0.2), "y": y(at20), "share": at20}}


def grid_shapes(grid: dict[str, Any]) -> list[dict[str, Any]]:
    """One cell per (R, F): recency score down (best on top), frequency across; shade by count."""
    scores, top = grid["scores"], grid["max"] or 1
    cells = []
    for row, r in enumerate(reversed(scores)):
        for col, f in enumerate(scores):
            c = grid["cells"].get((r, f), {"customers": 0, "revenue": 0.0})
            shade = 0.08 + 0.92 * c["customers"] / top if c["customers"] else 0.0
            cells.append({"r": r, "f": f, "x": GRID_X0 + col * CELL_W, "y": GRID_Y0 + row * CELL_H, "n": c["customers"],
                          "revenue": c["revenue"], "opacity": round(shade, 3), "dark": shade > 0.55})
    return cells


def overview(view: View) -> Response:
    with view.unit() as uow:
        try:
            pyramid = services.pyramid_report(uow, limit=5)
        except services.NoRunYet as e:
            return view.render("value_analysis/none.html", message=str(e))
        pareto = services.pareto_report(uow)
        curve = lists.pareto_curve(uow)
        grid = lists.rfm_grid(uow)
        currency = run_currency(uow, services.latest_run(uow))
    g = grid_shapes(grid)
    return view.render("value_analysis/overview.html", pyr=pyramid, bars=pyramid_shapes(pyramid["tiers"]),
                       pyr_h=6 + len(pyramid["tiers"]) * PYR_ROW, par=pareto, line=pareto_shapes(curve), grid=grid,
                       cells=g, grid_w=GRID_X0 + len(grid["scores"]) * CELL_W + 10,
                       grid_h=GRID_Y0 + len(grid["scores"]) * CELL_H + 44, cell_w=CELL_W, cell_h=CELL_H,
                       par_dim={"x0": PAR_X0, "y0": PAR_Y0, "w": PAR_W, "h": PAR_H}, currency=currency)


def tier(view: View) -> Response:
    name = view.request.path_params["tier"][:40]
    after = view.arg("after")
    with view.unit() as uow:
        try:
            data = lists.tier_customers(uow, name, after=int(after) if after.isdigit() and len(after) < 19 else 0)
            currency = run_currency(uow, services.latest_run(uow))
        except services.NoRunYet as e:
            return view.render("value_analysis/none.html", message=str(e))
        except InvalidInput as e:
            return view.render("value_analysis/none.html", status=404, message=str(e))
    return view.render("value_analysis/tier.html", d=data, first=bool(after), currency=currency,
                       next_url=view.url(f"/value/tiers/{name}", after=data["next_after"]) if data["next_after"] else None)


ROUTES: list[tuple[str, Any, tuple[str, ...]]] = [
    ("/value", overview, ("GET",)),
    ("/value/tiers/{tier}", tier, ("GET",)),
]
