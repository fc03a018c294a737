"""The sales pages of the console: the pipeline board (kanban), a deal (move, win, lose), leads
with the five-factor assessment, and the forecast.

Handlers only map forms onto :mod:`crm_sales_automation.services` and
:mod:`crm_sales_automation.analytics`: permissions, visibility ("own" users see the deals of
their customers and their own leads), guards (a credit check refusing a win) are the services'.
Every page issues a fixed number of queries whatever the number of deals.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.responses import FileResponse, PlainTextResponse, Response

from crm_sales_automation import analytics, services
from crm_sales_automation.enums import FACTOR_LABELS, Factor, LeadStatus
from crm_sales_automation.models import Stage
from crm_sales_automation.schemas import FactorScore
from crmcore.console import View
from crmcore.console.forms import service_errors
from crmcore.console.web import status_for
from crmcore.errors import CRMError, InvalidInput, NotFound, Vetoed
from crmcore.sdk import MAX_ID

#: the default pipeline's stages: name -> label (message ids of the plugin's catalogues)
DEFAULT_LABELS = {name: label for name, label, _prob in services.DEFAULT_STAGES} | {services.WON: "won", services.LOST: "lost"}
STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"kanban.js": "text/javascript", "sales.css": "text/css"}
PER_STAGE = 12


def _id(view: View, name: str, entity: str) -> int:
    """A path id; one beyond any database's integer is "not found" like a missing one."""
    value = int(view.request.path_params[name])
    if not 0 < value <= MAX_ID:
        raise NotFound(entity, value)
    return value


def _oid(view: View) -> int:
    return _id(view, "oid", "opportunity")


def stage_label(view: View, name: str, label: str | None = None, capital: bool = True) -> str:
    """A stage as the reader's language names it: the configured label (else the default
    pipeline's label for the name, else the name in words) through the plugin's catalogue, which
    translates the default pipeline's stages; a label no catalogue knows shows as configured."""
    return view.fmt.label(label or DEFAULT_LABELS.get(name) or name.replace("_", " "), capital)


def pipeline_name(view: View, name: str) -> str:
    """A pipeline in words: the default one by its role, another by its name (a code such as
    ``trade_fair``) through the catalogue, else as words."""
    if name == services.DEFAULT_PIPELINE:
        return view._("Default pipeline")
    return view.fmt.label(name.replace("_", " "))


def pipeline_title(view: View, name: str) -> str:
    """The board's heading."""
    if name == services.DEFAULT_PIPELINE:
        return view._("Sales pipeline")
    return view._("Pipeline %(name)s", name=view.fmt.label(name.replace("_", " "), capital=False))


def _refusal(view: View, e: CRMError) -> dict[str, str]:
    """A refused write as {field: message}; a guard's veto keeps its figures (the credit check's)."""
    if isinstance(e, InvalidInput):
        return service_errors(e)
    if isinstance(e, Vetoed):
        return {"_": view._("Refused by %(plugin)s: %(reason)s", plugin=e.plugin, reason=e.reason)}
    return {"_": str(e)}


def static(view: View) -> Response:
    """The plugin's two static files (the board's script and styles), cacheable."""
    name = view.request.path_params["name"]
    if name not in STATIC_FILES:
        return PlainTextResponse("not found", status_code=404)
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"cache-control": "max-age=3600"})


# -- the board --------------------------------------------------------------------------------

def board(view: View, errors: dict[str, str] | None = None, status: int = 200) -> Response:
    pipeline = view.arg("pipeline") or None
    with view.unit(write=True) as uow:  # the default pipeline is created on first use, as in the CLI
        data = services.board(uow, pipeline, PER_STAGE)
        pipelines = [p["name"] for p in services.list_pipelines(uow)]
        can_move = uow.can("sales.opportunity.move")
    for col in data["columns"]:
        col["label"] = stage_label(view, col["stage"], col["label"])
    names = [(p, pipeline_name(view, p)) for p in pipelines]
    return view.render("sales_automation/board.html", status=status, b=data, pipelines=names, can_move=can_move,
                       title=pipeline_title(view, data["pipeline"]), errors=errors or {},
                       stages=[(c["stage"], c["label"]) for c in data["columns"]])


