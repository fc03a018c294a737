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


CREDITED_SHARE = 0.05  # invoices partly credited (a return, a price correction) before the payment
TERMS_DAYS = 30
CHURN_SHARE = 0.3  # customers that stop buying at some point (so purchase models see drop-outs)
BAD_PAYER_EVERY = 400  # one customer in 400 goes bad: it stops paying from a day in the second year on
END_SECOND = SPAN_DAYS * 86400  # the data's last moment: no payment or credit note is dated after it


def transaction_rows(n_tx: int, n_customers: int, seed: int = 0, chunk: int = 100_000) -> Iterator[dict[str, str | None]]:
    """A ledger a real business could have, skewed by customer: invoices over two years, paid
    about when due, a few partly credited; a settlement that would fall after the data's end has
    not happened yet, so only the recent invoices are open, plus the bad debt of a handful of
    customers that stopped paying (so a dunning run as of the end finds a few holds, not
    hundreds). Every payment and credit note names the invoice it settles (``applies_to``),
    comes after it in the file and in time, and never settles more than is open on it, so no
    posting rule (credit's included) refuses a row.

    Chunks of at most ``chunk`` rows: each chunk's invoices, then their settlements, in date order.
    """
    if n_customers < 1:
        raise ValueError("transactions need at least one customer")
    weights = spend_weights(n_customers, seed)
    rng = np.random.default_rng(seed + 2)
    cdf = np.cumsum(weights)
    # a customer buys until ``lifetimes`` (the end, for all but those that churn) ...
    lifetimes = np.full(n_customers, END_SECOND, dtype=np.int64)
    gone = rng.random(n_customers) < CHURN_SHARE
    lifetimes[gone] = rng.integers(90 * 86400, END_SECOND, int(gone.sum()))
    # ... and pays from ``stops`` on nothing (never, for all but the bad payers)
    stops = np.full(n_customers, np.iinfo(np.int64).max, dtype=np.int64)
    bad = rng.permutation(n_customers)[:n_customers // BAD_PAYER_EVERY]
    stops[bad] = rng.integers(365 * 86400, (SPAN_DAYS - 120) * 86400, bad.size)
    done = 0
    while done < n_tx:
        m = min(chunk, n_tx - done)
        yield from _ledger_chunk(rng, cdf, lifetimes, stops, m, done)
        done += m


def _ledger_chunk(rng: np.random.Generator, cdf: np.ndarray, lifetimes: np.ndarray, stops: np.ndarray, m: int,
                  done: int) -> Iterator[dict[str, str | None]]:
    """``m`` rows: invoices, then the credit notes and payments of some of them (cut at ``m``)."""
    cust = np.minimum(np.searchsorted(cdf, rng.random(m)), len(stops) - 1)
    seconds = rng.integers(0, END_SECOND, m) * lifetimes[cust] // END_SECOND
    cents = np.maximum(np.round(rng.lognormal(5.0, 0.9, m) * 100).astype(np.int64), 1)
    cats = rng.integers(0, len(_CATEGORIES), m)
    delay = np.maximum(rng.normal(TERMS_DAYS + 4, 12, m), 0) * 86400 + rng.integers(0, 86400, m)
    credit_after = rng.integers(3, 20, m) * 86400
    credited = (rng.random(m) < CREDITED_SHARE) & (cents > 1) & (seconds + credit_after < END_SECOND)
    credit_share = rng.uniform(0.05, 0.4, m)
    pay_at = seconds + delay.astype(np.int64) + 25 * 86400 * credited
    paid = (pay_at < END_SECOND) & (seconds < stops[cust])
    # as many invoices as make m rows with their settlements (the last one's may be cut)
    n_inv = int(np.searchsorted(np.cumsum(1 + paid + credited), m)) + 1
    rows: list[dict[str, str | None]] = []
    settle: list[tuple[int, dict[str, str | None]]] = []  # (second, row)
    order = np.argsort(seconds[:n_inv], kind="stable")  # invoices in date order
    cols = zip(cust[order].tolist(), cents[order].tolist(), seconds[order].tolist(), cats[order].tolist(),
               credited[order].tolist(), (seconds + credit_after)[order].tolist(), credit_share[order].tolist(),
               paid[order].tolist(), pay_at[order].tolist())
    for k, (c, left, at, cat, cr, cr_at, share, pays, pay) in enumerate(cols):
        ref, ref_cust = f"T{done + k + 1:09d}", customer_ref(c)
        rows.append(_row(ref_cust, "invoice", left, at, ref, None, _CATEGORIES[cat]))
        if cr:
            note = max(1, int(left * share))
            settle.append((cr_at, _row(ref_cust, "credit_note", note, cr_at, "", "return", None, ref)))
            left -= note
        if pays and left > 0:
            settle.append((pay, _row(ref_cust, "payment", left, pay, "", None, None, ref)))
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
