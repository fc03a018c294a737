"""Pipelines and their stages, and the board (deals per stage)."""
from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from crm_sales_automation import visibility as visible
from crm_sales_automation.enums import (
    OpportunityStatus,
    StageKind,
)
from crm_sales_automation.models import (
    Opportunity,
    Pipeline,
    Stage,
)
from crm_sales_automation.schemas import (
    PipelineCreate,
    StageSpec,
)
from crm_sales_automation.services._common import DEFAULT_PIPELINE, DEFAULT_STAGES, LOST, WON, _audit, _usernames
from crmcore.errors import Conflict, InvalidInput, NotFound
from crmcore.models import Customer
from crmcore.sdk import text_problem
from crmcore.uow import UnitOfWork


def _add_stages(uow: UnitOfWork, pipeline: Pipeline, specs: Sequence[StageSpec]) -> None:
    rows = [(s.name, s.label or s.name.replace("_", " "), s.probability, StageKind.OPEN) for s in specs]
    rows += [(WON, "won", 100, StageKind.WON), (LOST, "lost", 0, StageKind.LOST)]
    for pos, (name, label, prob, kind) in enumerate(rows, start=1):
        uow.session.add(Stage(pipeline_id=pipeline.id, name=name, label=label, position=pos, probability=prob, kind=kind))
    uow.session.flush()


def ensure_default_pipeline(uow: UnitOfWork) -> Pipeline:
    """The default pipeline, created on first use (two processes racing: the loser re-reads)."""
    p = uow.session.scalar(select(Pipeline).where(Pipeline.is_default))
    if p is not None:
        return p
    existing = uow.session.scalar(select(Pipeline).where(Pipeline.name == DEFAULT_PIPELINE))
    if existing is not None:
        return existing
    from sqlalchemy.exc import IntegrityError

    try:
        with uow.session.begin_nested():
            p = Pipeline(name=DEFAULT_PIPELINE, is_default=True)
            uow.session.add(p)
            uow.session.flush()
            _add_stages(uow, p, [StageSpec(name=n, label=lb, probability=pr) for n, lb, pr in DEFAULT_STAGES])
    except IntegrityError:
        p = uow.session.scalar(select(Pipeline).where(Pipeline.name == DEFAULT_PIPELINE))
        assert p is not None
    return p


def create_pipeline(uow: UnitOfWork, data: PipelineCreate) -> Pipeline:
    uow.require("sales.pipeline.manage")
    ensure_default_pipeline(uow)
    if uow.session.scalar(select(Pipeline.id).where(Pipeline.name == data.name)) is not None:
        raise Conflict(f"pipeline {data.name!r} already exists")
    p = Pipeline(name=data.name, is_default=False)
    uow.session.add(p)
    uow.session.flush()
    _add_stages(uow, p, data.stages)
    _audit(uow, "create", "pipeline", p.id, after=data.model_dump())
    return p


def check_pipeline_name(name: str) -> None:
    """A name to look up must be text (NUL cannot reach PostgreSQL; controls are terminal escapes)."""
    problem = text_problem(name)
    if problem:
        raise InvalidInput(f"pipeline name {problem}", [("pipeline", problem)])


def get_pipeline(uow: UnitOfWork, name: str | None = None, *, create: bool = True) -> Pipeline:
    """The named (or default) pipeline. A write creates the default on first use; a read
    (``create=False``) gets it unsaved, as it will be created, and never writes."""
    if name is None:
        p = (uow.session.scalar(select(Pipeline).where(Pipeline.is_default))
             or uow.session.scalar(select(Pipeline).where(Pipeline.name == DEFAULT_PIPELINE)))
    else:
        check_pipeline_name(name)
        p = uow.session.scalar(select(Pipeline).where(Pipeline.name == name))
    if p is not None:
        return p
    if name is None or name == DEFAULT_PIPELINE:
        return ensure_default_pipeline(uow) if create else _unsaved_default()
    known = ", ".join(uow.session.scalars(select(Pipeline.name).order_by(Pipeline.name))) or DEFAULT_PIPELINE
    raise NotFound("pipeline", f"{name!r} (pipelines: {known})")


def _unsaved_default() -> Pipeline:
    """The default pipeline as ``ensure_default_pipeline`` will store it (id None, not in the session)."""
    return Pipeline(name=DEFAULT_PIPELINE, is_default=True)


