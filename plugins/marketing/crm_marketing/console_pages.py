"""The marketing pages of the console: segments (list, create with a live count, preview),
campaigns and the campaign report.

The count while typing is the segment compiler's own preview (:func:`crm_marketing.services.preview`
over :func:`crm_marketing.services.rule_query`), so an "own" user counts only their customers and
a rule the compiler refuses shows the compiler's message. Handlers add no rule of their own.
"""
from __future__ import annotations

import re
from typing import Any

from starlette.responses import HTMLResponse, Response

from crm_marketing import reporting, segments, services
from crm_marketing.schemas import ATTRIBUTION_MODELS
from crmcore.console import View
from crmcore.console.forms import service_errors, values
from crmcore.console.web import status_for
from crmcore.errors import CRMError, InvalidInput, NotFound
from crmcore.sdk import MAX_ID

SEGMENT_FIELDS = ("name", "rule", "description")
SAMPLE = 10


def _count(view: View, rule: str, sample: int = 0) -> tuple[int | None, list[dict[str, Any]], str | None]:
    """(matches, sample, None) or (None, [], the compiler's message)."""
    if not rule.strip():
        return None, [], None
    try:
        with view.unit() as uow:
            uow.require("customer.read")
            n, rows = services.preview(uow, services.rule_query(uow, segments.parse(rule)), sample)
        return n, rows, None
    except InvalidInput as e:
        return None, [], str(e)


def count(view: View) -> Response:
    """The live count (htmx, on every key stroke after a pause): a fragment, always 200 so htmx
    swaps it in, the refusal included."""
    n, _, problem = _count(view, view.field("rule")[:10_000])
    html = view.console.templates.get_template("marketing/_count.html").render(
        {"_": view._, "fmt": view.fmt, "n": n, "problem": problem})
    return HTMLResponse(html)


def segment_list(view: View, raw: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                 status: int = 200, preview: tuple[Any, ...] | None = None) -> Response:
    with view.unit() as uow:
        rows = [{"id": s.id, "name": s.name, "kind": s.kind, "rule": s.rule, "description": s.description,
                 "frozen_at": s.frozen_at} for s in services.list_segments(uow)]
        can_write = uow.can("marketing.segment.write")
    n, sample, problem = preview or (None, [], None)
    return view.render("marketing/segments.html", status=status, segments=rows, can_write=can_write,
                       raw=raw or {}, errors=errors or {}, n=n, sample=sample, problem=problem)


def segment_create(view: View) -> Response:
    """Create, or (the "Count" button, without JavaScript) show the count and a sample."""
    raw = values(view.form, SEGMENT_FIELDS)
    if view.field("intent") == "count":
        return segment_list(view, raw, preview=_count(view, raw["rule"], SAMPLE))
    try:
        with view.unit(write=True) as uow:
            seg = services.create_segment(uow, raw["name"], raw["rule"] or None, description=raw["description"] or None)
            name = seg.name
    except CRMError as e:
        errors = service_errors(e) if isinstance(e, InvalidInput) else {"_": str(e)}
        if isinstance(e, InvalidInput) and "_" in errors and raw["rule"]:
            errors = {"rule": errors["_"]}  # the compiler's message belongs next to the rule
        return segment_list(view, raw, errors, status=status_for(e))
    return view.redirect(view.url("/marketing/segment", name=name), flash=view._("Segment %(name)s created.", name=name))


def segment_show(view: View) -> Response:
    name = view.arg("name")
    with view.unit() as uow:
        uow.require("customer.read")
        seg = services.get_segment(uow, name)
        n, sample = services.preview(uow, services.segment_query(uow, seg), SAMPLE)
        data = {"name": seg.name, "kind": seg.kind, "rule": seg.rule, "description": seg.description,
                "frozen_at": seg.frozen_at}
    return view.render("marketing/segment.html", seg=data, n=n, sample=sample)


def campaign_list(view: View) -> Response:
    with view.unit() as uow:
        rows = [{"id": c.id, "name": c.name, "channel": c.channel, "status": c.status, "launched_at": c.launched_at,
                 "budget": c.budget, "currency": c.currency} for c in services.list_campaigns(uow)]
    return view.render("marketing/campaigns.html", campaigns=rows)


def campaign_report(view: View) -> Response:
    cid = int(view.request.path_params["cid"])
    if not 0 < cid <= MAX_ID:
        raise NotFound("campaign", cid)
    model = view.arg("attribution") or None
    errors: dict[str, str] = {}
    if model is not None and model not in ATTRIBUTION_MODELS:
        errors["attribution"], model = view._("Choose one of the listed models."), None
    with view.unit() as uow:
        report = reporting.report(uow, services.get_campaign(uow, cid), model)
    if report.get("lift"):
        report["lift"] = {**report["lift"], "verdict": _verdict(view, report["lift"].get("verdict"))}
    return view.render("marketing/report.html", status=422 if errors else 200, r=report, cid=cid, errors=errors,
                       models=[(m, view.fmt.label(m.replace("_", " "))) for m in ATTRIBUTION_MODELS])


_VERDICT = re.compile(r"(?P<what>significant lift|significant drop|no significant difference) \(p=(?P<p>[\d.]+) (?P<op>[<>]=?) (?P<alpha>[\d.]+)\)")


def _verdict(view: View, text: str | None) -> str | None:
    """reporting.lift's verdict (an English line for the CLI) in the reader's language."""
    if not text:
        return text
    m = _VERDICT.fullmatch(text)
    if m is None:
        return view._(text)  # "no control group", "not enough data"
    return view._(m["what"].capitalize()) + f" (p = {view.fmt.number(m['p'])} {m['op']} {view.fmt.number(m['alpha'])})"


ROUTES: list[tuple[str, Any, tuple[str, ...]]] = [
    ("/marketing/segments", segment_list, ("GET",)),
    ("/marketing/segments", segment_create, ("POST",)),
    ("/marketing/segments/count", count, ("POST",)),
    ("/marketing/segment", segment_show, ("GET",)),
    ("/marketing/campaigns", campaign_list, ("GET",)),
    ("/marketing/campaigns/{cid:int}/report", campaign_report, ("GET",)),
]
