"""Trained scorecards: weight-of-evidence binning (optbinning), logistic regression, points scaling.

``train`` screens the features, bins them with optbinning's optimal binning (numeric and
categorical, monotonic trends, minimum bin sizes), chooses the information-value threshold and the
regularisation by cross-validation on the training data (:mod:`crm_credit.scorecard_train`), fits
scikit-learn's logistic regression on the WoE values and scales it to points (``pdo`` points double the odds; ``base_score`` at ``base_odds``
good:bad), through optbinning's ``Scorecard``. The result is exported to a small, versioned JSON
file (split points, category groups, points per bin) that ``evaluate``, ``show`` and ``apply``
read without unpickling anything; the export is checked against optbinning's own scores before
it is written. ``evaluate`` reports AUC, Gini (2·AUC − 1, scikit-learn) and the KS statistic
(scipy) on held-out data, each with a bootstrap confidence interval. Format version 2 adds the
dropped features, the cross-validation result and the training population (for monitoring);
version 1 files still load.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crm_credit import scorecard_train as st
from crm_credit.scorecard_train import TrainSettings
from crmcore.errors import InvalidInput

FORMAT = "crm-credit-scorecard"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


class FeatureBins(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    type: Literal["numerical", "categorical"]
    splits: list[float] = Field(default_factory=list)  # numerical: bin i is [splits[i-1], splits[i])
    groups: list[list[str]] = Field(default_factory=list)  # categorical: the categories of each bin
    labels: list[str]
    points: list[float]
    missing_points: float
    iv: float
    shares: list[float] = Field(default_factory=list)  # training rows per bin, the Missing bin last (v2)


class ScorecardModel(BaseModel):
    """The model file. ``format`` and ``format_version`` tell a model from any other JSON."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["crm-credit-scorecard"]
    format_version: Literal[1, 2]
    name: str
    trained_at: dt.datetime
    target: str
    bad: str
    pdo: float
    base_score: float
    base_odds: float
    n_rows: int
    bad_rate: float
    features: list[FeatureBins]
    train_metrics: dict[str, float]
    library: str
    dropped: list[dict[str, str]] = Field(default_factory=list)
    cv: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    score_edges: list[float] = Field(default_factory=list)
    score_shares: list[float] = Field(default_factory=list)


# -- data ------------------------------------------------------------------------------------------

def read_table(path: str | Path) -> Any:
    import pandas as pd  # type: ignore[import-untyped]

    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"no such file: {p}")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{p.name} is not a readable CSV table: {str(e).strip().splitlines()[0]}") from None
    if df.empty:
        raise InvalidInput(f"{p.name} has no data rows")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _target(df: Any, target: str, bad: str, file: str) -> NDArray[np.int64]:
    if target not in df.columns:
        raise InvalidInput(f"{file} has no column {target!r} (columns: {', '.join(df.columns)})")
    col = df[target]
    if col.isna().any():
        raise InvalidInput(f"target column {target!r} is empty in {int(col.isna().sum())} row(s); every row needs an outcome")
    y = (col.astype(str).str.strip() == str(bad).strip()).to_numpy().astype(np.int64)
    if y.sum() == 0 or y.sum() == len(y):
        only = "bad" if y.sum() else "good"
        raise InvalidInput(f"target column {target!r} has one class only (every row is {only} for --bad {bad!r}); "
                           "a scorecard needs both good and bad outcomes")
    return y


def _frame(df: Any, features: list[str], kinds: dict[str, str] | None = None) -> tuple[Any, dict[str, str]]:
    """The feature columns typed: numeric where every non-empty value parses as a number."""
    import pandas as pd

    out = pd.DataFrame(index=df.index)
    found: dict[str, str] = {}
    for f in features:
        col = df[f]
        if col.isna().all():
            raise InvalidInput(f"feature column {f!r} is empty in every row; drop it or fill it")
        num = pd.to_numeric(col, errors="coerce")
        want = (kinds or {}).get(f)
        if want == "numerical" or (want is None and num.notna().sum() == col.notna().sum()):
            out[f] = num.astype(float)
            found[f] = "numerical"
        else:
            out[f] = col.astype(object).where(col.notna(), None)
            found[f] = "categorical"
    return out, found


# -- training --------------------------------------------------------------------------------------

