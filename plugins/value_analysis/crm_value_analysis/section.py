"""The value block of the 360° view and the merge of snapshot rows: what ``crm customer show`` and
``crm customer merge`` need, kept apart from the analyses so those commands never import SciPy."""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update

from crm_value_analysis.models import CustomerValue, ValueRun
from crm_value_analysis.money import money
from crmcore.models import Customer
from crmcore.profile import ProfileSection
from crmcore.uow import UnitOfWork


def profile_section(uow: UnitOfWork, customer: Customer) -> ProfileSection | None:
    """The "Customer value" block of the 360° view, from the latest snapshot (None: no run / no row)."""
    stmt = (select(ValueRun.as_of, CustomerValue).join(ValueRun, ValueRun.id == CustomerValue.run_id)
            .where(CustomerValue.customer_id == customer.id,
                   ValueRun.as_of == select(func.max(ValueRun.as_of)).scalar_subquery()))
    found = uow.session.execute(stmt).first()
    if found is None:
        return None
    as_of, row = found
    def rnd(v: float | None, nd: int = 2) -> float | None:
        return None if v is None else round(v, nd)
    return ProfileSection(title="Customer value", fields={
        "tier": row.tier,
        "rfm_segment": row.segment,
        "rfm_scores": f"R{row.r_score} F{row.f_score} M{row.m_score}",
        "lifecycle": row.lifecycle,
        "clv_probabilistic": money(row.clv_probabilistic),
        "clv_deterministic": money(row.clv_deterministic),
        "probability_alive": rnd(row.p_alive, 3),
        "churn_risk": row.churn_risk,
        "loyalty_index": rnd(row.loyalty, 1),
        "dependency": row.dependency,
        "as_of": as_of.isoformat(),
    })


def merge_customer_rows(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    """Re-point the source's snapshot rows to the target where the target has none for that run.

    Where both have a row the source's is deleted: snapshot rows are derived and the next run
    recomputes the merged customer from the (already re-pointed) transactions.
    """
    cv = CustomerValue
    target_runs = select(cv.run_id).where(cv.customer_id == target_id).scalar_subquery()
    uow.session.execute(delete(cv).where(cv.customer_id == source_id, cv.run_id.in_(target_runs)))
    res: Any = uow.session.execute(update(cv).where(cv.customer_id == source_id).values(customer_id=target_id),
                              execution_options={"synchronize_session": False})
    # the runs' row digests (see snapshot_store) no longer describe these rows: the next re-run rewrites them whole
    uow.session.execute(update(ValueRun).where(ValueRun.row_digests.is_not(None)).values(row_digests=None),
                        execution_options={"synchronize_session": False})
    return {CustomerValue.__tablename__: int(res.rowcount or 0)}
