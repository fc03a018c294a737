"""Stateful property test of the bulk import (issue 25): the nightly sync, for every bulk entity.

A hypothesis ``RuleBasedStateMachine`` imports random sequences of CSV files into every entity
the registry knows (the core's four and the sales_automation and marketing plugins'), each
file mixing new, changed, unchanged, duplicate (a key twice in one file), bad (refused by
validation or by a reference) and malformed (refused by the reader) rows, with batch sizes of
1 to 5. A plain in-memory model says what each row must become; after every import the
counts, the rejected lines, the stored rows of every entity, the ledger balances and the audit
entries the import wrote (one per update, one per batch of inserts) must match it exactly.

Files are CSV or JSON Lines, by the same rule: a JSON object leaves out the keys of empty cells
(so a row missing a required key is refused by validation, like an empty CSV cell), and a
malformed object has an unknown key where a CSV record has a cell too many.

Duplicate rule (documented on ``BulkEntity.key``): once a row that the reader could read names
a key, that key again later in the same file is rejected, whether or not the first row was
accepted. Transactions are a ledger: the same customer and reference again is a no-op if it is
the same entry, rejected if it differs; its key holds the customer, so the same key again after
a row refused for an unknown customer is refused as well, whatever its other cells.

The examples are derandomized but not fixed: Hypothesis also draws integers and strings from
the constants of the local modules loaded so far (``crmcore``, the plugins), so the sequences
tried depend on what earlier tests imported. The model must hold for every sequence; run with
``IMPORT_MACHINE_EXAMPLES=200`` (random, unshrunk) after changing the importer or the model.
"""
from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import crm_marketing.plugin as MARKETING
import crm_sales_automation.plugin as SALES
from crm_marketing import services as marketing
from crm_marketing.models import Campaign, Response
from crm_marketing.schemas import CampaignCreate, ConsentSet
from crm_sales_automation.models import Lead
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from sqlalchemy import select

from crmcore import CRM
from crmcore.bulk.importer import run_import
from crmcore.bulk.readers import read_source
from crmcore.bulk.registry import entities, get_entity
from crmcore.enums import TransactionKind
from crmcore.models import Account, AuditEntry, Contact, Customer, Interaction, Transaction
from crmcore.schemas import CustomerCreate
from crmcore.services.accounts import effect
from crmcore.testing import truncate_all

BASE = ("BASE1", "BASE2", "BASE3", "BASE4")  # BASE1-3 are in campaign C, BASE4 is not
ROW_KINDS = ("new", "changed", "unchanged", "duplicate", "bad", "malformed")
FORMATS = ("csv", "jsonl")
WORDS = ("Alpha", "Beta", "Gamma", "Delta")
DATES = ("2024-01-02T10:00:00+00:00", "2024-02-03T11:30:00+00:00")
Cells = dict[str, str | None]


class Model:
    """One entity: how to write its rows and what each must become. ``fields`` are the state
    (canonical strings); ``optional`` may be left empty (an import never blanks a value)."""

    name: str
    audit_entity: str
    columns: tuple[str, ...]
    fields: tuple[str, ...]
    optional: tuple[str, ...] = ()
    constant: ClassVar[Cells] = {}  # columns that are not part of the state
    required: str = "name"  # a required column that is not the key (left empty: a malformed row)
    registers = True  # a key seen once in a file makes it a duplicate later (not for the ledger)
    immutable = False  # an existing key with other values is rejected, never updated

    def key(self, cells: Cells) -> Any:
        return cells["external_ref"]

    def key_cells(self, key: Any) -> Cells:
        return {"external_ref": key}

    def fresh_key(self, draw: Callable[..., Any], refs: list[str], n: int) -> Any:
        return f"{self.name[:2].upper()}{n}"

    def values(self, draw: Callable[..., Any], refs: list[str]) -> Cells:
        raise NotImplementedError

    def bad(self, draw: Callable[..., Any], refs: list[str]) -> Cells:
        """Cells that make the row fail validation or a reference check."""
        raise NotImplementedError

    def given(self, cells: Cells) -> dict[str, Any]:
        return {f: cells[f] for f in self.fields if cells.get(f) is not None}

    def audit_values(self, changes: dict[str, Any], ids: dict[str, Any]) -> dict[str, Any]:
        return changes

    def create_entry(self, keys: list[Any], ids: dict[str, Any], state: dict[Any, dict[str, Any]]) -> dict[str, Any]:
        own = ids[self.name]
        return {"count": len(keys), "first_id": own[keys[0]], "last_id": own[keys[-1]]}

    def read(self, session: Any) -> dict[Any, tuple[int, dict[str, Any]]]:
        raise NotImplementedError


