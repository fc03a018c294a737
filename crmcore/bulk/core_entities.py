"""The core's four bulk entities, registered like a plugin's (see :mod:`crmcore.bulk.registry`).

They bring their own batch processors (:mod:`crmcore.bulk.importer`) rather than a schema and a
``write_batch``: customers merge custom attributes, contacts/interactions/transactions resolve
``customer_ref``, transactions open default accounts and run the posting guards. Everything
around the batch write — reading, batching, savepoints, progress, report — is the shared path.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from crmcore.bulk import importer
from crmcore.bulk.registry import BulkEntity
from crmcore.bulk.specs import ATTR_PREFIX, SPECS
from crmcore.permissions import IMPORT_PERMISSIONS
from crmcore.services._base import jsonable

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.uow import UnitOfWork

CORE_PERMISSION = "import.run"  # every import needs it, besides the entity's write permission below


def _export(entity: str) -> Callable[[UnitOfWork], Iterator[dict[str, Any]]]:
    def rows(uow: UnitOfWork) -> Iterator[dict[str, Any]]:
        from crmcore.bulk.exporter import core_query

        attr_fields = list(uow.crm.fields.fields) if entity == "customers" else []
        for row in uow.session.execute(core_query(entity).execution_options(yield_per=2000)):
            rec = {k: jsonable(v) for k, v in row._mapping.items()}
            if entity == "customers":
                attrs = rec.pop("attributes") or {}
                for name in attr_fields:
                    rec[f"{ATTR_PREFIX}{name}"] = attrs.get(name)
            yield rec

    return rows


def _attr_columns(crm: CRM) -> list[str]:
    return [f"{ATTR_PREFIX}{name}" for name in crm.fields.fields]


def _core(name: str) -> BulkEntity:
    spec = SPECS[name]
    return BulkEntity(name=spec.name, columns=spec.columns, required=spec.required, key=spec.key,
                      export_rows=_export(name), permission=IMPORT_PERMISSIONS[name], doc=spec.doc,
                      extra_columns=_attr_columns if name == "customers" else None,
                      processor=importer.IMPORTERS[name])


CORE_ENTITIES: dict[str, BulkEntity] = {name: _core(name) for name in SPECS}
