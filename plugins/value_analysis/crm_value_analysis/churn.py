"""Churn risk that says how it was decided: the purchase model when it holds, else a gap rule.

The **gap rule** is what a salesperson would say: a customer silent for longer than
``churn_gap_factor`` (default 2) times its usual gap between purchases is at risk. The usual
gap is the customer's own ((last - first) / (purchase days - 1)) once it bought on at least
two days, else the business's (the median of the repeat buyers' gaps).

The **model** (P(alive) < ``churn_threshold``) is used when its fit converged *and* purchases
arrive at random, as the models assume (:func:`regularity`). When they come like clockwork --
yearly fairs, monthly payments -- a Poisson model reads a missed order as a slow customer (the
exhibition organiser: 40 % gone, the model found nobody) and the rule decides. Either way the
run records the method, why, and how far the two agreed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
#: The model's flags must cover at least this share of the rule's, and this share of the model's
#: flags must be customers the rule also sees silent for longer than their usual gap.
MIN_AGREEMENT = 0.5
ACTIVE_STAGES = ("exploration", "formation", "stability")


@dataclass(frozen=True)
class GapRule:
    """The rule's flags (NaN for customers without purchases) and the gaps behind them (days)."""

    at_risk: FloatArray
    silent_ratio: FloatArray  # days since the last purchase / usual gap
    business_gap: float | None
    factor: float


def gap_rule(first_day: FloatArray, last_day: FloatArray, purchase_days: NDArray[Any], cut_day: int,
             factor: float) -> GapRule:
    """Flag customers silent for more than ``factor`` x their usual gap between purchases."""
    buyer = purchase_days > 0
    repeat = purchase_days >= 2
    with np.errstate(invalid="ignore", divide="ignore"):
        own = np.where(repeat, (last_day - first_day) / np.maximum(purchase_days - 1, 1), np.nan)
    business = float(np.median(own[repeat])) if repeat.any() else None
    gap = np.where(repeat, own, np.nan if business is None else business)
    gap = np.maximum(gap, 1.0)  # two purchases a day apart: a gap of one day, never zero
    silent = np.where(buyer, cut_day - last_day, np.nan)
    ratio = silent / gap
    at_risk = np.where(buyer & np.isfinite(ratio), ratio > factor, np.nan)
    return GapRule(at_risk=at_risk.astype(np.float64), silent_ratio=ratio, business_gap=business, factor=factor)


@dataclass
class ChurnDecision:
    """The churn risk of every customer (NaN: no purchases) and how it was decided."""

    method: str  # "model" or "gap_rule"
    reason: str
    at_risk: FloatArray
    agreement: dict[str, Any] = field(default_factory=dict)

    @property
    def use_model(self) -> bool:
        return self.method == "model"


def _share(a: int, b: int) -> float | None:
    return None if b == 0 else a / b


def regularity(days_last: NDArray[Any], days_prev: NDArray[Any], first_day: FloatArray, cut_day: int,
               window: int) -> tuple[float | None, int]:
    """How much purchase counts vary between the last two trend windows, relative to a Poisson process.

    Over the customers who bought in both full windows, sum (last - previous)^2 and divide by what a
    Poisson process at each customer's rate would give (twice the variance of a Poisson count given
    it is at least one). About 1: purchases arrive at random, as the purchase models assume; near 0:
    they come like clockwork (yearly fairs, monthly payments), where a long silence means more than
    the models can tell. None when fewer than 20 customers qualify.
    """
    both = (days_last > 0) & (days_prev > 0) & (first_day <= cut_day - 2 * window)
    if int(both.sum()) < 20:
        return None, int(both.sum())
    a, b = days_last[both].astype(np.float64), days_prev[both].astype(np.float64)
    lam = (a + b) / 2.0
    norm = -np.expm1(-lam)
    m1, m2 = lam / norm, (lam + lam * lam) / norm
    expected = float((2.0 * (m2 - m1 * m1)).sum())
    return (float(((a - b) ** 2).sum()) / expected if expected > 0 else None), int(both.sum())


