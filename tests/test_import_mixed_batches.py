"""Issue 25: a file with a changed row and a new row in one batch (the nightly sync) is written
whole, with one audit entry per update and one for the batch's inserts; on both engines."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from crmcore import CRM
from crmcore.bulk.fastinsert import bulk_insert
from crmcore.models import AuditEntry, Contact, Customer, Interaction

CUST = "external_ref,name,kind\n"
FIRST = {
    "customers": CUST + "A1,Alpha,organization\nB1,Beta,organization\n",
    "contacts": "external_ref,customer_ref,name\nK1,A1,Ann\nK2,A1,Ben\n",
    "interactions": "external_ref,customer_ref,channel,subject,occurred_at\nI1,A1,email,Hello,2024-01-01\n"
                    "I2,A1,email,Again,2024-01-02\n",
}
SECOND = {  # a changed first row, then a new one
    "customers": CUST + "A1,Alpha Renamed,organization\nC1,Gamma,organization\n",
    "contacts": "external_ref,customer_ref,name\nK1,A1,Ann Changed\nK3,A1,Cleo\n",
    "interactions": "external_ref,customer_ref,channel,subject,occurred_at\nI1,A1,email,Hello changed,2024-01-01\n"
                    "I3,A1,phone,New call,2024-01-03\n",
}
MODEL = {"customers": Customer, "contacts": Contact, "interactions": Interaction}
NAME = {"customers": "name", "contacts": "name", "interactions": "subject"}
EXPECT = {  # (changed key, its name before, after), (new key, its name)
    "customers": (("A1", "Alpha", "Alpha Renamed"), ("C1", "Gamma")),
    "contacts": (("K1", "Ann", "Ann Changed"), ("K3", "Cleo")),
    "interactions": (("I1", "Hello", "Hello changed"), ("I3", "New call")),
}


def stored(crm_url: str, entity: str) -> tuple[dict[str, str], list[tuple[str, str | None, dict | None, dict | None]]]:
    crm = CRM.open(crm_url, entry_points=False, config={})
    try:
        with crm.unit_of_work(read_only=True) as uow:
            model = MODEL[entity]
            rows = dict(uow.session.execute(select(model.external_ref, getattr(model, NAME[entity]))).all())
            audit = [(a.action, a.entity_id, a.before, a.after) for a in uow.session.scalars(
                select(AuditEntry).where(AuditEntry.entity == entity[:-1]).order_by(AuditEntry.id))]
            return rows, audit
    finally:
        crm.close()


@pytest.mark.parametrize("entity", ["customers", "contacts", "interactions"])
@pytest.mark.parametrize("batch", ["2", "5000"])
def test_a_changed_and_a_new_row_in_one_batch(entity, batch, cli, crm_url, tmp_path):
    if entity != "customers":
        (tmp_path / "base.csv").write_text(CUST + "A1,Alpha,organization\n", encoding="utf-8")
        assert cli("import", "customers", str(tmp_path / "base.csv")).exit_code == 0
    (tmp_path / "1.csv").write_text(FIRST[entity], encoding="utf-8")
    (tmp_path / "2.csv").write_text(SECOND[entity], encoding="utf-8")
    assert cli("import", entity, str(tmp_path / "1.csv")).exit_code == 0
    res = cli("import", entity, str(tmp_path / "2.csv"), "--batch-size", batch)
    assert res.exit_code == 0, res.output
    assert "1 inserted, 1 updated, 0 unchanged, 0 rejected" in res.output
    rows, audit = stored(crm_url, entity)
    (changed, before, after), (new, new_name) = EXPECT[entity]
    assert rows[changed] == after and rows[new] == new_name
    updates = [a for a in audit if a[0] == "import-update"]
    creates = [a for a in audit if a[0] == "import-create"]
    assert len(updates) == 1 and len(creates) == 2
    assert updates[0][2] == {NAME[entity]: before} and updates[0][3] == {NAME[entity]: after}
    assert creates[-1][2] is None and creates[-1][3]["count"] == 1

def test_bulk_insert_takes_rows_with_different_keys(crm):
    """The audit rows of an update carry ``before``, those of an insert do not: a key a row
    leaves out is NULL, whichever row comes first (it used to be a KeyError, or a dropped column)."""
    with crm.unit_of_work(actor="t") as uow:
        bulk_insert(uow.session.connection(), AuditEntry.__table__, [
            {"action": "a", "entity": "x", "actor": "t", "after": {"n": 1}},
            {"action": "b", "entity": "x", "actor": "t", "entity_id": "7", "before": {"n": 0}, "after": {"n": 2}},
        ])
    with crm.unit_of_work(read_only=True) as uow:
        got = [(a.action, a.entity_id, a.before, a.after, a.at is not None)
               for a in uow.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert got == [("a", None, None, {"n": 1}, True), ("b", "7", {"n": 0}, {"n": 2}, True)]


@pytest.mark.parametrize(("entity", "header", "bad", "good"), [
    ("customers", "external_ref,name,email", "X1,Xavier,not-an-email", "X1,Xavier,x@example.com"),
    ("leads", "external_ref,name,email", "X1,Xavier,not-an-email", "X1,Xavier,x@example.com"),
])
def test_a_key_again_after_a_bad_row_is_a_duplicate_for_every_entity(entity, header, bad, good, cli, tmp_path):
    """Found by the import state machine: a plugin's entity took the second row of a key when
    the first failed validation, the core's rejected it; now both reject it (the file is
    ambiguous, and re-importing the fixed file must not update what the second row wrote)."""
    import crm_sales_automation.plugin as sales

    path = tmp_path / "x.csv"
    path.write_text(f"{header}\n{bad}\n{good}\n", encoding="utf-8")
    res = cli("import", entity, str(path), plugins=[sales])
    assert res.exit_code == 1, res.output
    assert "0 inserted, 0 updated, 0 unchanged, 2 rejected" in res.output
    assert "duplicate external_ref 'X1' (also on line 2)" in res.output