def move(view: View) -> Response:
    """One deal to another stage: a form per card without JavaScript, or the board's drag and drop
    (``X-Console-Fetch``: answered with 204 or the refusal as one line of text)."""
    oid, stage = _oid(view), view.field("stage")
    fetch = view.request.headers.get("x-console-fetch") == "1"
    try:
        with view.unit(write=True) as uow:
            opp = services.move(uow, oid, stage)
            row = uow.session.get(Stage, opp.stage_id)  # loaded by the move: no query
            title, label = opp.title, stage_label(view, stage, row.label if row is not None else None, capital=False)
    except NotFound:
        raise
    except CRMError as e:
        if fetch:
            return PlainTextResponse(str(e), status_code=status_for(e))
        if view.field("back") == "deal":
            return deal(view, {"move": _refusal(view, e)}, status=status_for(e))
        return board(view, {"_": str(e)}, status=status_for(e))
    if fetch:
        return Response(status_code=204)
    back = f"/sales/opportunities/{oid}" if view.field("back") == "deal" else "/sales"
    return view.redirect(back, flash=view._("%(title)s moved to %(stage)s.", title=title, stage=label))


# -- one deal -----------------------------------------------------------------------------------

def deal(view: View, forms: dict[str, dict[str, str]] | None = None, status: int = 200) -> Response:
    oid = _oid(view)
    with view.unit() as uow:
        d = services.opportunity_detail(uow, oid)
        pipes = {p["name"]: p for p in services.list_pipelines(uow)}
        perms = {k: uow.can(k) for k in ("sales.opportunity.move", "sales.opportunity.win")}
        perms["reopen"] = uow.can(services.reopen_permission(uow))
    every = pipes[d["pipeline"]]["stages"]
    labels = {s["name"]: stage_label(view, s["name"], s["label"]) for s in every}
    stages = [(s["name"], labels[s["name"]]) for s in every if s["kind"] == "open"]
    d["stage_label"] = labels.get(d["stage"]) or stage_label(view, d["stage"])
    for h in d["history"]:
        h["from_label"] = labels.get(h["from"]) or stage_label(view, h["from"]) if h["from"] else ""
        h["to_label"] = labels.get(h["to"]) or stage_label(view, h["to"])
    forms = forms or {}
    return view.render("sales_automation/deal.html", status=status, d=d, stages=stages, perms=perms,
                       errors={k: forms.get(k, {}) for k in ("move", "win", "lose", "reopen")},
                       reason=view.field("reason") if view.form is not None else "",
                       reopen_stage=view.field("stage") if view.form is not None else "")


def win(view: View) -> Response:
    oid = _oid(view)
    try:
        with view.unit(write=True) as uow:
            title = services.win(uow, oid).title
    except NotFound:
        raise
    except CRMError as e:
        return deal(view, {"win": _refusal(view, e)}, status=status_for(e))
    return view.redirect(f"/sales/opportunities/{oid}", flash=view._("%(title)s is won.", title=title))


def lose(view: View) -> Response:
    oid = _oid(view)
    try:
        with view.unit(write=True) as uow:
            title = services.lose(uow, oid, view.field("reason")).title
    except NotFound:
        raise
    except CRMError as e:
        return deal(view, {"lose": _refusal(view, e)}, status=status_for(e))
    return view.redirect(f"/sales/opportunities/{oid}", flash=view._("%(title)s is lost.", title=title))


def reopen(view: View) -> Response:
    """A lost deal back to an open stage (the one chosen, else the one it was lost from), with a
    reason; the service checks the permission and writes the audit entry and the timeline line."""
    oid = _oid(view)
    try:
        with view.unit(write=True) as uow:
            title = services.reopen(uow, oid, view.field("reason"), stage=view.field("stage") or None).title
    except NotFound:
        raise
    except CRMError as e:
        return deal(view, {"reopen": _refusal(view, e)}, status=status_for(e))
    return view.redirect(f"/sales/opportunities/{oid}", flash=view._("%(title)s is open again.", title=title))


