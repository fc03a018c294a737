"""Bulk entities: everything ``crm import ENTITY`` and ``crm export ENTITY`` can read and write.

The core's four entities and every plugin's are registered the same way, so they share one
path: the core reads the file (CSV/JSON Lines, encodings, line-length cap, ``--map``), undoes
the CSV formula neutralisation, checks required fields and keys repeated in the file,
validates each row with the entity's pydantic ``schema``, cuts the stream into batches (one
transaction each, or one for the whole file with ``--strict``), checks the entity's
``permission``, shows progress, writes the error report and the summary line. The entity's
``write_batch`` does the set-based writes of one batch and says what became of each row.

A plugin registers its entities from the ``crm_register_bulk_entities`` hook::

    @hookimpl
    def crm_register_bulk_entities(register):
        register(BulkEntity(name="leads", columns=("external_ref", "name", "email"),
                            required=("external_ref", "name"), key="external_ref",
                            schema=LeadRow, write_batch=write_leads, export_rows=export_leads,
                            permission="sales.lead.write"))

``write_batch(uow, rows)`` gets ``rows: list[tuple[int, LeadRow]]`` (file line, validated row)
and returns a :class:`BatchOutcome` accounting for every row. :func:`keyed_upsert` does the
usual "insert new keys, update changed ones, leave equal ones alone" for a plugin table.
If a batch fails in the database (a constraint, a value the engine refuses), the core rolls
the batch back and writes its rows one by one, each in a savepoint, so only the rows the
database refuses are rejected; ``write_batch`` must therefore be safe to call again with a
subset of the rows (it is, when it only writes through the unit of work).
"""
from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import bindparam, select, update

from crmcore.errors import ConfigError, CRMError

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.uow import UnitOfWork

__all__ = ["BatchOutcome", "BulkEntity", "UnknownEntity", "entities", "get_entity", "keyed_upsert"]

#: (line, field, reason) or (line, field, reason, key)
Rejection = tuple[Any, ...]


