"""PNG plots of the reports: value pyramid, CLV distribution, model validation.

matplotlib is imported lazily and drawn on a bare ``Figure`` with the Agg canvas (no pyplot
global state, no display needed). Every function takes the report's JSON-ready dict, so the
plot shows exactly what ``--json`` prints. A path in a folder that does not exist is refused
before anything is drawn (:func:`check_path`).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crmcore.errors import InvalidInput


def check_path(path: str | Path) -> Path:
    """The PNG target, or one clear error: its folder must exist and it must not be a folder."""
    out = Path(path)
    if out.is_dir():
        raise InvalidInput(f"invalid input: plot: {out} is a folder, not a file name", [("plot", "is a folder")])
    if not out.parent.is_dir():
        raise InvalidInput(f"invalid input: plot: folder {out.parent} does not exist", [("plot", "no such folder")])
    return out


def _figure(rows: int = 1, cols: int = 1, size: tuple[float, float] = (6.4, 4.8)) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(rows * cols)]
    return fig, axes


def _save(fig: Any, path: Path) -> Path:
    try:
        fig.savefig(path, format="png")
    except OSError as e:
        raise InvalidInput(f"cannot write the plot to {path}: {e.strerror or e}") from None
    return path


def plot_pyramid(tiers: Sequence[dict[str, Any]], path: str | Path, *, title: str) -> Path:
    """Each tier's share of customers and of revenue, side by side (best tier on top)."""
    out = check_path(path)
    fig, (ax,) = _figure()
    names = [t["name"] for t in tiers][::-1]
    cust = [100 * (t["customer_share"] or 0) for t in tiers][::-1]
    rev = [100 * (t["revenue_share"] or 0) for t in tiers][::-1]
    y = np.arange(len(names))
    ax.barh(y + 0.2, rev, height=0.4, color="tab:blue", label="share of revenue, %")
    ax.barh(y - 0.2, cust, height=0.4, color="tab:grey", label="share of customers, %")
    for yi, r in zip(y, rev):
        ax.annotate(f"{r:.1f}%", (r, yi + 0.2), textcoords="offset points", xytext=(3, -3), fontsize=8)
    ax.set_yticks(y, names)
    ax.set_xlabel("%")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, out)


def plot_clv(values: np.ndarray, path: str | Path, *, title: str, label: str) -> Path:
    """Histogram of the customers' CLV (log-scaled counts: the distribution is very skewed)."""
    out = check_path(path)
    fig, (ax,) = _figure()
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size:
        ax.hist(v, bins=min(60, max(5, int(np.sqrt(v.size)))), color="tab:green", log=True)
        ax.axvline(float(np.mean(v)), color="tab:red", linestyle="--", label=f"mean {np.mean(v):,.2f}")
        ax.axvline(float(np.median(v)), color="black", linestyle=":", label=f"median {np.median(v):,.2f}")
        ax.legend(loc="upper right")
    ax.set_xlabel(label)
    ax.set_ylabel("customers (log scale)")
    ax.set_title(f"{title}\n{v.size:,} customers")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _save(fig, out)


def plot_validation(report: dict[str, Any], path: str | Path) -> Path:
    """Left: mean holdout repeat purchases by calibration repeats (actual vs each model).
    Right: cumulative repeat purchases per week through the holdout (actual vs each model)."""
    out = check_path(path)
    fig, (left, right) = _figure(1, 2, size=(12.0, 4.8))
    table = report["by_frequency"]
    labels = [row["frequency"] for row in table]
    x = np.arange(len(labels))
    left.plot(x, [row["actual_mean"] for row in table], color="black", marker="o", linewidth=2, label="actual")
    for name in report["tracking"]["predicted"]:
        left.plot(x, [row["predicted_means"][name] for row in table], marker=".", linestyle="--", label=name)
    left.set_xticks(x, labels)
    left.set_xlabel("repeat purchases in the calibration period")
    left.set_ylabel("mean repeat purchases in the holdout")
    left.set_title("Calibration vs holdout")
    left.legend()
    left.grid(True, alpha=0.3)
    tracking = report["tracking"]
    weeks = np.arange(1, len(tracking["actual"]) + 1)
    right.plot(weeks, tracking["actual"], color="black", linewidth=2, label="actual")
    for name, series in tracking["predicted"].items():
        right.plot(weeks, series, linestyle="--", label=name)
    right.set_xlabel("week of the holdout")
    right.set_ylabel("cumulative repeat purchases")
    right.set_title(f"Tracking, {report['calibration_end']} .. {report['holdout_end']}")
    right.legend()
    right.grid(True, alpha=0.3)
    fig.tight_layout()
    return _save(fig, out)


__all__ = ["check_path", "plot_clv", "plot_pyramid", "plot_validation"]