def word(draw: Callable[..., Any]) -> str:
    return f"{draw(st.sampled_from(WORDS))} {draw(st.integers(1, 3))}"


class Customers(Model):
    name, audit_entity = "customers", "customer"
    columns = ("external_ref", "name", "industry", "email")
    fields, optional, constant = ("name", "industry"), ("industry",), {"email": None}

    def values(self, draw, refs):
        return {"name": word(draw), "industry": draw(st.sampled_from([None, "Retail", "Food"]))}

    def bad(self, draw, refs):
        return {"email": "not-an-email"}

    def read(self, session):
        return {r: (i, {"name": n, "industry": ind}) for i, r, n, ind in session.execute(
            select(Customer.id, Customer.external_ref, Customer.name, Customer.industry).where(
                Customer.external_ref.not_in(BASE)))}


class Contacts(Model):
    name, audit_entity = "contacts", "contact"
    columns = ("external_ref", "customer_ref", "name", "title")
    fields, optional = ("customer_ref", "name", "title"), ("title",)

    def values(self, draw, refs):
        return {"customer_ref": draw(st.sampled_from(refs)), "name": word(draw),
                "title": draw(st.sampled_from([None, "CEO", "CFO"]))}

    def bad(self, draw, refs):
        return {"customer_ref": "NOPE"}

    def audit_values(self, changes, ids):
        return {("customer_id" if k == "customer_ref" else k): (ids["customer"][v] if k == "customer_ref" else v)
                for k, v in changes.items()}

    def read(self, session):
        return {r: (i, {"customer_ref": c, "name": n, "title": t}) for i, r, c, n, t in session.execute(
            select(Contact.id, Contact.external_ref, Customer.external_ref, Contact.name, Contact.title)
            .join(Customer, Customer.id == Contact.customer_id))}


class Interactions(Model):
    name, audit_entity = "interactions", "interaction"
    columns = ("external_ref", "customer_ref", "channel", "subject", "occurred_at", "notes")
    fields, optional, required = ("customer_ref", "channel", "subject", "occurred_at", "notes"), ("notes",), "subject"

    def values(self, draw, refs):
        return {"customer_ref": draw(st.sampled_from(refs)), "channel": draw(st.sampled_from(["email", "phone"])),
                "subject": word(draw), "occurred_at": draw(st.sampled_from(DATES)),
                "notes": draw(st.sampled_from([None, "called back", "sent offer"]))}

    def bad(self, draw, refs):
        return {"channel": "pigeon"}

    def audit_values(self, changes, ids):
        return Contacts.audit_values(self, changes, ids)

    def read(self, session):
        return {r: (i, {"customer_ref": c, "channel": getattr(ch, "value", ch), "subject": s,
                        "occurred_at": at.astimezone(dt.UTC).isoformat(), "notes": n})
                for i, r, c, ch, s, at, n in session.execute(
                    select(Interaction.id, Interaction.external_ref, Customer.external_ref, Interaction.channel,
                           Interaction.subject, Interaction.occurred_at, Interaction.notes)
                    .join(Customer, Customer.id == Interaction.customer_id))}


