"""Core tables of the plugin platform: the merge journal and what the core remembers of each plugin."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.db.base import Base
from crmcore.models._columns import created_at


class MergeJournal(Base):
    """One row per customer merge, in order, so a plugin enabled later can replay what it missed.

    ``plugins`` lists the plugins whose ``crm_merge_customers`` ran with the merge.
    """

    __tablename__ = "merge_journal"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    merged_at: Mapped[dt.datetime] = created_at()
    actor: Mapped[str] = mapped_column(String(64))
    plugins: Mapped[list[str]] = mapped_column(JSON, default=list)


class PluginRecord(Base):
    """What the core keeps of a plugin once enabled, so it can still upgrade, purge or forget it
    after the plugin's code is gone (``pip uninstall``): its branches (label, table prefix,
    revision ids, the core revisions they depend on) and how far it has seen the merge journal."""

    __tablename__ = "plugin_registry"

    plugin_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    branches: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    merge_mark: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = created_at()
