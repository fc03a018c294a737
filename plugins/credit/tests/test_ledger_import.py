"""Credit and the bulk path: the demo ledger passes credit, a ledger export re-imports, a batch
counts its own earlier rows (invoices open what its payments settle), every entry that raises
what a customer owes meets the credit check (issue 25, sections 1 and 2)."""
from __future__ import annotations

import csv
import json
from decimal import Decimal

import pytest
from crm_credit import services
from crm_credit.testing import Book
from sqlalchemy import func, select

from crmcore import CRM, Vetoed
from crmcore.models import Account, AuditEntry, Customer, Interaction, Transaction

TX = "customer_ref,kind,amount,currency,occurred_at,reference,applies_to"


def count(crm: CRM, model: type) -> int:
    with crm.unit_of_work(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(model))


def test_demo_generate_with_credit_passes_whole_and_is_a_real_ledger(ccrm: CRM, ccli) -> None:
    res = ccli("demo", "generate", "--customers", "50", "--transactions", "300", "--seed", "3")
    assert res.exit_code == 0, res.output
    assert "RowError" not in res.output and "0 rejected" in res.output
    assert count(ccrm, Transaction) == 300
    with ccrm.unit_of_work(read_only=True) as uow:
        kinds = dict(uow.session.execute(select(Transaction.kind, func.count()).group_by(Transaction.kind)).all())
        invoices = kinds[next(k for k in kinds if k.value == "invoice")]
        payments = kinds[next(k for k in kinds if k.value == "payment")]
        assert payments > invoices * 0.6  # most invoices are paid, as a real business's are
        # every settlement names an invoice issued before it, and never exceeds it
        inv = {(c, r): (a, at) for c, r, a, at in uow.session.execute(
            select(Transaction.customer_id, Transaction.reference, Transaction.amount, Transaction.occurred_at)
            .where(Transaction.kind == "invoice"))}
        settled: dict[tuple[int, str], Decimal] = {}
        for c, entry, a, at in uow.session.execute(select(Transaction.customer_id, Transaction, Transaction.amount,
                                                           Transaction.occurred_at).where(Transaction.kind != "invoice")):
            ref = entry.applies_to
            assert (c, ref) in inv and inv[(c, ref)][1] <= at
            settled[(c, ref)] = settled.get((c, ref), Decimal(0)) + a
        assert all(v <= inv[k][0] for k, v in settled.items())
        for acc in uow.accounts.list():
            stored, total = uow.accounts.verify_balance(acc.id)
            assert stored == total and stored >= 0


