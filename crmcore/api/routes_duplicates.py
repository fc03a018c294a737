"""Likely duplicates and the merge preview: thin adapters over :mod:`crmcore.services.duplicates`
and :mod:`crmcore.services.merge_preview` (permissions and visibility are the services')."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from crmcore.api.app import ApiSettings, Id, MergeRequest, unit


class DuplicatePair(BaseModel):
    a: int = Field(description="id of the older customer")
    b: int = Field(description="id of the newer customer")
    score: float = Field(description="combined evidence, 0..1")
    evidence: list[str]


class MergePlan(BaseModel):
    source: int
    target: int
    moved: dict[str, int] = Field(description="rows each table would re-point")
    fields: dict[str, dict[str, Any]] = Field(description="per differing field: source, target, kept, rule")


def register(r: APIRouter, settings: ApiSettings) -> None:
    """Registered before ``/customers/{customer_id}``, which would otherwise take ``duplicates``."""

    @r.get("/customers/duplicates", response_model=list[DuplicatePair], tags=["customers"])
    def list_duplicates(request: Request, response: Response, threshold: Annotated[float | None, Query(gt=0, le=1)] = None,
                        limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> Any:
        """Pairs of active customers that look like one, best first (only customers you may see).

        Keys shared by too many customers to pair (a switchboard number) are stop words: the
        ``X-Duplicates-Skipped`` header counts them and ``X-Duplicates-Skipped-Detail`` says what
        they are (``crm customer duplicates`` prints them as notes)."""
        from crmcore.services import duplicates

        with unit(request, write=False) as uow:
            report = duplicates.scan_report(uow, threshold=threshold, limit=limit)
        response.headers["X-Duplicates-Skipped"] = str(len(report.skipped))
        if report.skipped:
            detail = "; ".join(str(s) for s in report.skipped[:20])
            response.headers["X-Duplicates-Skipped-Detail"] = detail.encode("ascii", "backslashreplace").decode()[:2000]
        return [c.as_dict() for c in report.pairs]

    @r.post("/customers/{customer_id}/merge/preview", response_model=MergePlan, tags=["customers"])
    def preview(request: Request, customer_id: Id, data: MergeRequest) -> Any:
        """What merging this customer into ``into`` would move and which value each field keeps; writes nothing."""
        from crmcore.services.merge_preview import preview_merge

        with unit(request, write=True) as uow:
            return preview_merge(uow, customer_id, data.into)
