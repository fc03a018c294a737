from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ARRAY, CursorResult, Integer, any_, bindparam, cast, exists, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crmcore.db.types import utcnow
from crmcore.enums import LifecycleStage
from crmcore.errors import Conflict, InvalidInput, NotFound, StaleVersion
from crmcore.limits import MAX_SEARCH, check_text, check_window, text_problem, valid_id
from crmcore.models import Account, Contact, Customer, Interaction, MergeJournal, Transaction, User
from crmcore.models.customer import fold
from crmcore.schemas import CustomerCreate, CustomerPage, CustomerQuery, CustomerUpdate
from crmcore.services._base import Service, new_ref
from crmcore.services.customer_fields import PLAIN


def _like(text: str) -> str:
    """A LIKE pattern for "contains ``text``", its wildcards escaped."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def shown(value: str, limit: int = 40) -> str:
    """A user's value for an error message: repr (controls escaped), cut short."""
    if len(value) > limit:
        return f"{value[:limit // 2]!r}…({len(value)} characters)"
    return repr(value)


def has_tag(session: Session, tag: str) -> Any:
    """``customers.tags`` (a JSON list) contains ``tag``, in SQL on both engines (pages stay exact)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(Customer.tags, JSONB).contains([tag])
    each = func.json_each(Customer.tags).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value == tag))


# fields a CustomerCreate/Update carries straight onto the model (declared once, in customer_fields)
_PLAIN = PLAIN


def snapshot(c: Customer) -> dict[str, Any]:
    return {f: getattr(c, f) for f in (*_PLAIN, "owner_id", "attributes", "archived")}


class CustomerService(Service):
    """Customers. Reads for a face go through :meth:`visible` and :meth:`search` (permission and
    visibility applied); :meth:`get` is the raw lookup by id that write services build on."""

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

    def create(self, data: CustomerCreate, *, force: bool = False) -> Customer:
        """A new customer; a likely duplicate of an active one is refused (Conflict) unless ``force``."""
        self.uow.require("customer.write")
        if data.owner is not None and data.owner != self.uow.actor:
            self.uow.require("customer.reassign")  # creating a customer for someone else
        self._check_ref(data.external_ref)
        if not force:
            self._refuse_duplicate(data)
        attributes = self.uow.crm.fields.validate(data.attributes)
        # an "own" user's new customer is theirs unless they name an owner: else they could not see it
        owner_id = self.uow.users.id_for(data.owner) if data.owner is not None else \
            (self.uow.visibility.user_id if self.uow.visibility.own_only else None)
        c = Customer(**{f: getattr(data, f) for f in _PLAIN}, attributes=attributes, owner_id=owner_id)
        c.external_ref = c.external_ref or new_ref()
        self.session.add(c)
        self.session.flush()
        self.uow.audit.record("create", "customer", c.id, after=snapshot(c))
        self.uow.hooks.customer_created(self.uow, c)
        return c

    def _refuse_duplicate(self, data: CustomerCreate) -> None:
        from crmcore.services import duplicates

        if duplicates.settings_of(self.uow).on_create == "off":
            return
        duplicates.lock_keys(self.uow, data.name, data.email, data.phone)  # two creates of one newcomer queue here
        found = duplicates.likely_duplicates(self.uow, data.name, data.email, data.phone, data.country)
        if found:
            raise Conflict(duplicates.refusal_message(self.uow, found))

    def update(self, customer_id: int, data: CustomerUpdate) -> Customer:
        self.uow.require("customer.write")
        # lock the row and read its committed state (PostgreSQL FOR UPDATE; SQLite holds the write
        # lock): concurrent updates queue here instead of failing in flush, and --version is
        # compared with what the database has now
        self.session.flush()  # changes made earlier in this unit must not be overwritten by the re-read
        c = self.session.get(Customer, customer_id, with_for_update=True, populate_existing=True) \
            if valid_id(customer_id) else None  # an id beyond the column is not found (not a driver error)
        if c is None:
            raise NotFound("customer", customer_id)
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
            owner_id = self.uow.users.id_for(data.owner)
            if owner_id != c.owner_id and not (c.owner_id is None and data.owner == self.uow.actor):
                self.uow.require("customer.reassign")  # only taking an unowned customer is free
            c.owner_id = owner_id
        if "attributes" in given:
            c.attributes = self.uow.crm.fields.validate(data.attributes or {}, existing=c.attributes)
        after = snapshot(c)
        changes = {k: (before[k], after[k]) for k in after if before[k] != after[k]}
        if not changes:
            return c
        expected = c.version
        try:
            self.session.flush()
        except StaleDataError:
            # the session can only roll back now: report from what we read before the flush
            raise StaleVersion("customer", customer_id, expected, expected + 1) from None
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
        self.uow.require("customer.write")
        by_stage: dict[LifecycleStage, list[int]] = {}
        for cid, stage in stages.items():
            by_stage.setdefault(LifecycleStage(stage), []).append(int(cid))
        changed: list[int] = []
        before_stage: dict[int, LifecycleStage] = {}
        now = utcnow()
        postgres = self.session.get_bind().dialect.name == "postgresql"
        for stage, ids in by_stage.items():
            for i in range(0, len(ids), 20000):
                chunk = ids[i:i + 20000]
                # PostgreSQL takes the whole chunk as one array parameter; SQLite as an IN list
                in_chunk = (Customer.id == any_(bindparam("ids", chunk, type_=ARRAY(Integer)))) if postgres else Customer.id.in_(chunk)
                where = (in_chunk, Customer.lifecycle_stage != stage, Customer.archived.is_(False))
                found = self.session.execute(select(Customer.id, Customer.lifecycle_stage).where(*where)).all()
                hit = [i for i, _ in found]
                before_stage.update((i, st) for i, st in found)
                if hit:
                    hit_in = (Customer.id == any_(bindparam("hit", hit, type_=ARRAY(Integer)))) if postgres else Customer.id.in_(hit)
                    self.session.execute(
                        update(Customer).where(hit_in).values(
                            lifecycle_stage=stage, version=Customer.version + 1, updated_at=now),
                        execution_options={"synchronize_session": False})
                    changed.extend(hit)
        if changed:
            self.session.expire_all()
            self._audit_lifecycle_batch(before_stage, stages, changed)
            self.uow.hooks.customers_batch(self.uow, [], sorted(changed))
        return sorted(changed)

    AUDIT_BATCH = 1000  # customers per audit entry of a bulk change

    def _audit_lifecycle_batch(self, before: Mapping[int, LifecycleStage], stages: Mapping[int, LifecycleStage],
                               changed: list[int]) -> None:
        """One audit entry per batch of customers, listing each id with its stage before and after."""
        ids = sorted(changed)
        wanted = {int(k): LifecycleStage(v) for k, v in stages.items()}
        for i in range(0, len(ids), self.AUDIT_BATCH):
            part = ids[i:i + self.AUDIT_BATCH]
            self.uow.audit.record("lifecycle", "customer", None,
                                  before={"lifecycle_stage": {str(c): before[c] for c in part}},
                                  after={"lifecycle_stage": {str(c): wanted[c] for c in part},
                                         "customers": len(part)})

    def archive(self, customer_id: int) -> Customer:
        self.uow.require("customer.archive")
        c = self.get(customer_id)
        if c.archived:
            return c
        self.uow.hooks.before_customer_archive(self.uow, c)  # a Veto refuses before anything changes
        c.archived = True
        self.session.flush()
        self.uow.audit.record("archive", "customer", c.id, before={"archived": False}, after={"archived": True})
        self.uow.hooks.customer_archived(self.uow, c)
        return c

    def list(self, *, search: str | None = None, stage: LifecycleStage | None = None, tag: str | None = None,
             include_archived: bool = False, limit: int = 50, offset: int = 0) -> list[Customer]:
        """Offset pages of :meth:`search`'s filters (kept for callers that page by offset)."""
        check_text(search, "search", MAX_SEARCH)  # what no engine can take is a clean InvalidInput
        check_text(tag, "tag")
        check_window(limit, offset)
        q = self._filtered(select(Customer), search=search, tag=tag.lower() if tag else None, stage=stage,
                           archived=include_archived)
        return list(self.session.scalars(q.order_by(Customer.id).limit(limit).offset(offset)))

    def search(self, query: CustomerQuery) -> CustomerPage:
        """One keyset page of the customers the actor may see, in id order: the search every face
        (CLI, HTTP API, console) runs. One SQL query, whatever the filters."""
        if not isinstance(query, CustomerQuery):
            raise InvalidInput("search takes a CustomerQuery")
        owner_id = None
        if query.owner is not None:
            owner_id = self.session.scalar(select(User.id).where(User.username == query.owner))
            if owner_id is None:
                raise InvalidInput(f"owner: no user {query.owner!r}", [("owner", "no such user")])
        q = self._filtered(select(Customer).where(Customer.id > query.after), search=query.search, tag=query.tag,
                           stage=query.stage, archived=query.archived)
        if query.owner is not None:
            q = q.where(Customer.owner_id == owner_id)
        if query.country is not None:
            q = q.where(Customer.country == query.country)
        rows = list(self.session.scalars(q.order_by(Customer.id).limit(query.limit + 1)))
        more = len(rows) > query.limit
        items = rows[:query.limit]
        return CustomerPage(items=items, next_after=items[-1].id if more and items else None)

    def _filtered(self, q: Any, *, search: str | None, tag: str | None, stage: LifecycleStage | None,
                  archived: bool) -> Any:
        """``q`` narrowed to the visible customers matching the filters (requires ``customer.read``)."""
        self.uow.require("customer.read")
        q = q.where(self.uow.visibility.customer_clause(Customer.owner_id))
        if not archived:
            q = q.where(Customer.archived.is_(False))
        if search:
            # names compare in their folded form (models.customer.fold), the same on both engines;
            # emails and references are lower-cased (ASCII by SQLite's lower(), which is what they hold)
            q = q.where(or_(Customer.search_name.like(_like(fold(search)), escape="\\"),
                            func.lower(Customer.email).like(_like(search.lower()), escape="\\"),
                            func.lower(Customer.external_ref).like(_like(search.lower()), escape="\\")))
        if stage:
            q = q.where(Customer.lifecycle_stage == stage)
        if tag:
            q = q.where(has_tag(self.session, tag))
        return q

    # -- one customer by id or reference -----------------------------------------------------
    def resolve(self, key: int | str) -> Customer:
        """The customer named by ``key``, if the actor may see it, else :class:`NotFound`.

        ``key`` is an id (int) or text: an external reference, or failing that a numeric id.
        The reference wins, so a customer whose reference is "2" is never confused with id 2;
        ``#2`` always means the id. An invisible customer is treated exactly as a missing one
        (a reference it holds does not exist for this actor), so nothing can be probed.
        """
        vis = self.uow.visibility
        if isinstance(key, int) and not isinstance(key, bool):
            return vis.check(self.get(key), key)
        if not isinstance(key, str) or text_problem(key):  # a NUL or lone surrogate cannot even be looked up
            raise NotFound("customer", shown(str(key)))
        if key.startswith("#") and key[1:].isascii() and key[1:].isdigit():
            if len(key) > 21 or not valid_id(int(key[1:])):  # beyond any id: checked before the database sees it
                raise NotFound("customer", key[:24] + ("…" if len(key) > 24 else ""))
            return vis.check(self.get(int(key[1:])), int(key[1:]))
        if len(key) <= 100:  # no reference is longer
            c = self.session.scalar(select(Customer).where(Customer.external_ref == key,
                                                           vis.customer_clause(Customer.owner_id)))
            if c is not None:
                return c
        if key.isascii() and key.isdigit() and len(key) <= 20 and valid_id(int(key)):
            return vis.check(self.get(int(key)), int(key))
        raise NotFound("customer", shown(key))

    def visible(self, customer_id_or_key: int | str) -> Customer:
        """The customer for a read: requires ``customer.read`` (checked first, so the answer never
        depends on whether the customer exists), then :meth:`resolve` (NotFound when missing or
        invisible)."""
        self.uow.require("customer.read")
        return self.resolve(customer_id_or_key)

    def _lock_for_merge(self, source_id: int, target_id: int) -> tuple[Customer, Customer]:
        """Both customers, locked in id order and re-read, then checked on what is committed now.

        Merges that cross (A into B, B into A) or chain (C into D, D into E) at the same instant
        queue on these locks (PostgreSQL ``FOR NO KEY UPDATE``, which also waits for ``update``'s
        ``FOR UPDATE`` but not for rows merely referencing the customer; SQLite's writing units
        of work already hold the write lock): the later one sees the earlier one's result. A merge into a
        customer merged meanwhile is refused rather than redirected to the survivor, since
        following the chain could merge a customer into itself; C's rows moved into D before D
        went into E were moved on with D's.
        """
        source, target = self.get(source_id), self.get(target_id)  # NotFound before any lock
        self.session.flush()  # the refresh must not drop changes made earlier in this unit
        for c in sorted((source, target), key=lambda c: c.id):
            self.session.refresh(c, with_for_update={"key_share": True})
        if source.merged_into_id is not None:
            raise Conflict(f"customer {source_id} was already merged into {source.merged_into_id}")
        if target.archived:
            merged = "" if target.merged_into_id is None else f" (merged into {target.merged_into_id})"
            raise Conflict(f"customer {target_id} is archived{merged}; merge into an active customer")
        return source, target

    def merge(self, source_id: int, target_id: int) -> dict[str, int]:
        """Merge ``source`` into ``target``: every related row is re-pointed; source is archived.

        Returns the number of rows re-pointed per table (core tables and the plugins' own).
        """
        self.uow.require("customer.merge")
        if source_id == target_id:
            raise InvalidInput("cannot merge a customer into itself")
        source, target = self._lock_for_merge(source_id, target_id)
        self.uow.hooks.before_customer_merge(self.uow, source, target)  # a Veto refuses the whole merge
        clash = list(self.session.scalars(
            select(Transaction.reference).where(Transaction.customer_id == source_id, Transaction.reference.in_(
                select(Transaction.reference).where(Transaction.customer_id == target_id))).order_by(Transaction.reference).limit(5)))
        if clash:
            raise Conflict(f"customers {source_id} and {target_id} both have entries with reference "
                           f"{', '.join(repr(r) for r in clash)}: a document is posted once per customer, so the merge "
                           "would post it twice; nothing was merged")
        counts: dict[str, int] = {}
        source_before, target_before = snapshot(source), snapshot(target)
        target_has_default = self.session.scalar(
            select(func.count()).select_from(Account).where(Account.customer_id == target_id, Account.is_default)
        )
        if target_has_default:
            self.session.execute(update(Account).where(Account.customer_id == source_id).values(is_default=False))
        for model in (Contact, Interaction, Account):
            res = typing.cast(CursorResult[Any], self.session.execute(  # DML: a cursor result, with rowcount
                update(model).where(model.customer_id == source_id).values(customer_id=target_id)))
            counts[model.__tablename__] = res.rowcount
        counts.update(self.uow.hooks.merge_customers(self.uow, source_id, target_id))
        # journaled, so a plugin disabled now re-points its rows when it is enabled again
        self.session.add(MergeJournal(source_id=source_id, target_id=target_id, actor=self.uow.actor,
                                      plugins=sorted(self.uow.hooks.plugins)))
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
        filled = {k: (target_before[k], v) for k, v in snapshot(target).items() if target_before[k] != v}
        self.uow.audit.record("merge", "customer", target_id, before={"source": source_id, **{k: b for k, (b, _) in filled.items()}},
                              after={**{k: a for k, (_, a) in filled.items()}, "moved": counts})
        self.uow.audit.record("merged", "customer", source_id,
                              before={"archived": source_before["archived"], "merged_into_id": None},
                              after={"archived": True, "merged_into_id": target_id, "moved": counts})
        self.uow.hooks.customer_archived(self.uow, source)
        self.uow.hooks.customer_updated(self.uow, target, {})
        return counts
