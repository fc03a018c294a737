"""Bulk import: streaming, batched, idempotent, validated with the services' pydantic schemas.

Each batch is one transaction (``--strict``: the whole file is one, rolled back if any row is
bad), so a killed import re-run from the start ends in exactly the state of a clean run: rows
already written are found by their key and left unchanged. Work per batch is a constant number
of set-based statements (look up keys, insert, update, audit) plus one batch hook call; nothing
is done per row against the database.

One bad row never costs the others: a row the validation refuses is rejected with its line,
field and reason; a batch the *database* refuses (a value one engine stores and the other does
not, a constraint) is rolled back to its savepoint and written again row by row, each row in a
savepoint of its own, so only the rows the database refuses are rejected (with its reason).

Every entity, the core's and the plugins', runs through :func:`run_import` from its
:class:`crmcore.bulk.registry.BulkEntity`; the core's four bring their own batch processors
(below), a plugin's goes through :class:`SchemaProcessor` and its ``write_batch``.
"""
from __future__ import annotations

import datetime as dt
import gc
import hashlib
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy import exc as sa_exc

from crmcore.app import CRM
from crmcore.bulk.fastinsert import bulk_insert, select_in
from crmcore.bulk.readers import SourceRow
from crmcore.bulk.registry import BatchOutcome, BulkEntity, get_entity
from crmcore.bulk.specs import ATTR_PREFIX, SPECS, EntitySpec
from crmcore.db.types import BALANCE_LIMIT, utcnow
from crmcore.enums import AccountStatus, CustomerKind, Direction, InteractionKind, TransactionKind
from crmcore.errors import CRMError, InvalidInput, PluginError, Veto, validation_errors
from crmcore.models import Account, Contact, Customer, Interaction, Transaction, User
from crmcore.models.customer import fold
from crmcore.schemas import ContactCreate, CustomerCreate, InteractionCreate, TransactionCreate
from crmcore.schemas.account import DEFAULT_CURRENCY, check_amount
from crmcore.schemas.fields import no_control
from crmcore.services._base import jsonable
from crmcore.services.accounts import PostingHorizon, balances_over_limit, effect, keep_used_accounts, posting_audit
from crmcore.services.audit import insert_entries
from crmcore.uow import UnitOfWork

DEFAULT_BATCH = 5000


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    reason: str
    key: str | None = None


@dataclass
class ImportResult:
    entity: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    batches: int = 0
    seconds: float = 0.0
    committed: bool = True
    first_errors: list[RowError] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.inserted + self.updated + self.unchanged + self.rejected

    def summary(self) -> str:
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.entity}: {self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.rejected} rejected in {self.seconds:.2f}s ({rate:,.0f} rows/s)")


class StrictAbort(CRMError):
    """``--strict`` and a row was bad: the whole import was rolled back."""


def batched(rows: Iterable[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str, limit: int = 300) -> str:
    """``text`` safe for a terminal and a UTF-8 report: control characters and lone surrogates
    escaped, cut to ``limit`` characters (a key can be anything a file holds)."""
    if _UNSAFE.search(text):
        text = _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text)
    return text if len(text) <= limit else text[:limit] + "…"


def ref_problem(value: str) -> str | None:
    """Why ``value`` cannot be a reference to look up (control characters, length), or None."""
    if len(value) > 100:
        return "is longer than 100 characters"
    try:
        no_control(value)
    except ValueError as e:
        return str(e)
    return None


