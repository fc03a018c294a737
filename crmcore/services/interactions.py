from __future__ import annotations

from sqlalchemy import select

from crmcore.db.types import utcnow
from crmcore.errors import Conflict
from crmcore.models import Interaction
from crmcore.schemas import InteractionCreate
from crmcore.services._base import Service, new_ref


class InteractionService(Service):
    def log(self, customer_id: int, data: InteractionCreate) -> Interaction:
        customer = self.uow.customers.get(customer_id)
        if customer.archived:
            raise Conflict(f"customer {customer_id} is archived")
        if data.external_ref:
            existing = self.session.scalar(select(Interaction).where(Interaction.external_ref == data.external_ref))
            if existing is not None:
                return existing  # the same touchpoint recorded again: idempotent
        fields = data.model_dump(exclude={"handled_by", "occurred_at"})
        fields["external_ref"] = fields["external_ref"] or new_ref()
        interaction = Interaction(customer_id=customer_id, occurred_at=data.occurred_at or utcnow(),
                                  handled_by_id=self.uow.users.id_for(data.handled_by), **fields)
        self.session.add(interaction)
        self.session.flush()
        self.uow.audit.record("create", "interaction", interaction.id, after={"customer_id": customer_id, **fields})
        self.uow.hooks.interaction_logged(self.uow, interaction)
        return interaction

    def list(self, customer_id: int | None = None, limit: int = 50) -> list[Interaction]:
        q = select(Interaction).order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit)
        if customer_id is not None:
            self.uow.customers.get(customer_id)
            q = q.where(Interaction.customer_id == customer_id)
        return list(self.session.scalars(q))
