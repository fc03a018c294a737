"""The 360° page (``uow.profiles.get``) and what is done from it: contacts, interactions,
postings, the account statement. A form that fails is drawn again on the page, the error next to
its field and the input kept; a guard's refusal (a credit hold) is shown with its figures."""
from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from crmcore.console.extensions import ConsoleSection, Failed, call_each, say
from crmcore.console.forms import bind, service_errors, values
from crmcore.console.pages.customers import KINDS, STAGES
from crmcore.console.web import View, human_ref, page
from crmcore.enums import Channel, Direction, TransactionKind
from crmcore.errors import CRMError, InvalidInput, Vetoed
from crmcore.models import Contact, User
from crmcore.schemas import (
    AccountRead,
    ContactCreate,
    ContactRead,
    ContactUpdate,
    InteractionCreate,
    TransactionCreate,
    TransactionRead,
)
from crmcore.vocabularies import of as vocabularies_of

CONTACT_FIELDS = ("name", "role", "title", "email", "phone")
INTERACTION_FIELDS = ("channel", "direction", "kind", "contact", "subject", "notes", "occurred_at", "outcome",
                      "satisfaction")
POSTING_FIELDS = ("kind", "amount", "currency", "reference", "occurred_at", "due_date", "description")
POSTING_KINDS = (TransactionKind.INVOICE, TransactionKind.PAYMENT, TransactionKind.CREDIT_NOTE)
TIMELINE_SIZE = 25


def routes() -> list[Any]:
    return [Route("/customers/{cid:int}", page(show), methods=["GET"]),
            Route("/customers/{cid:int}/contacts", page(add_contact), methods=["POST"]),
            Route("/contacts/{xid:int}/edit", page(edit_contact), methods=["GET", "POST"]),
            Route("/customers/{cid:int}/interactions", page(log_interaction), methods=["POST"]),
            Route("/customers/{cid:int}/postings", page(post_entry), methods=["POST"]),
            Route("/accounts/{aid:int}/statement", page(statement), methods=["GET"])]


def _words(view: View, vocabulary: str) -> list[tuple[str, str]]:
    """(word, label) of a vocabulary in force (crm.toml ``[vocabularies]``), for a select."""
    return [(w, view._(w.replace("_", " ").capitalize())) for w in vocabularies_of(view.crm).allowed(vocabulary)]


def _options(view: View) -> dict[str, Any]:
    _ = view._
    return {"roles": _words(view, "contact_roles"),
            "channels": [(c.value, _(c.value.capitalize())) for c in Channel],
            "directions": [(d.value, _(d.value.capitalize())) for d in Direction],
            "ikinds": _words(view, "interaction_kinds"),
            "pkinds": [(k.value, _(k.value.replace("_", " ").capitalize())) for k in POSTING_KINDS],
            "kind_names": KINDS, "stage_names": STAGES}


def show(view: View, forms: dict[str, tuple[dict[str, str], dict[str, str]]] | None = None, status: int = 200) -> Response:
    """The page; ``forms`` carries a failed form's input and errors back onto it."""
    cid = int(view.request.path_params["cid"])
    kind = view.arg("kind")[:64]
    sections: list[dict[str, Any]] = []
    with view.unit() as uow:
        # held here, so the profile's own look-up and the plugins' sections reuse the loaded row
        customer = uow.customers.visible(cid)
        p = uow.profiles.get(cid, interactions=TIMELINE_SIZE, kinds=[kind] if kind else None)
        owner_row = uow.session.get(User, customer.owner_id) if customer.owner_id else None
        owner = owner_row.username if owner_row is not None else ""
        for plugin, s in call_each(uow, "crm_console_customer_sections", view.active, customer=customer, profile=p):
            sections.append(_section(view, plugin, s))
        perms = {k: uow.can(k) for k in ("customer.write", "customer.archive", "customer.merge", "contact.write",
                                         "interaction.write", "account.post")}
    replaced = {s["replaces"] for s in sections if s.get("replaces")}
    phrases = view.console.registry.phrases
    generic = [{"title": t, "tables": p["section_tables"].get(t, []),
                "fields": {k: say(view.fmt, phrases, v, plugins=view.active) if isinstance(v, str) else None for k, v in f.items()},
                "raw": f}
               for t, f in p["sections"].items() if t not in replaced]
    forms = forms or {}
    return view.render("customers/show.html", status=status, partial="timeline" if view.arg("partial") == "timeline" else None,
                       p=p, c=p["customer"], owner=owner, kind=kind,
                       generic=generic, sections=sorted(sections, key=lambda s: s["order"]), perms=perms,
                       forms={k: forms.get(k, ({}, {})) for k in ("contact", "interaction", "posting")},
                       timeline=_timeline_rows(view, p["timeline"], {x["id"]: x["name"] for x in p["contacts"]}),
                       contact_options=[(str(x["id"]), x["name"]) for x in p["contacts"]], timeline_kinds=_timeline_kinds(view), **_options(view))