def _default_stages() -> list[Stage]:
    rows = [(n, lb, pr, StageKind.OPEN) for n, lb, pr in DEFAULT_STAGES]
    rows += [(WON, "won", 100, StageKind.WON), (LOST, "lost", 0, StageKind.LOST)]
    return [Stage(name=n, label=lb, position=pos, probability=pr, kind=k) for pos, (n, lb, pr, k) in enumerate(rows, start=1)]


def stages_of(uow: UnitOfWork, pipeline_id: int | None) -> list[Stage]:
    if pipeline_id is None:  # the default pipeline, not stored yet
        return _default_stages()
    return list(uow.session.scalars(select(Stage).where(Stage.pipeline_id == pipeline_id).order_by(Stage.position)))


def stage_named(uow: UnitOfWork, pipeline: Pipeline, name: str) -> Stage:
    stage = uow.session.scalar(select(Stage).where(Stage.pipeline_id == pipeline.id, Stage.name == name))
    if stage is None:
        names = ", ".join(s.name for s in stages_of(uow, pipeline.id))
        raise InvalidInput(f"invalid input: stage: unknown stage {name!r} in pipeline {pipeline.name!r} (stages: {names})",
                           [("stage", "unknown stage")])
    return stage


def list_pipelines(uow: UnitOfWork) -> list[dict[str, Any]]:
    """Every pipeline with its stages; the default one even before its first use (a read: it
    writes nothing, ``id`` is None until a write stores it)."""
    pipes = list(uow.session.scalars(select(Pipeline).order_by(Pipeline.is_default.desc(), Pipeline.name)))
    if not any(p.is_default for p in pipes) and not any(p.name == DEFAULT_PIPELINE for p in pipes):
        pipes.insert(0, _unsaved_default())
    out = []
    for p in pipes:
        out.append({"id": p.id, "name": p.name, "default": p.is_default,
                    "stages": [{"name": s.name, "label": s.label, "position": s.position, "probability": s.probability,
                                "kind": s.kind.value} for s in stages_of(uow, p.id)]})
    return out


def board(uow: UnitOfWork, name: str | None = None, per_stage: int = 10) -> dict[str, Any]:
    """The pipeline as columns: per stage its open deals (largest first), count and values per currency."""
    p = get_pipeline(uow, name, create=False)
    stages = stages_of(uow, p.id)
    prob = func.coalesce(Opportunity.probability, Stage.probability)
    totals = uow.session.execute(
        select(Opportunity.stage_id, Opportunity.currency, func.count(), func.sum(Opportunity.amount),
               func.sum(Opportunity.amount * prob))
        .join(Stage, Stage.id == Opportunity.stage_id)
        .where(Opportunity.pipeline_id == p.id, Opportunity.status == OpportunityStatus.OPEN, visible.deals(uow))
        .group_by(Opportunity.stage_id, Opportunity.currency)).all()
    rank = func.row_number().over(partition_by=Opportunity.stage_id,
                                  order_by=(Opportunity.amount.desc(), Opportunity.id)).label("rank")
    ranked = (select(Opportunity.id, Opportunity.stage_id, Opportunity.title, Opportunity.amount, Opportunity.currency,
                     Opportunity.owner_id, Customer.name.label("customer"), rank)
              .join(Customer, Customer.id == Opportunity.customer_id)
              .where(Opportunity.pipeline_id == p.id, Opportunity.status == OpportunityStatus.OPEN, visible.deals(uow))
              .subquery())
    cards = uow.session.execute(select(ranked).where(ranked.c.rank <= per_stage).order_by(ranked.c.stage_id, ranked.c.rank)).all()
    names = _usernames(uow, [c.owner_id for c in cards])
    columns = []
    for s in stages:
        if s.kind is not StageKind.OPEN:
            continue
        t = [r for r in totals if r[0] == s.id]
        columns.append({
            "stage": s.name, "label": s.label, "probability": s.probability,
            "count": sum(r[2] for r in t),
            "value": {r[1]: Decimal(r[3]).quantize(Decimal("0.01")) for r in t},
            "weighted": {r[1]: (Decimal(r[4]) / 100).quantize(Decimal("0.01")) for r in t},
            "deals": [{"id": c.id, "title": c.title, "customer": c.customer, "amount": Decimal(c.amount).quantize(Decimal("0.01")),
                       "currency": c.currency, "owner": names.get(c.owner_id)} for c in cards if c.stage_id == s.id],
        })
    return {"pipeline": p.name, "columns": columns}
