from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session

from crmcore.errors import NotFound
from crmcore.limits import valid_id

if TYPE_CHECKING:
    from crmcore.uow import UnitOfWork

T = TypeVar("T")


def new_ref() -> str:
    """A reference for a record created without one, so export → import finds it again."""
    return f"u-{uuid.uuid4().hex[:16]}"


def jsonable(value: Any) -> Any:
    """A JSON-storable copy of a value, for the audit log."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


class Service:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    @property
    def session(self) -> Session:
        return self.uow.session

    def _get(self, model: type[T], key: int, entity: str) -> T:
        if isinstance(key, int) and not valid_id(key):  # the driver would overflow (SQLite) or fail (PostgreSQL)
            raise NotFound(entity, key)
        obj = self.session.get(model, key)
        if obj is None:
            raise NotFound(entity, key)
        return obj