def _section(view: View, plugin: str, s: Any) -> dict[str, Any]:
    if isinstance(s, Failed):
        return {"failed": s, "order": 1000, "replaces": None}
    if not isinstance(s, ConsoleSection):
        return {"failed": Failed(plugin, "crm_console_customer_sections", f"returned {type(s).__name__}, not a ConsoleSection"),
                "order": 1000, "replaces": None}
    try:
        html = view.console.templates.get_template(s.template).render(
            {"_": view._, "fmt": view.fmt, "say": view.say, "url": view.url, "csrf": view.csrf, "prefix": view.console.prefix, **s.context})
    except Exception as e:  # noqa: BLE001 - a broken template is the plugin's error box, not a broken page
        return {"failed": Failed(plugin, "template " + s.template, f"{type(e).__name__}: {e}"), "order": 1000, "replaces": None}
    return {"title": view._(s.title), "html": html, "order": s.order, "replaces": s.replaces, "failed": None}


def _plugin_names(view: View) -> dict[str, str]:
    """plugin id -> its name for a reader: its navigation entry's label (translated by its own
    catalogue), else the id in words."""
    nav: dict[str, str] = {}
    for pid, entry in view.console.registry.nav:
        nav.setdefault(pid, entry.label)
    return {pid: view._(nav[pid]) if pid in nav else view.fmt.label(pid.replace("_", " ")) for pid in view.active}


def _timeline_kinds(view: View) -> list[tuple[str, str]]:
    """The timeline filter: interactions, ledger entries, each interaction kind, each plugin."""
    _ = view._
    out = [("core", _("Interactions")), ("ledger", _("Invoices and payments"))]
    out += _words(view, "interaction_kinds")
    names = _plugin_names(view)
    out += sorted(((pid, names[pid]) for pid in view.active), key=lambda kv: kv[1])
    return out


def _timeline_rows(view: View, entries: list[dict[str, Any]], people: dict[int, str]) -> list[dict[str, str]]:
    """The timeline as a reader sees it: the kind in words, money for the locale, no machine-made
    reference, where the entry comes from."""
    fmt, _ = view.fmt, view._
    options = _options(view)
    chan, ik = dict(options["channels"]), dict(options["ikinds"])
    names = {"core": _("Interaction"), "ledger": _("Ledger"), **_plugin_names(view)}
    phrases = [ph for ph in view.console.registry.phrases if ph[0] in view.active]
    rows = []
    for e in entries:
        what, summary = e["kind"], e["summary"] or ""
        if e["source"] == "core" and " " in e["kind"]:
            c, k = e["kind"].split(" ", 1)
            what = f"{chan.get(c, c)} · {ik.get(k, k)}"
            summary = _interaction_line(view, summary, phrases)
            if e.get("contact_id") in people:
                summary += " · " + _("Contact: %(name)s", name=people[e["contact_id"]])
        elif e["source"] == "ledger" and e.get("entry_kind"):
            what = _(e["entry_kind"].replace("_", " ").capitalize())
            summary = fmt.money(e["amount"], e["currency"]) + (f" · {e['description']}" if e.get("description") else "")
        else:
            what = fmt.label(e["kind"])
            summary = say(fmt, phrases, summary, plugins=(e["source"],), kind=e["kind"]) or summary
        rows.append({"day": fmt.day(e["at"]), "what": what, "summary": summary, "reference": human_ref(e["reference"]),
                     "source": names.get(e["source"], e["source"])})
    return rows


_MOVE = re.compile(r"(?P<what>[a-z][a-z ]{0,40}) (?P<id>\d+): (?P<source>[a-z_]+) → (?P<target>[a-z_]+)")


def _interaction_line(view: View, subject: str, phrases: list[Any]) -> str:
    """An interaction's subject a plugin wrote in English, in the reader's language: a state
    machine's move ("service ticket 4: open → resolved", crmcore.statemachine) or a plugin's
    phrase of kind "interaction"; a subject a person typed is shown as it is."""
    fmt = view.fmt
    m = _MOVE.fullmatch(subject)
    if m is not None:
        return (f"{fmt.label(m['what'])} {m['id']}: {fmt.label(m['source'].replace('_', ' '), capital=False)}"
                f" → {fmt.label(m['target'].replace('_', ' '), capital=False)}")
    return say(fmt, phrases, subject, plugins=view.active, kind="interaction") or subject


def _cid(view: View) -> int:
    return int(view.request.path_params["cid"])


