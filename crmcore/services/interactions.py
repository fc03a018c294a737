from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from crmcore.errors import Conflict, CRMError, InvalidInput, NotFound, invalid_input, validation_errors
from crmcore.models import Contact, Customer, Interaction
from crmcore.schemas import InteractionCreate
from crmcore.services._base import Service, jsonable, new_ref
from crmcore.services.audit import insert_entries
from crmcore.vocabularies import of as vocabularies_of

#: a contact person given by id or by external reference
ContactKey = int | str


def _comparable(value: Any) -> Any:
    """SQLite hands datetimes back naive (stored as UTC): compare them as UTC."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


class InteractionService(Service):
    def log(self, customer_id: int, data: InteractionCreate, contact: ContactKey | None = None) -> Interaction:
        return self.log_once(customer_id, data, contact=contact)[0]

    # what must match for a reference logged again to be "the same touchpoint"
    SAME = ("customer_id", "channel", "direction", "kind", "subject", "notes", "outcome", "satisfaction", "source",
            "source_ref", "handled_by_id", "contact_id")

    def contacts_by_key(self, keys: Iterable[ContactKey]) -> dict[ContactKey, tuple[int, int]]:
        """Contact keys (ids or external references) -> (contact id, its customer id), a few queries
        for any number of keys; a key not found is left out. A key that is all digits is tried as an
        id when no contact has it as reference."""
        keys = set(keys)
        ids = sorted({int(k) for k in keys if isinstance(k, int) or k.isdigit()})
        refs = sorted({k for k in keys if isinstance(k, str)})
        by_id: dict[int, tuple[int, int]] = {}
        by_ref: dict[str, tuple[int, int]] = {}
        for start in range(0, max(len(ids), len(refs)), 1000):
            for cid, ref, owner in self.session.execute(select(Contact.id, Contact.external_ref, Contact.customer_id).where(
                    Contact.id.in_(ids[start:start + 1000]) | Contact.external_ref.in_(refs[start:start + 1000]))):
                by_id[cid] = (cid, owner)
                if ref is not None:
                    by_ref[ref] = (cid, owner)
        out: dict[ContactKey, tuple[int, int]] = {}
        for key in keys:
            found = by_ref.get(key) if isinstance(key, str) else None
            if found is None and (isinstance(key, int) or key.isdigit()):
                found = by_id.get(int(key))
            if found is not None:
                out[key] = found
        return out

    @staticmethod
    def _own_contact(found: Mapping[ContactKey, tuple[int, int]], key: ContactKey, customer_id: int) -> int:
        """The contact's id if it is one of the customer's people: a touchpoint names a person of
        *that* customer, so another customer's contact (or none at all) is refused with one line."""
        if key not in found:
            raise InvalidInput(f"no contact {key!r}", [("contact", f"no contact {key!r}")])
        if found[key][1] != customer_id:
            text = f"contact {key!r} belongs to another customer, not to customer {customer_id}"
            raise InvalidInput(text, [("contact", text)])
        return found[key][0]

    @staticmethod
    def _contact_key(contact: ContactKey | None) -> ContactKey | None:
        if isinstance(contact, str):
            contact = contact.strip()
        return None if contact is None or contact == "" else contact

    def _same_or_conflict(self, existing: Interaction, wanted: dict[str, Any], occurred_at: dt.datetime | None) -> Interaction:
        differs = [f for f in self.SAME if getattr(existing, f) != wanted[f]]
        if occurred_at is not None and _comparable(existing.occurred_at) != occurred_at:
            differs.append("occurred_at")
        if differs:
            raise Conflict(f"interaction reference {existing.external_ref!r} is already logged (interaction {existing.id}) "
                           f"with a different {', '.join(differs)}; use a new reference or update interaction {existing.id}")
        return existing

    def log_once(self, customer_id: int, data: InteractionCreate, contact: ContactKey | None = None) -> tuple[Interaction, bool]:
        """Log a touchpoint; returns (interaction, created). A reference logged again with the same
        content is a no-op (also when two writers log it at once); with different content, refused.
        ``contact`` (id or external reference) is the customer's person spoken with."""
        self.uow.require("interaction.write")
        customer = self.uow.customers.resolve(customer_id)  # NotFound for a customer the actor may not see
        if customer.archived:
            raise Conflict(f"customer {customer_id} is archived")
        vocabularies_of(self.uow.crm).check("interaction_kinds", data.kind, "kind")
        fields = data.model_dump(exclude={"handled_by", "occurred_at"})
        key = self._contact_key(contact)
        fields["contact_id"] = None if key is None else self._own_contact(self.contacts_by_key([key]), key, customer_id)
        wanted = {**fields, "customer_id": customer_id, "handled_by_id": self.uow.users.id_for(data.handled_by)}
        if data.external_ref:
            existing = self.session.scalar(select(Interaction).where(Interaction.external_ref == data.external_ref))
            if existing is not None:
                return self._same_or_conflict(existing, wanted, data.occurred_at), False
        fields["external_ref"] = fields["external_ref"] or new_ref()
        interaction = Interaction(customer_id=customer_id, occurred_at=data.occurred_at or self.uow.now(),
                                  handled_by_id=wanted["handled_by_id"], **fields)
        try:
            with self.session.begin_nested():  # a concurrent writer may log the same reference first
                self.session.add(interaction)
                self.session.flush()
        except IntegrityError:
            existing = self.session.scalar(select(Interaction).where(Interaction.external_ref == fields["external_ref"]))
            if existing is None:
                raise
            return self._same_or_conflict(existing, wanted, data.occurred_at), False
        self.uow.audit.record("create", "interaction", interaction.id, after={"customer_id": customer_id, **fields})
        self.uow.hooks.interaction_logged(self.uow, interaction)
        return interaction, True

    def log_many(self, entries: Iterable[tuple[int | str, InteractionCreate | Mapping[str, Any]]
                                         | tuple[int | str, InteractionCreate | Mapping[str, Any], ContactKey | None]],
                 ) -> list[Interaction]:
        """Log a batch of touchpoints, all or nothing; ``crm_interactions_batch`` fires once.

        Each entry is (customer id or reference, data) or (customer, data, contact); a mapping may
        also give the contact under ``"contact"``. Every row is checked as :meth:`log_once`
        checks one (the schema, a customer the actor may see and not archived, a known
        ``handled_by``, a reference logged again with other content refused), and the first bad
        row refuses the batch before anything is written, naming its row (1-based). A reference
        already logged with the same content (or twice in the batch) gives the existing row and
        is not logged again. Customers and users are looked up once per distinct key, the rows
        and their audit entries written in one flush. Returns the interactions in entry order.
        """
        self.uow.require("interaction.write")
        rows, contacts = [], []
        for n, (key, data, *rest) in enumerate(entries, start=1):
            if isinstance(data, Mapping) and "contact" in data:
                data = dict(data)
                rest = [data.pop("contact")]
            rows.append(self._checked(n, key, data))
            contacts.append(self._contact_key(rest[0] if rest else None))
        customers = self._customers_of(rows)
        contact_ids = self._contacts_of(rows, contacts, customers)
        users: dict[str, int | None] = {}
        wanted: list[tuple[int, dict[str, Any]]] = []
        for n, key, data in rows:
            try:
                if data.handled_by is not None and data.handled_by not in users:
                    users[data.handled_by] = self.uow.users.id_for(data.handled_by)
            except CRMError as e:
                raise InvalidInput(f"row {n}: {e}", [(f"row {n}.handled_by", str(e))]) from None
            fields = data.model_dump(exclude={"handled_by", "occurred_at"})
            wanted.append((n, {**fields, "customer_id": customers[key].id, "handled_by_id": users.get(data.handled_by or ""),
                               "contact_id": contact_ids[n - 1], "occurred_at": data.occurred_at}))
        return self._write_batch(wanted)

    def _contacts_of(self, rows: list[tuple[int, int | str, InteractionCreate]], contacts: list[ContactKey | None],
                     customers: Mapping[int | str, Customer]) -> list[int | None]:
        """Each row's contact id (None without one), looked up at once; a bad one names its row."""
        found = self.contacts_by_key(c for c in contacts if c is not None)
        out: list[int | None] = []
        for (n, key, _), contact in zip(rows, contacts, strict=True):
            try:
                out.append(None if contact is None else self._own_contact(found, contact, customers[key].id))
            except InvalidInput as e:
                raise InvalidInput(f"row {n}: {e}", [(f"row {n}.contact", str(e))]) from None
        return out

    def _checked(self, n: int, key: int | str, data: InteractionCreate | Mapping[str, Any]) -> tuple[int, int | str, InteractionCreate]:
        """One entry validated as :class:`InteractionCreate`; a bad one names its row."""
        try:
            valid = data if isinstance(data, InteractionCreate) else InteractionCreate.model_validate(data)
        except ValidationError as e:
            errors = validation_errors(e, "interaction")
            text = "; ".join(f"{f}: {w}" for f, w in errors)
            raise InvalidInput(f"row {n}: invalid interaction: {text}", [(f"row {n}.{f}", w) for f, w in errors]) from None
        try:
            vocabularies_of(self.uow.crm).check("interaction_kinds", valid.kind, "kind")
        except InvalidInput as e:
            raise InvalidInput(f"row {n}: {e}", [(f"row {n}.{f}", w) for f, w in e.errors]) from None
        return n, key, valid

    def _customers_of(self, rows: list[tuple[int, int | str, InteractionCreate]]) -> dict[int | str, Customer]:
        """Each distinct customer key resolved once (reference wins, visibility applied)."""
        found: dict[int | str, Customer] = {}
        for n, key, _ in rows:
            if key in found:
                continue
            try:
                found[key] = self.uow.customers.resolve(key)
            except NotFound as e:
                raise NotFound("customer", f"{key!r} (row {n})") from e
            if found[key].archived:
                raise Conflict(f"row {n}: customer {found[key].id} is archived")
        return found

    def _write_batch(self, wanted: list[tuple[int, dict[str, Any]]]) -> list[Interaction]:
        """Insert the new rows in one statement (existing references reused, conflicts refused),
        their audit entries in another, then call the batch hook once."""
        refs = sorted({w["external_ref"] for _, w in wanted if w["external_ref"]})
        known: dict[str, Interaction] = {}
        for start in range(0, len(refs), 1000):
            known.update((str(i.external_ref), i) for i in self.session.scalars(
                select(Interaction).where(Interaction.external_ref.in_(refs[start:start + 1000]))))
        slots: list[Interaction | int] = []  # an existing row, or the index of a new one
        new: list[dict[str, Any]] = []
        first: dict[str, tuple[int, int]] = {}  # reference -> (row, index in new) of its first new row
        for n, w in wanted:
            occurred_at = w.pop("occurred_at")
            ref = w["external_ref"]
            if ref in known:
                try:
                    slots.append(self._same_or_conflict(known[ref], w, occurred_at))
                except Conflict as e:
                    raise Conflict(f"row {n}: {e}") from None
                continue
            row = {**w, "external_ref": ref or new_ref(), "occurred_at": occurred_at or self.uow.now()}
            if ref in first:
                row_n, index = first[ref]
                if {f: new[index][f] for f in (*self.SAME, "occurred_at")} != {f: row[f] for f in (*self.SAME, "occurred_at")}:
                    raise Conflict(f"row {n}: interaction reference {ref!r} is already given by row {row_n} of this "
                                   "batch with other content")
                slots.append(index)
                continue
            first[row["external_ref"]] = (n, len(new))
            slots.append(len(new))
            new.append(row)
        created = self._insert(new)
        if created:
            self._audit(created)
            self.uow.hooks.interactions_batch(self.uow, [i.id for i in created])
        return [created[s] if isinstance(s, int) else s for s in slots]

    def _insert(self, rows: list[dict[str, Any]]) -> list[Interaction]:
        if not rows:
            return []
        try:
            with self.session.begin_nested():  # a concurrent writer may log one of the references first
                # unsorted RETURNING keeps SQLite's multi-row VALUES; every row has its unique reference
                by_ref = {str(i.external_ref): i for i in self.session.scalars(insert(Interaction).returning(Interaction), rows)}
            return [by_ref[r["external_ref"]] for r in rows]
        except IntegrityError:
            raise Conflict("another writer logged some of these interaction references meanwhile; "
                           "nothing was written, log the batch again") from None

    def _audit(self, created: list[Interaction]) -> None:
        """One "create" entry per interaction, as :meth:`log_once` writes, in one statement."""
        fields = [f for f in self.SAME if f != "handled_by_id"]
        insert_entries(self.session.connection(), self.uow.actor, [
            {"action": "create", "entity": "interaction", "entity_id": i.id,
             "after": jsonable({**{f: getattr(i, f) for f in fields}, "external_ref": i.external_ref})}
            for i in created])

    UPDATABLE = ("channel", "direction", "kind", "subject", "notes", "occurred_at", "outcome", "satisfaction")

    def update(self, interaction_id: int, changes: Mapping[str, Any]) -> Interaction:
        """Correct an interaction's fields (validated as on logging); audited, ``crm_interaction_updated`` fires."""
        self.uow.require("interaction.write")
        unknown = sorted(set(changes) - set(self.UPDATABLE))
        if unknown:
            raise InvalidInput(f"interaction fields cannot be changed: {', '.join(unknown)}")
        interaction = self.session.get(Interaction, interaction_id)
        if interaction is None:
            raise NotFound("interaction", interaction_id)
        current = {f: getattr(interaction, f) for f in self.UPDATABLE}
        try:
            valid = InteractionCreate.model_validate({**current, **changes})
        except ValidationError as e:
            raise invalid_input(e, "interaction") from None
        if "kind" in changes:
            vocabularies_of(self.uow.crm).check("interaction_kinds", valid.kind, "kind")
        diff = {f: (current[f], getattr(valid, f)) for f in changes if _comparable(getattr(valid, f)) != _comparable(current[f])}
        if not diff:
            return interaction
        for f, (_, after) in diff.items():
            setattr(interaction, f, after)
        self.session.flush()
        self.uow.audit.record("update", "interaction", interaction.id, before={k: v[0] for k, v in diff.items()},
                              after={k: v[1] for k, v in diff.items()})
        self.uow.hooks.interaction_updated(self.uow, interaction, diff)
        return interaction

    def list(self, customer_id: int | None = None, limit: int = 50) -> list[Interaction]:
        """The latest interactions, of one customer or of every customer the actor may see."""
        q = select(Interaction).order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit)
        if customer_id is not None:
            self.uow.customers.visible(customer_id)
            q = q.where(Interaction.customer_id == customer_id)
        else:
            self.uow.require("customer.read")
            q = q.where(self.uow.visibility.customer_filter(Interaction.customer_id))
        return list(self.session.scalars(q))
