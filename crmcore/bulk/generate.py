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


PAID_SHARE = 0.88  # invoices paid in full: most are, as in a real business
CREDITED_SHARE = 0.05  # invoices partly credited (a return, a price correction) before the payment
TERMS_DAYS = 30


def transaction_rows(n_tx: int, n_customers: int, seed: int = 0, chunk: int = 100_000) -> Iterator[dict[str, str | None]]:
    """A ledger a real business could have, skewed by customer: invoices over two years, most
    paid about when due, a few partly credited; every payment and credit note names the invoice
    it settles (``applies_to``), comes after it in the file and in time, and never settles more
    than is open on it, so no posting rule (credit's included) refuses a row.

    Chunks of at most ``chunk`` rows: each chunk's invoices, then their settlements, in date order.
    """
    if n_customers < 1:
        raise ValueError("transactions need at least one customer")
    weights = spend_weights(n_customers, seed)
    rng = np.random.default_rng(seed + 2)
    cdf = np.cumsum(weights)
    done = 0
    while done < n_tx:
        m = min(chunk, n_tx - done)
        yield from _ledger_chunk(rng, cdf, n_customers, m, done)
        done += m


def _ledger_chunk(rng: np.random.Generator, cdf: np.ndarray, n_customers: int, m: int, done: int
                  ) -> Iterator[dict[str, str | None]]:
    """``m`` rows: invoices, then the credit notes and payments of some of them (cut at ``m``)."""
    cust = np.minimum(np.searchsorted(cdf, rng.random(m)), n_customers - 1)
    seconds = rng.integers(0, SPAN_DAYS * 86400, m)
    cents = np.maximum(np.round(rng.lognormal(5.0, 0.9, m) * 100).astype(np.int64), 1)
    cats = rng.integers(0, len(_CATEGORIES), m)
    paid = rng.random(m) < PAID_SHARE
    credited = (rng.random(m) < CREDITED_SHARE) & (cents > 1)
    credit_share = rng.uniform(0.05, 0.4, m)
    delay = np.maximum(rng.normal(TERMS_DAYS + 4, 12, m), 0) * 86400 + rng.integers(0, 86400, m)
    # as many invoices as make m rows with their settlements (the last one's may be cut)
    n_inv = int(np.searchsorted(np.cumsum(1 + paid + credited), m)) + 1
    seconds[:n_inv] = np.sort(seconds[:n_inv])
    refs = [f"T{done + j + 1:09d}" for j in range(n_inv)]
    rows: list[dict[str, str | None]] = []
    settle: list[tuple[int, dict[str, str | None]]] = []  # (second, row)
    for j in range(n_inv):
        ref_cust = customer_ref(int(cust[j]))
        rows.append(_row(ref_cust, "invoice", int(cents[j]), int(seconds[j]), refs[j], None, _CATEGORIES[cats[j]]))
        left = int(cents[j])
        if credited[j]:
            note = max(1, int(left * credit_share[j]))
            when = int(seconds[j]) + int(rng.integers(3, 20)) * 86400
            settle.append((when, _row(ref_cust, "credit_note", note, when, "", "return", None, refs[j])))
            left -= note
        if paid[j] and left > 0:
            when = int(seconds[j]) + int(delay[j]) + 25 * 86400 * int(credited[j])
            settle.append((when, _row(ref_cust, "payment", left, when, "", None, None, refs[j])))
    settle.sort(key=lambda x: x[0])
    rows.extend(r for _, r in settle)
    for k, row in enumerate(rows[:m]):
        if not row["reference"]:
            row["reference"] = f"T{done + k + 1:09d}"
        yield row


def _row(customer: str, kind: str, cents: int, second: int, reference: str, description: str | None,
         category: str | None, applies_to: str | None = None) -> dict[str, str | None]:
    return {
        "customer_ref": customer,
        "kind": kind,
        "amount": f"{cents // 100}.{cents % 100:02d}",
        "currency": "EUR",
        "occurred_at": (EPOCH + dt.timedelta(seconds=second)).isoformat(),
        "due_date": None,
        "reference": reference,
        "description": description,
        "category": category,
        "applies_to": applies_to,
    }


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