# -- leads -----------------------------------------------------------------------------------------

def leads(view: View) -> Response:
    status = view.arg("status")
    errors: dict[str, str] = {}
    if status and status not in LeadStatus.__members__.values():
        errors["status"] = view._("Choose one of the listed statuses.")
        status = ""
    with view.unit() as uow:
        rows = services.list_leads(uow, status=status or None, limit=200)
    rows.sort(key=lambda r: (-r["score"], r["id"]))
    return view.render("sales_automation/leads.html", leads=rows, chosen=status, errors=errors,
                       statuses=[s.value for s in LeadStatus])


def _scores(view: View) -> tuple[list[FactorScore], dict[str, str], dict[str, str]]:
    """The assessment form: a factor left blank is not changed; errors per field."""
    scores, errors, raw = [], {}, {}
    for f in Factor:
        pts, note = view.field(f"points_{f.value}"), view.field(f"note_{f.value}")
        raw[f"points_{f.value}"], raw[f"note_{f.value}"] = pts, note
        if pts == "":
            continue
        try:
            scores.append(FactorScore(factor=f, points=pts, note=note or None))
        except ValidationError as e:
            first = e.errors()[0]
            name = "note" if first["loc"] and first["loc"][0] == "note" else "points"
            errors[f"{name}_{f.value}"] = first["msg"]
    if not scores and not errors:
        errors["_"] = view._("Give at least one factor a score from 0 to 5.")
    return scores, errors, raw


def lead(view: View) -> Response:
    lid = _id(view, "lid", "lead")
    errors: dict[str, str] = {}
    raw: dict[str, str] = {}
    if view.form is not None:
        scores, errors, raw = _scores(view)
        if not errors:
            try:
                with view.unit(write=True) as uow:
                    services.assess(uow, lid, scores)
                return view.redirect(f"/sales/leads/{lid}", flash=view._("Assessment saved."))
            except CRMError as e:
                errors = _refusal(view, e)
    with view.unit() as uow:
        d = services.lead_detail(uow, lid)
        can_write = uow.can("sales.lead.write")
    if not raw:
        for a in d["assessment"]:
            raw[f"points_{a['factor']}"] = "" if a["points"] is None else str(a["points"])
            raw[f"note_{a['factor']}"] = a["note"] or ""
    return view.render("sales_automation/lead.html", status=422 if errors else 200, d=d, raw=raw, errors=errors,
                       can_write=can_write, factors=[(f.value, FACTOR_LABELS[f]) for f in Factor])


# -- forecast -------------------------------------------------------------------------------------

def forecast(view: View) -> Response:
    by = view.arg("by") or "month"
    errors: dict[str, str] = {}
    if by not in ("month", "owner", "pipeline"):
        errors["by"], by = view._("Choose month, owner or pipeline."), "month"
    with view.unit() as uow:
        f = analytics.forecast(uow, by)
    return view.render("sales_automation/forecast.html", f=f, by=by, errors=errors)


def home(view: View) -> Response:
    return board(view)


ROUTES: list[tuple[str, Any, tuple[str, ...]]] = [
    ("/sales", home, ("GET",)),
    ("/sales/static/{name}", static, ("GET",)),
    ("/sales/opportunities/{oid:int}", deal, ("GET",)),
    ("/sales/opportunities/{oid:int}/move", move, ("POST",)),
    ("/sales/opportunities/{oid:int}/win", win, ("POST",)),
    ("/sales/opportunities/{oid:int}/lose", lose, ("POST",)),
    ("/sales/opportunities/{oid:int}/reopen", reopen, ("POST",)),
    ("/sales/leads", leads, ("GET",)),
    ("/sales/leads/{lid:int}", lead, ("GET", "POST")),
    ("/sales/forecast", forecast, ("GET",)),
]
