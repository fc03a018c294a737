from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crmcore.db.types import utcnow
from crmcore.errors import Conflict, InvalidInput, NotFound, invalid_input
from crmcore.models import Interaction
from crmcore.schemas import InteractionCreate
from crmcore.services._base import Service, new_ref


def _comparable(value: Any) -> Any:
    """SQLite hands datetimes back naive (stored as UTC): compare them as UTC."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


class InteractionService(Service):
    def log(self, customer_id: int, data: InteractionCreate) -> Interaction:
        return self.log_once(customer_id, data)[0]

    # what must match for a reference logged again to be "the same touchpoint"
    SAME = ("customer_id", "channel", "direction", "kind", "subject", "notes", "outcome", "satisfaction", "source",
            "source_ref", "handled_by_id")

    def _same_or_conflict(self, existing: Interaction, wanted: dict[str, Any], occurred_at: dt.datetime | None) -> Interaction:
        differs = [f for f in self.SAME if getattr(existing, f) != wanted[f]]
        if occurred_at is not None and _comparable(existing.occurred_at) != occurred_at:
            differs.append("occurred_at")
        if differs:
            raise Conflict(f"interaction reference {existing.external_ref!r} is already logged (interaction {existing.id}) "
                           f"with a different {', '.join(differs)}; use a new reference or update interaction {existing.id}")
        return existing

    def log_once(self, customer_id: int, data: InteractionCreate) -> tuple[Interaction, bool]:
        """Log a touchpoint; returns (interaction, created). A reference logged again with the same
        content is a no-op (also when two writers log it at once); with different content, refused."""
        self.uow.require("interaction.write")
        customer = self.uow.customers.get(customer_id)
        if customer.archived:
            raise Conflict(f"customer {customer_id} is archived")
        fields = data.model_dump(exclude={"handled_by", "occurred_at"})
        wanted = {**fields, "customer_id": customer_id, "handled_by_id": self.uow.users.id_for(data.handled_by)}
        if data.external_ref:
            existing = self.session.scalar(select(Interaction).where(Interaction.external_ref == data.external_ref))
            if existing is not None:
                return self._same_or_conflict(existing, wanted, data.occurred_at), False
        fields["external_ref"] = fields["external_ref"] or new_ref()
        interaction = Interaction(customer_id=customer_id, occurred_at=data.occurred_at or utcnow(),
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
