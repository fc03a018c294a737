from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.db.base import Base
from crmcore.models._columns import created_at

ACTOR_WIDTH = 64  # the longest user name the audit log stores (users.username has the same width)


class AuditEntry(Base):
    """Who changed what, when, with the before/after of the fields that changed."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = created_at()
    actor: Mapped[str] = mapped_column(String(ACTOR_WIDTH))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)


class PluginState(Base):
    """Whether an admin enabled a plugin. Plugins not listed here are installed but disabled."""

    __tablename__ = "plugin_state"

    plugin_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool]
    version: Mapped[str | None] = mapped_column(String(32))
    changed_at: Mapped[dt.datetime] = created_at()
