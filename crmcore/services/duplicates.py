"""Likely duplicate customers: found set-based (blocking keys, never all pairs) and scored on evidence.

Why by hand: record-linkage libraries (dedupe, recordlinkage, splink) want training data, pandas
or a Spark/DuckDB backend; what a CRM needs is a few explainable rules over name, e-mail and
phone that give the same answer on SQLite and PostgreSQL. The string similarity itself comes from
``rapidfuzz`` (maintained, C++), the rest is blocking:

- candidate pairs share a block: the same e-mail, the same phone digits, the same name key
  (folded, accents and legal forms dropped, words sorted, so "Kitchens Alpine GmbH" and "alpine
  kitchens" agree), or are neighbours when all name keys are sorted (and sorted reversed), which
  finds typos without comparing every pair;
- each pair is scored by combining independent evidence (``1 - prod(1 - w)``), so two weak
  signals together outweigh one, and the evidence is kept to show the user why;
- a block of more than ``MAX_BLOCK`` customers (a shared switchboard number, a generic e-mail) is
  a stop word: not paired on, and reported by :func:`scan_report`.

The scan over all customers works column-wise (``_duplicates_scan``): 1M customers cost about
18 s of CPU, half of it reading the rows and making the name keys (bench/duplicates_bench.py).
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz
from sqlalchemy import case, func, or_, select, text
from sqlalchemy.exc import CompileError

from crmcore.models import Customer
from crmcore.models.customer import fold
from crmcore.services._duplicates_scan import MAX_BLOCK as MAX_BLOCK  # re-exported: the scan's limits
from crmcore.services._duplicates_scan import WINDOW as WINDOW
from crmcore.services._duplicates_scan import (
    Columns,
    Skipped,
    email_keys,
    key_of_folded,
    name_keys,
    phone_keys,
    scored_pairs,
)

if TYPE_CHECKING:
    from crmcore.uow import UnitOfWork

#: legal forms and filler words that say nothing about which company it is
LEGAL_FORMS = frozenset(["ag", "ab", "as", "asa", "bv", "co", "company", "corp", "corporation", "cv", "gmbh", "gbr", "inc", "incorporated", "kg", "kk", "lda", "limited", "llc", "llp", "ltd", "mbh", "nv", "ohg", "oy", "plc", "pty", "sa", "sarl", "sas", "spa", "srl", "sro", "the", "und", "and", "e", "k", "ev", "ug", "oao", "ooo", "zao", "pao", "ip", "ltda", "sl", "sae"])
_NON_ASCII_DIGIT = re.compile(r"[^0-9]+")
ADVISORY_NAMESPACE = 0x43524D44  # "CRMD": this module's advisory locks on PostgreSQL


class DuplicateSettings(BaseModel):
    """``[duplicates]`` in crm.toml."""

    model_config = ConfigDict(extra="forbid")

    on_create: str = Field("refuse", pattern="^(refuse|off)$")
    #: creating a customer whose best match scores this much is refused (a name alone is not enough)
    threshold: float = Field(0.8, gt=0, le=1)
    #: `crm customer duplicates` lists pairs from this score (for a person to review: a name alone is)
    scan_threshold: float = Field(0.7, gt=0, le=1)
    email_weight: float = Field(0.9, ge=0, le=1)
    phone_weight: float = Field(0.8, ge=0, le=1)
    name_weight: float = Field(0.75, ge=0, le=1)


@dataclass(frozen=True)
class Record:
    id: int
    name: str
    email: str | None
    phone: str | None
    country: str | None
    key: str = field(default="", compare=False)


@dataclass
class Candidate:
    """A pair of customers that look like one, with the evidence and a score in (0, 1]."""

    a: int
    b: int
    score: float
    evidence: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "score": round(self.score, 3), "evidence": self.evidence}


def name_key(name: str | None) -> str:
    """A company name reduced to what identifies it: folded, unaccented, no legal form, words sorted."""
    return key_of_folded(fold(name), LEGAL_FORMS)


def email_key(email: str | None) -> str | None:
    return email.strip().casefold() if email and email.strip() else None


def phone_key(phone: str | None) -> str | None:
    """The last nine digits: "+49 30 1234567" and "030-1234567" agree, a country code or trunk 0 aside."""
    phone = phone or ""
    digits = _NON_ASCII_DIGIT.sub("", phone) if phone.isascii() else "".join(ch for ch in phone if ch.isdigit())
    return digits[-9:] if len(digits) >= 6 else None


def record(row: Sequence[Any]) -> Record:
    return Record(id=row[0], name=row[1], email=email_key(row[2]), phone=phone_key(row[3]), country=row[4],
                  key=name_key(row[1]))


def score_pair(a: Record, b: Record, settings: DuplicateSettings) -> tuple[float, list[str]]:
    """The combined score of a pair and the evidence behind it."""
    weights: list[float] = []
    evidence: list[str] = []
    if a.email and a.email == b.email:
        weights.append(settings.email_weight)
        evidence.append("same e-mail")
    if a.phone and a.phone == b.phone:
        weights.append(settings.phone_weight)
        evidence.append("same phone")
    if a.key and b.key:
        similarity = fuzz.ratio(a.key, b.key) / 100
        if similarity >= 0.75:  # below that, names are not evidence (the same is 1.0, one typo ~0.9)
            weights.append(settings.name_weight * (similarity - 0.75) / 0.25)
            evidence.append("same name" if similarity == 1 else f"similar name ({similarity:.0%})")
    if a.country and b.country and a.country != b.country:
        weights = [w * 0.5 for w in weights]
        evidence.append(f"different countries ({a.country}, {b.country})")
    miss = 1.0
    for w in weights:
        miss *= 1 - w
    return 1 - miss, evidence


def _columns(records: Sequence[Record]) -> Columns:
    return Columns(ids=np.fromiter((r.id for r in records), dtype=np.int64, count=len(records)),
                   keys=[r.key for r in records], emails=[r.email or "" for r in records],
                   phones=[r.phone or "" for r in records], countries=[r.country or "" for r in records])


def _candidates(cols: Columns, settings: DuplicateSettings) -> list[Candidate]:
    """The pairs scoring at least the threshold, best first (ties by ids, so the order is stable);
    the evidence (and the score, by the one rule again) from :func:`score_pair` for those only."""
    found = []
    i, j, _ = scored_pairs(cols, settings)
    for x, y in zip(i.tolist(), j.tolist(), strict=True):
        a, b = (Record(id=int(cols.ids[k]), name=cols.keys[k], email=cols.emails[k] or None, phone=cols.phones[k] or None,
                       country=cols.countries[k] or None, key=cols.keys[k]) for k in (x, y))
        exact, evidence = score_pair(a, b, settings)
        lo, hi = (a, b) if a.id < b.id else (b, a)
        found.append(Candidate(lo.id, hi.id, exact, evidence))
    return sorted(found, key=lambda c: (-c.score, c.a, c.b))


def find_candidates(records: Sequence[Record], settings: DuplicateSettings) -> list[Candidate]:
    """Every pair of these records scoring at least the threshold, best first (see :func:`scan`)."""
    return _candidates(_columns(records), settings) if len(records) >= 2 else []


def settings_of(uow: UnitOfWork) -> DuplicateSettings:
    config = uow.crm.config if isinstance(uow.crm.config, dict) else {}
    return DuplicateSettings.model_validate(config.get("duplicates", {}))


def _visible(uow: UnitOfWork, query: Any) -> Any:
    visibility = getattr(uow, "visibility", None)
    return query.where(visibility.customer_clause()) if visibility is not None else query


@dataclass
class ScanReport:
    """What a scan found, and the blocks it skipped as stop words (say so to the user)."""

    pairs: list[Candidate]
    skipped: list[Skipped]


def _chunks(uow: UnitOfWork, query: Any, size: int = 50_000) -> Iterator[Sequence[Sequence[Any]]]:
    """The query's rows in chunks of plain tuples, from the driver's cursor on the unit of work's
    own connection and transaction (PostgreSQL: a server-side cursor), without building a Row
    object per customer; a query whose parameters cannot be written inline goes through Core."""
    conn = uow.session.connection()
    try:
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    except CompileError:
        yield from conn.execution_options(yield_per=size).execute(query).partitions()
        return
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    postgres = conn.dialect.name == "postgresql"
    cursor = dbapi.cursor(name="crm_duplicate_scan") if postgres else dbapi.cursor()
    try:
        cursor.execute(sql.replace("%%", "%") if postgres else sql)
        while part := cursor.fetchmany(size):
            yield part
    finally:
        cursor.close()


def _read_columns(uow: UnitOfWork) -> Columns:
    """The active customers the actor may see, read column-wise in chunks (streamed: no ORM object,
    no Row kept); names as their stored folded form (``search_name``), so only the rest of the key
    is computed here."""
    unfolded = case((Customer.search_name == "", Customer.name), else_=None)  # a row stored without its folded name
    query = _visible(uow, select(Customer.id, Customer.search_name, unfolded, Customer.email, Customer.phone,
                                 Customer.country).where(Customer.archived.is_(False)).order_by(Customer.id))
    ids: list[int] = []
    folded: list[str] = []
    emails: list[str | None] = []
    phones: list[str | None] = []
    countries: list[str | None] = []
    for part in _chunks(uow, query):
        cid, search, name, email, phone, country = zip(*part, strict=True)
        ids.extend(cid)
        folded.extend(search)
        if name.count(None) != len(name):  # rare: fold those names here
            for k, n in enumerate(name):
                if n is not None:
                    folded[len(folded) - len(name) + k] = fold(n)
        emails.extend(email)
        phones.extend(phone)
        countries.extend(country)
    return Columns(ids=np.array(ids, dtype=np.int64), keys=name_keys(folded, LEGAL_FORMS), emails=email_keys(emails),
                   phones=phone_keys(phones, phone_key), countries=[c or "" for c in countries])


def scan_report(uow: UnitOfWork, *, threshold: float | None = None, limit: int | None = None) -> ScanReport:
    """Likely duplicates among the active customers the actor may see, best first, and the blocks
    skipped as stop words (more than ``MAX_BLOCK`` customers sharing one key)."""
    uow.require("customer.read")
    settings = settings_of(uow)
    settings = settings.model_copy(update={"threshold": settings.scan_threshold if threshold is None else threshold})
    cols = _read_columns(uow)
    found = _candidates(cols, settings) if len(cols) >= 2 else []
    return ScanReport(found[:limit] if limit is not None else found, cols.skipped)


def scan(uow: UnitOfWork, *, threshold: float | None = None, limit: int | None = None) -> list[Candidate]:
    """Likely duplicates among the active customers the actor may see, best first."""
    return scan_report(uow, threshold=threshold, limit=limit).pairs


def likely_duplicates(uow: UnitOfWork, name: str, email: str | None, phone: str | None,
                      country: str | None) -> list[Candidate]:
    """Existing active customers that a new one with these fields would duplicate (best first).

    Looks only where a duplicate can be: the same e-mail, the same folded name, or a phone that
    ends in the same digits; so it costs a few indexed lookups, not a scan.
    """
    settings = settings_of(uow)
    new = Record(id=0, name=name, email=email_key(email), phone=phone_key(phone), country=country, key=name_key(name))
    conditions = [Customer.search_name == fold(name)]
    if new.email:
        conditions.append(func.lower(Customer.email) == new.email)
    if new.phone:
        conditions.append(Customer.phone.endswith(new.phone[-6:], autoescape=True))
    rows = uow.session.execute(select(Customer.id, Customer.name, Customer.email, Customer.phone, Customer.country)
                               .where(Customer.archived.is_(False), or_(*conditions)).limit(50))
    found = []
    for row in rows:
        score, evidence = score_pair(new, record(row), settings)
        if score >= settings.threshold:
            found.append(Candidate(row[0], 0, score, evidence))
    return sorted(found, key=lambda c: (-c.score, c.a))


def lock_keys(uow: UnitOfWork, name: str, email: str | None, phone: str | None) -> None:
    """On PostgreSQL, serialise creations that share a duplicate key (transaction-scoped advisory
    locks, in a fixed order), so two processes adding the same newcomer at once cannot both pass
    the check. SQLite needs nothing: a writing unit of work holds the database's write lock."""
    if uow.session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({k for k in (f"n:{name_key(name)}", f"e:{email_key(email)}" if email_key(email) else None,
                               f"p:{phone_key(phone)}" if phone_key(phone) else None) if k})
    for key in keys:
        uow.session.execute(text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                            {"ns": ADVISORY_NAMESPACE, "key": zlib.crc32(key.encode()) - 2**31})


