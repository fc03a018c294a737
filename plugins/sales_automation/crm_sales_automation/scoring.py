"""Lead scores: the hand-set five-factor assessment, and an optional learned score.

Five-factor score (what a rep sets by hand): each factor scored 0..5, combined as
``100 * sum(w_f * points_f / 5) / sum(w)``; a factor not assessed counts 0 points and is shown
as such. Every factor's contribution is returned so ``crm sales lead show`` can explain it.

Learned score (optional, like Odoo's predictive lead scoring): a categorical naive Bayes model
over lead fields, fitted on closed leads (converted = 1, disqualified = 0) with scikit-learn's
``CategoricalNB``. Its parameters are stored as JSON (table ``sales_models``), and scores are
recomputed from them with NumPy, so each field's contribution -- the log-odds it adds,
``log P(x|converted) - log P(x|disqualified)`` -- can be shown next to the score at any time.
The learned score lives in its own column and never changes the hand-set assessment.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from crm_sales_automation.enums import FACTOR_LABELS, Factor, LeadSource

NOT_ASSESSED = 6  # category of a factor without points (points are 0..5)
MIN_TRAINING = 10


@dataclass(frozen=True)
class FactorLine:
    factor: str
    label: str
    points: int | None
    weight: float
    contribution: float  # points out of the 100
    max_contribution: float
    note: str | None


def five_factor(points: Mapping[str, int | None], weights: Mapping[str, float],
                notes: Mapping[str, str | None] | None = None) -> tuple[float, list[FactorLine]]:
    """The 0..100 score of a lead and each factor's share of it."""
    total = sum(weights[f.value] for f in Factor)
    lines = []
    for f in Factor:
        w = weights[f.value]
        p = points.get(f.value)
        share = 100.0 * w / total
        lines.append(FactorLine(f.value, FACTOR_LABELS[f], p, w, share * (p or 0) / 5.0, share,
                                (notes or {}).get(f.value)))
    return round(sum(x.contribution for x in lines), 1), lines


# -- learned score: categorical naive Bayes ---------------------------------------------------------

#: Lead fields the model sees, with their categories (index = encoded value).
FIELDS: dict[str, list[str]] = {
    "source": [s.value for s in LeadSource],
    "company": ["no", "yes"],
    "contact_details": ["none", "email", "phone", "both"],
    **{f"{f.value}": [str(i) for i in range(6)] + ["not assessed"] for f in Factor},
}


def encode(source: str, company: bool, email: bool, phone: bool, points: Mapping[str, int | None]) -> list[int]:
    """One lead as the model's category indices, in :data:`FIELDS` order."""
    sources = FIELDS["source"]  # a word crm.toml added to lead_sources counts as "other" for the model
    row = [sources.index(source) if source in sources else sources.index("other"), int(company), int(email) + 2 * int(phone)]
    for f in Factor:
        p = points.get(f.value)
        row.append(NOT_ASSESSED if p is None else int(p))
    return row


def fit(X: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> dict[str, Any]:
    """Fit ``CategoricalNB`` on encoded leads; returns its parameters as JSON-ready data."""
    from sklearn.naive_bayes import CategoricalNB  # type: ignore[import-untyped,unused-ignore]

    if X.shape[0] < MIN_TRAINING:
        raise ValueError(f"needs at least {MIN_TRAINING} closed leads (converted or disqualified), found {X.shape[0]}")
    if len(set(y.tolist())) < 2:
        raise ValueError("needs both converted and disqualified leads to learn from")
    model = CategoricalNB(alpha=alpha, min_categories=[len(c) for c in FIELDS.values()])
    model.fit(X, y)
    classes = model.classes_.tolist()
    pos, neg = classes.index(1), classes.index(0)
    return {
        "fields": list(FIELDS),
        "categories": FIELDS,
        "alpha": alpha,
        "class_log_prior": [float(model.class_log_prior_[neg]), float(model.class_log_prior_[pos])],
        "feature_log_prob": [[flp[neg].tolist(), flp[pos].tolist()] for flp in model.feature_log_prob_],
        "class_count": [int(model.class_count_[neg]), int(model.class_count_[pos])],
    }


def predict(params: Mapping[str, Any], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P(converted) per row, per-field log-odds contributions [rows x fields]) from stored params."""
    prior = np.asarray(params["class_log_prior"], dtype=float)
    contrib = np.zeros((X.shape[0], X.shape[1]))
    for j, flp in enumerate(params["feature_log_prob"]):
        neg, pos = np.asarray(flp[0]), np.asarray(flp[1])
        contrib[:, j] = pos[X[:, j]] - neg[X[:, j]]
    logit = (prior[1] - prior[0]) + contrib.sum(axis=1)
    return 1.0 / (1.0 + np.exp(-logit)), contrib


def explain(params: Mapping[str, Any], row: Sequence[int]) -> dict[str, Any]:
    """The learned score of one lead with the prior and every field's contribution (log-odds)."""
    p, contrib = predict(params, np.asarray([row], dtype=np.int64))
    prior = params["class_log_prior"]
    fields = params["fields"]
    cats = params["categories"]
    return {
        "score": round(100 * float(p[0]), 1),
        "prior_log_odds": round(prior[1] - prior[0], 3),
        "contributions": [{"field": f, "value": cats[f][row[j]], "log_odds": round(float(contrib[0, j]), 3)}
                          for j, f in enumerate(fields)],
    }


def logit(p: float) -> float:
    return math.log(p / (1 - p))