def _refused(view: View, e: CRMError) -> dict[str, str]:
    if isinstance(e, InvalidInput):
        return service_errors(e)
    if isinstance(e, Vetoed):
        return {"_": view._("Refused by %(plugin)s: %(reason)s", plugin=e.plugin, reason=e.reason)}
    return {"_": str(e)}


def add_contact(view: View) -> Response:
    cid = _cid(view)
    raw = values(view.form, CONTACT_FIELDS)
    data, errors = bind(ContactCreate, raw)
    if data is not None:
        try:
            with view.unit(write=True) as uow:
                uow.customers.visible(cid)
                name = uow.contacts.add(cid, data).name
            return view.redirect(f"/customers/{cid}#contacts", flash=view._("Contact %(name)s added.", name=name))
        except CRMError as e:
            errors = _refused(view, e)
    return show(view, {"contact": (raw, errors)}, status=409 if "_" in errors else 422)


def edit_contact(view: View) -> Response:
    xid = int(view.request.path_params["xid"])
    with view.unit() as uow:
        row = uow.session.get(Contact, xid) if xid < 2**63 else None
        if row is None:
            from crmcore.errors import NotFound

            raise NotFound("contact", xid)
        uow.customers.visible(row.customer_id)  # an invisible customer's contact is not found either
        contact = ContactRead.model_validate(row).model_dump()
    raw = {k: "" if contact.get(k) is None else str(contact[k]) for k in CONTACT_FIELDS}
    errors: dict[str, str] = {}
    if view.form is not None:
        raw = values(view.form, CONTACT_FIELDS)
        data, errors = bind(ContactUpdate, raw, keep_empty=("role", "title", "email", "phone"))
        if data is not None:
            try:
                with view.unit(write=True) as uow:
                    uow.customers.visible(contact["customer_id"])
                    uow.contacts.update(xid, data)
                return view.redirect(f"/customers/{contact['customer_id']}#contacts",
                                     flash=view._("Contact %(name)s saved.", name=raw["name"]))
            except CRMError as e:
                errors = _refused(view, e)
    return view.render("customers/contact.html", status=422 if errors else 200, raw=raw, errors=errors,
                       contact=contact, **_options(view))


def log_interaction(view: View) -> Response:
    cid = _cid(view)
    raw = values(view.form, INTERACTION_FIELDS)
    data, errors = bind(InteractionCreate, {k: v for k, v in raw.items() if k != "contact"},
                        extra={"handled_by": view.me.username if view.me else None})
    contact = int(raw["contact"]) if raw["contact"].isdigit() and len(raw["contact"]) < 19 else None
    if raw["contact"] and contact is None:
        errors["contact"] = view._("Choose one of the customer's contacts.")
    if data is not None and not errors:
        try:
            with view.unit(write=True) as uow:
                uow.customers.visible(cid)
                uow.interactions.log(cid, data, contact=contact)
            return view.redirect(f"/customers/{cid}#timeline", flash=view._("Interaction logged."))
        except CRMError as e:
            errors = _refused(view, e)
    return show(view, {"interaction": (raw, errors)}, status=409 if "_" in errors else 422)


def post_entry(view: View) -> Response:
    cid = _cid(view)
    raw = values(view.form, POSTING_FIELDS)
    raw["currency"] = raw["currency"].upper()
    data, errors = bind(TransactionCreate, raw)
    if data is not None:
        try:
            with view.unit(write=True) as uow:
                uow.customers.visible(cid)
                entry, created = uow.accounts.post(cid, data)
                text = view.fmt.money(entry.amount, entry.currency)
            message = view._("Posted %(kind)s %(ref)s of %(amount)s.", kind=view._(raw["kind"].replace("_", " ").capitalize()),
                             ref=raw["reference"], amount=text) if created else \
                view._("%(ref)s was already posted; nothing changed.", ref=raw["reference"])
            return view.redirect(f"/customers/{cid}#accounts", flash=message)
        except CRMError as e:
            errors = _refused(view, e)
    return show(view, {"posting": (raw, errors)}, status=409 if "_" in errors else 422)


def statement(view: View) -> Response:
    aid = int(view.request.path_params["aid"])
    with view.unit() as uow:
        account = uow.accounts.visible(aid)
        customer = uow.customers.visible(account.customer_id)
        st = uow.accounts.statement(aid)
        data = {"account": AccountRead.model_validate(st.account).model_dump(), "opening": st.opening_balance,
                "closing": st.closing_balance, "customer": {"id": customer.id, "name": customer.name},
                "lines": [{"entry": TransactionRead.model_validate(x.entry).model_dump(), "effect": x.effect,
                           "running": x.running_balance} for x in st.lines]}
    return view.render("customers/statement.html", st=data)