class BatchImporter:
    """Shared machinery of the core's entities; one subclass per entity implements :meth:`process`.

    ``process`` records what it does in ``self.out`` (the batch's :class:`BatchOutcome`), which
    the runner merges into the result only once the batch's savepoint is released.
    """

    spec: EntitySpec

    def __init__(self, crm: CRM, entity: BulkEntity | None = None) -> None:
        self.crm = crm
        self.entity = entity
        self.out = BatchOutcome()
        self._users: dict[str, int] | None = None

    def reject(self, line: int, fld: str, reason: str, key: str | None = None) -> None:
        self.out.reject(line, fld, reason, key)

    def run(self, uow: UnitOfWork, batch: list[SourceRow], out: BatchOutcome) -> None:
        self.out = out
        self.process(uow, batch)

    def forget(self, batch: list[SourceRow]) -> None:
        """The batch was rolled back: drop what was remembered about its rows."""

    def validate(self, schema: type[BaseModel], row: SourceRow, data: dict[str, Any], key: str | None) -> Any:
        try:
            return schema.model_validate(data)
        except ValidationError as e:
            errs = validation_errors(e, "row")
            self.reject(row.line, errs[0][0], "; ".join(f"{f}: {m}" if f != errs[0][0] or len(errs) > 1 else m
                                                         for f, m in errs), key)
            return None

    def user_id(self, uow: UnitOfWork, username: str | None) -> int | None:
        if username is None:
            return None
        if self._users is None:
            self._users = dict(uow.session.execute(select(User.username, User.id)).all())
        if username not in self._users:
            raise KeyError(username)
        return self._users[username]

    def customers_by_ref(self, uow: UnitOfWork, refs: Iterable[str]) -> dict[str, tuple[int, CustomerKind, bool]]:
        refs = list(set(refs))
        out: dict[str, tuple[int, CustomerKind, bool]] = {}
        for i in range(0, len(refs), 5000):
            q = select(Customer.external_ref, Customer.id, Customer.kind, Customer.archived).where(
                Customer.external_ref.in_(refs[i:i + 5000]))
            out.update({r: (cid, k, a) for r, cid, k, a in uow.session.execute(q)})
        return out

    def insert_and_fetch_ids(self, uow: UnitOfWork, table: Table, rows: list[dict[str, Any]], key_cols: tuple[str, ...]) -> list[int]:
        """Bulk-insert ``rows``; return their new ids in row order, looked up by ``key_cols``
        (the first one indexed; the full key is matched in Python)."""
        if not rows:
            return []
        conn = uow.session.connection()
        bulk_insert(conn, table, rows)
        if conn.dialect.name == "sqlite":
            # SQLite gives new rows max(rowid)+1 and we hold the write lock, so the batch got a
            # contiguous range ending at last_insert_rowid(); confirmed by a count on the range
            # (an index-only scan), otherwise we fall back to looking the rows up by key.
            last = conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
            first = last - len(rows) + 1
            n = conn.exec_driver_sql(f"SELECT count(*) FROM {table.name} WHERE id BETWEEN ? AND ?", (first, last)).scalar_one()
            if n == len(rows):
                return list(range(first, last + 1))
        keys = [tuple(r[c] for c in key_cols) for r in rows]
        sql = f"SELECT id, {', '.join(key_cols)} FROM {table.name} WHERE {key_cols[0]} IN ({{}})"
        found = {tuple(r[1:]): r[0] for r in select_in(conn, sql, list(dict.fromkeys(k[0] for k in keys)))}
        return [found[k] for k in keys]

    def audit_many(self, uow: UnitOfWork, entries: list[dict[str, Any]]) -> None:
        """One statement for a batch's audit entries, updates and inserts mixed."""
        if entries:
            insert_entries(uow.session.connection(), uow.actor, entries)

    def process(self, uow: UnitOfWork, batch: list[SourceRow]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class SchemaProcessor(BatchImporter):
    """A plugin's entity: required fields, keys repeated in the file and the pydantic schema are
    checked here; the plugin's ``write_batch`` writes the valid rows and accounts for each."""

    def __init__(self, crm: CRM, entity: BulkEntity) -> None:
        super().__init__(crm, entity)
        self.seen: dict[str, int] = {}

    def process(self, uow: UnitOfWork, batch: list[SourceRow]) -> None:
        entity = self.entity
        assert entity is not None and entity.schema is not None and entity.write_batch is not None
        rows: list[tuple[int, Any]] = []
        for row in batch:
            if row.error:
                self.reject(row.line, "row", row.error)
                continue
            data = {k: v for k, v in row.data.items() if v is not None}
            key = data.get(entity.key)
            key = key.strip() if isinstance(key, str) else key
            if key is None or key == "":
                self.reject(row.line, entity.key, "is required")
                continue
            skey = str(key)
            if skey in self.seen:
                self.reject(row.line, entity.key, f"duplicate {entity.key} {printable(skey)!r} (also on line {self.seen[skey]})", skey)
                continue
            self.seen[skey] = row.line  # as for the core's entities: the key again is a duplicate, even if this row is bad
            obj = self.validate(entity.schema, row, data, skey)
            if obj is not None:
                rows.append((row.line, obj))
        if not rows:
            return
        outcome = entity.write_batch(uow, rows)
        if not isinstance(outcome, BatchOutcome) or outcome.rows != len(rows):
            got = outcome.rows if isinstance(outcome, BatchOutcome) else repr(outcome)
            raise CRMError(f"bulk entity {entity.name!r}: write_batch accounted for {got} of {len(rows)} rows "
                           "(inserted + updated + unchanged + rejected must equal the rows given)")
        self.out.add(outcome)

    def forget(self, batch: list[SourceRow]) -> None:
        lines = {r.line for r in batch}
        for k in [k for k, line in self.seen.items() if line in lines]:
            del self.seen[k]


class KeyedUpsert(BatchImporter):
    """Customers, contacts and interactions: insert new keys, update changed fields of known ones."""

    model: type[Any]
    schema: type[BaseModel]
    compare: tuple[str, ...]  # model columns an import may change

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: dict[str, int] = {}

    def prepare(self, uow: UnitOfWork, rows: list[tuple[SourceRow, str, Any]]) -> list[tuple[SourceRow, str, dict[str, Any]]]:
        """Validated rows -> (row, key, model column values given in the file); rejects what fails."""
        raise NotImplementedError

    def finalise(self, values: dict[str, Any], old: Any | None) -> dict[str, Any]:
        """Last step with the stored row at hand (None for a new one); raise InvalidInput to reject."""
        return values

    def key_of(self, row: SourceRow, data: dict[str, Any]) -> str | None:
        return data.get(self.spec.key)

    def after_batch(self, uow: UnitOfWork, created: list[int], updated: list[int]) -> None:
        raise NotImplementedError

    def forget(self, batch: list[SourceRow]) -> None:
        lines = {r.line for r in batch}
        for k in [k for k, line in self.seen.items() if line in lines]:
            del self.seen[k]

    def process(self, uow: UnitOfWork, batch: list[SourceRow]) -> None:
        validated: list[tuple[SourceRow, str, Any]] = []
        seen = self.seen  # keys of the whole run: a key twice in a file is an error, in any batch
        for row in batch:
            if row.error:
                self.reject(row.line, "row", row.error)
                continue
            data = {k: v for k, v in row.data.items() if v is not None}
            key = self.key_of(row, data)
            if key is not None:
                key = str(key).strip()
            if not key:
                self.reject(row.line, self.spec.key, "is required")
                continue
            if key in seen:
                self.reject(row.line, self.spec.key, f"duplicate {self.spec.key} {printable(key)!r} (also on line {seen[key]})", key)
                continue
            seen[key] = row.line
            obj = self.validate_row(row, data, key)
            if obj is not None:
                validated.append((row, key, obj))
        prepared = self.prepare(uow, validated)
        if not prepared:
            return
        key_col = self.model.external_ref
        cols = [self.model.id, getattr(self.model, "archived", None), *[getattr(self.model, c) for c in self.compare]]
        cols = [c for c in cols if c is not None]
        keys = [k for _, k, _ in prepared]
        existing: dict[str, Any] = {}
        for i in range(0, len(keys), 5000):
            for r in uow.session.execute(select(key_col, *cols).where(key_col.in_(keys[i:i + 5000]))):
                existing[r[0]] = r
        now = utcnow()
        inserts: list[dict[str, Any]] = []
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        audits: list[dict[str, Any]] = []
        updated_ids: list[int] = []
        for row, key, values in prepared:
            old = existing.get(key)
            try:
                values = self.finalise(values, None if old is None else old._mapping)
            except InvalidInput as e:
                self.reject(row.line, e.errors[0][0] if e.errors else "row", str(e), key)
                continue
            if old is None:
                inserts.append(self.new_row(values, key, now))
                continue
            m = old._mapping
            changes = {c: v for c, v in values.items() if c in self.compare and m[c] != v}
            if not changes:
                self.out.unchanged += 1
                continue
            if m.get("archived"):
                self.reject(row.line, self.spec.key, f"{self.spec.name[:-1]} {key!r} is archived; restore it before updating", key)
                continue
            updates[tuple(sorted(changes)) + tuple(sorted(self.derived(changes)))].append(
                {"_id": m["id"], **changes, **self.derived(changes)})
            updated_ids.append(m["id"])
            audits.append({"action": "import-update", "entity": self.spec.name[:-1], "entity_id": str(m["id"]),
                           "before": jsonable({c: m[c] for c in changes}), "after": jsonable(changes)})
        table = self.model.__table__
        created = self.insert_and_fetch_ids(uow, table, inserts, ("external_ref",))
        for columns, params in updates.items():
            params.sort(key=lambda p: p["_id"])  # rows locked in id order: concurrent imports cannot deadlock
            stmt = update(table).where(table.c.id == bindparam("_id")).values(
                **{c: bindparam(c) for c in columns}, **self.update_extra(now))
            uow.session.connection().execute(stmt, params)
        if created:
            audits.append({"action": "import-create", "entity": self.spec.name[:-1], "entity_id": None,
                           "after": {"count": len(created), "first_id": created[0], "last_id": created[-1]}})
        self.audit_many(uow, audits)
        self.out.inserted += len(created)
        self.out.updated += len(updated_ids)
        if created or updated_ids:
            self.after_batch(uow, created, updated_ids)

    def validate_row(self, row: SourceRow, data: dict[str, Any], key: str) -> Any:
        return self.validate(self.schema, row, data, key)

    def new_row(self, values: dict[str, Any], key: str, now: dt.datetime) -> dict[str, Any]:
        raise NotImplementedError

    def update_extra(self, now: dt.datetime) -> dict[str, Any]:
        return {}

    def derived(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Columns computed from changed ones (not compared, never audited)."""
        return {}


class CustomerImporter(KeyedUpsert):
    spec = SPECS["customers"]
    model = Customer
    schema = CustomerCreate
    compare = ("name", "kind", "email", "phone", "country", "region", "industry", "lifecycle_stage", "owner_id", "tags",
               "attributes")

    def validate_row(self, row: SourceRow, data: dict[str, Any], key: str) -> Any:
        attrs = {k[len(ATTR_PREFIX):]: data.pop(k) for k in [k for k in data if k.startswith(ATTR_PREFIX)]}
        if attrs:
            data["attributes"] = attrs
        return self.validate(self.schema, row, data, key)

    def prepare(self, uow: UnitOfWork, rows: list[tuple[SourceRow, str, Any]]) -> list[tuple[SourceRow, str, dict[str, Any]]]:
        out = []
        for row, key, c in rows:
            given = c.model_fields_set
            values = {f: getattr(c, f) for f in ("name", "kind", "email", "phone", "country", "region", "industry",
                                                 "lifecycle_stage", "tags") if f in given}
            try:
                if "owner" in given:
                    values["owner_id"] = self.user_id(uow, c.owner)
            except KeyError:
                self.reject(row.line, "owner", f"unknown user {c.owner!r}", key)
                continue
            if "attributes" in given:
                values["attributes"] = c.attributes  # validated in finalise, merged with the stored ones
            out.append((row, key, values))
        return out

    def finalise(self, values: dict[str, Any], old: Any | None) -> dict[str, Any]:
        fields_ = self.crm.fields
        if old is None:
            if "attributes" in values or any(d.required for d in fields_.fields.values()):
                values["attributes"] = fields_.validate(values.get("attributes", {}))
        elif "attributes" in values:
            values["attributes"] = fields_.validate(values["attributes"], existing=old["attributes"])
        return values

    def new_row(self, values: dict[str, Any], key: str, now: dt.datetime) -> dict[str, Any]:
        return {"kind": CustomerKind.ORGANIZATION, "email": None, "phone": None, "country": None, "region": None,
                "industry": None, "lifecycle_stage": "prospect", "owner_id": None, "tags": [], "attributes": {},
                **values, "search_name": fold(values["name"]), "external_ref": key, "archived": False,
                "merged_into_id": None, "created_at": now, "updated_at": now, "version": 1}

    def update_extra(self, now: dt.datetime) -> dict[str, Any]:
        return {"version": Customer.version + 1, "updated_at": now}

    def derived(self, changes: dict[str, Any]) -> dict[str, Any]:
        return {"search_name": fold(changes["name"])} if "name" in changes else {}

    def after_batch(self, uow: UnitOfWork, created: list[int], updated: list[int]) -> None:
        uow.hooks.customers_batch(uow, created, updated)


class ByCustomerRef(KeyedUpsert):
    """Rows that name their customer by ``customer_ref`` (contacts, interactions)."""

    def validate_row(self, row: SourceRow, data: dict[str, Any], key: str) -> Any:
        ref = str(data.pop("customer_ref", "") or "").strip()
        problem = ref_problem(ref)
        if problem:
            self.reject(row.line, "customer_ref", problem, key)
            return None
        c = self.validate(self.schema, row, data, key)
        return None if c is None else (ref, c)

    def with_customers(self, uow: UnitOfWork, rows: list[tuple[SourceRow, str, Any]]) -> Iterator[tuple[SourceRow, str, Any, tuple[int, CustomerKind, bool]]]:
        """(row, key, validated, (customer id, kind, archived)); rows naming no known customer are rejected."""
        customers = self.customers_by_ref(uow, [ref for _, _, (ref, _) in rows])
        for row, key, (ref, c) in rows:
            found = customers.get(ref)
            if found is None:
                self.reject(row.line, "customer_ref", f"unknown customer {ref!r}", key)
            elif found[2]:
                self.reject(row.line, "customer_ref", f"customer {ref!r} is archived", key)
            else:
                yield row, key, c, found


class ContactImporter(ByCustomerRef):
    spec = SPECS["contacts"]
    model = Contact
    schema = ContactCreate
    compare = ("customer_id", "name", "role", "title", "email", "phone")

    def prepare(self, uow: UnitOfWork, rows: list[tuple[SourceRow, str, Any]]) -> list[tuple[SourceRow, str, dict[str, Any]]]:
        out = []
        for row, key, c, found in self.with_customers(uow, rows):
            if found[1] is CustomerKind.PERSON:
                self.reject(row.line, "customer_ref", "the customer is a person; contacts belong to organizations", key)
            else:
                values = {f: getattr(c, f) for f in ("name", "role", "title", "email", "phone") if f in c.model_fields_set}
                out.append((row, key, {"customer_id": found[0], **values}))
        return out

    def new_row(self, values: dict[str, Any], key: str, now: dt.datetime) -> dict[str, Any]:
        return {"role": None, "title": None, "email": None, "phone": None, **values, "external_ref": key, "created_at": now}

    def after_batch(self, uow: UnitOfWork, created: list[int], updated: list[int]) -> None:
        pass  # contacts have no events in the hook contract


class InteractionImporter(ByCustomerRef):
    spec = SPECS["interactions"]
    model = Interaction
    schema = InteractionCreate
    compare = ("customer_id", "channel", "direction", "kind", "subject", "notes", "occurred_at", "handled_by_id", "outcome",
               "satisfaction")

    def key_of(self, row: SourceRow, data: dict[str, Any]) -> str | None:
        if data.get("external_ref"):
            return data["external_ref"]
        # a stable reference, so re-importing a file without references is still idempotent
        basis = "\x1f".join(str(data.get(k, "")).strip() for k in ("customer_ref", "occurred_at", "channel", "subject"))
        return "h:" + hashlib.sha1(basis.encode()).hexdigest()[:30]

    def validate_row(self, row: SourceRow, data: dict[str, Any], key: str) -> Any:
        data["external_ref"] = key
        data.setdefault("source", "import")
        return super().validate_row(row, data, key)

    def prepare(self, uow: UnitOfWork, rows: list[tuple[SourceRow, str, Any]]) -> list[tuple[SourceRow, str, dict[str, Any]]]:
        out = []
        for row, key, c, found in self.with_customers(uow, rows):
            values = {f: getattr(c, f) for f in ("channel", "direction", "kind", "subject", "notes", "occurred_at", "outcome",
                                                 "satisfaction") if f in c.model_fields_set}
            if "handled_by" in c.model_fields_set:
                try:
                    values["handled_by_id"] = self.user_id(uow, c.handled_by)
                except KeyError:
                    self.reject(row.line, "handled_by", f"unknown user {c.handled_by!r}", key)
                    continue
            out.append((row, key, {"customer_id": found[0], **values}))
        return out

    def new_row(self, values: dict[str, Any], key: str, now: dt.datetime) -> dict[str, Any]:
        return {"direction": Direction.INBOUND, "kind": InteractionKind.OTHER, "notes": None, "outcome": None,
                "satisfaction": None, "handled_by_id": None, **values, "external_ref": key, "source": "import", "source_ref": None, "created_at": now}

    def after_batch(self, uow: UnitOfWork, created: list[int], updated: list[int]) -> None:
        if created:
            uow.hooks.interactions_batch(uow, created)
        if updated:
            uow.hooks.call("crm_interactions_updated_batch", uow=uow, interaction_ids=updated)


@dataclass(frozen=True, slots=True)
class AccountRef:
    """What the bulk guard hook sees of an account (an ORM object per account would cost more
    than the rest of the batch)."""

    id: int
    customer_id: int
    currency: str
    status: AccountStatus
    payment_terms_days: int


class TransactionImporter(BatchImporter):
    """Entries go to the customer's default account (opened on first posting). An entry whose
    reference is already on the account is unchanged if it is the same, rejected if it differs:
    ledger entries are never edited, a correction is a new entry."""

    spec = SPECS["transactions"]

    def process(self, uow: UnitOfWork, batch: list[SourceRow]) -> None:
        self.opened: dict[int, tuple[int, str]] = {}  # accounts opened for this batch (kept only if used)
        self._process(uow, batch)
        keep_used_accounts(uow, self.opened)

    def _process(self, uow: UnitOfWork, batch: list[SourceRow]) -> None:
        rows: list[tuple[SourceRow, str, TransactionCreate]] = []
        horizon = PostingHorizon.of(uow)
        for row in batch:
            if row.error:
                self.reject(row.line, "row", row.error)
                continue
            data = {k: v for k, v in row.data.items() if v is not None}
            ref = str(data.pop("customer_ref", "") or "").strip()
            data.setdefault("source", "import")
            problem = ref_problem(ref)
            if problem:
                reference = data.get("reference")
                self.reject(row.line, "customer_ref", problem, reference if isinstance(reference, str) else None)
                continue
            entry = self.validate(TransactionCreate, row, data, data.get("reference"))
            if entry is not None and (bad := horizon.problem(entry.occurred_at, entry.due_date)):
                self.reject(row.line, bad[0], bad[1], entry.reference)
            elif entry is not None:
                rows.append((row, ref, entry))
        if not rows:
            return
        customers = self.customers_by_ref(uow, [ref for _, ref, _ in rows])
        accounts = self.default_accounts(uow, customers, rows)
        # entries already posted (a reference is unique per customer, on whichever account)
        pairs = {(customers[ref][0], e.reference) for _, ref, e in rows if ref in accounts}
        posted: dict[tuple[int, str], tuple[TransactionKind, Decimal]] = {}
        sql = "SELECT customer_id, reference, kind, amount FROM transactions WHERE reference IN ({})"
        money = Transaction.__table__.c.amount.type
        for c, r, k, amt in select_in(uow.session.connection(), sql, list({r for _, r in pairs})):
            if (c, r) in pairs:
                posted[(c, r)] = (TransactionKind(k), money.process_result_value(amt, None))
        candidates: list[tuple[SourceRow, AccountRef, TransactionCreate]] = []
        shown: dict[int, AccountRef] = {}  # one per account, for the guard hook
        for row, ref, e in rows:
            if ref not in customers:
                self.reject(row.line, "customer_ref", f"unknown customer {ref!r}", e.reference)
                continue
            if customers[ref][2]:
                self.reject(row.line, "customer_ref", f"customer {ref!r} is archived", e.reference)
                continue
            acc_id, currency, status, terms = accounts[ref]
            if e.currency and e.currency != currency:
                self.reject(row.line, "currency", f"wrong currency {e.currency}: the account of {ref!r} is kept in {currency}",
                            e.reference)
                continue
            try:  # the account's currency decides the decimals (ISO 4217) when the row gives none
                check_amount(e.amount, currency)
            except ValueError as err:
                self.reject(row.line, "amount", str(err), e.reference)
                continue
            prior = posted.get((customers[ref][0], e.reference))
            if prior is not None:
                if prior == (e.kind, e.amount):
                    self.out.unchanged += 1
                else:
                    self.reject(row.line, "reference", f"reference {e.reference!r} is already posted as {prior[0].value} "
                                f"{prior[1]}; a correction needs a new reference", e.reference)
                continue
            if status is AccountStatus.CLOSED:
                self.reject(row.line, "customer_ref", f"the account of {ref!r} is closed", e.reference)
                continue
            if status is AccountStatus.ON_HOLD and effect(e.kind, e.amount) > 0:
                self.reject(row.line, "customer_ref", f"the account of {ref!r} is on hold; entries that raise what "
                            "the customer owes are refused", e.reference)
                continue
            posted[(customers[ref][0], e.reference)] = (e.kind, e.amount)  # a repeat later in the batch is unchanged
            account = shown.get(acc_id)
            if account is None:
                account = shown[acc_id] = AccountRef(acc_id, customers[ref][0], currency, AccountStatus(status), terms)
            candidates.append((row, account, e))
        if not candidates:
            return
        pairs = [(a, e) for _, a, e in candidates]
        refused = uow.hooks.before_transactions_batch(uow, pairs)
        for i, reason in per_entry_guards(uow, pairs, refused).items():
            refused.setdefault(i, reason)
        now = utcnow()
        inserts, deltas = [], defaultdict(Decimal)
        sources: list[tuple[int, str]] = []  # (line, reference) of each insert
        for i, (row, account, e) in enumerate(candidates):
            if i in refused:
                self.reject(row.line, "row", refused[i], e.reference)
                continue
            occurred = e.occurred_at or now
            due = e.due_date
            if e.kind is TransactionKind.INVOICE and due is None:
                try:
                    due = occurred.date() + dt.timedelta(days=account.payment_terms_days)
                except OverflowError:
                    self.reject(row.line, "occurred_at", f"the due date ({occurred.date()} + {account.payment_terms_days} "
                                "days of payment terms) is after 9999-12-31", e.reference)
                    continue
            inserts.append({"account_id": account.id, "customer_id": account.customer_id, "kind": e.kind, "amount": e.amount, "currency": account.currency,
                            "occurred_at": occurred, "due_date": due, "reference": e.reference,
                            "description": e.description, "category": e.category, "source": e.source, "created_at": now})
            sources.append((row.line, e.reference))
            deltas[account.id] += effect(e.kind, e.amount)
        over = balances_over_limit(uow.session, deltas)
        if over:  # an account's balance would leave the documented range: its rows of this batch are rejected
            for (line, reference), ins in zip(sources, inserts):
                if ins["account_id"] in over:
                    self.reject(line, "amount", f"account {ins['account_id']} would reach a balance of "
                                f"{over[ins['account_id']]}, beyond the limit of ±{BALANCE_LIMIT:,}", reference)
            inserts = [ins for ins in inserts if ins["account_id"] not in over]
            for account_id in over:
                deltas.pop(account_id)
        ids = self.insert_and_fetch_ids(uow, Transaction.__table__, inserts, ("reference", "customer_id"))
        if deltas:
            t = Account.__table__
            uow.session.connection().execute(
                update(t).where(t.c.id == bindparam("_id")).values(balance=t.c.balance + bindparam("_delta", type_=t.c.balance.type)),
                [{"_id": a, "_delta": d} for a, d in sorted(deltas.items())])  # id order: no deadlock between importers
        if ids:
            self.audit_many(uow, [{"action": "import-post", "entity": "transaction", "entity_id": None,
                                   "after": posting_audit(uow, {"count": len(ids), "first_id": ids[0], "last_id": ids[-1],
                                                                "accounts": len(deltas)})}])
            uow.hooks.transactions_batch(uow, ids)
        self.out.inserted += len(ids)

    def default_accounts(self, uow: UnitOfWork, customers: dict[str, tuple[int, CustomerKind, bool]],
                         rows: Sequence[tuple[SourceRow, str, TransactionCreate]]) -> dict[str, tuple[int, str, AccountStatus, int]]:
        """customer_ref -> (default account id, currency, status, terms); opens missing default accounts."""
        ids = {cid: ref for ref, (cid, _, _) in customers.items()}

        def load() -> dict[str, tuple[int, str, AccountStatus, int]]:
            out = {}
            idl = list(ids)
            for i in range(0, len(idl), 5000):
                q = select(Account.customer_id, Account.id, Account.currency, Account.status, Account.payment_terms_days).where(
                    Account.customer_id.in_(idl[i:i + 5000]), Account.is_default)
                out.update({ids[c]: (a, cur, st, terms) for c, a, cur, st, terms in uow.session.execute(q)})
            return out

        found = load()
        missing: dict[int, str] = {}
        for _, ref, e in rows:
            if ref in customers and ref not in found and not customers[ref][2]:
                missing.setdefault(customers[ref][0], e.currency or DEFAULT_CURRENCY)
        if missing:
            now = utcnow()
            bulk_insert(uow.session.connection(), Account.__table__, [
                {"customer_id": cid, "currency": cur, "payment_terms_days": 30, "status": AccountStatus.OPEN,
                 "balance": Decimal("0.00"), "is_default": True, "created_at": now} for cid, cur in sorted(missing.items())])
            found = load()
            self.opened.update({found[ids[cid]][0]: (cid, cur) for cid, cur in missing.items() if ids[cid] in found})
        return found


IMPORTERS: dict[str, type[BatchImporter]] = {
    "customers": CustomerImporter,
    "contacts": ContactImporter,
    "interactions": InteractionImporter,
    "transactions": TransactionImporter,
}


def per_entry_guards(uow: UnitOfWork, pairs: Sequence[tuple[AccountRef, TransactionCreate]],
                     refused: dict[int, str]) -> dict[int, str]:
    """Run ``crm_before_transaction_post`` for each entry, for the plugins that implement that
    per-entry guard but no batch guard: the bulk path must never skip a plugin's rule.

    They get the real :class:`Account` rows (loaded in one query), as in ``crm account post``.
    A ``Veto`` refuses that entry only; any other error fails the batch (as a hook error does).
    """
    pm = uow.hooks.pm
    batch_guards = {i.plugin_name for i in pm.hook.crm_before_transactions_batch.get_hookimpls()}
    impls = [i for i in reversed(pm.hook.crm_before_transaction_post.get_hookimpls())
             if i.plugin_name not in batch_guards and not (i.hookwrapper or i.wrapper)]
    if not impls:
        return {}
    ids = list({a.id for a, _ in pairs})
    accounts = {a.id: a for a in uow.session.scalars(select(Account).where(Account.id.in_(ids)))}
    out: dict[int, str] = {}
    for impl in impls:
        for index, (ref, entry) in enumerate(pairs):
            if index in refused or index in out:
                continue
            kwargs = {"uow": uow, "account": accounts[ref.id], "entry": entry}
            try:
                impl.function(**{a: kwargs[a] for a in impl.argnames})
            except Veto as e:
                out[index] = f"refused by plugin {impl.plugin_name!r}: {e.reason}"
            except Exception as e:
                error = PluginError(impl.plugin_name, "crm_before_transaction_post", e)
                if uow.failed is None:
                    uow.failed = error
                raise error from e
    return out


def allowed_columns(crm: CRM, entity: str) -> list[str]:
    """The columns an import of ``entity`` accepts (the registered ones plus run-time ones)."""
    return get_entity(crm, entity).all_columns(crm)


def make_processor(crm: CRM, entity: BulkEntity) -> BatchImporter:
    if entity.processor is not None:
        return entity.processor(crm, entity)
    return SchemaProcessor(crm, entity)


# Errors that a row's values can cause in the database or the driver: the batch is written again
# row by row to find that row. Lost connections, locks and timeouts (OperationalError) are not
# about a row and stop the import as before.
_ROW_ERRORS: tuple[type[BaseException], ...] = (sa_exc.StatementError, ArithmeticError, ValueError)


RETRIES = 5


def _transient(e: BaseException) -> bool:
    """A deadlock or serialization failure between concurrent importers (PostgreSQL): the batch
    was rolled back whole and is simply run again."""
    return getattr(getattr(e, "orig", None), "sqlstate", None) in ("40P01", "40001")


def _row_level(e: BaseException) -> bool:
    if isinstance(e, (CRMError, sa_exc.OperationalError, sa_exc.InterfaceError)):
        return False
    if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
        return False
    return isinstance(e, _ROW_ERRORS)


def _db_reason(e: BaseException) -> str:
    orig = getattr(e, "orig", None) or e
    lines = str(orig).strip().splitlines()
    text = lines[0] if lines else type(orig).__name__
    return printable(f"{type(orig).__name__}: {text}", 200)


def write_batch(uow: UnitOfWork, processor: BatchImporter, batch: list[SourceRow]) -> BatchOutcome:
    """Write one batch in a savepoint; if the database refuses it, write its rows one by one
    (a savepoint each) and reject only the rows it refuses."""
    out = BatchOutcome()
    try:
        with uow.session.begin_nested():
            processor.run(uow, batch, out)
        return out
    except Exception as e:
        if not _row_level(e) or uow.failed is not None:
            raise
        processor.forget(batch)
    total = BatchOutcome()
    for row in batch:
        for attempt in range(1, RETRIES + 1):
            one = BatchOutcome()
            try:
                with uow.session.begin_nested():
                    processor.run(uow, [row], one)
                break
            except Exception as e:
                if not _row_level(e) or uow.failed is not None:
                    raise
                processor.forget([row])
                # a unique key another importer committed while this row waited for it: the
                # next attempt finds the row (unchanged); a row that breaks a rule fails again
                if isinstance(e, sa_exc.IntegrityError) and attempt < RETRIES:
                    continue
                one = BatchOutcome()
                one.reject(row.line, "row", f"refused by the database: {_db_reason(e)}")
                break
        total.add(one)
    return total


def run_import(
    crm: CRM,
    entity: str,
    rows: Iterable[SourceRow],
    *,
    actor: str = "import",
    batch_size: int = DEFAULT_BATCH,
    strict: bool = False,
    on_error: Callable[[RowError], None] = lambda e: None,
    on_batch: Callable[[int], None] = lambda n: None,
) -> ImportResult:
    """Import ``rows`` (already read and mapped) into ``entity``; see the module docstring."""
    ent = get_entity(crm, entity)
    if batch_size < 1:
        raise InvalidInput("batch size must be at least 1")
    result = ImportResult(entity)
    processor = make_processor(crm, ent)

    def record(outcome: BatchOutcome) -> None:
        result.inserted += outcome.inserted
        result.updated += outcome.updated
        result.unchanged += outcome.unchanged
        for line, fld, reason, *rest in sorted(outcome.rejected, key=lambda r: r[0]):
            key = rest[0] if rest and rest[0] is not None else None
            err = RowError(line, printable(str(fld), 100), printable(str(reason), 1000),
                           None if key is None else printable(str(key), 200))
            result.rejected += 1
            if len(result.first_errors) < 20:
                result.first_errors.append(err)
            on_error(err)

    def check(uow: UnitOfWork) -> None:
        uow.require("import.run")  # every bulk import, besides the entity's own write permission
        if ent.permission:
            uow.require(ent.permission)

    started = time.perf_counter()
    # Each batch allocates ~10 objects a row, all freed at the end of the batch; the cyclic GC
    # would otherwise rescan the growing heap again and again (measured: a third of the time).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        if strict:
            try:
                with crm.unit_of_work(actor) as uow:
                    check(uow)
                    for batch in batched(rows, batch_size):
                        record(write_batch(uow, processor, batch))
                        result.batches += 1
                        on_batch(len(batch))
                    if result.rejected:
                        raise StrictAbort(f"--strict: {result.rejected} bad row(s); nothing was imported")
            except StrictAbort:
                result.committed = False
                result.inserted = result.updated = result.unchanged = 0
        else:
            for batch in batched(rows, batch_size):
                for attempt in range(1, RETRIES + 1):
                    try:
                        with crm.unit_of_work(actor) as uow:
                            check(uow)
                            outcome = write_batch(uow, processor, batch)
                        break
                    except sa_exc.OperationalError as e:
                        if attempt == RETRIES or not _transient(e):
                            raise
                        processor.forget(batch)
                        time.sleep(0.05 * attempt)
                record(outcome)  # counted and reported once the batch is committed
                result.batches += 1
                gc.collect(1)  # the batch's few reference cycles (session, unit of work): young generations only
                on_batch(len(batch))
    finally:
        if gc_was_enabled:
            gc.enable()
        result.seconds = time.perf_counter() - started
    return result