#: Purchases count as regular when their counts vary less than this share of a Poisson process's.
REGULAR_BELOW = 0.5


def decide(p_alive: FloatArray, rule: GapRule, threshold: float, model_title: str | None,
           model_failure: str | None, regular: float | None = None) -> ChurnDecision:
    """The model's churn risk when its fit converged and purchases arrive at random (the model's
    assumption), else the gap rule's. ``regular``: :func:`regularity` (None: unknown)."""
    rule_flags = rule.at_risk == 1
    rule_text = f"silent for more than {rule.factor:g}x their usual gap between purchases"
    if model_title is None or not np.isfinite(p_alive).any():
        why = model_failure or "no purchase model was fitted"
        return ChurnDecision("gap_rule", f"{why}; churn risk: customers {rule_text}", rule.at_risk)
    model_flags = np.isfinite(p_alive) & (p_alive < threshold)
    both = int((model_flags & rule_flags).sum())
    n_rule, n_model = int(rule_flags.sum()), int(model_flags.sum())
    agreement = {"rule_at_risk": n_rule, "model_at_risk": n_model, "both": both,
                 "model_covers_rule": _share(both, n_rule), "rule_covers_model": _share(both, n_model),
                 "regularity": regular}
    if regular is not None and regular < REGULAR_BELOW:
        reason = (f"purchases come at regular intervals (their counts vary {regular:.2f}x as much as at random, "
                  f"which {model_title} assumes); it would flag {n_model:,}, the gap rule flags {n_rule:,} "
                  f"customers {rule_text}")
        return ChurnDecision("gap_rule", reason, rule.at_risk, agreement)
    covers = agreement["model_covers_rule"]
    if regular is None and n_rule and covers is not None and covers < MIN_AGREEMENT / 5:
        reason = (f"{model_title} calls alive {n_rule - both:,} of the {n_rule:,} customers {rule_text} "
                  f"(it flags {n_model:,}) and the history is too short to tell regular purchases from random "
                  "ones; churn risk: the gap rule")
        return ChurnDecision("gap_rule", reason, rule.at_risk, agreement)
    at_risk = np.where(np.isnan(p_alive), np.nan, p_alive < threshold)
    reason = (f"{model_title} P(alive) < {threshold:g} ({n_model:,} customers; the gap rule would flag {n_rule:,}, "
              f"{both:,} of them the same)")
    return ChurnDecision("model", reason, at_risk.astype(np.float64), agreement)


def lifecycle_check(lifecycle: NDArray[np.str_], at_risk: FloatArray, settings_churn_days: float,
                    factor: float, method: str = "gap_rule") -> tuple[dict[str, int], list[str]]:
    """Where churn risk and the lifecycle stage say different things, counted and explained."""
    risk = at_risk == 1
    safe = at_risk == 0
    churned_safe = int(((lifecycle == "churned") & safe).sum())
    active_risk = int((np.isin(lifecycle, ACTIVE_STAGES) & risk).sum())
    counts = {"churned_not_at_risk": churned_safe, "at_risk_in_active_stage": active_risk}
    notes = []
    if churned_safe:
        why = (f"they usually buy less often than that and are silent for less than {factor:g}x their usual gap"
               if method == "gap_rule" else "the model's P(alive) is not under the churn threshold")
        notes.append(f"{churned_safe:,} customers are lifecycle 'churned' (silent > {settings_churn_days:g} days, or "
                     f"the model's P(alive) under the lifecycle threshold) but not at churn risk: {why}")
    if active_risk:
        notes.append(f"{active_risk:,} customers at churn risk are in an active lifecycle stage (exploration, formation, "
                     "stability): the stage rules look at the trend and the age of the relationship, the churn "
                     "risk at the silence since the last purchase")
    return counts, notes


__all__ = ["ChurnDecision", "GapRule", "decide", "gap_rule", "lifecycle_check", "regularity"]
