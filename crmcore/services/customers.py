from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ARRAY, Integer, any_, bindparam, func, or_, select, update
from sqlalchemy.orm.exc import StaleDataError

from crmcore.db.types import utcnow
from crmcore.enums import LifecycleStage
from crmcore.errors import Conflict, InvalidInput, StaleVersion
from crmcore.models import Account, Contact, Customer, Interaction
from crmcore.schemas import CustomerCreate, CustomerUpdate
from crmcore.services._base import Service, new_ref

# fields a CustomerCreate/Update carries straight onto the model
_PLAIN = ("name", "kind", "email", "phone", "country", "region", "industry", "lifecycle_stage", "tags", "external_ref")


def snapshot(c: Customer) -> dict[str, Any]:
    return {f: getattr(c, f) for f in (*_PLAIN, "owner_id", "attributes", "archived")}


class CustomerService(Service):
    def get(self, customer_id: int) -> Customer:
        return self._get(Customer, customer_id, "customer")

    def get_by_ref(self, external_ref: str) -> Customer | None:
        return self.session.scalar(select(Customer).where(Customer.external_ref == external_ref))

    def _check_ref(self, ref: str | None, own_id: int | None = None) -> None:
        if ref is None:
            return
        other = self.session.scalar(select(Customer.id).where(Customer.external_ref == ref))
        if other is not None and other != own_id:
            raise Conflict(f"external reference {ref!r} already belongs to customer {other}")

    def create(self, data: CustomerCreate) -> Customer:
        self._check_ref(data.external_ref)
        attributes = self.uow.crm.fields.validate(data.attributes)
        c = Customer(**{f: getattr(data, f) for f in _PLAIN}, attributes=attributes,
                     owner_id=self.uow.users.id_for(data.owner))
        c.external_ref = c.external_ref or new_ref()
        self.session.add(c)
        self.session.flush()
        self.uow.audit.record("create", "customer", c.id, after=snapshot(c))
        self.uow.hooks.customer_created(self.uow, c)
        return c

    def update(self, customer_id: int, data: CustomerUpdate) -> Customer:
        c = self.get(customer_id)
        if data.version is not None and data.version != c.version:
            raise StaleVersion("customer", customer_id, data.version, c.version)
        if c.archived:
            raise Conflict(f"customer {customer_id} is archived")
        given = data.model_dump(exclude_unset=True, exclude={"version"})
        if not given:
            raise InvalidInput("nothing to update: give at least one field")
        before = snapshot(c)
        if "external_ref" in given:
            self._check_ref(data.external_ref, customer_id)
        for f in _PLAIN:
            if f in given:
                if given[f] is None and f in ("name", "kind", "lifecycle_stage", "tags"):
                    raise InvalidInput(f"{f} cannot be empty", [(f, "cannot be empty")])
                setattr(c, f, getattr(data, f))
        if "owner" in given:
            c.owner_id = self.uow.users.id_for(data.owner)
        if "attributes" in given:
            c.attributes = self.uow.crm.fields.validate(data.attributes or {}, existing=c.attributes)
        after = snapshot(c)
        changes = {k: (before[k], after[k]) for k in after if before[k] != after[k]}
        if not changes:
            return c
        try:
            self.session.flush()
        except StaleDataError:
            raise StaleVersion("customer", customer_id, c.version, c.version + 1) from None
        self.uow.audit.record("update", "customer", c.id, before={k: v[0] for k, v in changes.items()},
                              after={k: v[1] for k, v in changes.items()})
        self.uow.hooks.customer_updated(self.uow, c, changes)
        return c

    def set_lifecycle_stage(self, customer_id: int, stage: LifecycleStage) -> Customer:
        """Plugins move customers through the lifecycle through here (audited, hooks fire)."""
        return self.update(customer_id, CustomerUpdate(lifecycle_stage=stage))

    def set_lifecycle_stages(self, stages: Mapping[int, LifecycleStage]) -> list[int]:
        """Bulk form for analytics plugins: one UPDATE per stage, not one per customer.

        Only customers whose stage actually changes are touched (their ``version`` is bumped);
        one audit entry records the batch and ``crm_customers_batch`` fires once with their ids.
        """
        by_stage: dict[LifecycleStage, list[int]] = {}
        for cid, stage in stages.items():
            by_stage.setdefault(LifecycleStage(stage), []).append(int(cid))
        changed: list[int] = []
        now = utcnow()
        postgres = self.session.get_bind().dialect.name == "postgresql"
        for stage, ids in by_stage.items():
            for i in range(0, len(ids), 20000):
                chunk = ids[i:i + 20000]
                # PostgreSQL takes the whole chunk as one array parameter; SQLite as an IN list
                in_chunk = (Customer.id == any_(bindparam("ids", chunk, type_=ARRAY(Integer)))) if postgres else Customer.id.in_(chunk)
                where = (in_chunk, Customer.lifecycle_stage != stage, Customer.archived.is_(False))
                hit = list(self.session.scalars(select(Customer.id).where(*where)))
                if hit:
                    hit_in = (Customer.id == any_(bindparam("hit", hit, type_=ARRAY(Integer)))) if postgres else Customer.id.in_(hit)
                    self.session.execute(
                        update(Customer).where(hit_in).values(
                            lifecycle_stage=stage, version=Customer.version + 1, updated_at=now),
                        execution_options={"synchronize_session": False})
                    changed.extend(hit)
        if changed:
            self.session.expire_all()
            self.uow.audit.record("lifecycle", "customer", None, after={"customers": len(changed),
                                  "by_stage": {s.value: len(v) for s, v in by_stage.items()}})
            self.uow.hooks.customers_batch(self.uow, [], sorted(changed))
        return sorted(changed)

    def archive(self, customer_id: int) -> Customer:
        c = self.get(customer_id)
        if c.archived:
            return c
        c.archived = True
        self.session.flush()
        self.uow.audit.record("archive", "customer", c.id, before={"archived": False}, after={"archived": True})
        self.uow.hooks.customer_archived(self.uow, c)
        return c

    def list(self, *, search: str | None = None, stage: LifecycleStage | None = None, tag: str | None = None,
             include_archived: bool = False, limit: int = 50, offset: int = 0) -> list[Customer]:
        q = select(Customer).order_by(Customer.id)
        if not include_archived:
            q = q.where(Customer.archived.is_(False))
        if search:
            esc = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            like = f"%{esc}%"
            q = q.where(or_(func.lower(Customer.name).like(like, escape="\\"),
                            func.lower(Customer.email).like(like, escape="\\"), Customer.external_ref == search))
        if stage:
            q = q.where(Customer.lifecycle_stage == stage)
        if not tag:
            return list(self.session.scalars(q.limit(limit).offset(offset)))
        # tags are a JSON list, which SQLite and PostgreSQL query differently: stream and filter
        wanted, out, skipped = tag.lower(), [], 0
        for c in self.session.scalars(q.execution_options(yield_per=1000)):
            if wanted in (c.tags or []):
                if skipped < offset:
                    skipped += 1
                    continue
                out.append(c)
                if len(out) >= limit:
                    break
        return out

    def merge(self, source_id: int, target_id: int) -> dict[str, int]:
        """Merge ``source`` into ``target``: every related row is re-pointed; source is archived.

        Returns the number of rows re-pointed per table (core tables and the plugins' own).
        """
        if source_id == target_id:
            raise InvalidInput("cannot merge a customer into itself")
        source, target = self.get(source_id), self.get(target_id)
        if source.merged_into_id is not None:
            raise Conflict(f"customer {source_id} was already merged into {source.merged_into_id}")
        if target.archived:
            raise Conflict(f"customer {target_id} is archived; merge into an active customer")
        counts: dict[str, int] = {}
        target_has_default = self.session.scalar(
            select(func.count()).select_from(Account).where(Account.customer_id == target_id, Account.is_default)
        )
        if target_has_default:
            self.session.execute(update(Account).where(Account.customer_id == source_id).values(is_default=False))
        for model in (Contact, Interaction, Account):
            res = self.session.execute(update(model).where(model.customer_id == source_id).values(customer_id=target_id))
            counts[model.__tablename__] = res.rowcount
        counts.update(self.uow.hooks.merge_customers(self.uow, source_id, target_id))
        # the target keeps its own values and gains what it lacks
        merged_tags = list(dict.fromkeys([*(target.tags or []), *(source.tags or [])]))
        for f in ("email", "phone", "country", "region", "industry"):
            if getattr(target, f) is None and getattr(source, f) is not None:
                setattr(target, f, getattr(source, f))
        target.tags = merged_tags
        target.attributes = {**(source.attributes or {}), **(target.attributes or {})}
        source.archived = True
        source.merged_into_id = target_id
        self.session.flush()
        self.uow.audit.record("merge", "customer", target_id, before={"source": source_id}, after=counts)
        self.uow.hooks.customer_archived(self.uow, source)
        self.uow.hooks.customer_updated(self.uow, target, {})
        return counts
