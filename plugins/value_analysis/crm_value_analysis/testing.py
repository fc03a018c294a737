"""Test-data builders for the value_analysis plugin (used by its tests, the benchmark, and
plugins that build on it).

Small bases are built through the core's services (:class:`Base`); simulated bases of
thousands of customers go straight in with Core ``executemany`` (:func:`bulk_load`), with
purchase logs drawn from the BG/NBD + Gamma-Gamma story (:func:`simulate_purchase_log`).
"""
from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import insert

from crmcore import CRM
from crmcore.models import Account, Customer, Transaction
from crmcore.schemas import CustomerCreate, InteractionCreate, TransactionCreate

DAY0 = dt.date(2023, 1, 2)


def at(day: int | dt.date, hour: int = 12) -> dt.datetime:
    """A UTC timestamp on a day (int: days after DAY0)."""
    date = day if isinstance(day, dt.date) else DAY0 + dt.timedelta(days=int(day))
    return dt.datetime.combine(date, dt.time(hour), tzinfo=dt.UTC)


def d(day: int) -> dt.date:
    return DAY0 + dt.timedelta(days=day)


class Base:
    """Builds a small customer base through the core's services, one unit of work per call."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self._refs = itertools.count(1)

    def customer(self, name: str, **kw: Any) -> int:
        with self.crm.unit_of_work("test") as uow:
            return uow.customers.create(CustomerCreate(name=name, **kw)).id

    def buy(self, customer_id: int, day: int | dt.date, amount: str | float = "100", kind: str = "invoice",
            category: str | None = None, hour: int = 12, cost: str | None = None) -> None:
        with self.crm.unit_of_work("test") as uow:
            uow.accounts.post(customer_id, TransactionCreate(
                kind=kind, amount=str(amount), reference=f"r{next(self._refs)}", occurred_at=at(day, hour),
                category=category, cost=cost))

    def buys(self, customer_id: int, days: Sequence[int], amount: str | float = "100", **kw: Any) -> None:
        for day in days:
            self.buy(customer_id, day, amount, **kw)

    def rate(self, customer_id: int, day: int, satisfaction: int) -> None:
        with self.crm.unit_of_work("test") as uow:
            uow.interactions.log(customer_id, InteractionCreate(
                channel="phone", direction="inbound", kind="feedback", subject="survey",
                occurred_at=at(day), satisfaction=satisfaction))


def bulk_load(crm: CRM, customer_idx: np.ndarray, days: np.ndarray, amounts: np.ndarray, n_customers: int,
              kinds: np.ndarray | None = None, categories: Sequence[str | None] | None = None) -> np.ndarray:
    """Insert ``n_customers`` customers (one account each) and one transaction per row; returns the ids."""
    now = dt.datetime.now(dt.UTC)
    with crm.engine.begin() as conn:
        first = conn.execute(insert(Customer).returning(Customer.id), [
            {"name": f"sim {i}", "kind": "organization", "lifecycle_stage": "prospect", "tags": [], "attributes": {},
             "archived": False, "created_at": now, "updated_at": now, "version": 1} for i in range(n_customers)])
        ids = np.array(sorted(r[0] for r in first), dtype=np.int64)
        accounts = conn.execute(insert(Account).returning(Account.id, Account.customer_id), [
            {"customer_id": int(c), "currency": "EUR", "payment_terms_days": 30, "status": "open", "balance": 0,
             "is_default": True, "created_at": now} for c in ids])
        acc_of = {cid: aid for aid, cid in accounts}
        rows = []
        for i, (ci, day, amount) in enumerate(zip(customer_idx.tolist(), days.tolist(), amounts.tolist())):
            rows.append({"account_id": acc_of[int(ids[ci])], "customer_id": int(ids[ci]), "kind": "invoice" if kinds is None else kinds[i],
                         "amount": round(float(amount), 2), "currency": "EUR", "occurred_at": at(int(day)),
                         "reference": f"s{i}", "source": "sim", "created_at": now,
                         "category": None if categories is None else categories[i]})
        for start in range(0, len(rows), 20000):
            conn.execute(insert(Transaction), rows[start:start + 20000])
    return ids


def simulate_purchase_log(
    n: int, *, r: float, alpha: float, a: float = 1.0, b: float = 1.0, p: float, q: float, v: float,
    end_day: int, birth_days: int = 84, unit_days: float = 7.0, seed: int = 7, model: str = "bg_nbd",
    s: float = 1.0, beta: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Purchase log (customer index, day, amount) from a purchase model + Gamma-Gamma story.

    Rates are per model unit (``unit_days`` days). Each customer is born with a first purchase
    in the first ``birth_days`` days; repeat purchases follow a Poisson(lambda) process. Drop-out:
    ``bg_nbd`` after each repeat purchase with probability p ~ Beta(a, b); ``mbg_nbd`` also right
    after the first purchase; ``pareto_nbd`` at an exponential time with rate mu ~ Gamma(s, beta).
    Every purchase spends Gamma(p, rate nu). Purchases are recorded as whole days up to
    ``end_day`` (inclusive).
    """
    rng = np.random.default_rng(seed)
    birth = rng.integers(0, birth_days, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    drop = rng.beta(a, b, n)
    nu = rng.gamma(q, 1.0 / v, n)
    cust = [np.arange(n)]
    days = [birth.astype(float)]
    t = np.zeros(n)
    active = np.ones(n, dtype=bool)
    death = np.full(n, np.inf)
    if model == "mbg_nbd":
        active &= rng.random(n) >= drop
    elif model == "pareto_nbd":
        death = rng.exponential(1.0 / rng.gamma(s, 1.0 / beta, n))
    while active.any():
        idx = np.flatnonzero(active)
        t[idx] += rng.exponential(1.0 / lam[idx])
        day = birth[idx] + np.floor(t[idx] * unit_days)
        inside = (day <= end_day) & (t[idx] <= death[idx])
        cust.append(idx[inside])
        days.append(day[inside])
        active[idx[~inside]] = False
        if model != "pareto_nbd":
            dies = inside & (rng.random(idx.size) < drop[idx])
            active[idx[dies]] = False
    ci = np.concatenate(cust)
    dy = np.concatenate(days).astype(np.int64)
    amounts = np.maximum(rng.gamma(p, 1.0 / nu[ci]), 0.01)
    return ci, dy, amounts