def train(data: str | Path, target: str, bad: str, *, pdo: float = 20, base_score: float = 600, base_odds: float = 50,
          features: list[str] | None = None, name: str | None = None, settings: TrainSettings | None = None) -> ScorecardModel:
    """Screen, bin, select and regularise by cross-validation (:mod:`crm_credit.scorecard_train`),
    then export optbinning's scorecard to the model file format."""
    if not (pdo > 0 and base_odds > 0 and math.isfinite(base_score)):
        raise InvalidInput("--pdo and --base-odds must be positive, --base-score a number")
    s = settings or TrainSettings()
    df = read_table(data)
    file = Path(data).name
    y = _target(df, target, bad, file)
    cols = features or [c for c in df.columns if c != target]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InvalidInput(f"{file} has no column(s) {', '.join(map(repr, missing))}")
    if target in cols:
        raise InvalidInput(f"the target {target!r} cannot also be a feature")
    if not cols:
        raise InvalidInput(f"{file} has no feature columns besides the target {target!r}")
    if len(df) < 20:
        raise InvalidInput(f"{file} has {len(df)} rows; a scorecard needs at least 20")
    X, kinds = _frame(df, cols)
    fitted = st.select(X, y, cols, kinds, s)
    sc = st.scorecard(X, y, fitted, kinds, s, pdo, base_odds, base_score)
    import optbinning  # type: ignore[import-untyped]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optbinning's pandas deprecation notices are not the user's business
        feats = _export(sc, fitted, kinds)
        theirs = np.asarray(sc.score(X[fitted.kept]), dtype=float)
    model = ScorecardModel(format=FORMAT, format_version=FORMAT_VERSION, name=name or Path(str(data)).stem,
                           trained_at=dt.datetime.now(dt.UTC), target=target, bad=str(bad), pdo=pdo,
                           base_score=base_score, base_odds=base_odds, n_rows=len(df), bad_rate=float(y.mean()),
                           features=feats, train_metrics={}, library=f"optbinning {optbinning.__version__}",
                           dropped=fitted.dropped, cv=fitted.cv, settings=asdict(s))
    ours = score_frame(model, X)
    if not np.allclose(ours, theirs, atol=1e-6):  # the export must reproduce optbinning's scorecard exactly
        raise RuntimeError(f"scorecard export differs from optbinning by up to {np.abs(ours - theirs).max():.6f} points")
    model.train_metrics = metrics(ours, y)
    _training_population(model, X, ours)
    return model


def _export(sc: Any, fitted: st.Fitted, kinds: dict[str, str]) -> list[FeatureBins]:
    table = sc.table(style="detailed")
    feats: list[FeatureBins] = []
    for f in fitted.kept:
        rows = table[table["Variable"] == f]
        binned = sc.binning_process_.get_binned_variable(f)
        regular = rows[~rows["Bin"].astype(str).isin(["Special", "Missing"])]
        missing_pts = float(rows[rows["Bin"].astype(str) == "Missing"]["Points"].iloc[0])
        labels = [str(b) if not isinstance(b, (list, np.ndarray)) else "[" + ", ".join(map(str, b)) + "]" for b in regular["Bin"]]
        entry: dict[str, Any] = {"name": f, "type": kinds[f], "labels": labels, "points": [float(p) for p in regular["Points"]],
                                 "missing_points": missing_pts, "iv": fitted.iv[f]}
        if kinds[f] == "numerical":
            entry["splits"] = [float(x) for x in binned.splits]
        else:
            entry["groups"] = [[str(v) for v in g] for g in binned.splits]
        feats.append(FeatureBins(**entry))
    return feats


def _training_population(model: ScorecardModel, X: Any, scores: NDArray[np.float64]) -> None:
    """What monitoring compares with: each feature's share of rows per bin (missing last) and
    the score's deciles with their shares."""
    for f in model.features:
        idx = bin_index(f, X[f.name].to_numpy())
        counts = np.bincount(np.where(idx < 0, len(f.points), idx), minlength=len(f.points) + 1)
        f.shares = (counts / len(idx)).round(6).tolist()
    # deciles moved halfway to the next score: scores take few distinct values, none may sit on an edge
    distinct = np.unique(scores)
    q = np.unique(np.quantile(scores, np.linspace(0.1, 0.9, 9)))
    nxt = np.searchsorted(distinct, q, side="right")
    edges = np.unique(np.where(nxt < len(distinct), (q + distinct[np.minimum(nxt, len(distinct) - 1)]) / 2, q))
    counts = np.bincount(np.searchsorted(edges, scores, side="right"), minlength=len(edges) + 1)
    model.score_edges, model.score_shares = edges.tolist(), (counts / len(scores)).round(6).tolist()


