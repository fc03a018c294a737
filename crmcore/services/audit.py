from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crmcore.limits import check_text, check_window
from crmcore.models import AuditEntry
from crmcore.services._base import Service, jsonable


class AuditService(Service):
    def record(self, action: str, entity: str, entity_id: object, before: dict[str, Any] | None = None,
               after: dict[str, Any] | None = None) -> None:
        self.session.add(AuditEntry(
            actor=self.uow.actor, action=action, entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            before=jsonable(before) if before is not None else None,
            after=jsonable(after) if after is not None else None,
        ))

    def list(self, entity: str | None = None, entity_id: object | None = None, limit: int = 100) -> list[AuditEntry]:
        check_text(entity, "entity")  # what no engine can take is a clean InvalidInput
        check_text(None if entity_id is None else str(entity_id), "entity id")
        check_window(limit)
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if entity:
            q = q.where(AuditEntry.entity == entity)
        if entity_id is not None:
            q = q.where(AuditEntry.entity_id == str(entity_id))
        return list(self.session.scalars(q))
