"""The audit log: one entry per change (``record``), or many at once for the bulk paths."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from crmcore.db.types import utcnow
from crmcore.limits import check_text, check_window
from crmcore.models import AuditEntry
from crmcore.services._base import Service, jsonable

AUDIT_READ = "user.manage"  # the log shows every customer's values: an administrator's read

AUDIT_COLUMNS = ("at", "actor", "action", "entity", "entity_id", "before", "after")


def insert_entries(conn: Connection, actor: str, entries: Iterable[dict[str, Any]]) -> int:
    """Write many audit entries in one statement (the bulk import's). Every entry gets every
    column (``before`` is None for an insert, ``entity_id`` for a batch), so entries of
    different kinds can share one batch; ``at`` and ``actor`` default to now and ``actor``."""
    from crmcore.bulk.fastinsert import bulk_insert

    now = utcnow()
    rows = []
    for e in entries:
        unknown = set(e) - set(AUDIT_COLUMNS)
        if unknown:
            raise TypeError(f"audit entry with unknown columns: {', '.join(sorted(unknown))}")
        entity_id = e.get("entity_id")
        rows.append({"at": e.get("at") or now, "actor": e.get("actor") or actor, "action": e["action"],
                     "entity": e["entity"], "entity_id": None if entity_id is None else str(entity_id),
                     "before": e.get("before"), "after": e.get("after")})
    bulk_insert(conn, AuditEntry.__table__, rows)
    return len(rows)


class AuditService(Service):
    def record(self, action: str, entity: str, entity_id: object, before: dict[str, Any] | None = None,
               after: dict[str, Any] | None = None) -> None:
        self.session.add(AuditEntry(
            actor=self.uow.actor, action=action, entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            before=jsonable(before) if before is not None else None,
            after=jsonable(after) if after is not None else None,
        ))

    def list(self, entity: str | None = None, entity_id: object | None = None, limit: int = 100, *,
             actor: str | None = None, action: str | None = None, before: int | None = None) -> list[AuditEntry]:
        """Newest first; ``before``: only entries with a smaller id (the next page of a viewer).

        The log holds every customer's before/after values, so reading it takes ``user.manage``
        (administrators; anyone in single-user mode): :class:`crmcore.PermissionDenied` otherwise.
        """
        self.uow.require(AUDIT_READ)
        for value, name in ((entity, "entity"), (None if entity_id is None else str(entity_id), "entity id"),
                            (actor, "actor"), (action, "action")):
            check_text(value, name)  # what no engine can take is a clean InvalidInput
        check_window(limit)
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if entity:
            q = q.where(AuditEntry.entity == entity)
        if entity_id is not None:
            q = q.where(AuditEntry.entity_id == str(entity_id))
        if actor:
            q = q.where(AuditEntry.actor == actor)
        if action:
            q = q.where(AuditEntry.action == action)
        if before is not None:
            q = q.where(AuditEntry.id < before)
        return list(self.session.scalars(q))
