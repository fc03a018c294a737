from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column, validates

from crmcore.db.base import Base
from crmcore.db.types import UTCDateTime, utcnow
from crmcore.enums import CustomerKind, LifecycleStage
from crmcore.models._columns import created_at, enum_column

SEARCH_WIDTH = 600  # a folded name can be longer than the name (ß -> ss, ligatures)


def fold(text: str | None) -> str:
    """Unicode-aware search form: NFKC, case-folded (``ÖZTÜRK`` -> ``öztürk``, ``Straße`` ->
    ``strasse``). Computed in Python for the stored column and for the query alike, so a search
    gives the same rows on SQLite (whose lower() folds ASCII only) and PostgreSQL."""
    if not text:
        return ""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())[:SEARCH_WIDTH]


def _search_default(ctx: DefaultExecutionContext) -> str:
    """For Core inserts that give a name but no search form (set-based loaders)."""
    return fold(ctx.get_current_parameters().get("name"))


class Customer(Base):
    """The company's key resource. ``version`` enforces optimistic locking on every update."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[CustomerKind] = mapped_column(enum_column(CustomerKind, "customer_kind"))
    name: Mapped[str] = mapped_column(String(200))
    # fold(name), kept by the ORM (see _fold_name), by Core inserts (default) and the importer
    search_name: Mapped[str] = mapped_column(String(SEARCH_WIDTH), default=_search_default, server_default="")
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    country: Mapped[str | None] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(100))
    industry: Mapped[str | None] = mapped_column(String(100))
    lifecycle_stage: Mapped[LifecycleStage] = mapped_column(
        enum_column(LifecycleStage, "lifecycle_stage"), default=LifecycleStage.PROSPECT
    )
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    external_ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - read once by SQLAlchemy, never mutated
    __table_args__ = (Index("ix_customers_name", "name"), Index("ix_customers_search_name", "search_name"))

    @validates("name")
    def _fold_name(self, _key: str, value: str) -> str:
        self.search_name = fold(value)
        return value


class Contact(Base):
    """A person at an organisation customer, with their role in the buying decision."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(32), index=True)  # a word of [vocabularies] contact_roles (service-checked)
    title: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    external_ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_at: Mapped[dt.datetime] = created_at()
