"""Trained scorecards: weight-of-evidence binning (optbinning), logistic regression, points scaling.

``train`` bins every feature with optbinning's optimal binning (numeric and categorical),
reports each feature's information value, fits scikit-learn's logistic regression on the WoE
values and scales it to points (``pdo`` points double the odds; ``base_score`` at ``base_odds``
good:bad), through optbinning's ``Scorecard``. The result is exported to a small, versioned JSON
file (split points, category groups, points per bin) that ``evaluate``, ``show`` and ``apply``
read without unpickling anything; the export is checked against optbinning's own scores before
it is written. ``evaluate`` reports AUC, Gini (2·AUC − 1, scikit-learn) and the KS statistic
(scipy) on held-out data.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crmcore.errors import InvalidInput

FORMAT = "crm-credit-scorecard"
FORMAT_VERSION = 1


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


class ScorecardModel(BaseModel):
    """The model file. ``format`` and ``format_version`` tell a model from any other JSON."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["crm-credit-scorecard"]
    format_version: Literal[1]
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


# -- data ------------------------------------------------------------------------------------------

def read_table(path: str | Path) -> Any:
    import pandas as pd

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
          features: list[str] | None = None, name: str | None = None) -> ScorecardModel:
    if not (pdo > 0 and base_odds > 0 and math.isfinite(base_score)):
        raise InvalidInput("--pdo and --base-odds must be positive, --base-score a number")
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

    import optbinning
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression

    bp = BinningProcess(variable_names=cols, categorical_variables=[c for c in cols if kinds[c] == "categorical"])
    sc = Scorecard(binning_process=bp, estimator=LogisticRegression(max_iter=1000), scaling_method="pdo_odds",
                   scaling_method_params={"pdo": pdo, "odds": base_odds, "scorecard_points": base_score})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optbinning's pandas deprecation notices are not the user's business
        try:
            sc.fit(X, y)
        except ValueError as e:
            raise InvalidInput(f"cannot fit a scorecard on {file}: {str(e).splitlines()[0]}") from None
        table = sc.table(style="detailed")
        summary = sc.binning_process_.summary().set_index("name")
        theirs = np.asarray(sc.score(X), dtype=float)
    feats: list[FeatureBins] = []
    for f in cols:
        rows = table[table["Variable"] == f]
        binned = sc.binning_process_.get_binned_variable(f)
        regular = rows[~rows["Bin"].astype(str).isin(["Special", "Missing"])]
        missing_pts = float(rows[rows["Bin"].astype(str) == "Missing"]["Points"].iloc[0])
        labels = [str(b) if not isinstance(b, (list, np.ndarray)) else "[" + ", ".join(map(str, b)) + "]" for b in regular["Bin"]]
        entry: dict[str, Any] = {"name": f, "type": kinds[f], "labels": labels, "points": [float(p) for p in regular["Points"]],
                                 "missing_points": missing_pts, "iv": float(summary.loc[f, "iv"])}
        if kinds[f] == "numerical":
            entry["splits"] = [float(x) for x in binned.splits]
        else:
            entry["groups"] = [[str(v) for v in g] for g in binned.splits]
        feats.append(FeatureBins(**entry))
    model = ScorecardModel(format=FORMAT, format_version=FORMAT_VERSION, name=name or Path(str(data)).stem,
                           trained_at=dt.datetime.now(dt.UTC), target=target, bad=str(bad), pdo=pdo,
                           base_score=base_score, base_odds=base_odds, n_rows=len(df), bad_rate=float(y.mean()),
                           features=feats, train_metrics={}, library=f"optbinning {optbinning.__version__}")
    ours = score_frame(model, X)
    if not np.allclose(ours, theirs, atol=1e-6):  # the export must reproduce optbinning's scorecard exactly
        raise RuntimeError(f"scorecard export differs from optbinning by up to {np.abs(ours - theirs).max():.6f} points")
    model.train_metrics = metrics(ours, y)
    return model


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
    if data.get("format_version") != FORMAT_VERSION:
        raise InvalidInput(f"{p.name} is a scorecard of format version {data.get('format_version')!r}; this plugin reads {FORMAT_VERSION}")
    try:
        model = ScorecardModel.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        raise InvalidInput(f"{p.name} is a damaged scorecard model: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    for f in model.features:
        n = len(f.splits) + 1 if f.type == "numerical" else len(f.groups)
        if len(f.points) != n:
            raise InvalidInput(f"{p.name} is a damaged scorecard model: feature {f.name!r} has {len(f.points)} points for {n} bins")
    return model, hashlib.sha256(raw).hexdigest()


# -- scoring and metrics ---------------------------------------------------------------------------

def feature_points(f: FeatureBins, values: Any) -> NDArray[np.float64]:
    """Points of one feature for an array of values (None/NaN -> the Missing bin; an unseen
    category gets the Missing points too)."""
    pts = np.asarray(f.points, dtype=float)
    if f.type == "numerical":
        x = np.asarray(values, dtype=float)
        idx = np.searchsorted(np.asarray(f.splits, dtype=float), x, side="right")
        return np.where(np.isnan(x), f.missing_points, pts[np.minimum(idx, len(pts) - 1)])
    lookup = {cat: i for i, g in enumerate(f.groups) for cat in g}
    out = np.empty(len(values), dtype=float)
    for k, v in enumerate(values):
        i = None if v is None or (isinstance(v, float) and math.isnan(v)) else lookup.get(str(v))
        out[k] = f.missing_points if i is None else pts[i]
    return out


def score_frame(model: ScorecardModel, X: Any) -> NDArray[np.float64]:
    total = np.zeros(len(X))
    for f in model.features:
        total += feature_points(f, X[f.name].to_numpy())
    return total


def metrics(scores: NDArray[np.float64], y_bad: NDArray[np.int64]) -> dict[str, float]:
    from scipy.stats import ks_2samp
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(y_bad, -scores))  # a higher score means a better (less risky) customer
    ks = float(ks_2samp(scores[y_bad == 0], scores[y_bad == 1], method="asymp").statistic)  # the statistic; no p-value needed
    return {"auc": round(auc, 6), "gini": round(2 * auc - 1, 6), "ks": round(ks, 6)}


