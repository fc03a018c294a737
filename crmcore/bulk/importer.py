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
(:mod:`crmcore.bulk.keyed` for customers, contacts and interactions,
:mod:`crmcore.bulk.ledger_import` for transactions), a plugin's goes through
:class:`crmcore.bulk.batch.SchemaProcessor` and its ``write_batch``. The names of those modules
are re-exported here.
"""
from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable

from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from crmcore.app import CRM
from crmcore.bulk.batch import (
    BatchImporter,
    ImportResult,
    RowError,
    SchemaProcessor,
    StrictAbort,
    batched,
    printable,
    ref_problem,
)
from crmcore.bulk.keyed import ByCustomerRef, ContactImporter, CustomerImporter, InteractionImporter, KeyedUpsert
from crmcore.bulk.ledger_import import AccountRef, TransactionImporter, per_entry_guards
from crmcore.bulk.readers import SourceRow
from crmcore.bulk.registry import BatchOutcome, BulkEntity, get_entity
from crmcore.errors import CRMError, InvalidInput
from crmcore.uow import UnitOfWork

__all__ = ["DEFAULT_BATCH", "IMPORTERS", "AccountRef", "BatchImporter", "ByCustomerRef", "ContactImporter",
           "CustomerImporter", "ImportResult", "InteractionImporter", "KeyedUpsert", "RowError", "SchemaProcessor",
           "StrictAbort", "TransactionImporter", "allowed_columns", "batched", "make_processor", "per_entry_guards",
           "printable", "ref_problem", "run_import", "write_batch"]

DEFAULT_BATCH = 5000


IMPORTERS: dict[str, type[BatchImporter]] = {
    "customers": CustomerImporter,
    "contacts": ContactImporter,
    "interactions": InteractionImporter,
    "transactions": TransactionImporter,
}


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


IMPORT_LOCK_NAMESPACE = 0x43524D49  # "CRMI": advisory locks of bulk imports on PostgreSQL


def serialize(uow: UnitOfWork, processor: BatchImporter) -> None:
    """Hold the processor's import lock until the batch's transaction ends (PostgreSQL only)."""
    key = getattr(processor, "serial_key", None)
    if key is not None and uow.session.get_bind().dialect.name == "postgresql":
        uow.session.execute(text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                            {"ns": IMPORT_LOCK_NAMESPACE, "key": key})


def write_batch(uow: UnitOfWork, processor: BatchImporter, batch: list[SourceRow]) -> BatchOutcome:
    """Write one batch in a savepoint; if the database refuses it, write its rows one by one
    (a savepoint each) and reject only the rows it refuses."""
    out = BatchOutcome()
    serialize(uow, processor)
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


def _commit_batch(crm: CRM, actor: str, check: Callable[[UnitOfWork], None], processor: BatchImporter,
                  batch: list[SourceRow]) -> BatchOutcome:
    """One batch in its own transaction, run again after a deadlock or serialization failure."""
    for attempt in range(1, RETRIES + 1):
        try:
            with crm.unit_of_work(actor) as uow:
                check(uow)
                return write_batch(uow, processor, batch)
        except sa_exc.OperationalError as e:
            if attempt == RETRIES or not _transient(e):
                raise
            processor.forget(batch)
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


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
        for line, fld, reason, *rest in sorted(outcome.warnings, key=lambda r: r[0]):
            key = rest[0] if rest and rest[0] is not None else None
            warning = RowError(line, printable(str(fld), 100), printable(str(reason), 1000),
                               None if key is None else printable(str(key), 200))
            result.warned += 1
            if len(result.first_warnings) < 20:
                result.first_warnings.append(warning)
            on_error(warning)

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
                record(_commit_batch(crm, actor, check, processor, batch))  # counted once the batch is committed
                result.batches += 1
                gc.collect(1)  # the batch's few reference cycles (session, unit of work): young generations only
                on_batch(len(batch))
    finally:
        if gc_was_enabled:
            gc.enable()
        result.seconds = time.perf_counter() - started
    return result
