"""Purchase logs of three business shapes with a KNOWN truth: who really stopped buying.

Used by the tests (and anyone checking churn on their own kind of business) to measure the
churn flags against the truth, not against another model. Each builder returns a
:class:`ShapeLog`: one row per purchase (customer index, day, amount), the day of the analysis
and, per customer, whether it stopped for good before that day.

* :func:`retail` -- CDNOW-like: irregular (Poisson) purchases, rates that differ between
  customers (Gamma), spend per purchase from the Gamma-Gamma story with CDNOW's parameters.
* :func:`exhibitions` -- the B2B exhibition organiser: exhibitors book a stand for every yearly
  or every half-yearly fair, a few weeks around the same date, at a stable price.
* :func:`subscriptions` -- monthly payments on the customer's day of the month, a fixed plan price.

In all three about 40 % of the customers stop at a random time of their history. A customer that
stopped is silent since; a customer that did not keeps its rhythm up to the analysis day.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_value_analysis.loaders import PurchaseHistory

__all__ = ["SHAPES", "ShapeLog", "exhibitions", "retail", "subscriptions"]


@dataclass(frozen=True)
class ShapeLog:
    """A purchase log and its truth; ``stopped[i]`` is the truth for customer ``i``."""

    name: str
    customer_idx: np.ndarray
    days: np.ndarray
    amounts: np.ndarray
    as_of_day: int
    stopped: np.ndarray

    @property
    def n(self) -> int:
        return int(self.stopped.size)

    def history(self, trend_days: int = 365) -> PurchaseHistory:
        """The per-customer history a run reads from the database, built from the log in memory."""
        hist = PurchaseHistory(ids=np.arange(1, self.n + 1, dtype=np.int64), cut_day=self.as_of_day,
                               trend_days=trend_days)
        keys, inv = np.unique(np.column_stack([self.customer_idx, self.days]), axis=0, return_inverse=True)
        spend = np.bincount(inv.reshape(-1), weights=self.amounts, minlength=keys.shape[0])
        entries = np.bincount(inv.reshape(-1), minlength=keys.shape[0])
        hist.add_chunk(np.column_stack([keys[:, 0] + 1.0, keys[:, 1], spend, spend, entries]).astype(np.float64))
        return hist


def _log(name: str, cust: list[np.ndarray], days: list[np.ndarray], amounts: list[np.ndarray], as_of: int,
         stopped: np.ndarray) -> ShapeLog:
    ci, dy, am = np.concatenate(cust), np.concatenate(days).astype(np.int64), np.concatenate(amounts)
    keep = dy <= as_of
    order = np.lexsort((dy[keep], ci[keep]))
    return ShapeLog(name, ci[keep][order], dy[keep][order], np.round(am[keep][order], 2), as_of, stopped)


def retail(n: int = 2000, seed: int = 1, stop_share: float = 0.4) -> ShapeLog:
    """Shop customers over three years: Poisson purchases at a Gamma-distributed rate (one every
    2-8 weeks typically), Gamma-Gamma spend (CDNOW's p, q, v); the stoppers stop at a uniform
    time between their first purchase and half a year before the analysis."""
    rng = np.random.default_rng(seed)
    as_of = 3 * 365
    birth = rng.integers(0, 365, n)
    rate = rng.gamma(4.0, 1.0 / (4.0 * 30.0), n)           # purchases per day, mean one a month
    nu = rng.gamma(3.74, 1.0 / 15.44, n)
    stopped = rng.random(n) < stop_share
    end = np.where(stopped, birth + rng.random(n) * (as_of - 180 - birth), as_of).astype(np.float64)
    cust, days, amounts = [np.arange(n)], [birth.astype(np.float64)], [rng.gamma(6.25, 1.0 / nu)]
    t = birth.astype(np.float64)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        t[idx] += rng.exponential(1.0 / rate[idx])
        inside = t[idx] <= end[idx]
        hit = idx[inside]
        cust.append(hit)
        days.append(np.floor(t[hit]))
        amounts.append(rng.gamma(6.25, 1.0 / nu[hit]))
        active[idx[~inside]] = False
    return _log("retail", cust, days, amounts, as_of, stopped)


def exhibitions(n: int = 2000, seed: int = 2, stop_share: float = 0.4, years: int = 6) -> ShapeLog:
    """An exhibition organiser: a spring fair every year (day 120) and an autumn fair (day 300).
    Half the exhibitors book every spring fair (yearly), half book both (half-yearly); a booking is
    made 4-10 weeks before the fair at the exhibitor's stable stand price. Exhibitors join in the
    first two years; the stoppers skip every fair after a random one of theirs."""
    rng = np.random.default_rng(seed)
    as_of = years * 365 + 200                                # between the spring and the autumn fair
    fairs = np.array(sorted([y * 365 + 120 for y in range(years + 1)] + [y * 365 + 300 for y in range(years + 1)]))
    fairs = fairs[fairs - 28 <= as_of]
    half_yearly = rng.random(n) < 0.5
    price = rng.choice([1800.0, 2400.0, 3600.0, 5200.0, 9800.0], n)
    join = rng.integers(0, 2 * 365, n)
    stopped = rng.random(n) < stop_share
    cust, days, amounts = [], [], []
    for i in range(n):
        mine = fairs[(fairs >= join[i]) & (half_yearly[i] | (fairs % 365 == 120))]
        if mine.size == 0:
            continue
        if stopped[i]:
            mine = mine[: rng.integers(1, mine.size + 1)]
        booked = mine - rng.integers(28, 71, mine.size)
        cust.append(np.full(mine.size, i))
        days.append(booked.astype(np.float64))
        amounts.append(np.full(mine.size, price[i]))
    # an exhibitor whose last fair is the latest one before the analysis did not really stop yet
    last = np.array([d[-1] for d in days])
    owners = np.array([c[0] for c in cust])
    truth = np.zeros(n, dtype=bool)
    truth[owners] = stopped[owners]
    expected = np.zeros(n)
    for i in owners:
        mine = fairs[(fairs >= join[i]) & (half_yearly[i] | (fairs % 365 == 120))]
        expected[i] = mine[-1] - 70 if mine.size else 0
    truth[owners] &= last < expected[owners]
    return _log("exhibitions", cust, days, amounts, as_of, truth)


def subscriptions(n: int = 2000, seed: int = 3, stop_share: float = 0.4) -> ShapeLog:
    """Monthly payments (every 30-31 days, a day or two late now and then) of a fixed plan price,
    subscribers joining over two years; the stoppers cancel at a uniform time after joining."""
    rng = np.random.default_rng(seed)
    as_of = 3 * 365
    join = rng.integers(0, 2 * 365, n)
    price = rng.choice([9.9, 19.9, 49.9], n)
    stopped = rng.random(n) < stop_share
    cancel = np.where(stopped, join + 31 + rng.random(n) * (as_of - join - 31), as_of + 1)
    cust, days, amounts = [], [], []
    for i in range(n):
        due = join[i] + np.arange(0, (as_of - join[i]) // 30 + 1) * 30.44
        paid = np.floor(due + rng.integers(0, 3, due.size))
        paid = paid[(due < cancel[i]) & (paid <= as_of)]
        cust.append(np.full(paid.size, i))
        days.append(paid)
        amounts.append(np.full(paid.size, price[i]))
    # a subscriber who cancelled after the last payment fell due has not missed one yet
    last_due = join + ((as_of - join) // 30.44) * 30.44
    truth = stopped & (cancel < last_due)
    return _log("subscriptions", cust, days, amounts, as_of, truth)


SHAPES = {"retail": retail, "exhibitions": exhibitions, "subscriptions": subscriptions}