@dataclass
class BatchOutcome:
    """What a batch write did with its rows: ``inserted + updated + unchanged + len(rejected)``
    must equal the number of rows it was given.

    ``rejected`` holds ``(line, field, reason)`` tuples (a fourth element, the row's key, is
    shown in the error report when given).
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    #: rows written, but worth a look (a likely duplicate): reported, not counted as rejected
    warnings: list[Rejection] = field(default_factory=list)

    def reject(self, line: int, field_name: str, reason: str, key: str | None = None) -> None:
        self.rejected.append((line, field_name, reason, key))

    def warn(self, line: int, field_name: str, reason: str, key: str | None = None) -> None:
        self.warnings.append((line, field_name, reason, key))

    @property
    def rows(self) -> int:
        return self.inserted + self.updated + self.unchanged + len(self.rejected)

    def add(self, other: BatchOutcome) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected.extend(other.rejected)
        self.warnings.extend(other.warnings)


WriteBatch = Callable[["UnitOfWork", list[tuple[int, Any]]], BatchOutcome]
ExportRows = Callable[["UnitOfWork"], Iterable[Mapping[str, Any]]]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class BulkEntity:
    """One importable/exportable entity.

    :param name: the ENTITY argument of ``crm import`` / ``crm export`` (lower case, ``_``).
    :param columns: the column set, in export order; an import accepts these (case-insensitive).
    :param required: columns every row must fill.
    :param key: the column that identifies a row: the same key again is an update or a no-op,
        and a key twice in one file is rejected the second time (also when the first row was).
    :param schema: pydantic model validating one row (a dict of the non-empty columns);
        a validation error rejects the row with its field and reason.
    :param write_batch: ``(uow, [(line, row), ...]) -> BatchOutcome``: write one batch with
        set-based statements, inside the batch's transaction (flush, never commit).
    :param export_rows: ``(uow) -> iterable of {column: value}`` in a read-only unit of work,
        streamed (yield rows; do not build a list of a whole table).
    :param permission: checked once per batch with ``uow.require`` before anything is written.
    :param doc: one line shown in ``crm import --help``-style listings.
    :param extra_columns: ``(crm) -> column names`` known only at run time (the core's
        ``attr.<field>`` columns of customers); appended to ``columns``.
    """

    name: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    key: str
    schema: type[BaseModel] | None = None
    write_batch: WriteBatch | None = None
    export_rows: ExportRows | None = None
    permission: str | None = None
    doc: str = ""
    extra_columns: Callable[[CRM], Sequence[str]] | None = None
    # the core's own entities bring a batch processor of their own instead of schema/write_batch
    processor: Callable[..., Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "required", tuple(self.required))
        if not _NAME.match(self.name or ""):
            raise ConfigError(f"bulk entity name {self.name!r} must be lower case letters, digits and _")
        if len({c.casefold() for c in self.columns}) != len(self.columns) or not self.columns:
            raise ConfigError(f"bulk entity {self.name!r}: columns must be given and unique")
        unknown = [c for c in (*self.required, self.key) if c not in self.columns]
        if unknown:
            raise ConfigError(f"bulk entity {self.name!r}: {', '.join(unknown)} not among its columns")
        if self.processor is None and (self.schema is None or self.write_batch is None):
            raise ConfigError(f"bulk entity {self.name!r} needs a schema and a write_batch function")
        if self.schema is not None and not (isinstance(self.schema, type) and issubclass(self.schema, BaseModel)):
            raise ConfigError(f"bulk entity {self.name!r}: schema must be a pydantic model class")

    def all_columns(self, crm: CRM) -> list[str]:
        return list(self.columns) + (list(self.extra_columns(crm)) if self.extra_columns else [])


class UnknownEntity(CRMError):
    """``crm import|export`` named an entity nobody registered (a usage error)."""

    exit_code = 2


_CACHE: weakref.WeakKeyDictionary[CRM, dict[str, BulkEntity]] = weakref.WeakKeyDictionary()


def entities(crm: CRM) -> dict[str, BulkEntity]:
    """The core's entities, then those the loaded plugins register (collected once per CRM)."""
    found = _CACHE.get(crm)
    if found is None:
        from crmcore.bulk.core_entities import CORE_ENTITIES

        found = dict(CORE_ENTITIES)
        owners = dict.fromkeys(found, "the core")
        for plugin, entity in crm.hooks.collect("crm_register_bulk_entities"):
            if not isinstance(entity, BulkEntity):
                raise ConfigError(f"plugin {plugin!r} registered {entity!r}, not a BulkEntity")
            if entity.name in found:
                raise ConfigError(f"plugin {plugin!r} registers bulk entity {entity.name!r}, "
                                  f"which {owners[entity.name]} already registers")
            found[entity.name] = entity
            owners[entity.name] = f"plugin {plugin!r}"
        _CACHE[crm] = found
    return found


def get_entity(crm: CRM, name: str) -> BulkEntity:
    known = entities(crm)
    if name not in known:
        raise UnknownEntity(f"unknown entity {name!r}; one of: {', '.join(known)}")
    return known[name]


# -- a helper for plugin write_batch functions ------------------------------------------------

