"""Trained scorecards on the CRM's customers: their feature values, applying a model (scores and
reason codes recorded), and the reads every face shows (CLI, API, the 360° credit section).

A model feature is, by name, a credit factor (:data:`crm_credit.scoring.FACTORS`), a customer
column (kind, country, region, industry, lifecycle_stage) or a custom attribute.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crm_credit.scorecard import ScorecardModel, load, points_matrix, reason_codes
from crmcore.errors import InvalidInput

CORE_COLUMNS = ("kind", "country", "region", "industry", "lifecycle_stage")
INSERT_CHUNK = 5000


def _numeric(values: list[Any]) -> NDArray[np.float64]:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None or isinstance(v, bool):
            continue
        with contextlib.suppress(TypeError, ValueError):  # not a number: the Missing bin
            out[i] = float(v)
    return out


def customer_columns(uow: Any, model: ScorecardModel) -> tuple[list[int], dict[str, Any]]:
    """The active customers (by id) and, per model feature, their values (NumPy floats for a
    numerical feature, a list for a categorical one)."""
    from sqlalchemy import select

    from crm_credit.scoring import FACTORS, compute_features
    from crm_credit.settings import settings
    from crmcore.db.types import utcnow
    from crmcore.models import Customer

    sess = uow.session
    rows = sess.execute(select(Customer.id, Customer.kind, Customer.country, Customer.region, Customer.industry,
                               Customer.lifecycle_stage, Customer.attributes)
                        .where(Customer.archived.is_(False)).order_by(Customer.id)).all()
    ids = [r[0] for r in rows]
    factor_values: dict[str, Any] = {}
    if any(f.name in FACTORS for f in model.features):
        fids, _, feats = compute_features(sess, settings(uow), utcnow().date(), uow=uow)
        if fids.tolist() != ids:
            raise RuntimeError("the credit factors and the customers disagree on who is active")
        factor_values = feats
    cols: dict[str, Any] = {}
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
        cols[f.name] = _numeric(raw) if f.type == "numerical" else raw
    return ids, cols


def apply(uow: Any, path: str | Path, *, top: int = 4, lowest: int = 10) -> dict[str, Any]:
    """Score every active customer with the model and record the model (a row naming the file,
    versioned per model name), the scores and each score's reason codes."""
    from sqlalchemy import delete, func, insert, select

    from crm_credit.models import CreditModel, CreditModelScore
    from crmcore.db.types import utcnow

    uow.require("credit.scorecard")
    if not 1 <= top <= 20:
        raise InvalidInput("--reasons must be between 1 and 20")
    model, sha = load(path)
    sess = uow.session
    ids, cols = customer_columns(uow, model)
    pts = points_matrix(model, cols) if ids else np.zeros((0, len(model.features)))
    total = pts.sum(axis=1) if len(ids) else np.zeros(0)
    reasons = reason_codes(model, pts, top)
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
    for i in range(0, len(ids), INSERT_CHUNK):
        sess.execute(insert(CreditModelScore), [{"model_id": m.id, "customer_id": c, "score": v, "reasons": r, "scored_at": now}
                                                for c, v, r in zip(ids[i:i + INSERT_CHUNK], scores[i:i + INSERT_CHUNK],
                                                                   reasons[i:i + INSERT_CHUNK])])
    uow.audit.record("apply", "credit_model", m.id, after={"name": m.name, "version": m.version, "sha256": sha,
                                                           "n_scored": len(ids)})
    worst = np.argsort(total, kind="stable")[:lowest].tolist()
    return {"model_id": m.id, "name": m.name, "version": m.version, "sha256": sha, "scored": len(ids),
            "mean_score": round(float(total.mean()), 2) if len(ids) else None,
            "first_reasons": dict(Counter(r[0]["feature"] for r in reasons if r).most_common()),
            "lowest": [{"customer_id": ids[i], "score": scores[i], "reasons": reasons[i]} for i in worst]}


def customer_model_scores(uow: Any, customer_id: int) -> list[dict[str, Any]]:
    """The customer's score under the latest applied version of each model, with its reason codes.
    The caller has checked the customer is visible."""
    from sqlalchemy import select

    from crm_credit.models import CreditModel, CreditModelScore

    rows = uow.session.execute(
        select(CreditModel.name, CreditModel.version, CreditModelScore.score, CreditModelScore.reasons,
               CreditModelScore.scored_at)
        .join(CreditModelScore, CreditModelScore.model_id == CreditModel.id)
        .where(CreditModelScore.customer_id == customer_id)
        .order_by(CreditModel.name, CreditModel.version.desc())).all()
    out: dict[str, dict[str, Any]] = {}
    for name, version, score, reasons, at in rows:
        out.setdefault(name, {"model": name, "version": version, "score": score, "reasons": reasons or [], "scored_at": at})
    return list(out.values())


def reason_line(reasons: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['feature']} (-{r['points_lost']:g})" for r in reasons) or "nothing (every feature at its best bin)"


def profile_fields(uow: Any, customer_id: int) -> dict[str, str]:
    """Fields for the 360° credit section: one per applied model, its score and what lowered it."""
    return {f"scorecard {s['model']} v{s['version']}": f"{s['score']:g}; lowered by: {reason_line(s['reasons'])}"
            for s in customer_model_scores(uow, customer_id)}
