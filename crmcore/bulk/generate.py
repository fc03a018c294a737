"""Synthetic, reproducible data for demos, tests and benchmarks.

Revenue is skewed the way real customer bases are (a Pareto-distributed spend level per
customer: a few customers make most of the revenue), and rows are generated in NumPy chunks
so that memory stays flat for any size.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np

_FIRST = ["Alpine", "Baltic", "Cedar", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris", "Juniper", "Kestrel",
          "Linden", "Maple", "Nordic", "Orchid", "Pioneer", "Quarry", "Riverside", "Summit", "Tundra"]
_SECOND = ["Kitchens", "Builders", "Timber", "Tiles", "Paints", "Windows", "Roofing", "Flooring", "Lighting", "Plumbing",
           "Expo", "Events", "Supplies", "Trading", "Logistics"]
_SUFFIX = ["GmbH", "Ltd", "SA", "AB", "BV", "Inc", "Oy", "SRL"]
_COUNTRIES = ["DE", "FR", "GB", "NL", "SE", "FI", "IT", "ES", "PL", "US"]
_CALLING = {"DE": "49", "FR": "33", "GB": "44", "NL": "31", "SE": "46", "FI": "358", "IT": "39", "ES": "34", "PL": "48",
            "US": "1"}
_INDUSTRIES = ["construction", "retail", "hospitality", "public sector", "wholesale", "events"]
_CATEGORIES = ["kitchens", "bathrooms", "flooring", "windows", "paint", "tools"]
_CHANNELS = ["phone", "email", "visit", "meeting", "web", "chat", "event"]
_SUBJECTS = ["Quote request", "Delivery question", "Complaint about delay", "Follow-up call", "Showroom visit",
             "Invoice query", "Trade fair meeting", "Product feedback"]

EPOCH = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
SPAN_DAYS = 730


def customer_ref(i: int) -> str:
    return f"C{i + 1:07d}"


def customer_rows(n: int, seed: int = 0) -> Iterator[dict[str, str | None]]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(_FIRST), n)
    b = rng.integers(0, len(_SECOND), n)
    s = rng.integers(0, len(_SUFFIX), n)
    c = rng.integers(0, len(_COUNTRIES), n)
    ind = rng.integers(0, len(_INDUSTRIES), n)
    person = rng.random(n) < 0.15
    phone = rng.integers(100_000_000, 999_999_999, n)
    for i in range(n):
        country = _COUNTRIES[c[i]]
        name = f"{_FIRST[a[i]]} {_SECOND[b[i]]} {_SUFFIX[s[i]]}" if not person[i] else f"{_FIRST[a[i]]} {_SECOND[b[i]]}"
        yield {
            "external_ref": customer_ref(i),
            "name": f"{name} {i + 1}",
            "kind": "person" if person[i] else "organization",
            "email": f"contact{i + 1}@{_FIRST[a[i]].lower()}-{_SECOND[b[i]].lower()}.example.com",
            "phone": f"+{_CALLING[country]}{phone[i]}",
            "country": country,
            "industry": _INDUSTRIES[ind[i]],
            "tags": "trade" if i % 3 == 0 else None,
        }


def spend_weights(n: int, seed: int = 0) -> np.ndarray:
    """Per-customer purchase propensity: Pareto (alpha 1.16 gives the classic 80/20)."""
    rng = np.random.default_rng(seed + 1)
    w = rng.pareto(1.16, n) + 1.0
    return w / w.sum()


def transaction_rows(n_tx: int, n_customers: int, seed: int = 0, chunk: int = 100_000) -> Iterator[dict[str, str | None]]:
    """Invoices (85%), payments (12%) and credit notes (3%) over two years, skewed by customer."""
    if n_customers < 1:
        raise ValueError("transactions need at least one customer")
    weights = spend_weights(n_customers, seed)
    rng = np.random.default_rng(seed + 2)
    cdf = np.cumsum(weights)
    done = 0
    while done < n_tx:
        m = min(chunk, n_tx - done)
        cust = np.minimum(np.searchsorted(cdf, rng.random(m)), n_customers - 1)
        seconds = rng.integers(0, SPAN_DAYS * 86400, m)
        amounts = np.round(rng.lognormal(5.0, 0.9, m), 2)
        kinds = rng.random(m)
        cats = rng.integers(0, len(_CATEGORIES), m)
        for j in range(m):
            k = kinds[j]
            kind = "invoice" if k < 0.85 else ("payment" if k < 0.97 else "credit_note")
            when = EPOCH + dt.timedelta(seconds=int(seconds[j]))
            yield {
                "customer_ref": customer_ref(int(cust[j])),
                "kind": kind,
                "amount": f"{max(amounts[j], 0.01):.2f}",
                "currency": "EUR",
                "occurred_at": when.isoformat(),
                "due_date": None,
                "reference": f"T{done + j + 1:09d}",
                "description": None,
                "category": _CATEGORIES[cats[j]] if kind == "invoice" else None,
            }
        done += m


def interaction_rows(n: int, n_customers: int, seed: int = 0) -> Iterator[dict[str, str | None]]:
    rng = np.random.default_rng(seed + 3)
    cust = rng.integers(0, n_customers, n)
    ch = rng.integers(0, len(_CHANNELS), n)
    sub = rng.integers(0, len(_SUBJECTS), n)
    sat = rng.integers(1, 6, n)
    has_sat = rng.random(n) < 0.4
    seconds = rng.integers(0, SPAN_DAYS * 86400, n)
    for i in range(n):
        yield {
            "external_ref": f"I{i + 1:08d}",
            "customer_ref": customer_ref(int(cust[i])),
            "channel": _CHANNELS[ch[i]],
            "direction": "inbound" if i % 2 else "outbound",
            "kind": "complaint" if sub[i] == 2 else ("sale" if sub[i] == 0 else "follow_up"),
            "subject": _SUBJECTS[sub[i]],
            "occurred_at": (EPOCH + dt.timedelta(seconds=int(seconds[i]))).isoformat(),
            "satisfaction": str(sat[i]) if has_sat[i] else None,
        }
