from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.db import Base


class TestplugNote(Base):
    """A row the test plugin owns, written atomically with customer creation."""

    __tablename__ = "testplug_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    text: Mapped[str] = mapped_column(String(200))
