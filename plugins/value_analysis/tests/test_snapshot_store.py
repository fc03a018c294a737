"""Re-running a stored date rewrites only the snapshot rows that changed, and stores what a full rewrite would."""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from crm_value_analysis import services, snapshot_store
from crm_value_analysis.models import CustomerValue, ValueRun
from crm_value_analysis.testing import Base, d
from sqlalchemy import delete, select, update

from crmcore import CRM
from crmcore.models import Customer

SKIP = ("run_id",)


def run(crm: CRM, as_of: dt.date) -> services.RunOutcome:
    with crm.unit_of_work("analyst") as uow:
        return services.run_analysis(uow, as_of=as_of)


def stored(crm: CRM, as_of: dt.date) -> dict[int, tuple[Any, ...]]:
    """Every stored value of the date's rows (run id left out), by customer."""
    cols = [c for c in CustomerValue.__table__.c if c.name not in SKIP]
    with crm.unit_of_work() as uow:
        run_id = uow.session.scalar(select(ValueRun.id).where(ValueRun.as_of == as_of))
        found = uow.session.execute(select(*cols).where(CustomerValue.run_id == run_id)).all()
    return {r.customer_id: tuple(r) for r in found}


def forget_digests(crm: CRM) -> None:
    with crm.unit_of_work() as uow:
        uow.session.execute(update(ValueRun).values(row_digests=None))


def small_base(base: Base, n: int = 12) -> list[int]:
    ids = [base.customer(f"C{i}") for i in range(n)]
    for i, c in enumerate(ids):
        base.buys(c, range(i, 200, 15 + i), str(50 + 10 * i), category="ab"[i % 2])
    return ids


def test_rerun_on_unchanged_data_writes_no_row_and_keeps_the_run(vcrm: CRM, base: Base) -> None:
    small_base(base)
    first = run(vcrm, d(200))
    before = stored(vcrm, d(200))
    again = run(vcrm, d(200))
    assert first.summary["rows_written"] == 12 and again.summary["rows_written"] == 0
    assert again.run.id == first.run.id and stored(vcrm, d(200)) == before


def test_only_the_changed_rows_are_rewritten(vcrm: CRM, base: Base) -> None:
    ids = small_base(base)
    gone = base.customer("Prospect")
    run(vcrm, d(200))
    newcomer = base.customer("New prospect")  # no purchase: no other customer's numbers move
    with vcrm.unit_of_work() as uow:
        uow.session.execute(update(Customer).where(Customer.id == gone).values(archived=True))
    out = run(vcrm, d(200))
    partial = stored(vcrm, d(200))
    assert out.summary["rows_written"] == 1
    assert gone not in partial and newcomer in partial and set(partial) == {*ids, newcomer}
    forget_digests(vcrm)
    assert run(vcrm, d(200)).summary["rows_written"] == 13
    assert stored(vcrm, d(200)) == partial


def test_changed_rows_store_what_a_full_rewrite_stores(vcrm: CRM, base: Base) -> None:
    ids = small_base(base)
    run(vcrm, d(200))
    base.buy(ids[3], 199, "500")  # one customer buys again on the analysed date: shares and ranks move
    base.rate(ids[4], 150, 5)
    with vcrm.unit_of_work() as uow:
        uow.session.execute(update(Customer).where(Customer.id == ids[5]).values(archived=True))
    out = run(vcrm, d(200))
    partial = stored(vcrm, d(200))
    assert 1 <= out.summary["rows_written"] <= 11 and ids[5] not in partial
    forget_digests(vcrm)
    run(vcrm, d(200))
    assert stored(vcrm, d(200)) == partial


def test_rows_changed_behind_the_runs_back_are_rewritten_whole(vcrm: CRM, base: Base) -> None:
    ids = small_base(base)
    run(vcrm, d(200))
    before = stored(vcrm, d(200))
    with vcrm.unit_of_work() as uow:
        uow.session.execute(delete(CustomerValue).where(CustomerValue.customer_id == ids[0]))
    out = run(vcrm, d(200))
    assert out.summary["rows_written"] == 12 and stored(vcrm, d(200)) == before


def test_a_run_without_digests_is_rewritten_whole(vcrm: CRM, base: Base) -> None:
    small_base(base)
    run(vcrm, d(200))
    before = stored(vcrm, d(200))
    forget_digests(vcrm)
    assert run(vcrm, d(200)).summary["rows_written"] == 12
    assert stored(vcrm, d(200)) == before


def test_digests_follow_every_stored_value() -> None:
    n = 6
    cols: dict[str, Any] = {
        "run_id": np.full(n, 1), "customer_id": np.arange(n), "monetary": np.array([1.0, np.nan, 0.0, -0.0, 2.5, 3.0]),
        "tier": np.array(["vip", "key", "small", "small", "vip", "key"]),
        "previous_tier": np.array([None, "key", None, "vip", "vip", None], dtype=object),
    }
    base = snapshot_store.row_digests(cols, n)
    assert np.unique(base).size == n
    assert (snapshot_store.row_digests({**cols, "run_id": np.full(n, 9)}, n) == base).all()  # the run id is not content
    for name, changed in (("monetary", np.array([1.0, 0.0, 0.0, -0.0, 2.5, 3.0])),
                          ("tier", np.array(["vip", "vip", "small", "small", "vip", "key"])),
                          ("previous_tier", np.array([None, None, None, "vip", "vip", None], dtype=object))):
        other = snapshot_store.row_digests({**cols, name: changed}, n)
        assert (other != base).tolist() == [False, True, False, False, False, False], name
    ids, digests = snapshot_store.unpack(snapshot_store.pack(cols["customer_id"], base)) or (None, None)
    assert ids is not None and (ids == cols["customer_id"]).all() and (digests == base).all()


@pytest.mark.parametrize("blob", [None, b"", b"\x00" * 15])
def test_unusable_digests_read_as_none(blob: bytes | None) -> None:
    assert snapshot_store.unpack(blob) is None


def test_a_merge_clears_the_digests(vcrm: CRM, base: Base) -> None:
    ids = small_base(base)
    run(vcrm, d(200))
    with vcrm.unit_of_work() as uow:
        uow.customers.merge(ids[1], ids[2])
    with vcrm.unit_of_work() as uow:
        assert uow.session.scalar(select(ValueRun.row_digests)) is None
    assert run(vcrm, d(200)).summary["rows_written"] == 11
    assert run(vcrm, d(200)).summary["rows_written"] == 0
