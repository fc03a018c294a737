"""Churn risk that says how it was decided: the purchase model when it holds, else a gap rule.

The **gap rule** is what a salesperson would say: a customer silent for longer than
``churn_gap_factor`` (default 2) times its usual gap between purchases is at risk. The usual
gap is the customer's own ((last - first) / (purchase days - 1)) once it bought on at least
two days, else the business's (the median of the repeat buyers' gaps).

The **model** (P(alive) < ``churn_threshold``) is used when its fit converged *and* it agrees with
the rule at least broadly: if it calls alive most of the customers the rule sees long silent
(the exhibition organiser: 40 % gone, the model found nobody), or flags mostly customers who
are on schedule, its churn risk is not trusted and the rule decides. Either way the run records
the method, why, and how far the two agreed.
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


def decide(p_alive: FloatArray, rule: GapRule, threshold: float, model_title: str | None,
           model_failure: str | None) -> ChurnDecision:
    """The model's churn risk when its fit converged and it agrees with the gap rule, else the rule's."""
    rule_flags = rule.at_risk == 1
    rule_text = f"silent for more than {rule.factor:g}x their usual gap between purchases"
    if model_title is None or not np.isfinite(p_alive).any():
        why = model_failure or "no purchase model was fitted"
        return ChurnDecision("gap_rule", f"{why}; churn risk: customers {rule_text}", rule.at_risk)
    model_flags = np.isfinite(p_alive) & (p_alive < threshold)
    both = int((model_flags & rule_flags).sum())
    n_rule, n_model = int(rule_flags.sum()), int(model_flags.sum())
    agreement = {"rule_at_risk": n_rule, "model_at_risk": n_model, "both": both,
                 "model_covers_rule": _share(both, n_rule), "rule_covers_model": _share(both, n_model)}
    covers_rule = agreement["model_covers_rule"]
    covers_model = agreement["rule_covers_model"]
    if covers_rule is not None and covers_rule < MIN_AGREEMENT:
        reason = (f"{model_title} calls alive {n_rule - both:,} of the {n_rule:,} customers {rule_text} "
                  f"(it flags {n_model:,}); churn risk: the gap rule")
        return ChurnDecision("gap_rule", reason, rule.at_risk, agreement)
    if covers_model is not None and covers_model < MIN_AGREEMENT:
        reason = (f"{model_title} flags {n_model - both:,} of its {n_model:,} at-risk customers while they buy "
                  f"on schedule; churn risk: the gap rule")
        return ChurnDecision("gap_rule", reason, rule.at_risk, agreement)
    at_risk = np.where(np.isnan(p_alive), np.nan, p_alive < threshold)
    reason = (f"{model_title} P(alive) < {threshold:g}; it agrees with the gap rule ({both:,} customers flagged by "
              f"both, {n_model:,} by the model, {n_rule:,} by the rule)")
    return ChurnDecision("model", reason, at_risk.astype(np.float64), agreement)


def lifecycle_check(lifecycle: NDArray[np.str_], at_risk: FloatArray, settings_churn_days: float,
                    factor: float) -> tuple[dict[str, int], list[str]]:
    """Where churn risk and the lifecycle stage say different things, counted and explained."""
    risk = at_risk == 1
    safe = at_risk == 0
    churned_safe = int(((lifecycle == "churned") & safe).sum())
    active_risk = int((np.isin(lifecycle, ACTIVE_STAGES) & risk).sum())
    counts = {"churned_not_at_risk": churned_safe, "at_risk_in_active_stage": active_risk}
    notes = []
    if churned_safe:
        notes.append(f"{churned_safe:,} customers are lifecycle 'churned' (silent > {settings_churn_days:g} days, or "
                     "the model's P(alive) under the lifecycle threshold) but not at churn risk: they usually buy "
                     f"less often than that and are silent for less than {factor:g}x their usual gap")
    if active_risk:
        notes.append(f"{active_risk:,} customers at churn risk are in an active lifecycle stage (exploration, formation, "
                     "stability): the stage rules look at the trend and the age of the relationship, the churn "
                     "risk at the silence since the last purchase")
    return counts, notes


__all__ = ["ChurnDecision", "GapRule", "decide", "gap_rule", "lifecycle_check"]