def keyed_upsert(uow: UnitOfWork, model: type[Any], rows: Sequence[tuple[int, Mapping[str, Any]]], *,
                 key: str = "external_ref", defaults: Mapping[str, Any] | None = None,
                 on_insert: Mapping[str, Any] | None = None, on_update: Mapping[str, Any] | None = None,
                 audit_entity: str | None = None) -> tuple[BatchOutcome, list[int], list[int]]:
    """Insert rows whose key is new, update the changed columns of known ones, count the rest.

    :param model: the plugin's mapped class (it needs an integer ``id`` and a unique ``key`` column).
    :param rows: (line, {column: value}) with the columns the row gives (leave out what the file
        left empty, so an import never blanks a stored value). A column a new row leaves out
        takes the column's default (``default`` or ``server_default``), as in a plain INSERT,
        even when other rows of the batch give it.
    :param defaults: column values for new rows that a row does not give (before the column's).
    :param on_insert: extra values for new rows (``created_at``); ``on_update``: for changed ones.
    :param audit_entity: write an audit entry per updated row and one per batch of inserts,
        stamped with ``uow.now()``.
    :return: the outcome, the new ids (in row order) and the updated ids. Three statements per
        batch whatever its size: look up the keys, insert, update (grouped by changed columns).
    """
    from crmcore.bulk.fastinsert import bulk_insert
    from crmcore.services._base import jsonable
    from crmcore.services.audit import insert_entries

    out = BatchOutcome()
    table = model.__table__
    key_col = table.c[key]
    compare = sorted({c for _, values in rows for c in values if c != key})
    existing: dict[Any, Any] = {}
    keys = [values[key] for _, values in rows]
    conn = uow.session.connection()
    for i in range(0, len(keys), 2000):
        for r in conn.execute(select(table.c.id, key_col, *[table.c[c] for c in compare]).where(key_col.in_(keys[i:i + 2000]))):
            existing[r._mapping[key]] = r._mapping
    inserts: list[dict[str, Any]] = []
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    audits: list[dict[str, Any]] = []
    updated_ids: list[int] = []
    now = uow.now()
    for _line, values in rows:
        old = existing.get(values[key])
        if old is None:
            inserts.append({**(defaults or {}), **values, **(on_insert or {})})
            continue
        changes = {c: v for c, v in values.items() if c != key and old[c] != v}
        if not changes:
            out.unchanged += 1
            continue
        by_columns.setdefault(tuple(sorted(changes)), []).append({"_id": old["id"], **changes})
        updated_ids.append(old["id"])
        if audit_entity:
            audits.append({"action": "import-update", "entity": audit_entity, "entity_id": str(old["id"]),
                           "before": jsonable({c: old[c] for c in changes}), "after": jsonable(changes),
                           "at": now, "actor": uow.actor})
    for group in _insert_groups(table, inserts):
        bulk_insert(conn, table, group)
    created: list[int] = []
    if inserts:
        ids: dict[Any, int] = dict(conn.execute(select(key_col, table.c.id).where(key_col.in_([r[key] for r in inserts]))).all())
        created = [ids[r[key]] for r in inserts]
    for changed, params in by_columns.items():
        stmt = update(table).where(table.c.id == bindparam("_id")).values(
            **{c: bindparam(c) for c in changed}, **(on_update or {}))
        conn.execute(stmt, params)
    if audit_entity and created:
        audits.append({"action": "import-create", "entity": audit_entity, "entity_id": None, "before": None,
                       "after": {"count": len(created), "ids": created}, "at": now, "actor": uow.actor})
    if audits:
        insert_entries(conn, uow.actor, audits)
    out.inserted, out.updated = len(created), len(updated_ids)
    return out, created, updated_ids


def _insert_groups(table: Any, inserts: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """New rows split so that every column a row leaves out takes its default, never NULL.

    :func:`bulk_insert` gives a left-out column its Python-side default itself; a column whose
    default only the database knows (``server_default``) must be left out of a whole statement,
    so rows are grouped by which of those columns they give (one group in the usual case).
    """
    server = [c.name for c in table.columns if c.server_default is not None and c.default is None]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in inserts:
        groups.setdefault(tuple(c for c in server if c in row), []).append(row)
    return list(groups.values())


# -- resolvers for plugin write_batch functions -----------------------------------------------

def customer_ids_by_ref(uow: UnitOfWork, refs: Iterable[str]) -> dict[str, int]:
    """Active customers' ids by external reference, a few chunked queries for any number of rows;
    a reference that is unknown, archived or not visible to the actor is absent (reject its row
    with :func:`unknown_customer`, the message the core's own imports use)."""
    from crmcore.models import Customer

    wanted = sorted({r for r in refs if r})
    found: dict[str, int] = {}
    clause = uow.visibility.customer_clause(Customer.owner_id)
    for i in range(0, len(wanted), 2000):
        found.update((ref, cid) for ref, cid in uow.session.execute(select(Customer.external_ref, Customer.id).where(
            Customer.external_ref.in_(wanted[i:i + 2000]), Customer.archived.is_(False), clause)) if ref is not None)
    return found


def unknown_customer(ref: str) -> str:
    return f"unknown customer {ref!r}"


def user_ids_by_name(uow: UnitOfWork, names: Iterable[str]) -> dict[str, int]:
    """Active users' ids by username (reject the others with ``unknown user 'X'``)."""
    from crmcore.models import User

    wanted = sorted({n for n in names if n})
    rows = uow.session.execute(select(User.username, User.id).where(User.username.in_(wanted), User.active.is_(True)))
    return dict(rows.tuples().all()) if wanted else {}
