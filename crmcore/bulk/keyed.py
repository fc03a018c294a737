"""Customers, contacts and interactions: insert new keys, update the changed fields of known
ones, leave equal ones alone; one audit entry per update and one per batch of inserts."""
from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from sqlalchemy import bindparam, select, update

from crmcore.bulk.batch import BatchImporter, printable, ref_problem
from crmcore.bulk.readers import SourceRow
from crmcore.bulk.specs import ATTR_PREFIX, SPECS
from crmcore.db.types import utcnow
from crmcore.enums import CustomerKind, Direction
from crmcore.errors import InvalidInput
from crmcore.models import Contact, Customer, Interaction
from crmcore.models.customer import fold
from crmcore.schemas import ContactCreate, CustomerCreate, InteractionCreate
from crmcore.services._base import jsonable
from crmcore.services.customer_fields import COMPARED, PLAIN
from crmcore.services.customer_fields import defaults as customer_defaults
from crmcore.uow import UnitOfWork
from crmcore.vocabularies import Vocabularies
from crmcore.vocabularies import of as vocabularies_of


class KeyedUpsert(BatchImporter):
    """Customers, contacts and interactions: insert new keys, update changed fields of known ones."""

    model: type[Any]
    schema: type[BaseModel]
    compare: tuple[str, ...]  # model columns an import may change

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: dict[str, int] = {}

    def prepare(self, uow: UnitOfWork, rows: list[tuple[SourceRow, str, Any]]) -> list[tuple[SourceRow, str, dict[str, Any]]]:
        """Validated rows -> (row, key, model column values given in the file); rejects what fails."""
        raise NotImplementedError

    def finalise(self, values: dict[str, Any], old: Any | None) -> dict[str, Any]:
        """Last step with the stored row at hand (None for a new one); raise InvalidInput to reject."""
        return values

    def key_of(self, row: SourceRow, data: dict[str, Any]) -> str | None:
        return data.get(self.spec.key)

    def after_batch(self, uow: UnitOfWork, created: list[int], updated: list[int]) -> None:
        raise NotImplementedError

    def forget(self, batch: list[SourceRow]) -> None:
        lines = {r.line for r in batch}
        for k in [k for k, line in self.seen.items() if line in lines]:
            del self.seen[k]

    def process(self, uow: UnitOfWork, batch: list[SourceRow]) -> None:
        validated: list[tuple[SourceRow, str, Any]] = []
        seen = self.seen  # keys of the whole run: a key twice in a file is an error, in any batch
        for row in batch:
            if row.error:
                self.reject(row.line, "row", row.error)
                continue
            data = {k: v for k, v in row.data.items() if v is not None}
            key = self.key_of(row, data)
            if key is not None:
                key = str(key).strip()
            if not key:
                self.reject(row.line, self.spec.key, "is required")
                continue
            if key in seen:
                self.reject(row.line, self.spec.key, f"duplicate {self.spec.key} {printable(key)!r} (also on line {seen[key]})", key)
                continue
            seen[key] = row.line
            obj = self.validate_row(row, data, key)
            if obj is not None:
                validated.append((row, key, obj))
        prepared = self.prepare(uow, validated)
        if not prepared:
            return
        key_col = self.model.external_ref
        cols = [self.model.id, getattr(self.model, "archived", None), *[getattr(self.model, c) for c in self.compare]]
        cols = [c for c in cols if c is not None]
        keys = [k for _, k, _ in prepared]
        existing: dict[str, Any] = {}
        for i in range(0, len(keys), 5000):
            for r in uow.session.execute(select(key_col, *cols).where(key_col.in_(keys[i:i + 5000]))):
                existing[r[0]] = r
        now = utcnow()
        inserts: list[dict[str, Any]] = []
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        audits: list[dict[str, Any]] = []
        updated_ids: list[int] = []
        for row, key, values in prepared:
            old = existing.get(key)
            try:
                values = self.finalise(values, None if old is None else old._mapping)
            except InvalidInput as e:
                self.reject(row.line, e.errors[0][0] if e.errors else "row", str(e), key)
                continue
            if old is None:
                inserts.append(self.new_row(values, key, now))
                continue
            m = old._mapping
            changes = {c: v for c, v in values.items() if c in self.compare and m[c] != v}
            if not changes:
                self.out.unchanged += 1
                continue
            if m.get("archived"):
                self.reject(row.line, self.spec.key, f"{self.spec.name[:-1]} {key!r} is archived; restore it before updating", key)
                continue
            updates[tuple(sorted(changes)) + tuple(sorted(self.derived(changes)))].append(
                {"_id": m["id"], **changes, **self.derived(changes)})
            updated_ids.append(m["id"])
            audits.append({"action": "import-update", "entity": self.spec.name[:-1], "entity_id": str(m["id"]),
                           "before": jsonable({c: m[c] for c in changes}), "after": jsonable(changes)})
        table = self.model.__table__
        created = self.insert_and_fetch_ids(uow, table, inserts, ("external_ref",))
        for columns, params in updates.items():
            params.sort(key=lambda p: p["_id"])  # rows locked in id order: concurrent imports cannot deadlock
            stmt = update(table).where(table.c.id == bindparam("_id")).values(
                **{c: bindparam(c) for c in columns}, **self.update_extra(now))
            uow.session.connection().execute(stmt, params)
        if created:
            audits.append({"action": "import-create", "entity": self.spec.name[:-1], "entity_id": None,
                           "after": {"count": len(created), "first_id": created[0], "last_id": created[-1]}})
        self.audit_many(uow, audits)
        self.out.inserted += len(created)
        self.out.updated += len(updated_ids)
        if created or updated_ids:
            self.after_batch(uow, created, updated_ids)

    def validate_row(self, row: SourceRow, data: dict[str, Any], key: str) -> Any:
        return self.validate(self.schema, row, data, key)

    def new_row(self, values: dict[str, Any], key: str, now: dt.datetime) -> dict[str, Any]:
        raise NotImplementedError

    def update_extra(self, now: dt.datetime) -> dict[str, Any]:
        return {}

    def derived(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Columns computed from changed ones (not compared, never audited)."""
        return {}


# the schema fields a row copies onto the model as they are (the key is set apart, the owner looked up)
_COPIED = tuple(f for f in PLAIN if f != "external_ref")


class CustomerImporter(KeyedUpsert):
    spec = SPECS["customers"]
    model = Customer
    schema = CustomerCreate
    compare = COMPARED

    def validate_row(self, row: SourceRow, data: dict[str, Any], key: str) -> Any:
        attrs = {k[len(ATTR_PREFIX):]: data.pop(k) for k in [k for k in data if k.startswith(ATTR_PREFIX)]}
        if attrs:
            data["attributes"] = attrs
        return self.validate(self.schema, row, data, key)

    def prepare(self, uow: UnitOfWork, rows: list[tuple[SourceRow, str, Any]]) -> list[tuple[SourceRow, str, dict[str, Any]]]:
        out = []
        for row, key, c in rows:
            given = c.model_fields_set
            values = {f: getattr(c, f) for f in _COPIED if f in given}
            try:
                if "owner" in given:
                    values["owner_id"] = self.user_id(uow, c.owner)
            except KeyError:
                self.reject(row.line, "owner", f"unknown user {c.owner!r}", key)
                continue
            if "attributes" in given:
                values["attributes"] = c.attributes  # validated in finalise, merged with the stored ones
            out.append((row, key, values))
        return out

    def finalise(self, values: dict[str, Any], old: Any | None) -> dict[str, Any]:
        fields_ = self.crm.fields
        if old is None:
            if "attributes" in values or any(d.required for d in fields_.fields.values()):
                values["attributes"] = fields_.validate(values.get("attributes", {}))
        elif "attributes" in values:
            values["attributes"] = fields_.validate(values["attributes"], existing=old["attributes"])
        return values

    def new_row(self, values: dict[str, Any], key: str, now: dt.datetime) -> dict[str, Any]:
        return {**customer_defaults(), "attributes": {},
                **values, "search_name": fold(values["name"]), "external_ref": key, "archived": False,
                "merged_into_id": None, "created_at": now, "updated_at": now, "version": 1}

    def update_extra(self, now: dt.datetime) -> dict[str, Any]:
        return {"version": Customer.version + 1, "updated_at": now}

    def derived(self, changes: dict[str, Any]) -> dict[str, Any]:
        return {"search_name": fold(changes["name"])} if "name" in changes else {}

    def after_batch(self, uow: UnitOfWork, created: list[int], updated: list[int]) -> None:
        self.warn_duplicates(uow, created)
        uow.hooks.customers_batch(uow, created, updated)

    def warn_duplicates(self, uow: UnitOfWork, created: list[int]) -> None:
        """List new rows that look like a customer already there (or one earlier in the file) in
        the error report: imported all the same (a re-run must not change its answer), for a person
        to merge. One query a batch, not one a row."""
        from crmcore.services import duplicates

        if not created or duplicates.settings_of(uow).on_create == "off":
            return
        refs = dict(uow.session.execute(select(Customer.id, Customer.external_ref).where(Customer.id.in_(created))).all()) \
            if len(created) <= 5000 else {}
        for new_id, match in duplicates.matches_for(uow, created):
            ref = refs.get(new_id)
            self.out.warn(self.seen.get(ref, 0) if ref else 0, "duplicate", match, ref)


class ByCustomerRef(KeyedUpsert):
    """Rows that name their customer by ``customer_ref`` (contacts, interactions)."""

    def validate_row(self, row: SourceRow, data: dict[str, Any], key: str) -> Any:
        ref = str(data.pop("customer_ref", "") or "").strip()
        problem = ref_problem(ref)
        if problem:
            self.reject(row.line, "customer_ref", problem, key)
            return None
        c = self.validate(self.schema, row, data, key)
        return None if c is None else (ref, c)

    def word_problem(self, vocab: Vocabularies, name: str, value: str | None, fld: str, row: SourceRow, key: str) -> bool:
        """Reject the row (True) when ``value`` is not a word of the vocabulary ``name``."""
        try:
            vocab.check(name, value, fld)
        except InvalidInput as e:
            self.reject(row.line, fld, e.errors[0][1] if e.errors else str(e), key)
            return True
        return False

    def with_customers(self, uow: UnitOfWork, rows: list[tuple[SourceRow, str, Any]]) -> Iterator[tuple[SourceRow, str, Any, tuple[int, CustomerKind, bool]]]:
        """(row, key, validated, (customer id, kind, archived)); rows naming no known customer are rejected."""
        customers = self.customers_by_ref(uow, [ref for _, _, (ref, _) in rows])
        for row, key, (ref, c) in rows:
            found = customers.get(ref)
            if found is None:
                self.reject(row.line, "customer_ref", f"unknown customer {ref!r}", key)
            elif found[2]:
                self.reject(row.line, "customer_ref", f"customer {ref!r} is archived", key)
            else:
                yield row, key, c, found


class ContactImporter(ByCustomerRef):
    spec = SPECS["contacts"]
    model = Contact
    schema = ContactCreate
    compare = ("customer_id", "name", "role", "title", "email", "phone")

    def prepare(self, uow: UnitOfWork, rows: list[tuple[SourceRow, str, Any]]) -> list[tuple[SourceRow, str, dict[str, Any]]]:
        out = []
        vocab = vocabularies_of(uow.crm)
        for row, key, c, found in self.with_customers(uow, rows):
            if found[1] is CustomerKind.PERSON:
                self.reject(row.line, "customer_ref", "the customer is a person; contacts belong to organizations", key)
            elif not self.word_problem(vocab, "contact_roles", c.role, "role", row, key):
                values = {f: getattr(c, f) for f in ("name", "role", "title", "email", "phone") if f in c.model_fields_set}
                out.append((row, key, {"customer_id": found[0], **values}))
        return out

    def new_row(self, values: dict[str, Any], key: str, now: dt.datetime) -> dict[str, Any]:
        return {"role": None, "title": None, "email": None, "phone": None, **values, "external_ref": key, "created_at": now}

    def after_batch(self, uow: UnitOfWork, created: list[int], updated: list[int]) -> None:
        pass  # contacts have no events in the hook contract


class InteractionImporter(ByCustomerRef):
    spec = SPECS["interactions"]
    model = Interaction
    schema = InteractionCreate
    compare = ("customer_id", "channel", "direction", "kind", "subject", "notes", "occurred_at", "handled_by_id", "outcome",
               "satisfaction", "contact_id")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.contact_refs: dict[str, str] = {}  # row key -> contact_ref given, until its batch is prepared

    def key_of(self, row: SourceRow, data: dict[str, Any]) -> str | None:
        if data.get("external_ref"):
            return data["external_ref"]
        # a stable reference, so re-importing a file without references is still idempotent
        basis = "\x1f".join(str(data.get(k, "")).strip() for k in ("customer_ref", "occurred_at", "channel", "subject"))
        return "h:" + hashlib.sha1(basis.encode()).hexdigest()[:30]

    def validate_row(self, row: SourceRow, data: dict[str, Any], key: str) -> Any:
        data["external_ref"] = key
        data.setdefault("source", "import")
        contact = str(data.pop("contact_ref", "") or "").strip()
        if contact:
            self.contact_refs[key] = contact
        return super().validate_row(row, data, key)

    def contacts(self, uow: UnitOfWork, keys: list[str]) -> dict[str, tuple[int, int]]:
        """contact_ref -> (contact id, its customer id) for the batch's rows, in one query per 1000."""
        refs = sorted({self.contact_refs[k] for k in keys if k in self.contact_refs})
        found: dict[str, tuple[int, int]] = {}
        for start in range(0, len(refs), 1000):
            found.update((str(r), (i, c)) for i, r, c in uow.session.execute(select(
                Contact.id, Contact.external_ref, Contact.customer_id).where(Contact.external_ref.in_(refs[start:start + 1000]))))
        return found

    def contact_problem(self, found: dict[str, tuple[int, int]], ref: str | None, customer_id: int) -> str | None:
        """Why the row's contact_ref cannot be its contact person (None when it can or none is given):
        the person spoken with is one of the customer's own contacts."""
        if ref is None:
            return None
        if ref not in found:
            return f"unknown contact {ref!r}"
        if found[ref][1] != customer_id:
            return f"contact {ref!r} belongs to another customer"
        return None

    def prepare(self, uow: UnitOfWork, rows: list[tuple[SourceRow, str, Any]]) -> list[tuple[SourceRow, str, dict[str, Any]]]:
        out = []
        vocab = vocabularies_of(uow.crm)
        contacts = self.contacts(uow, [key for _, key, _ in rows])
        refs = {key: self.contact_refs.pop(key, None) for _, key, _ in rows}
        for row, key, c, found in self.with_customers(uow, rows):
            if self.word_problem(vocab, "interaction_kinds", c.kind, "kind", row, key):  # the default too, as logging does
                continue
            problem = self.contact_problem(contacts, refs[key], found[0])
            if problem:
                self.reject(row.line, "contact_ref", problem, key)
                continue
            values = {f: getattr(c, f) for f in ("channel", "direction", "kind", "subject", "notes", "occurred_at", "outcome",
                                                 "satisfaction") if f in c.model_fields_set}
            if "handled_by" in c.model_fields_set:
                try:
                    values["handled_by_id"] = self.user_id(uow, c.handled_by)
                except KeyError:
                    self.reject(row.line, "handled_by", f"unknown user {c.handled_by!r}", key)
                    continue
            if refs[key] is not None:
                values["contact_id"] = contacts[str(refs[key])][0]
            out.append((row, key, {"customer_id": found[0], **values}))
        return out

    def new_row(self, values: dict[str, Any], key: str, now: dt.datetime) -> dict[str, Any]:
        return {"direction": Direction.INBOUND, "kind": "other", "notes": None, "outcome": None,
                "satisfaction": None, "handled_by_id": None, "contact_id": None, **values, "external_ref": key, "source": "import", "source_ref": None, "created_at": now}

    def after_batch(self, uow: UnitOfWork, created: list[int], updated: list[int]) -> None:
        if created:
            uow.hooks.interactions_batch(uow, created)
        if updated:
            uow.hooks.call("crm_interactions_updated_batch", uow=uow, interaction_ids=updated)