class Transactions(Model):
    name, audit_entity = "transactions", "transaction"
    columns = ("customer_ref", "reference", "kind", "amount", "occurred_at")
    fields, constant, required = ("kind", "amount"), {"occurred_at": DATES[0]}, "amount"
    registers, immutable = False, True

    def key(self, cells):
        return (cells["customer_ref"], cells["reference"])

    def key_cells(self, key):
        return {"customer_ref": key[0], "reference": key[1]}

    def fresh_key(self, draw, refs, n):
        return (draw(st.sampled_from(refs)), f"TX{n}")

    def values(self, draw, refs):
        return {"kind": draw(st.sampled_from(["invoice", "payment"])),
                "amount": f"{draw(st.integers(1, 500))}.{draw(st.sampled_from(['00', '50', '05']))}"}

    def bad(self, draw, refs):
        return draw(st.sampled_from([{"amount": "-5.00"}, {"amount": "abc"}, {"amount": "1.234"}, {"customer_ref": "NOPE"}]))

    def create_entry(self, keys, ids, state):
        own = ids[self.name]
        return {"count": len(keys), "first_id": own[keys[0]], "last_id": own[keys[-1]],
                "accounts": len({k[0] for k in keys})}

    def read(self, session):
        return {(c, r): (i, {"kind": k.value, "amount": str(a)}) for i, c, r, k, a in session.execute(
            select(Transaction.id, Customer.external_ref, Transaction.reference, Transaction.kind, Transaction.amount)
            .join(Customer, Customer.id == Transaction.customer_id))}


class Leads(Model):
    name, audit_entity = "leads", "sales.lead"
    columns = ("external_ref", "name", "company", "email")
    fields, optional, constant = ("name", "company"), ("company",), {"email": None}

    def values(self, draw, refs):
        return {"name": word(draw), "company": draw(st.sampled_from([None, "Acme", "Initech"]))}

    def bad(self, draw, refs):
        return {"email": "not-an-email"}

    def create_entry(self, keys, ids, state):
        return {"count": len(keys), "ids": [ids[self.name][k] for k in keys]}

    def read(self, session):
        return {r: (i, {"name": n, "company": c}) for i, r, n, c in session.execute(
            select(Lead.id, Lead.external_ref, Lead.name, Lead.company))}


class Responses(Model):
    name, audit_entity = "marketing_responses", "marketing_response"
    columns = ("external_ref", "campaign", "customer_ref", "type")
    fields, constant, required = ("customer_ref", "type"), {"campaign": "C"}, "type"
    immutable = True

    def values(self, draw, refs):
        return {"customer_ref": draw(st.sampled_from(BASE[:3])), "type": draw(st.sampled_from(["opened", "clicked", "replied"]))}

    def bad(self, draw, refs):
        return draw(st.sampled_from([{"customer_ref": "BASE4"}, {"type": "liked"}, {"campaign": "NOPE"}]))

    def create_entry(self, keys, ids, state):
        cid = ids["campaign"]
        return {"responses": [[cid, ids["customer"][state[k]["customer_ref"]], state[k]["type"], k] for k in keys]}

    def read(self, session):
        return {r: (i, {"customer_ref": c, "type": t}) for i, r, c, t in session.execute(
            select(Response.id, Response.external_ref, Customer.external_ref, Response.type)
            .join(Customer, Customer.id == Response.customer_id))}


MODELS: dict[str, Model] = {m.name: m for m in (Customers(), Contacts(), Interactions(), Transactions(), Leads(), Responses())}
PLUGINS = (SALES, MARKETING)


class Row:
    """One line of a generated file: its cells, and what makes the reader (``malformed``) or
    validation (``faults``: the cells that are wrong) refuse it."""

    def __init__(self, model: Model, cells: Cells, faults: Cells | None = None, malformed: bool = False) -> None:
        self.cells, self.faults, self.malformed = cells, faults or {}, malformed
        self.key = model.key(cells)

    @property
    def bad(self) -> bool:
        return bool(self.faults)

    def again(self, model: Model, cells: Cells) -> Row:
        """This row's key again, with ``cells``: bad if it keeps a cell that made this one bad (a
        ledger key holds the customer, so a repeat of an unknown customer's entry is bad too)."""
        return Row(model, cells, {c: v for c, v in self.faults.items() if c in cells and cells[c] == v})

    def record(self, columns: tuple[str, ...]) -> list[str]:
        """The CSV record; a malformed row has a cell too many."""
        out = ["" if self.cells.get(c) is None else str(self.cells[c]) for c in columns]
        return [*out, "surplus"] if self.malformed else out

    def jsonl(self, columns: tuple[str, ...]) -> str:
        """The JSON Lines object: an empty cell is a missing key; a malformed row has an unknown key."""
        obj = {c: str(self.cells[c]) for c in columns if self.cells.get(c) is not None}
        return json.dumps({**obj, "surplus": "surplus"} if self.malformed else obj)


