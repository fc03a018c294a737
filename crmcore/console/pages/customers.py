"""Customers: the list (search, filters, keyset pages), create, edit with optimistic locking,
archive, and merge with a preview of what moves."""
from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from crmcore.console.forms import bind, service_errors, values
from crmcore.console.web import View, page
from crmcore.errors import CRMError, InvalidInput, StaleVersion
from crmcore.schemas import CustomerCreate, CustomerQuery, CustomerRead, CustomerUpdate
from crmcore.services.customer_fields import CLEARABLE, FILE_COLUMNS, LABELS
from crmcore.uow import UnitOfWork

#: the form's fields, in the form's order (the reference, made up when left empty, last); derived
#: from the one declaration, as the importer, exporter and CLI do
FIELDS: tuple[str, ...] = (*(f for f in FILE_COLUMNS if f != "external_ref"), "external_ref")
#: English labels (message ids) of the enum values shown in forms and lists
KINDS = {"organization": "Organization", "person": "Person", "government": "Government"}
STAGES = {"prospect": "Prospect", "target": "Target", "active": "Active", "at_risk": "At risk", "churned": "Churned"}


def routes() -> list[Any]:
    return [Route("/customers", page(customer_list), methods=["GET"]),
            Route("/customers/new", page(customer_new), methods=["GET", "POST"]),
            Route("/customers/{cid:int}/edit", page(customer_edit), methods=["GET", "POST"]),
            Route("/customers/{cid:int}/archive", page(customer_archive), methods=["GET", "POST"]),
            Route("/customers/{cid:int}/merge", page(customer_merge), methods=["GET", "POST"])]


def choices(view: View) -> dict[str, Any]:  # template context: passed as **ctx to View.render
    return {"kinds": [(k, view._(v)) for k, v in KINDS.items()],
            "stages": [(k, view._(v)) for k, v in STAGES.items()]}


def usernames(uow: UnitOfWork) -> dict[int, str]:
    return {u.id: u.username for u in uow.users.list()}


# -- list ---------------------------------------------------------------------------------------

def customer_list(view: View) -> Response:
    raw = {k: view.arg(k) for k in ("search", "tag", "owner", "country", "stage", "after")}
    raw["country"] = raw["country"].upper()
    query, errors = bind(CustomerQuery, {k: v for k, v in raw.items() if k != "after"},
                         extra={"after": raw["after"] or 0, "limit": 25})
    items: list[dict[str, Any]] = []
    next_after = None
    with view.unit() as uow:
        owners = usernames(uow)
        if query is not None:
            try:
                result = uow.customers.search(query)
                items = [CustomerRead.model_validate(c).model_dump() for c in result.items]
                next_after = result.next_after
            except InvalidInput as e:
                errors = service_errors(e)
        can_write = uow.can("customer.write")
    filters = {k: v for k, v in raw.items() if k != "after"}
    return view.render("customers/list.html", partial="results", items=items, owners=owners, filters=filters,
                       errors=errors, next_url=view.url("/customers", **filters, after=next_after) if next_after else None,
                       first_url=view.url("/customers", **filters) if raw["after"] else None,
                       can_write=can_write, stage_names=STAGES, **choices(view))


# -- create and edit -----------------------------------------------------------------------------

def customer_new(view: View) -> Response:
    raw = values(view.form, FIELDS) if view.form is not None else {"kind": "organization", "lifecycle_stage": "prospect"}
    errors: dict[str, str] = {}
    if view.form is not None:
        raw["country"] = raw.get("country", "").upper()
        data, errors = bind(CustomerCreate, raw)
        if data is not None:
            try:
                with view.unit(write=True) as uow:
                    c = uow.customers.create(data)
                    cid, name = c.id, c.name
                return view.redirect(f"/customers/{cid}", flash=view._("Customer %(name)s added.", name=name))
            except InvalidInput as e:
                errors = service_errors(e)
            except CRMError as e:
                errors = {"_": str(e)}
    with view.unit() as uow:
        users = sorted(usernames(uow).values())
    return view.render("customers/form.html", status=422 if errors else 200, raw=raw, errors=errors, users=users,
                       action=view.url("/customers/new"), title=view._("New customer"), version=None, stale=None,
                       labels=LABELS, **choices(view))


def _as_form(c: dict[str, Any], owners: dict[int, str]) -> dict[str, str]:
    out = {f: ("" if c.get(f) is None else str(c[f])) for f in FIELDS if f not in ("owner", "tags")}
    out["owner"] = owners.get(c["owner_id"], "") if c.get("owner_id") else ""
    out["tags"] = ", ".join(c.get("tags") or [])
    return out


