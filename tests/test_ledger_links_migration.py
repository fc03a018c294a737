"""Migration 0008 through alembic on both engines: the links are backfilled from the old
``invoice:REF`` descriptions (only to an invoice of the same account), rows pointing at
``transactions`` survive SQLite's table copy, ``charge`` is accepted after it and not before,
and the downgrade writes the links back into the descriptions and turns charges into adjustments."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from crmcore import CRM
from crmcore.migrations import runner


def _to(crm: CRM, revision: str, down: bool = False) -> None:
    from alembic import command

    cfg = runner.alembic_config([])
    with crm.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


ROWS = [  # id, account, customer, kind, amount, reference, description
    (1, 1, 1, "invoice", 100, "INV-1", None),
    (2, 1, 1, "payment", 40, "P1", "paid invoice:INV-1, thanks"),
    (3, 1, 1, "credit_note", 10, "C1", "Invoice: INV-1 returned goods"),
    (4, 2, 2, "invoice", 100, "INV-1", None),  # the other customer's INV-1
    (5, 2, 2, "payment", 5, "P1", "invoice:INV-9"),  # names nothing that exists
    (6, 3, 1, "payment", 5, "P2", "invoice:INV-1"),  # another account of customer 1: no link
    (7, 1, 1, "adjustment", 7, "FEE-1", "dunning fee"),
    (8, 1, 1, "credit_note", 7, "CLR-7", "invoice:FEE-1 cleared"),  # a debit adjustment named the same way
    (9, 1, 1, "payment", 1, "P3", None),
]


def test_0008_backfills_links_and_round_trips(empty_database_url: str) -> None:
    crm = CRM.open(empty_database_url, entry_points=False, create=True, config={})
    try:
        _to(crm, "0007_vocabularies")
        t = "2026-01-01 00:00:00"
        from crmcore.schemas import CustomerCreate

        with crm.unit_of_work() as uow:
            assert [uow.customers.create(CustomerCreate(name=n)).id for n in "AB"] == [1, 2]
        with crm.engine.begin() as conn:
            conn.execute(text("INSERT INTO accounts (id, customer_id, currency, payment_terms_days, status, balance, is_default, "
                              "created_at) VALUES (1, 1, 'EUR', 30, 'open', 0, true, :t), (2, 2, 'EUR', 30, 'open', 0, true, :t), "
                              "(3, 1, 'EUR', 30, 'open', 0, false, :t)"), {"t": t})
            for r in ROWS:
                conn.execute(text("INSERT INTO transactions (id, account_id, customer_id, kind, amount, currency, occurred_at, "
                                  "reference, description, source, created_at) VALUES (:i, :a, :c, :k, :m, 'EUR', :t, :r, :d, "
                                  "'core', :t)"), dict(zip("iackmrd", r), t=t))
            conn.execute(text("CREATE TABLE kid_cascade (id INTEGER PRIMARY KEY, "
                              "txn_id INTEGER REFERENCES transactions (id) ON DELETE CASCADE)"))
            conn.execute(text("INSERT INTO kid_cascade VALUES (1, 1), (2, 7)"))
        with pytest.raises(IntegrityError), crm.engine.begin() as conn:
            conn.execute(text("UPDATE transactions SET kind = 'charge' WHERE id = 7"))

        _to(crm, "0008_ledger_links")
        with crm.engine.begin() as conn:
            links = dict(conn.execute(text("SELECT id, applies_to_id FROM transactions ORDER BY id")).all())
            assert links == {1: None, 2: 1, 3: 1, 4: None, 5: None, 6: None, 7: None, 8: 7, 9: None}
            assert conn.execute(text("SELECT count(*) FROM kid_cascade")).scalar_one() == 2
            conn.execute(text("UPDATE transactions SET kind = 'charge', applies_to_id = 1, cost = 3.5 WHERE id = 7"))
            conn.execute(text("UPDATE transactions SET applies_to_id = 1 WHERE id = 9"))  # linked after the upgrade
        assert runner.schema_diff(crm.engine, {"transactions"}) == []

        _to(crm, "0007_vocabularies", down=True)
        with crm.engine.connect() as conn:
            got = {i: (k, d) for i, k, d in conn.execute(text("SELECT id, kind, description FROM transactions ORDER BY id"))}
            assert got[7] == ("adjustment", "dunning fee")
            assert got[9] == ("payment", "invoice:INV-1")  # the link, written back the old way
            assert got[2] == ("payment", "paid invoice:INV-1, thanks") and got[8][1] == "invoice:FEE-1 cleared"
            assert conn.execute(text("SELECT count(*) FROM kid_cascade")).scalar_one() == 2
        with pytest.raises(IntegrityError), crm.engine.begin() as conn:
            conn.execute(text("UPDATE transactions SET kind = 'charge' WHERE id = 7"))
        _to(crm, "0008_ledger_links")
        with crm.engine.connect() as conn:
            assert conn.execute(text("SELECT applies_to_id FROM transactions WHERE id = 9")).scalar_one() == 1
    finally:
        crm.close()
