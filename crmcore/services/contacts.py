from __future__ import annotations

from sqlalchemy import select

from crmcore.enums import CustomerKind
from crmcore.errors import Conflict, InvalidInput, NotFound
from crmcore.models import Contact
from crmcore.schemas import ContactCreate, ContactUpdate
from crmcore.services._base import Service, new_ref
from crmcore.vocabularies import of as vocabularies_of


class ContactService(Service):
    def add(self, customer_id: int, data: ContactCreate) -> Contact:
        self.uow.require("contact.write")
        customer = self.uow.visibility.check(self.uow.customers.get(customer_id))
        if customer.kind is CustomerKind.PERSON:
            raise InvalidInput(f"customer {customer_id} is a person; contacts belong to organizations")
        if customer.archived:
            raise Conflict(f"customer {customer_id} is archived")
        vocabularies_of(self.uow.crm).check("contact_roles", data.role, "role")
        if data.external_ref and self.session.scalar(select(Contact.id).where(Contact.external_ref == data.external_ref)):
            raise Conflict(f"contact reference {data.external_ref!r} already exists")
        contact = Contact(customer_id=customer_id, **{**data.model_dump(), "external_ref": data.external_ref or new_ref()})
        self.session.add(contact)
        self.session.flush()
        self.uow.audit.record("create", "contact", contact.id, after=data.model_dump())
        return contact

    def update(self, contact_id: int, data: ContactUpdate) -> Contact:
        self.uow.require("contact.write")
        contact = self._visible_contact(contact_id)
        given = data.model_dump(exclude_unset=True)
        if not given:
            raise InvalidInput("nothing to update: give at least one field")
        if "role" in given:
            vocabularies_of(self.uow.crm).check("contact_roles", data.role, "role")
        before = {k: getattr(contact, k) for k in given}
        for k in given:
            setattr(contact, k, getattr(data, k))
        self.session.flush()
        self.uow.audit.record("update", "contact", contact_id, before=before, after=given)
        return contact

    def remove(self, contact_id: int) -> None:
        self.uow.require("contact.write")
        contact = self._visible_contact(contact_id)
        # the whole row, so the audit log alone answers what was deleted
        row = {c.key: getattr(contact, c.key) for c in Contact.__mapper__.column_attrs}
        self.uow.audit.record("delete", "contact", contact_id, before=row)
        self.session.delete(contact)
        self.session.flush()

    def _visible_contact(self, contact_id: int) -> Contact:
        """The contact to change; not found, like a missing one, when its customer is not the
        actor's to see ("own customers" visibility applies to writes as to reads)."""
        contact = self._get(Contact, contact_id, "contact")
        if not self.uow.visibility.can_see(self.uow.customers.get(contact.customer_id)):
            raise NotFound("contact", contact_id)
        return contact

    def list(self, customer_id: int) -> list[Contact]:
        """The customer's contacts (``customer.read``; a customer the actor may not see is not found)."""
        self.uow.customers.visible(customer_id)
        return list(self.session.scalars(select(Contact).where(Contact.customer_id == customer_id).order_by(Contact.id)))
