"""What every bulk entity shares: row errors, the result, and the batch processors' base
(:class:`BatchImporter`) with :class:`SchemaProcessor`, which runs a plugin's ``write_batch``."""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Table, select

from crmcore.app import CRM
from crmcore.bulk.fastinsert import bulk_insert, select_in
from crmcore.bulk.readers import SourceRow
from crmcore.bulk.registry import BatchOutcome, BulkEntity
from crmcore.bulk.specs import EntitySpec
from crmcore.enums import CustomerKind
from crmcore.errors import CRMError, validation_errors
from crmcore.models import Customer, User
from crmcore.schemas.fields import no_control
from crmcore.services.audit import insert_entries
from crmcore.uow import UnitOfWork


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
    warned: int = 0  # rows imported that look like an existing customer (listed in the error report)
    first_warnings: list[RowError] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.inserted + self.updated + self.unchanged + self.rejected

    def summary(self) -> str:
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        warned = f", {self.warned} likely duplicate(s)" if self.warned else ""
        return (f"{self.entity}: {self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.rejected} rejected{warned} in {self.seconds:.2f}s ({rate:,.0f} rows/s)")


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
    # On PostgreSQL, batches of importers sharing this key run one at a time (a transaction-scoped
    # advisory lock taken before the batch): concurrent ledger batches otherwise lock accounts and
    # unique references in file order and deadlock each other faster than retries can absorb.
    serial_key: int | None = None

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
            out.update({r: (cid, k, a) for r, cid, k, a in uow.session.execute(q) if r is not None})  # matched in_()
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