def save(model: ScorecardModel, output: str | Path) -> str:
    p = Path(output)
    if p.exists() and p.is_dir():
        raise InvalidInput(f"{p} is a directory; give a file name for the model")
    if not p.parent.exists():
        raise InvalidInput(f"directory {p.parent} does not exist")
    text = model.model_dump_json(indent=2)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(p)  # never a half-written model file
    return hashlib.sha256(text.encode()).hexdigest()


def load(path: str | Path) -> tuple[ScorecardModel, str]:
    """The model and the SHA-256 of its file; anything else is one clear error."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"no such model file: {p}")
    raw = p.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput(f"{p.name} is not a scorecard model (not JSON); train one with `crm credit scorecard train`") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput(f"{p.name} is not a scorecard model (no \"format\": \"{FORMAT}\")")
    if data.get("format_version") not in READABLE_VERSIONS:
        raise InvalidInput(f"{p.name} is a scorecard of format version {data.get('format_version')!r}; this plugin reads "
                           f"{' and '.join(map(str, READABLE_VERSIONS))}")
    try:
        model = ScorecardModel.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        raise InvalidInput(f"{p.name} is a damaged scorecard model: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    for f in model.features:
        n = len(f.splits) + 1 if f.type == "numerical" else len(f.groups)
        if len(f.points) != n or (f.shares and len(f.shares) != n + 1):
            raise InvalidInput(f"{p.name} is a damaged scorecard model: feature {f.name!r} has {len(f.points)} points for {n} bins")
    return model, hashlib.sha256(raw).hexdigest()


# -- scoring and metrics ---------------------------------------------------------------------------

def bin_index(f: FeatureBins, values: Any) -> NDArray[np.int64]:
    """The bin of each value; -1 for the Missing bin (None/NaN, and an unseen category)."""
    if f.type == "numerical":
        x = np.asarray(values, dtype=float)
        idx = np.searchsorted(np.asarray(f.splits, dtype=float), x, side="right")
        return np.where(np.isnan(x), -1, np.minimum(idx, len(f.points) - 1)).astype(np.int64)
    lookup = {cat: i for i, g in enumerate(f.groups) for cat in g}
    out = np.empty(len(values), dtype=np.int64)
    for k, v in enumerate(values):
        i = None if v is None or (isinstance(v, float) and math.isnan(v)) else lookup.get(str(v))
        out[k] = -1 if i is None else i
    return out


def feature_points(f: FeatureBins, values: Any) -> NDArray[np.float64]:
    """Points of one feature for an array of values (the Missing bin's for missing ones)."""
    idx = bin_index(f, values)
    return np.where(idx < 0, f.missing_points, np.asarray(f.points, dtype=float)[np.maximum(idx, 0)])


def score_frame(model: ScorecardModel, X: Any) -> NDArray[np.float64]:
    total = np.zeros(len(X))
    for f in model.features:
        total += feature_points(f, X[f.name].to_numpy())
    return total


def metrics(scores: NDArray[np.float64], y_bad: NDArray[np.int64]) -> dict[str, float]:
    from scipy.stats import ks_2samp  # type: ignore[import-untyped]
    from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

    auc = float(roc_auc_score(y_bad, -scores))  # a higher score means a better (less risky) customer
    ks = float(ks_2samp(scores[y_bad == 0], scores[y_bad == 1], method="asymp").statistic)  # the statistic; no p-value needed
    return {"auc": round(auc, 6), "gini": round(2 * auc - 1, 6), "ks": round(ks, 6)}


def _auc_ks(scores: NDArray[np.float64], y_bad: NDArray[np.int64]) -> tuple[float, float]:
    """AUC (bad ranked below good) and KS by ranks, without scikit-learn's checks: the bootstrap
    calls it a thousand times. Agrees with :func:`metrics` (a test says so)."""
    from scipy.stats import rankdata

    nb = int(y_bad.sum())
    ng = len(y_bad) - nb
    r = rankdata(-scores)
    auc = (r[y_bad == 1].sum() - nb * (nb + 1) / 2) / (nb * ng)
    grid = np.unique(scores)
    cdf_g = np.searchsorted(np.sort(scores[y_bad == 0]), grid, side="right") / ng
    cdf_b = np.searchsorted(np.sort(scores[y_bad == 1]), grid, side="right") / nb
    return float(auc), float(np.abs(cdf_g - cdf_b).max())


def bootstrap(scores: NDArray[np.float64], y_bad: NDArray[np.int64], n: int = 1000, level: float = 0.95,
              seed: int = 0) -> dict[str, list[float]]:
    """Percentile bootstrap intervals of AUC, Gini and KS: rows drawn with replacement within each
    outcome (so every resample has both classes, as the data had)."""
    rng = np.random.default_rng(seed)
    good, bad = np.flatnonzero(y_bad == 0), np.flatnonzero(y_bad == 1)
    aucs, kss = np.empty(n), np.empty(n)
    for k in range(n):
        idx = np.concatenate([rng.choice(good, len(good)), rng.choice(bad, len(bad))])
        aucs[k], kss[k] = _auc_ks(scores[idx], y_bad[idx])
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2

    def ci(v: NDArray[np.float64]) -> list[float]:
        return [round(float(np.quantile(v, lo)), 6), round(float(np.quantile(v, hi)), 6)]

    return {"auc": ci(aucs), "gini": ci(2 * aucs - 1), "ks": ci(kss)}


def evaluate(model_path: str | Path, data: str | Path, target: str, bad: str, *, resamples: int = 1000,
             level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """AUC, Gini and KS on (held-out) data with bootstrap intervals, and the features the model
    dropped in training (and why)."""
    if not 0 < level < 1:
        raise InvalidInput("--level must be between 0 and 1 (e.g. 0.95)")
    if not 0 <= resamples <= 100_000:
        raise InvalidInput("--bootstrap must be between 0 and 100000 resamples")
    model, sha = load(model_path)
    df = read_table(data)
    file = Path(data).name
    y = _target(df, target, bad, file)
    missing = [f.name for f in model.features if f.name not in df.columns]
    if missing:
        raise InvalidInput(f"{file} lacks the model's feature column(s) {', '.join(map(repr, missing))}")
    X, _ = _frame(df, [f.name for f in model.features], {f.name: f.type for f in model.features})
    s = score_frame(model, X)
    out = {"model": model.name, "sha256": sha, "rows": len(df), "bad_rate": round(float(y.mean()), 6), **metrics(s, y)}
    if resamples:
        out["ci"] = bootstrap(s, y, resamples, level, seed) | {"level": level, "resamples": resamples}
    out["features"] = [f.name for f in model.features]
    out["dropped"] = model.dropped
    return out


def points_table(model: ScorecardModel) -> list[dict[str, Any]]:
    rows = []
    for f in model.features:
        for label, pts in zip(f.labels, f.points):
            rows.append({"feature": f.name, "bin": label, "points": round(pts, 2), "iv": round(f.iv, 4)})
        rows.append({"feature": f.name, "bin": "Missing", "points": round(f.missing_points, 2), "iv": round(f.iv, 4)})
    return rows


# -- reason codes ---------------------------------------------------------------------------------

def points_matrix(model: ScorecardModel, columns: dict[str, Any]) -> NDArray[np.float64]:
    """Points of every row (rows) for every feature (columns, in the model's order)."""
    return np.column_stack([feature_points(f, columns[f.name]) for f in model.features]) if model.features else np.zeros((0, 0))


def reason_codes(model: ScorecardModel, pts: NDArray[np.float64], top: int = 4) -> list[list[dict[str, Any]]]:
    """For each row, the features that cost the most points against their best bin, largest loss
    first (ties in the model's feature order), at most ``top``; a feature at its best bin is
    no reason. What a lender tells a refused applicant (adverse action reasons)."""
    if not len(pts):
        return []
    best = np.array([max(f.points) for f in model.features])
    loss = np.round(best[None, :] - pts, 2)
    order = np.argsort(-loss, axis=1, kind="stable")[:, :top]
    names = [f.name for f in model.features]
    out = []
    for i in range(len(pts)):
        out.append([{"feature": names[j], "points_lost": float(loss[i, j])} for j in order[i] if loss[i, j] > 0])
    return out
