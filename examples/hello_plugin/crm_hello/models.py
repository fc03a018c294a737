"""The plugin's tables: on crmcore's shared Base, every name prefixed with the plugin id."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.db import Base, UTCDateTime, utcnow


class Greeting(Base):
    """One greeting per new customer, written in the same transaction as the customer."""

    __tablename__ = "hello_greetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    text: Mapped[str] = mapped_column(String(250))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