class ImportMachine(RuleBasedStateMachine):
    """The database after any sequence of imports equals the model; see the module docstring."""

    def __init__(self, crm: CRM, workdir: Path) -> None:
        super().__init__()
        self.crm, self.workdir = crm, workdir
        self.state: dict[str, dict[Any, dict[str, Any]]] = {name: {} for name in MODELS}
        self.numbers = itertools.count(1)
        self.had_account: set[str] = set()
        truncate_all(crm.engine)
        seed_base(crm)
        with crm.unit_of_work(read_only=True) as uow:
            self.audit_mark = uow.session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)) or 0

    def refs(self) -> list[str]:
        return [*BASE, *sorted(self.state["customers"])]

    def build(self, m: Model, plan: list[str], draw: Callable[..., Any]) -> list[Row]:
        refs, rows = self.refs(), []
        for kind in plan:
            known = sorted(self.state[m.name], key=str)
            earlier = [r for r in rows if not r.malformed]
            if kind in ("changed", "unchanged") and known:
                key = draw(st.sampled_from(known))
                if kind == "unchanged":
                    stored = self.state[m.name][key]
                    vals = {f: None if f in m.optional and draw(st.booleans()) else v for f, v in stored.items()}
                else:
                    vals = m.values(draw, refs)
                rows.append(Row(m, {**m.constant, **m.key_cells(key), **vals}))
            elif kind == "duplicate" and earlier:
                first = draw(st.sampled_from(earlier))
                cells = dict(first.cells) if draw(st.booleans()) else {**m.constant, **m.key_cells(first.key), **m.values(draw, refs)}
                rows.append(first.again(m, cells))
            elif kind in ("bad", "malformed"):
                key = draw(st.sampled_from(known)) if known and draw(st.booleans()) else m.fresh_key(draw, refs, next(self.numbers))
                cells = {**m.constant, **m.key_cells(key), **m.values(draw, refs)}
                # malformed: a cell too many (CSV) or an unknown key (JSONL), the reader refuses the line;
                # bad: a wrong value, or a required cell left empty (a key left out in JSONL): validation refuses it
                faults = {} if kind == "malformed" else m.bad(draw, refs) if draw(st.booleans()) else {m.required: None}
                rows.append(Row(m, {**cells, **faults}, faults, malformed=kind == "malformed"))
            else:
                key = m.fresh_key(draw, refs, next(self.numbers))
                rows.append(Row(m, {**m.constant, **m.key_cells(key), **m.values(draw, refs)}))
        return rows

    def expect(self, m: Model, rows: list[Row], batch: int, first_line: int
               ) -> tuple[dict[str, int], set[int], list[list[tuple[Any, ...]]]]:
        """Apply ``rows`` to the model: the counts, the rejected lines and per batch the audit
        entries to expect, as ("update", key, before, after) and ("create", [keys])."""
        state, seen = self.state[m.name], set()
        counts = {"inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0}
        rejected: set[int] = set()
        audits: list[list[tuple[Any, ...]]] = []
        for i, row in enumerate(rows):
            if i % batch == 0:
                audits.append([])
            outcome = self.outcome(m, row, state, seen, audits[-1])
            counts[outcome] += 1
            if outcome == "rejected":
                rejected.add(i + first_line)
        for entries in audits:
            created = [e[1] for e in entries if e[0] == "create"]
            entries[:] = [e for e in entries if e[0] == "update"] + ([("create", created)] if created else [])
        return counts, rejected, audits

    def outcome(self, m: Model, row: Row, state: dict[Any, dict[str, Any]], seen: set[Any], audits: list[tuple[Any, ...]]) -> str:
        if row.malformed:
            return "rejected"
        if m.registers:
            if row.key in seen:
                return "rejected"
            seen.add(row.key)
        if row.bad:
            return "rejected"
        given = m.given(row.cells)
        old = state.get(row.key)
        if old is None:
            state[row.key] = {f: given.get(f) for f in m.fields}
            audits.append(("create", row.key))
            return "inserted"
        changes = {f: v for f, v in given.items() if old[f] != v}
        if not changes:
            return "unchanged"
        if m.immutable:
            return "rejected"
        audits.append(("update", row.key, {f: old[f] for f in changes}, changes))
        old.update(changes)
        return "updated"

    @rule(entity=st.sampled_from(sorted(MODELS)), plan=st.lists(st.sampled_from(ROW_KINDS), min_size=1, max_size=8),
          batch=st.integers(1, 5), fmt=st.sampled_from(FORMATS), data=st.data())
    def import_file(self, entity: str, plan: list[str], batch: int, fmt: str, data: st.DataObject) -> None:
        m = MODELS[entity]
        self.import_rows(m, self.build(m, plan, data.draw), batch, fmt)

    def import_rows(self, m: Model, rows: list[Row], batch: int, fmt: str) -> dict[str, int]:
        """Write ``rows`` as a file, import it, check the database against the model; the counts."""
        path = self.workdir / f"{m.name}-{next(self.numbers)}.{fmt}"
        with path.open("w", newline="", encoding="utf-8") as f:
            if fmt == "csv":
                w = csv.writer(f)
                w.writerow(m.columns)
                w.writerows(r.record(m.columns) for r in rows)
            else:
                f.writelines(r.jsonl(m.columns) + "\n" for r in rows)
        counts, rejected, audits = self.expect(m, rows, batch, first_line=2 if fmt == "csv" else 1)
        ent = get_entity(self.crm, m.name)
        errors: list[Any] = []
        result = run_import(self.crm, m.name, read_source(str(path), allowed_fields=ent.all_columns(self.crm),
                                                          required_fields=ent.required),
                            actor="sync", batch_size=batch, on_error=errors.append)
        got = {"inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged,
               "rejected": result.rejected}
        assert got == counts, (path.read_text(), errors)
        assert {e.line for e in errors} == rejected, (path.read_text(), errors)
        self.check(m, audits)
        return got

    def check(self, m: Model, audits: list[list[tuple[Any, ...]]]) -> None:
        with self.crm.unit_of_work(read_only=True) as uow:
            s = uow.session
            ids: dict[str, Any] = {"customer": dict(s.execute(select(Customer.external_ref, Customer.id)).all()),
                                   "campaign": s.scalar(select(Campaign.id).where(Campaign.name == "C"))}
            for model in MODELS.values():
                stored = model.read(s)
                assert {k: v for k, (_, v) in stored.items()} == self.state[model.name], model.name
                ids[model.name] = {k: i for k, (i, _) in stored.items()}
            accounts = s.execute(select(Customer.external_ref, Account.id, Account.balance)
                                 .join(Customer, Customer.id == Account.customer_id)).all()
            ids["account"] = {ref: a for ref, a, _ in accounts}
            balances = {ref: b for ref, _, b in accounts}
            new = [(a.action, a.entity, a.entity_id, a.before, a.after) for a in s.scalars(
                select(AuditEntry).where(AuditEntry.id > self.audit_mark).order_by(AuditEntry.id))]
            self.audit_mark = s.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)) or 0
        owed: dict[str, Decimal] = {}
        for (ref, _), v in self.state["transactions"].items():
            owed[ref] = owed.get(ref, Decimal(0)) + effect(TransactionKind(v["kind"]), Decimal(v["amount"]))
        assert balances == owed  # an account is opened by the first entry, not by a rejected row
        assert new == self.expected_audit(m, audits, ids)

    def expected_audit(self, m: Model, audits: list[list[tuple[Any, ...]]], ids: dict[str, Any]) -> list[tuple[Any, ...]]:
        actions = {"transactions": "import-post", "marketing_responses": "import_responses"}
        out: list[tuple[Any, ...]] = []
        for entries in audits:
            for e in entries:
                if e[0] == "update":
                    out.append(("import-update", m.audit_entity, str(ids[m.name][e[1]]),
                                m.audit_values(e[2], ids), m.audit_values(e[3], ids)))
                else:
                    out.append((actions.get(m.name, "import-create"), m.audit_entity, None, None,
                                m.create_entry(e[1], ids, self.state[m.name])))
                    if m.name == "transactions":
                        out.extend(self.opened_accounts(e[1], ids))
        return out

    def opened_accounts(self, keys: list[Any], ids: dict[str, Any]) -> list[tuple[Any, ...]]:
        """A customer's default account is opened by its first entry, and audited then."""
        first = sorted({ref for ref, _ in keys if ref not in self.had_account}, key=lambda r: ids["customer"][r])
        self.had_account.update(first)
        return [("create", "account", str(ids["account"][ref]), None,
                 {"customer_id": ids["customer"][ref], "currency": "EUR", "payment_terms_days": 30, "is_default": True,
                  "source": "import"}) for ref in first]


