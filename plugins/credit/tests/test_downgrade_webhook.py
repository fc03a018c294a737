"""A credit downgrade reaches webhook subscribers as "credit.downgraded" (the core relays the
credit plugin's published hook), once per fall and not for a grade that stays."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from crm_credit.models import CreditScore
from crm_credit.testing import Book
from sqlalchemy import select

from crmcore import CRM
from crmcore.models import OutboxEvent, WebhookSubscription


def test_a_downgrade_is_a_webhook_event(ccrm: CRM, book: Book, ccli) -> None:
    a, b = book.customer("A"), book.customer("B")
    with ccrm.unit_of_work("admin") as uow:
        uow.session.add(WebhookSubscription(url="https://hooks.example.com/crm", events=["credit.downgraded"],
                                            secret="s" * 32, active=True, created_by="admin"))
        for cid, grade, score in ((a, "AAA", 400), (b, "D", 1)):
            uow.session.add(CreditScore(customer_id=cid, score=score, grade=grade, currency="EUR",
                                        suggested_limit=Decimal(0), reasons={}, scored_at=dt.datetime.now(dt.UTC)))
    assert ccli("credit", "score", "--all").exit_code == 0
    assert ccli("credit", "score", "--all").exit_code == 0  # same grades again: no new event
    with ccrm.unit_of_work(read_only=True) as uow:
        events = [(e.event_type, e.customer_id, e.payload) for e in uow.session.scalars(select(OutboxEvent))]
        new_grade = uow.session.get(CreditScore, a).grade
    assert [(kind, cid) for kind, cid, _ in events] == [("credit.downgraded", a)]
    payload = events[0][2]["data"]
    assert payload["old_grade"] == "AAA" and payload["new_grade"] == new_grade and isinstance(payload["score"], int)
