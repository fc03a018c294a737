"""Population stability of a trained scorecard: is today's population still the one it learned from?

The population stability index compares two distributions over the same bins:
``PSI = sum((actual - expected) * ln(actual / expected))``, with empty bins floored at 0.0001 so a
bin that empties does not give an infinite index. The usual reading: below 0.1 stable, 0.1 to
0.25 watch, above 0.25 retrain. The score is compared over the training scores' deciles, each
feature over its bins (the Missing bin included); the training shares are in the model file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crm_credit.scorecard import ScorecardModel, _frame, bin_index, feature_points, load, read_table
from crmcore.errors import InvalidInput

FLOOR = 1e-4
STABLE, WATCH = 0.1, 0.25


def psi(expected: Any, actual: Any) -> float:
    e = np.maximum(np.asarray(expected, dtype=float), FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def status(value: float) -> str:
    return "stable" if value < STABLE else "watch" if value <= WATCH else "retrain"


def _shares(idx: NDArray[np.int64], n_bins: int) -> NDArray[np.float64]:
    counts = np.bincount(np.where(idx < 0, n_bins, idx), minlength=n_bins + 1)
    return counts / max(len(idx), 1)


def stability(model: ScorecardModel, columns: dict[str, Any], rows: int) -> dict[str, Any]:
    """PSI of the score and of every feature, for ``rows`` rows given as feature columns."""
    feats, total = [], np.zeros(rows)
    for f in model.features:
        vals = columns[f.name]
        total += feature_points(f, vals)
        v = psi(f.shares, _shares(bin_index(f, vals), len(f.points)))
        feats.append({"feature": f.name, "psi": round(v, 6), "status": status(v)})
    actual = np.bincount(np.searchsorted(np.asarray(model.score_edges), total, side="right"),
                         minlength=len(model.score_shares)) / rows
    overall = psi(model.score_shares, actual)
    return {"rows": rows, "psi": round(overall, 6), "status": status(overall),
            "features": sorted(feats, key=lambda d: -d["psi"])}


def monitor(model_path: str | Path, *, file: str | Path | None = None, uow: Any = None,
            fail_above: float = WATCH) -> dict[str, Any]:
    """Compare a file's rows (``file``) or the active customers (``uow``) with the training
    population. ``exceeded``: the score's or a feature's PSI is above ``fail_above``."""
    if not 0 < fail_above < 10:
        raise InvalidInput("--fail-above must be a PSI between 0 and 10 (0.25: retrain)")
    model, sha = load(model_path)
    if not model.score_shares or any(not f.shares for f in model.features):
        raise InvalidInput(f"{Path(model_path).name} has no training population (format version 1); retrain it to monitor it")
    if file is not None:
        df = read_table(file)
        missing = [f.name for f in model.features if f.name not in df.columns]
        if missing:
            raise InvalidInput(f"{Path(file).name} lacks the model's feature column(s) {', '.join(map(repr, missing))}")
        X, _ = _frame(df, [f.name for f in model.features], {f.name: f.type for f in model.features})
        columns, rows = {f.name: X[f.name].to_numpy() for f in model.features}, len(df)
        source = Path(file).name
    else:
        from crm_credit.scorecard_apply import customer_columns

        ids, columns = customer_columns(uow, model)
        rows, source = len(ids), "active customers"
        if not rows:
            raise InvalidInput("there are no active customers to compare with the training population")
    out = {"model": model.name, "sha256": sha, "source": source, "training_rows": model.n_rows,
           **stability(model, columns, rows), "fail_above": fail_above}
    out["exceeded"] = out["psi"] > fail_above or any(f["psi"] > fail_above for f in out["features"])
    return out