def matches_for(uow: UnitOfWork, new_ids: Sequence[int]) -> list[tuple[int, str]]:
    """For customers just created, each one's best likely-duplicate among the active customers
    created before it: ``(new id, message)``. Set-based (a few queries for any number of ids):
    candidates share the folded name, the e-mail or the stored (E.164) phone."""
    settings = settings_of(uow)
    cols = (Customer.id, Customer.name, Customer.email, Customer.phone, Customer.country, Customer.external_ref)
    new_rows = [row for i in range(0, len(new_ids), 5000)
                for row in uow.session.execute(select(*cols).where(Customer.id.in_(list(new_ids)[i:i + 5000])))]
    names = sorted({fold(r[1]) for r in new_rows})
    emails = sorted({e for r in new_rows if (e := email_key(r[2]))})
    phones = sorted({r[3] for r in new_rows if r[3]})
    pool: dict[int, Any] = {}
    for column, values in ((Customer.search_name, names), (func.lower(Customer.email), emails), (Customer.phone, phones)):
        for i in range(0, len(values), 5000):
            for row in uow.session.execute(select(*cols).where(Customer.archived.is_(False),
                                                               column.in_(values[i:i + 5000]))):
                pool[row[0]] = row
    by_key: dict[str, list[Any]] = {}
    for row in pool.values():
        for key in (f"n:{fold(row[1])}", f"e:{email_key(row[2])}", f"p:{row[3]}"):
            by_key.setdefault(key, []).append(row)
    out = []
    for row in new_rows:
        new = record(row)
        seen = {c[0]: c for k in (f"n:{fold(row[1])}", f"e:{new.email}", f"p:{row[3]}") for c in by_key.get(k, [])
                if c[0] < row[0]}
        scored = sorted(((*score_pair(new, record(c), settings), c) for c in seen.values()), key=lambda t: -t[0])
        if scored and scored[0][0] >= settings.threshold:
            score, evidence, c = scored[0]
            ref = f" ({c[5]})" if c[5] else ""
            out.append((row[0], f"likely duplicate of customer {c[0]} {c[1]!r}{ref}: {', '.join(evidence)} "
                                f"(score {score:.2f}); imported all the same"))
    return out


def refusal_message(uow: UnitOfWork, found: Iterable[Candidate]) -> str:
    """One line naming the best match (by name only when the actor may see it)."""
    best = next(iter(found))
    c = uow.session.get(Customer, best.a)
    visibility = getattr(uow, "visibility", None)
    shown = f"customer {best.a}"
    if c is not None and (visibility is None or not visibility.own_only or c.owner_id == visibility.user_id):
        shown = f"customer {best.a} {c.name!r}" + (f" ({c.external_ref})" if c.external_ref else "")
    return (f"likely duplicate of {shown}: {', '.join(best.evidence)} (score {best.score:.2f}); "
            "use the existing customer, or force the creation (--force, ?force=true)")
