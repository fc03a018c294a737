"""The plugin's one table, ``warranty_claims``, and the life cycle of a claim."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.db import Base
from crmcore.sdk import Money, UTCDateTime, utcnow
from crmcore.statemachine import StateMachine

LIFE_CYCLE = StateMachine(
    "warranty_claim", states=("open", "approved", "rejected", "closed"),
    transitions=[("open", "approved", "warranty.decide"), ("open", "rejected", "warranty.decide"),
                 ("approved", "closed"), ("rejected", "closed")],
    source="warranty", interaction_kind="support")


class Claim(Base):
    __tablename__ = "warranty_claims"
    state_machine = LIFE_CYCLE

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    external_ref: Mapped[str] = mapped_column(String(100), unique=True)
    product: Mapped[str] = mapped_column(String(200))
    sold_on: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(20), default="open")
    amount: Mapped[Decimal | None] = mapped_column(Money)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