def evaluate(model_path: str | Path, data: str | Path, target: str, bad: str) -> dict[str, Any]:
    model, sha = load(model_path)
    df = read_table(data)
    file = Path(data).name
    y = _target(df, target, bad, file)
    missing = [f.name for f in model.features if f.name not in df.columns]
    if missing:
        raise InvalidInput(f"{file} lacks the model's feature column(s) {', '.join(map(repr, missing))}")
    X, _ = _frame(df, [f.name for f in model.features], {f.name: f.type for f in model.features})
    s = score_frame(model, X)
    return {"model": model.name, "sha256": sha, "rows": len(df), "bad_rate": round(float(y.mean()), 6), **metrics(s, y)}


def points_table(model: ScorecardModel) -> list[dict[str, Any]]:
    rows = []
    for f in model.features:
        for label, pts in zip(f.labels, f.points):
            rows.append({"feature": f.name, "bin": label, "points": round(pts, 2), "iv": round(f.iv, 4)})
        rows.append({"feature": f.name, "bin": "Missing", "points": round(f.missing_points, 2), "iv": round(f.iv, 4)})
    return rows


# -- applying a model to the customers ------------------------------------------------------------

CORE_COLUMNS = ("kind", "country", "region", "industry", "lifecycle_stage")


def _numeric(values: list[Any]) -> NDArray[np.float64]:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None or isinstance(v, bool):
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            pass
    return out


def apply(uow: Any, path: str | Path) -> dict[str, Any]:
    """Score every active customer with the model: its features are the credit factors (by name),
    the customer's core columns (kind, country, region, industry, lifecycle_stage) or its custom
    attributes. Records the model (a row naming the file, versioned per model name) and the scores."""
    from sqlalchemy import delete, func, insert, select

    from crm_credit.models import CreditModel, CreditModelScore
    from crm_credit.scoring import FACTORS, compute_features
    from crm_credit.settings import settings
    from crmcore.db.types import utcnow
    from crmcore.models import Customer

    uow.require("credit.scorecard")
    model, sha = load(path)
    sess = uow.session
    rows = sess.execute(select(Customer.id, Customer.kind, Customer.country, Customer.region, Customer.industry,
                               Customer.lifecycle_stage, Customer.attributes)
                        .where(Customer.archived.is_(False)).order_by(Customer.id)).all()
    ids = [r[0] for r in rows]
    factor_values: dict[str, Any] = {}
    if any(f.name in FACTORS for f in model.features):
        fids, _, feats = compute_features(sess, settings(uow), utcnow().date())
        assert fids.tolist() == ids
        factor_values = feats
    total = np.zeros(len(ids))
    for f in model.features:
        if f.name in factor_values:
            raw: list[Any] = factor_values[f.name].tolist()
        elif f.name in CORE_COLUMNS:
            k = 1 + CORE_COLUMNS.index(f.name)
            raw = [None if r[k] is None else str(getattr(r[k], "value", r[k])) for r in rows]
        else:
            raw = [(r[6] or {}).get(f.name) for r in rows]
            if rows and all(v is None for v in raw):
                raise InvalidInput(f"model feature {f.name!r} is neither a credit factor, a customer column nor an "
                                   "attribute any customer has")
        total += feature_points(f, _numeric(raw) if f.type == "numerical" else raw)
    now = utcnow()
    m = sess.scalar(select(CreditModel).where(CreditModel.sha256 == sha))
    if m is None:
        version = (sess.scalar(select(func.max(CreditModel.version)).where(CreditModel.name == model.name)) or 0) + 1
        m = CreditModel(name=model.name, version=version, path=str(Path(path).resolve()), sha256=sha,
                        trained_at=model.trained_at, features=[f.name for f in model.features],
                        metrics=model.train_metrics, applied_at=now, applied_by=uow.actor, n_scored=len(ids))
        sess.add(m)
    else:
        m.applied_at, m.applied_by, m.n_scored, m.path = now, uow.actor, len(ids), str(Path(path).resolve())
    sess.flush()
    sess.execute(delete(CreditModelScore).where(CreditModelScore.model_id == m.id))
    scores = total.round(2).tolist()
    for i in range(0, len(ids), 5000):
        sess.execute(insert(CreditModelScore), [{"model_id": m.id, "customer_id": c, "score": v, "scored_at": now}
                                                for c, v in zip(ids[i:i + 5000], scores[i:i + 5000])])
    uow.audit.record("apply", "credit_model", m.id, after={"name": m.name, "version": m.version, "sha256": sha,
                                                           "n_scored": len(ids)})
    return {"model_id": m.id, "name": m.name, "version": m.version, "sha256": sha, "scored": len(ids),
            "mean_score": round(float(total.mean()), 2) if len(ids) else None}