def seed_base(crm: CRM) -> None:
    """Customers BASE1-4 for the references; campaign C targets BASE1-3 (for the responses)."""
    with crm.unit_of_work("setup") as uow:
        ids = [uow.customers.create(CustomerCreate(name=f"Base {ref}", external_ref=ref, email=f"{ref.lower()}@example.com")).id
               for ref in BASE]
        for i in ids[:3]:
            marketing.set_consent(uow, i, ConsentSet(channel="email", status="opt_in"))
        marketing.create_segment(uow, "seg-C", members=[f"#{i}" for i in ids[:3]])
        c = marketing.create_campaign(uow, CampaignCreate(name="C", channel="email", segments=["seg-C"], subject="Hi"))
        marketing.launch(uow, c, now=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))


#: entities whose import is checked against a model of its own elsewhere (one row per person and
#: one column per channel does not fit this machine's cells): plugins/marketing/tests/test_bulk_consent.py
MODELLED_ELSEWHERE = {"consent", "customer_consent"}


def test_the_model_covers_every_bulk_entity(make_crm) -> None:
    """A new bulk entity must join the machine, or be listed, with where it is checked instead."""
    assert set(entities(make_crm(plugins=PLUGINS))) - MODELLED_ELSEWHERE == set(MODELS)


def test_a_repeat_of_an_unknown_customers_entry_is_refused(make_crm, tmp_path) -> None:
    """The sequence the machine found only after other tests had loaded more modules (see the
    module docstring): an entry for the unknown customer NOPE, then NOPE's reference again with
    other values. The second row is refused like the first (the customer is part of the key);
    the model had counted it inserted."""
    crm = make_crm(plugins=PLUGINS)
    machine, m = ImportMachine(crm, tmp_path), MODELS["transactions"]

    def entry(ref: str, n: int, amount: str = "1.00") -> Cells:
        return {**m.constant, "customer_ref": ref, "reference": f"TX{n}", "kind": "invoice", "amount": amount}

    first = Row(m, entry("NOPE", 19, "306.00"), {"customer_ref": "NOPE"})
    rows = [Row(m, entry("BASE1", 18), malformed=True), first, first.again(m, entry("NOPE", 19)),
            Row(m, entry("BASE1", 20)), Row(m, entry("BASE1", 21)), Row(m, entry("BASE2", 22))]
    got = [machine.import_rows(m, rows, batch=1, fmt=fmt) for fmt in FORMATS]  # the same file twice, once each way
    assert got == [{"inserted": 3, "updated": 0, "unchanged": 0, "rejected": 3},
                   {"inserted": 0, "updated": 0, "unchanged": 3, "rejected": 3}]
    assert machine.state["transactions"] == {("BASE1", "TX20"): {"kind": "invoice", "amount": "1.00"},
                                             ("BASE1", "TX21"): {"kind": "invoice", "amount": "1.00"},
                                             ("BASE2", "TX22"): {"kind": "invoice", "amount": "1.00"}}


def test_import_sequences_match_the_model(make_crm, tmp_path) -> None:
    crm = make_crm(plugins=PLUGINS)
    examples = int(os.environ.get("IMPORT_MACHINE_EXAMPLES", "10"))  # more (and unshrunk) for a long local run
    phases = list(Phase) if examples <= 10 else [Phase.explicit, Phase.generate]
    run_state_machine_as_test(lambda: ImportMachine(crm, tmp_path), settings=settings(
        max_examples=examples, stateful_step_count=6, deadline=None, derandomize=examples <= 10, database=None, phases=phases,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))