def customer_edit(view: View) -> Response:
    cid = int(view.request.path_params["cid"])
    errors: dict[str, str] = {}
    stale: list[dict[str, str]] | None = None
    with view.unit() as uow:
        owners = usernames(uow)
        current = CustomerRead.model_validate(uow.customers.visible(cid)).model_dump()
    raw = _as_form(current, owners)
    version = current["version"]
    if view.form is not None:
        raw = values(view.form, FIELDS)
        raw["country"] = raw["country"].upper()
        mine = view.field("version")
        data, errors = bind(CustomerUpdate, raw, keep_empty=CLEARABLE, extra={"version": mine or None})
        if data is not None:
            try:
                with view.unit(write=True) as uow:
                    uow.customers.visible(cid)
                    c = uow.customers.update(cid, data)
                    name = c.name
                return view.redirect(f"/customers/{cid}", flash=view._("Customer %(name)s saved.", name=name))
            except StaleVersion:
                theirs = _as_form(current, owners)
                stale = [{"field": view._(LABELS[f]), "name": f, "yours": raw[f], "theirs": theirs[f]}
                         for f in FIELDS if raw[f] != theirs[f]]
                errors = {"_": view._("Someone else changed this customer while you were editing it. Your values are "
                                      "kept below, next to the values saved now; save again to keep yours.")}
            except InvalidInput as e:
                errors = service_errors(e)
            except CRMError as e:
                errors = {"_": str(e)}
        else:
            version = int(mine) if mine.isdigit() and len(mine) < 12 else version
    return view.render("customers/form.html", status=409 if stale is not None else (422 if errors else 200), raw=raw,
                       errors=errors, users=sorted(owners.values()), action=view.url(f"/customers/{cid}/edit"),
                       title=view._("Edit %(name)s", name=current["name"]), version=version, stale=stale, cid=cid,
                       labels=LABELS, **choices(view))


# -- archive and merge ---------------------------------------------------------------------------

def customer_archive(view: View) -> Response:
    cid = int(view.request.path_params["cid"])
    if view.form is None:
        with view.unit() as uow:
            c = CustomerRead.model_validate(uow.customers.visible(cid)).model_dump()
        return view.render("customers/archive.html", customer=c)
    with view.unit(write=True) as uow:
        uow.customers.visible(cid)
        name = uow.customers.archive(cid).name
    return view.redirect(f"/customers/{cid}", flash=view._("Customer %(name)s archived.", name=name))


class _Preview(Exception):
    """Raised to roll back the dry run of a merge once its counts are known."""

    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__("preview")
        self.counts = counts


def _resolve_target(uow: UnitOfWork, key: str) -> Any:
    return uow.customers.visible(f"#{key}" if key.isdigit() else key)


def customer_merge(view: View) -> Response:
    """GET: choose the target; GET with ``into``: the preview (the merge itself, run and rolled
    back, so the counts are exactly what would move, plugins' rows included); POST: merge."""
    cid = int(view.request.path_params["cid"])
    key = (view.field("into") if view.form is not None else view.arg("into"))[:100]
    with view.unit() as uow:
        source = CustomerRead.model_validate(uow.customers.visible(cid)).model_dump()
    ctx: dict[str, Any] = {"source": source, "into": key, "target": None, "counts": None, "error": None}
    if not key:
        return view.render("customers/merge.html", **ctx)
    try:
        if view.form is not None and view.field("confirm") == "yes":
            with view.unit(write=True) as uow:
                uow.customers.visible(cid)
                target = _resolve_target(uow, key)
                tid, tname = target.id, target.name
                counts = uow.customers.merge(cid, tid)
            moved = ", ".join(f"{n} {t}" for t, n in counts.items() if n) or view._("nothing")
            return view.redirect(f"/customers/{tid}", flash=view._("Merged into %(name)s; moved: %(moved)s.",
                                                                  name=tname, moved=moved))
        try:
            with view.unit(write=True) as uow:
                uow.customers.visible(cid)
                target = _resolve_target(uow, key)
                ctx["target"] = CustomerRead.model_validate(target).model_dump()
                raise _Preview(uow.customers.merge(cid, target.id))
        except _Preview as p:
            ctx["counts"] = p.counts
    except CRMError as e:
        ctx["error"] = str(e)
    return view.render("customers/merge.html", status=409 if ctx["error"] else 200, **ctx)