def test_demo_generate_reports_rejections_as_clean_lines(ccrm: CRM, ccli, monkeypatch) -> None:
    """A rule the generator cannot meet (credit.require_profile: no customer has a profile): one
    line per rejected row, one error line that says what was kept, never Python reprs."""
    monkeypatch.setenv("CRM_CREDIT__REQUIRE_PROFILE", "true")
    res = ccli("demo", "generate", "--customers", "5", "--transactions", "40", "--seed", "2")
    assert res.exit_code == 1, res.output
    assert "RowError" not in res.output and "Traceback" not in res.output
    errors = [x for x in res.output.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, res.output
    assert "40 generated transactions were rejected" in errors[0] and "customers and interactions were imported" in errors[0]
    lines = [x.strip() for x in res.output.splitlines() if x.strip().startswith("line ")]
    assert len(lines) == 5 and "no credit profile" in lines[0], res.output
    assert count(ccrm, Transaction) == 0 and count(ccrm, Account) == 0


def test_one_file_with_an_invoice_and_its_payment_imports(ccrm: CRM, ccli, tmp_path) -> None:
    book = Book(ccrm)
    book.customer("C1")
    path = tmp_path / "t.csv"
    path.write_text(f"{TX}\nC1,invoice,200,EUR,2026-01-01,I1,\nC1,payment,200,EUR,2026-01-20,P1,\n"
                    "C1,invoice,50,EUR,2026-02-01,I2,\nC1,payment,30,EUR,2026-02-10,P2,I2\n"
                    "C1,credit_note,20,EUR,2026-02-11,N2,I2\n", encoding="utf-8")
    res = ccli("import", "transactions", str(path))
    assert res.exit_code == 0, res.output
    assert "5 inserted" in res.output


def test_a_batch_still_refuses_what_is_not_open(ccrm: CRM, ccli, tmp_path) -> None:
    book = Book(ccrm)
    book.customer("C1")
    path = tmp_path / "t.csv"
    path.write_text(f"{TX}\nC1,invoice,100,EUR,2026-01-01,I1,\nC1,payment,60,EUR,2026-01-20,P1,\n"
                    "C1,payment,50,EUR,2026-01-21,P2,\nC1,payment,41,EUR,2026-01-22,P3,I1\n"
                    "C1,payment,40,EUR,2026-01-23,P4,I9\n", encoding="utf-8")
    res = ccli("import", "transactions", str(path))
    assert res.exit_code == 1, res.output
    report = {int(r["line"]): r["reason"] for r in csv.DictReader((tmp_path / "t.csv.errors.csv").open())}
    assert sorted(report) == [4, 5, 6], report
    assert "payment of 50.00 is larger than the 40.00 open" in report[4]
    assert "larger than the 40.00 still open on invoice I1" in report[5]
    assert "customer 1 has no charge or invoice 'I9'" in report[6]


def test_a_ledger_export_re_imports_into_a_fresh_database_with_credit(ccrm: CRM, ccli, tmp_path, empty_database_url) -> None:
    assert ccli("demo", "generate", "--customers", "20", "--transactions", "200", "--seed", "5").exit_code == 0
    for entity in ("customers", "transactions"):
        res = ccli("export", entity, "-o", str(tmp_path / f"{entity}.csv"))
        assert res.exit_code == 0, res.output
    assert ccli("init", database=empty_database_url).exit_code == 0
    assert ccli("import", "customers", str(tmp_path / "customers.csv"), database=empty_database_url).exit_code == 0
    res = ccli("import", "transactions", str(tmp_path / "transactions.csv"), "--batch-size", "37", database=empty_database_url)
    assert res.exit_code == 0 and "200 inserted" in res.output, res.output


def test_batch_exposure_counts_the_batch_payments(ccrm: CRM, ccli, tmp_path) -> None:
    """With a limit of 1,000: invoice 800, paid, invoice 800 again is within the limit in one file."""
    book = Book(ccrm)
    a = book.customer("C1")
    book.profile(a, limit=Decimal(1000))
    path = tmp_path / "t.csv"
    path.write_text(f"{TX}\nC1,invoice,800,EUR,2026-01-01,I1,\nC1,payment,800,EUR,2026-01-05,P1,\n"
                    "C1,invoice,800,EUR,2026-01-10,I2,\nC1,invoice,300,EUR,2026-01-11,I3,\n", encoding="utf-8")
    res = ccli("import", "transactions", str(path))
    assert res.exit_code == 1, res.output
    report = {int(r["line"]): r["reason"] for r in csv.DictReader((tmp_path / "t.csv.errors.csv").open())}
    assert list(report) == [5] and "over the credit limit by 100.00 EUR" in report[5], report


# -- section 2: every entry that raises what is owed is checked -------------------------------------

def test_positive_adjustment_on_hold_is_refused_by_post_and_import(ccrm: CRM, ccli, tmp_path) -> None:
    book = Book(ccrm)
    a = book.customer("HLD")
    with ccrm.unit_of_work("test") as uow:
        services.hold(uow, a, "unpaid since spring")
    before = count(ccrm, Transaction)
    res = ccli("account", "post", "HLD", "adjustment", "5000", "--ref", "ADJ1")
    assert res.exit_code == 1 and "credit hold" in res.output, res.output
    with pytest.raises(Vetoed, match="credit hold"):
        book.post(a, "adjustment", "5000", "ADJ2")
    path = tmp_path / "t.csv"
    path.write_text(f"{TX}\nHLD,adjustment,5000,EUR,2026-01-01,ADJ3,\nHLD,adjustment,-5,EUR,2026-01-01,ADJ4,\n",
                    encoding="utf-8")
    res = ccli("import", "transactions", str(path))
    assert res.exit_code == 1 and "1 inserted" in res.output, res.output
    assert count(ccrm, Transaction) == before + 1  # the negative adjustment lowers what is owed: it passes
    assert ccli("account", "post", "HLD", "adjustment", "-10", "--ref", "ADJ5", "--description", "goodwill").exit_code == 0


def test_positive_adjustment_counts_against_the_limit(book: Book) -> None:
    a = book.customer("A")
    book.profile(a, limit=Decimal(1000))
    book.invoice(a, "900", "I1")
    with pytest.raises(Vetoed, match=r"over the credit limit by 4,000\.00"):
        book.post(a, "adjustment", "4100", "ADJ1")
    book.post(a, "adjustment", "100", "ADJ2")
    with pytest.raises(Vetoed, match=r"over the credit limit by 0\.01"):
        book.invoice(a, "0.01", "I2")


def test_exposure_counts_every_open_item_whatever_its_date(book: Book, ccrm: CRM, ccli) -> None:
    """An invoice dated 9999-12-31 (stored before the posting horizon existed) counts in the
    exposure of a posting, of an import and of `crm credit check`."""
    import datetime as dt

    from sqlalchemy import insert, update

    a = book.customer("A")
    book.profile(a, limit=Decimal(1000))
    with ccrm.unit_of_work("test") as uow:
        acc = uow.accounts.list(a)[0]
        uow.session.execute(insert(Transaction).values(
            account_id=acc.id, customer_id=a, kind="invoice", amount=Decimal(900), currency="EUR",
            occurred_at=dt.datetime(9999, 12, 31, 12, tzinfo=dt.UTC), due_date=dt.date(9999, 12, 31), reference="F1",
            source="core", created_at=dt.datetime.now(dt.UTC)))
        uow.session.execute(update(Account).where(Account.id == acc.id).values(balance=Decimal(900)))
    with pytest.raises(Vetoed, match=r"exposure 1,800.00 EUR = open 900.00"):
        book.invoice(a, "900", "I1")
    out = json.loads(ccli("credit", "check", "A", "1", "--json").output)
    assert out["exposure"] == "901.00" and out["open_receivable"] == "900.00", out


def test_emergency_switch_is_in_the_audit_entry(ccrm: CRM, cli, monkeypatch, tmp_path) -> None:
    """Posting with CRM_DISABLE_PLUGINS=credit (credit enabled in the database) says so in the
    audit entry, by `crm account post` and by `crm import`."""
    from crmcore.models import PluginState

    book = Book(ccrm)
    book.customer("C1")
    with ccrm.unit_of_work("test") as uow:
        uow.session.add(PluginState(plugin_id="credit", enabled=True))
    path = tmp_path / "t.csv"
    path.write_text(f"{TX}\nC1,invoice,10,EUR,2026-01-01,E3,\n", encoding="utf-8")
    monkeypatch.setenv("CRM_DISABLE_PLUGINS", "credit")
    assert cli("account", "post", "C1", "invoice", "10", "--ref", "E1", plugins=[]).exit_code == 0
    assert cli("import", "transactions", str(path), plugins=[]).exit_code == 0
    monkeypatch.delenv("CRM_DISABLE_PLUGINS")
    assert cli("account", "post", "C1", "invoice", "10", "--ref", "E2", plugins=[]).exit_code == 0  # credit loaded
    with ccrm.unit_of_work(read_only=True) as uow:
        entries = [e.after for e in uow.session.scalars(select(AuditEntry).where(
            AuditEntry.action.in_(("post", "import-post"))).order_by(AuditEntry.id))]
    assert [e.get("reference") for e in entries] == ["E1", None, "E2"]
    assert [e.get("emergency_disabled_plugins") for e in entries] == [["credit"], ["credit"], None]


def test_import_with_every_row_rejected_opens_no_account(ccrm: CRM, ccli, tmp_path) -> None:
    with ccrm.unit_of_work("test") as uow:
        from crmcore.schemas import CustomerCreate

        uow.customers.create(CustomerCreate(name="New", external_ref="NEW"))
    path = tmp_path / "t.csv"
    path.write_text(f"{TX}\nNEW,payment,10,EUR,2026-01-01,P1,\nNEW,invoice,5,EUR,1850-01-01,I1,\n", encoding="utf-8")
    res = ccli("import", "transactions", str(path))
    assert res.exit_code == 1 and "2 rejected" in res.output, res.output
    assert count(ccrm, Account) == 0
    with ccrm.unit_of_work(read_only=True) as uow:
        assert not uow.session.scalars(select(AuditEntry).where(AuditEntry.entity == "account")).all()
    assert count(ccrm, Customer) == 1 and count(ccrm, Interaction) == 0


# -- section 6: dunning audits the interactions it logs --------------------------------------------

def test_dunning_run_audits_every_interaction_it_logs(book: Book, ccrm: CRM, ccli) -> None:
    a, b = book.customer("A"), book.customer("B")
    book.invoice(a, "100", "A1", days_ago=40, due_days_ago=5)
    book.invoice(b, "300", "B1", days_ago=90, due_days_ago=35)
    res = ccli("credit", "dunning", "run")
    assert res.exit_code == 0, res.output
    with ccrm.unit_of_work(read_only=True) as uow:
        logged = {i.id: i.customer_id for i in uow.session.scalars(select(Interaction).where(Interaction.source == "credit"))}
        audited = {int(e.entity_id): e for e in uow.session.scalars(select(AuditEntry).where(
            AuditEntry.entity == "interaction", AuditEntry.action == "create"))}
        assert len(logged) == 2 and set(audited) == set(logged)
        for iid, cid in logged.items():
            e = audited[iid]
            assert e.actor == "tester" and e.after["customer_id"] == cid and e.after["source"] == "credit"
            assert e.after["subject"].startswith("Dunning level") and e.after["channel"] in ("email", "phone", "mail")
