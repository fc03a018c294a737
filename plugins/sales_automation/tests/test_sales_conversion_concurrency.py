"""A lead converted by several `crm sales lead convert N --new` at the same instant becomes exactly
one customer (issue 25): the lead's row is locked and re-read, and sales_conversions.lead_id is
unique. Real processes released together (crmcore.testing_concurrency), SQLite and PostgreSQL."""
from __future__ import annotations

import crm_sales_automation.plugin as PLUGIN
import pytest
from alembic import command
from crm_sales_automation.enums import LeadStatus
from crm_sales_automation.models import Conversion, Lead
from crm_sales_automation.testing import Sales
from sqlalchemy import exc, func, insert, select, update

from crmcore import CRM
from crmcore.migrations import runner
from crmcore.models import AuditEntry, Customer
from crmcore.testing_concurrency import run_cli_in_processes

LEADS, WRITERS = 3, 4  # every lead converted by four processes at once: twelve processes in all


def test_parallel_conversions_of_a_lead_create_one_customer(scrm: CRM, crm_url: str) -> None:
    s = Sales(scrm)
    leads = [s.lead(f"Lead {i}", status="qualified", company=f"Company {i}") for i in range(LEADS)]
    commands = [["sales", "lead", "convert", str(lead), "--new"] for lead in leads for _ in range(WRITERS)]
    results = run_cli_in_processes(crm_url, commands, plugins=[PLUGIN])
    for r in results:
        assert r.code in (0, 1) and "Traceback" not in r.output, (r.argv, r.code, r.output)
    with scrm.unit_of_work(read_only=True) as uow:
        for n, lead_id in enumerate(leads):
            mine = results[n * WRITERS:(n + 1) * WRITERS]
            assert sorted(r.code for r in mine) == [0] + [1] * (WRITERS - 1), [(r.code, r.output) for r in mine]
            lead = uow.session.get(Lead, lead_id)
            assert lead.status is LeadStatus.CONVERTED
            for r in mine:
                if r.code == 1:
                    assert r.stderr.strip() == f"error: lead {lead_id} is already converted (customer {lead.customer_id})"
            assert uow.session.scalars(select(Conversion.customer_id).where(Conversion.lead_id == lead_id)).all() \
                == [lead.customer_id]
            assert uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.entity == "sales.lead", AuditEntry.entity_id == str(lead_id), AuditEntry.action == "convert")) == 1
        names = uow.session.scalars(select(Customer.name).order_by(Customer.id)).all()
    assert sorted(names) == [f"Company {i}" for i in range(LEADS)]  # one customer per lead, no more


def test_a_second_conversion_row_for_a_lead_is_refused_by_the_database(scrm: CRM) -> None:
    s = Sales(scrm)
    lead, customer = s.lead("Lone", status="qualified"), s.customer("Other")
    with scrm.unit_of_work("test") as uow:
        from crm_sales_automation import services

        services.convert(uow, lead, new=True)
    row = {"lead_id": lead, "customer_id": customer, "matched_by": "chosen", "converted_by": "x"}
    with pytest.raises(exc.IntegrityError), scrm.unit_of_work("test") as uow:
        uow.session.execute(insert(Conversion).values(**row))


def _sales_branch_to(engine: object, target: str, down: bool = False) -> None:
    """Run the sales branch down (or up) to ``target`` in one transaction, as the runner does."""
    cfg = runner.alembic_config([PLUGIN.MIGRATIONS])
    with engine.begin() as conn:  # type: ignore[attr-defined]
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, target)


def test_upgrade_keeps_one_conversion_per_lead_and_audits_the_rest(empty_database_url: str) -> None:
    """A database that already holds duplicates from the race: the kept row is the one the lead
    points at; each removed row is in the audit log; the constraint then holds."""
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        crm.upgrade()
        s = Sales(crm)
        lead = s.lead("Twice", status="qualified")  # made at the head: the ORM's columns are those of the head
        first, second = s.customer("First"), s.customer("Second")
        _sales_branch_to(crm.engine, "sales_0001", down=True)  # as before this fix: no constraint
        with crm.unit_of_work("test") as uow:  # Core statements only: the schema is sales_0001's
            for cid in (first, second, first):
                uow.session.execute(insert(Conversion).values(lead_id=lead, customer_id=cid, matched_by="new", converted_by="r"))
            uow.session.execute(update(Lead.__table__).where(Lead.__table__.c.id == lead).values(customer_id=second))
        crm.upgrade()
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["sales_automation"] == "sales_0005"
        assert runner.schema_diff(crm.engine, {"sales_conversions"}) == []
        with crm.unit_of_work(read_only=True) as uow:
            kept = uow.session.scalars(select(Conversion).where(Conversion.lead_id == lead)).all()
            assert [(c.id, c.customer_id) for c in kept] == [(2, second)]
            audits = uow.session.execute(select(AuditEntry.entity_id, AuditEntry.before, AuditEntry.after)
                                         .where(AuditEntry.action == "dedupe").order_by(AuditEntry.entity_id)).all()
        assert [(e, b["customer_id"], a) for e, b, a in audits] == [("1", first, {"kept": 2, "customer_id": second}),
                                                                  ("3", first, {"kept": 2, "customer_id": second})]
        with pytest.raises(exc.IntegrityError), crm.unit_of_work("test") as uow:
            uow.session.execute(insert(Conversion).values(lead_id=lead, customer_id=first, matched_by="new", converted_by="r"))
        _sales_branch_to(crm.engine, "sales_0001", down=True)  # the downgrade works too
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["sales_automation"] == "sales_0001"
    finally:
        crm.close()
